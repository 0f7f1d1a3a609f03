package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// minLeaseSeconds is the shortest lease Lock grants: with one second, a
// single slow keep-alive round trip would lose the lock.
const minLeaseSeconds = 2

// errLeaseLost means the lease a waiting Lock holds ended before the lock
// was acquired; Lock starts over with a new lease.
var errLeaseLost = errors.New("lease lost while waiting")

// Lock blocks until it creates key bound to a new lease of opts.TTL
// (rounded up to whole seconds, at least 2), or ctx is done. While another
// holder has the key, it watches the key and tries again once it is
// deleted. The key's create revision is the lock's token.
func (s *Store) Lock(ctx context.Context, key string, opts kvstore.LockOptions) (kvstore.Lock, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("etcd lock: %w", err)
	}
	if len(opts.Value) > s.limits.MaxValueBytes {
		return nil, fmt.Errorf("etcd lock %q at %s: %w: value of %d bytes, at most %d",
			key, s.cfg.Endpoint, kvstore.ErrValueTooLarge, len(opts.Value), s.limits.MaxValueBytes)
	}
	ttl := leaseSeconds(opts.TTL)
	bo := backoff{what: "etcd lock"}
	for {
		if s.closed.Load() {
			return nil, s.wrap(ctx, "lock", key, kvstore.ErrClosed)
		}
		ls, err := s.grant(ctx, key, ttl)
		if err != nil {
			return nil, err
		}
		token, err := s.acquire(ctx, key, opts.Value, ls)
		if err == nil {
			return s.held(ctx, key, token, ls)
		}
		ls.stop()
		s.revokeLater(ls.id)
		if !errors.Is(err, errLeaseLost) {
			return nil, err
		}
		select {
		case <-time.After(bo.next()):
		case <-ctx.Done():
			return nil, s.wrap(ctx, "lock", key, ctx.Err())
		case <-s.closing:
			return nil, s.wrap(ctx, "lock", key, kvstore.ErrClosed)
		}
	}
}

// leaseSeconds converts a lock TTL into whole lease seconds.
func leaseSeconds(ttl time.Duration) int64 {
	if ttl <= 0 {
		ttl = kvstore.DefaultLockTTL
	}
	return max(int64(math.Ceil(ttl.Seconds())), minLeaseSeconds)
}

// lease is a granted lease being kept alive.
type lease struct {
	id   clientv3.LeaseID
	ka   <-chan *clientv3.LeaseKeepAliveResponse
	stop context.CancelFunc // stops the keep-alive
}

// grant creates a lease of ttl seconds and starts keeping it alive. The
// keep-alive channel closes when the lease ends: revoked, expired, or not
// renewed for a whole TTL.
func (s *Store) grant(ctx context.Context, key string, ttl int64) (*lease, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	g, err := s.cli.Grant(rctx, ttl)
	if err != nil {
		return nil, s.wrap(ctx, "lock", key, fmt.Errorf("grant lease: %w", err))
	}
	kctx, stop := context.WithCancel(s.bg)
	ka, err := s.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		s.revokeLater(g.ID)
		return nil, s.wrap(ctx, "lock", key, fmt.Errorf("keep lease alive: %w", err))
	}
	return &lease{id: g.ID, ka: ka, stop: stop}, nil
}

// acquire creates key with ls's lease once it does not exist, and returns
// the revision that created it.
func (s *Store) acquire(ctx context.Context, key string, value []byte, ls *lease) (int64, error) {
	for {
		rctx, cancel := s.reqCtx(ctx)
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(value), clientv3.WithLease(ls.id))).
			Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
			Commit()
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return 0, errLeaseLost
		case err != nil:
			return 0, s.wrap(ctx, "lock", key, err)
		case resp.Succeeded:
			return resp.Header.Revision, nil
		}
		if err := s.waitDeleted(ctx, key, resp.Header.Revision, ls); err != nil {
			return 0, err
		}
	}
}

// waitDeleted returns nil once key is deleted after rev, or when watching
// it failed and the caller should look again.
func (s *Store) waitDeleted(ctx context.Context, key string, rev int64, ls *lease) error {
	// Starting a watch waits for a connection: let Close interrupt it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.bg, cancel)()
	wch := s.cli.Watch(wctx, key, clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return s.wrap(ctx, "lock", key, ctx.Err())
		case <-s.closing:
			return s.wrap(ctx, "lock", key, kvstore.ErrClosed)
		case _, ok := <-ls.ka:
			if !ok {
				return errLeaseLost
			}
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return s.pause(ctx, key)
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					return nil
				}
			}
		}
	}
}

// pause waits a moment before a failed watch is tried again.
func (s *Store) pause(ctx context.Context, key string) error {
	bo := backoff{cur: 2 * minBackoff}
	t := time.NewTimer(bo.next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return s.wrap(ctx, "lock", key, ctx.Err())
	case <-s.closing:
		return s.wrap(ctx, "lock", key, kvstore.ErrClosed)
	}
}

// held registers an acquired lock and starts watching over it.
func (s *Store) held(ctx context.Context, key string, token int64, ls *lease) (kvstore.Lock, error) {
	mctx, stopMonitor := context.WithCancel(s.bg)
	l := &lock{
		s:             s,
		key:           key,
		token:         token,
		lease:         ls.id,
		done:          make(chan struct{}),
		stopKeepAlive: ls.stop,
		stopMonitor:   stopMonitor,
		monitorDone:   make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		close(l.monitorDone)
		_ = l.release(ctx)
		return nil, s.wrap(ctx, "lock", key, kvstore.ErrClosed)
	}
	s.locks[l] = struct{}{}
	s.wg.Go(func() { l.monitor(mctx, ls.ka) })
	s.mu.Unlock()
	return l, nil
}

// revokeLater revokes a lease in the background, best effort: it expires
// by its TTL anyway. Close cancels it.
func (s *Store) revokeLater(id clientv3.LeaseID) {
	_ = s.goOwned(func() {
		ctx, cancel := context.WithTimeout(s.bg, s.cfg.RequestTimeout)
		defer cancel()
		_ = s.revoke(ctx, id)
	})
}

// revoke ends a lease, deleting the keys bound to it. A lease that is
// already gone is not an error.
func (s *Store) revoke(ctx context.Context, id clientv3.LeaseID) error {
	_, err := s.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	return nil
}

// forget unregisters a lock that is no longer held.
func (s *Store) forget(l *lock) {
	s.mu.Lock()
	delete(s.locks, l)
	s.mu.Unlock()
}

// BreakLock revokes the lease of whoever holds key, which deletes the key
// and ends their lock; a key without a lease is deleted. An absent key is
// not an error.
func (s *Store) BreakLock(ctx context.Context, key string) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return fmt.Errorf("etcd break lock: %w", err)
	}
	if s.closed.Load() {
		return s.wrap(ctx, "break lock", key, kvstore.ErrClosed)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, key, clientv3.WithKeysOnly())
	if err != nil {
		return s.wrap(ctx, "break lock", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	if kv.Lease != 0 {
		err = s.revoke(rctx, clientv3.LeaseID(kv.Lease))
	} else {
		_, err = s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Commit()
	}
	if err != nil {
		return s.wrap(ctx, "break lock", key, err)
	}
	return nil
}
