package etcd

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// watchBuffer is how many events a watch channel holds before the watch
// goroutine waits for its consumer.
const watchBuffer = 64

// Watch streams the changes under prefix after fromRevision. It runs one
// etcd watch at a time, resuming after the last revision delivered when
// the watch breaks (the member lost its leader, the connection dropped),
// and sends a Resync when etcd has compacted the revisions it needs.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan kvstore.Event, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("etcd watch: %w", err)
	}
	if fromRevision < 0 {
		return nil, fmt.Errorf("etcd watch %q at %s: negative revision %d", prefix, s.cfg.Endpoint, fromRevision)
	}
	wctx, cancel := s.untilClose(ctx)
	w := &watcher{
		s:      s,
		ctx:    wctx,
		prefix: prefix,
		rev:    fromRevision,
		resync: fromRevision == 0,
		ch:     make(chan kvstore.Event, watchBuffer),
		bo:     retry.Backoff{What: "etcd watch", Log: s.log},
	}
	err := s.goOwned(func() {
		defer cancel()
		w.run()
	})
	if err != nil {
		cancel()
		return nil, s.wrap(ctx, "watch", prefix, err)
	}
	return w.ch, nil
}

// watcher is the state of one Watch.
type watcher struct {
	s      *Store
	ctx    context.Context
	prefix string
	ch     chan kvstore.Event
	// rev is the last revision delivered: the next etcd watch starts after
	// it.
	rev int64
	// resync asks for a full listing before watching again.
	resync bool
	// current says rev is known not to be ahead of the store's revision
	// (see checkAhead).
	current bool
	bo      retry.Backoff
}

func (w *watcher) run() {
	defer close(w.ch)
	for w.alive() {
		var err error
		switch {
		case w.resync:
			err = w.sendResync()
		case !w.current:
			err = w.checkAhead()
		default:
			err = w.stream()
			w.current = false
		}
		if err != nil && w.alive() {
			w.bo.Failed(err)
			if !w.bo.Wait(w.ctx) {
				return
			}
		}
	}
}

func (w *watcher) alive() bool {
	return w.ctx.Err() == nil && !w.s.closed.Load()
}

// send delivers ev unless the watch ends first.
func (w *watcher) send(ev kvstore.Event) bool {
	select {
	case w.ch <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// sendResync lists the prefix and sends the listing as a Resync.
func (w *watcher) sendResync() error {
	l, err := w.s.List(w.ctx, w.prefix)
	if err != nil {
		return err
	}
	w.bo.Succeeded()
	if w.send(kvstore.Event{Type: kvstore.EventResync, Snapshot: l.KVs, Revision: l.Revision}) {
		w.rev, w.resync, w.current = l.Revision, false, true
	}
	return nil
}

// checkAhead compares the revision to watch from with the store's current
// one before an etcd watch is started. etcd accepts a watch from a future
// revision and stays silent until the store gets there, which after a
// restore without --bump-revision, or for a revision of another cluster,
// would lose the changes until then: such a watch is resynced instead.
func (w *watcher) checkAhead() error {
	rctx, cancel := w.s.reqCtx(w.ctx)
	defer cancel()
	// A linearizable read: its revision is at least every revision any
	// member has reported, so a lagging member cannot cause a resync.
	resp, err := w.s.cli.Get(rctx, w.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1))
	if err != nil {
		return fmt.Errorf("read the current revision: %w", err)
	}
	if cur := resp.Header.Revision; w.rev > cur {
		w.s.log.Warn("etcd watch revision is ahead of the store, resyncing (was etcd restored?)",
			"from_revision", w.rev, "store_revision", cur)
		w.resync = true
		return nil
	}
	w.current = true
	return nil
}

// stream runs one etcd watch from w.rev+1 until it breaks or the watch
// ends. It returns nil when the watch ended or needs a resync.
func (w *watcher) stream() error {
	// Without a leader a member's view may be stale; require one so that
	// a partitioned member cancels the watch and it is retried elsewhere.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(w.ctx))
	defer cancel()
	wch := w.s.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.rev+1),
		clientv3.WithProgressNotify())
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-wch:
		case <-w.ctx.Done():
			return nil
		}
		switch {
		case !ok:
			return errors.New("etcd watch stream closed")
		case resp.CompactRevision > 0:
			// The revisions after w.rev are gone: resync.
			w.resync = true
			return nil
		case resp.Err() != nil:
			return resp.Err()
		}
		if !w.deliver(resp) {
			return nil
		}
	}
}

// deliver sends the events of one watch response.
func (w *watcher) deliver(resp clientv3.WatchResponse) bool {
	for _, ev := range resp.Events {
		e := kvstore.Event{
			KV:       kvstore.KV{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision},
			Revision: ev.Kv.ModRevision,
		}
		if ev.Type == clientv3.EventTypeDelete {
			e.Type = kvstore.EventDelete
		} else {
			e.Type, e.KV.Value = kvstore.EventPut, ev.Kv.Value
		}
		if !w.send(e) {
			return false
		}
		w.rev = max(w.rev, e.Revision)
	}
	if resp.IsProgressNotify() {
		// Every change up to the header's revision has been delivered.
		w.rev = max(w.rev, resp.Header.Revision)
	}
	w.bo.Succeeded()
	return true
}
