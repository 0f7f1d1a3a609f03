package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// lock is a held etcd lock: key, created bound to lease at revision token.
type lock struct {
	s     *Store
	key   string
	token int64
	lease *lease

	done     chan struct{}
	doneOnce sync.Once

	stopMonitor context.CancelFunc
	monitorDone chan struct{}

	relMu    sync.Mutex
	released bool
}

// Key returns the locked key.
func (l *lock) Key() string { return l.key }

// Token returns the revision that created the lock key: etcd revisions
// only grow, so every later holder's token is greater.
func (l *lock) Token() int64 { return l.token }

// Done is closed when the lock is lost or released.
func (l *lock) Done() <-chan struct{} { return l.done }

// Expires returns the time the grant or the last renewal of the lock's
// lease that succeeded was sent, plus the TTL etcd confirmed: the server
// does not expire the lease before then. Done closes a margin earlier
// (see leaseMargin) if no renewal succeeds in the meantime.
func (l *lock) Expires() time.Time { return l.lease.expiry() }

// Update puts value at the lock key, bound to the lock's lease, if the
// key is still the one this lock created, and returns the revision of the
// write. Once the lock is lost or released, or when etcd finds the key
// deleted or taken over (the lock is then lost), it fails with
// kvstore.ErrFenced.
func (l *lock) Update(ctx context.Context, value []byte) (int64, error) {
	s := l.s
	if len(value) > s.limits.MaxValueBytes {
		return 0, fmt.Errorf("etcd update lock %q at %s: %w: value of %d bytes, at most %d",
			l.key, s.cfg.Endpoint, kvstore.ErrValueTooLarge, len(value), s.limits.MaxValueBytes)
	}
	if l.isDone() {
		return 0, l.fenced("the lock is lost or released")
	}
	if s.closed.Load() {
		return 0, fmt.Errorf("%w: %w", l.fenced("the store is closed"), kvstore.ErrClosed)
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.token)).
		Then(clientv3.OpPut(l.key, string(value), clientv3.WithLease(l.lease.id))).
		Commit()
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		// Revoking or expiring the lease deleted the key as well.
		l.lose("an update found the lease gone")
		return 0, l.fenced("the lease is gone")
	case err != nil:
		return 0, s.wrap(ctx, "update lock", l.key, err)
	case !resp.Succeeded:
		l.lose("an update found the lock key deleted or taken over")
		return 0, l.fenced("the lock key was deleted or taken over")
	}
	return resp.Header.Revision, nil
}

// fenced is the error of an update refused because the lock is not held.
func (l *lock) fenced(why string) error {
	return fmt.Errorf("etcd update lock %q at %s: %w: %s", l.key, l.s.cfg.Endpoint, kvstore.ErrFenced, why)
}

// isDone reports whether the lock is lost or released, counting a lost
// lease that the monitor has not acted on yet.
func (l *lock) isDone() bool {
	return isClosed(l.done) || isClosed(l.lease.lost)
}

// markDone closes done; it reports whether this call did.
func (l *lock) markDone() bool {
	first := false
	l.doneOnce.Do(func() {
		close(l.done)
		first = true
	})
	return first
}

// Release deletes the lock key if this lock still holds it and revokes
// the lease. It is idempotent. If ctx is already done it still tries, for
// at most the store's RequestTimeout. Once the store is closed there is
// nothing left to do: Close released the lock, or it had been lost.
func (l *lock) Release(ctx context.Context) error {
	if l.s.closed.Load() {
		l.markDone()
		return nil
	}
	return l.release(ctx)
}

func (l *lock) release(ctx context.Context) error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	l.markDone()
	l.stopMonitor()
	<-l.monitorDone
	l.lease.stop()
	l.s.forget(l)

	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, l.s.cfg.RequestTimeout)
	defer cancel()
	_, err := l.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.token)).
		Then(clientv3.OpDelete(l.key)).
		Commit()
	if rerr := l.s.revoke(ctx, l.lease.id); err == nil && rerr != nil {
		err = fmt.Errorf("revoke lease: %w", rerr)
	}
	if err != nil {
		return l.s.wrap(ctx, "unlock", l.key, err)
	}
	return nil
}

