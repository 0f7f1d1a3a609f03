package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// errLeaseLost means the lease a waiting Lock holds ended before the lock
// was acquired; Lock starts over with a new lease.
var errLeaseLost = errors.New("lease lost while waiting")

// Lock blocks until it creates key bound to a new lease of opts.TTL
// (rounded up to whole seconds, at least 3), or ctx is done. While another
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
	ctx, cancel := s.untilClose(ctx)
	defer cancel()
	bo := retry.Backoff{What: "etcd lock", Log: s.log}
	for {
		if s.closed.Load() {
			return nil, s.wrap(ctx, "lock", key, kvstore.ErrClosed)
		}
		ls, err := s.grant(ctx, key, ttl)
		if err != nil {
			return nil, err
		}
		token, err := s.acquire(ctx, key, opts.Value, ls)
		if err == nil && !isClosed(ls.lost) {
			return s.held(ctx, key, token, ls)
		}
		ls.stop()
		s.revokeLater(ls.id)
		if err != nil && !errors.Is(err, errLeaseLost) {
			return nil, err
		}
		bo.Failed(errLeaseLost)
		if !bo.Wait(ctx) {
			return nil, s.wrap(ctx, "lock", key, ctx.Err())
		}
	}
}

// acquire creates key with ls's lease once it does not exist, and returns
// the revision that created it.
func (s *Store) acquire(ctx context.Context, key string, value []byte, ls *lease) (int64, error) {
	bo := retry.Backoff{What: "etcd lock watch", Log: s.log}
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
		err = s.waitDeleted(ctx, key, resp.Header.Revision, ls)
		switch {
		case err == nil:
			bo.Succeeded()
		case errors.Is(err, errWatchBroke):
			bo.Failed(err)
			if !bo.Wait(ctx) {
				return 0, s.wrap(ctx, "lock", key, ctx.Err())
			}
		default:
			return 0, err
		}
	}
}

// errWatchBroke means the watch on a lock key ended early; the caller
// looks at the key again after a pause.
var errWatchBroke = errors.New("etcd lock watch broke")

// waitDeleted returns nil once key is deleted after rev, or errWatchBroke
// when watching it failed.
func (s *Store) waitDeleted(ctx context.Context, key string, rev int64, ls *lease) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.cli.Watch(wctx, key, clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return s.wrap(ctx, "lock", key, ctx.Err())
		case <-ls.lost:
			return errLeaseLost
		case resp, ok := <-wch:
			switch {
			case !ok:
				return errWatchBroke
			case resp.Err() != nil:
				return fmt.Errorf("%w: %w", errWatchBroke, resp.Err())
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					return nil
				}
			}
		}
	}
}

// held registers an acquired lock and starts watching over it.
func (s *Store) held(ctx context.Context, key string, token int64, ls *lease) (kvstore.Lock, error) {
	mctx, stopMonitor := context.WithCancel(s.bg)
	l := &lock{
		s:           s,
		key:         key,
		token:       token,
		lease:       ls,
		done:        make(chan struct{}),
		stopMonitor: stopMonitor,
		monitorDone: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		close(l.monitorDone)
		_ = l.release(ctx)
		return nil, s.wrap(ctx, "lock", key, kvstore.ErrClosed)
	}
	s.locks[l] = struct{}{}
	s.wg.Go(func() { l.monitor(mctx) })
	s.mu.Unlock()
	return l, nil
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
