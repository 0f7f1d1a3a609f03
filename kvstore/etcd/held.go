package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/kvstore/internal/retry"
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
		if len(g.Kvs) == 0 || g.Kvs[0].CreateRevision != l.token {
			return rev, "lock key deleted or taken over", nil
		}
		return g.Header.Revision, "", errors.New("etcd lock watch compacted")
	case resp.Err() != nil:
		return rev, "", resp.Err()
	}
	for _, ev := range resp.Events {
		if ev.Type == clientv3.EventTypeDelete {
			return rev, "lock key deleted", nil
		}
		if ev.Kv.CreateRevision != l.token {
			return rev, "lock key taken over", nil
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	return rev, "", nil
}