// lose marks the lock lost, stops watching over it and revokes its lease
// in the background, best effort.
func (l *lock) lose(reason string) {
	if !l.markDone() {
		return
	}
	l.s.log.Warn("etcd lock lost", "reason", reason)
	l.stopMonitor()
	l.lease.stop()
	l.s.forget(l)
	l.s.revokeLater(l.lease.id)
}

// monitor watches over a held lock until it is released or lost: the
// lease's keep-alive giving up means the lease ended or may have; the key
// being deleted or re-created means someone else broke or took the lock.
// The two are watched by separate goroutines because starting an etcd
// watch blocks while the server is unreachable, which is when the lease
// runs out.
func (l *lock) monitor(ctx context.Context) {
	defer close(l.monitorDone)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-l.lease.lost:
			l.lose(l.lease.why)
		}
	})
	l.watchKey(ctx)
	wg.Wait()
}

func (l *lock) watchKey(ctx context.Context) {
	rev := l.token
	bo := retry.Backoff{What: "etcd lock watch", Log: l.s.log}
	for ctx.Err() == nil {
		next, lost, err := l.followKey(ctx, rev, &bo)
		if lost != "" {
			l.lose(lost)
			return
		}
		rev = next
		if err != nil && ctx.Err() == nil {
			bo.Failed(err)
			if !bo.Wait(ctx) {
				return
			}
		}
	}
}

// followKey runs one etcd watch on the lock key from rev+1 until it
// breaks, the lock is lost or ctx is done. It returns the revision seen
// up to, why the lock is lost (empty if it is not), and why the watch
// broke.
func (l *lock) followKey(ctx context.Context, rev int64, bo *retry.Backoff) (int64, string, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range l.s.cli.Watch(wctx, l.key, clientv3.WithRev(rev+1)) {
		next, lost, err := l.inspect(ctx, resp, rev)
		if lost != "" || err != nil {
			return next, lost, err
		}
		rev = next
		bo.Succeeded()
	}
	return rev, "", errors.New("etcd lock watch closed")
}

// inspect reads one response of the watch on the lock key, returning
// what followKey does.
func (l *lock) inspect(ctx context.Context, resp clientv3.WatchResponse, rev int64) (int64, string, error) {
	switch {
	case resp.CompactRevision > 0:
		// Changes to the key were compacted away: look at it instead.
		rctx, cancel := context.WithTimeout(ctx, l.s.cfg.RequestTimeout)
		defer cancel()
		g, err := l.s.cli.Get(rctx, l.key, clientv3.WithKeysOnly())
		if err != nil {
			return rev, "", err
		}
		if len(g.Kvs) == 0 {
			return rev, "lock key deleted", nil
		}
		if lost := l.lostBy(g.Kvs[0]); lost != "" {
			return rev, lost, nil
		}
		return g.Header.Revision, "", errors.New("etcd lock watch compacted")
	case resp.Err() != nil:
		return rev, "", resp.Err()
	}
	for _, ev := range resp.Events {
		if ev.Type == clientv3.EventTypeDelete {
			return rev, "lock key deleted", nil
		}
		if lost := l.lostBy(ev.Kv); lost != "" {
			return rev, lost, nil
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	return rev, "", nil
}

// lostBy reports why the lock is lost if kv, the lock key as written
// last, is no longer this lock's: created by another holder, or bound to
// another lease (or none), which the lock's lease then no longer keeps
// from outliving its holder. The lock's own Update keeps both.
func (l *lock) lostBy(kv *mvccpb.KeyValue) string {
	switch {
	case kv.CreateRevision != l.token:
		return "lock key taken over"
	case clientv3.LeaseID(kv.Lease) != l.lease.id:
		return "lock key rebound to another lease"
	}
	return ""
}
