package etcd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	// The watch's context also ends when the store closes, which stops
	// calls into the etcd client that wait for a connection.
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.bg, cancel)
	w := &watcher{
		s:      s,
		ctx:    wctx,
		prefix: prefix,
		rev:    fromRevision,
		resync: fromRevision == 0,
		ch:     make(chan kvstore.Event, watchBuffer),
		bo:     backoff{what: "etcd watch"},
	}
	err := s.goOwned(func() {
		defer stop()
		defer cancel()
		w.run()
	})
	if err != nil {
		stop()
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
	bo     backoff
}

func (w *watcher) run() {
	defer close(w.ch)
	for w.alive() {
		var err error
		if w.resync {
			err = w.sendResync()
		} else {
			err = w.stream()
		}
		if err != nil && w.alive() {
			w.bo.failed(w.s, err)
			if !sleep(w.ctx, w.bo.next()) {
				return
			}
		}
	}
}

func (w *watcher) alive() bool {
	return w.ctx.Err() == nil && !w.s.closed.Load()
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
	w.bo.succeeded(w.s)
	if w.send(kvstore.Event{Type: kvstore.EventResync, Snapshot: l.KVs, Revision: l.Revision}) {
		w.rev, w.resync = l.Revision, false
	}
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
	w.bo.succeeded(w.s)
	return true
}

// backoff is a retry delay doubling from 100ms to 5s with jitter, and the
// state for logging a failure streak once.
type backoff struct {
	what   string // names the retried work in logs
	cur    time.Duration
	warned bool
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, minBackoff), maxBackoff)
	// Full jitter in the upper half keeps watches of many replicas from
	// retrying in step.
	return b.cur/2 + rand.N(b.cur/2+1)
}

// failed logs the first failure of a streak.
func (b *backoff) failed(s *Store, err error) {
	if !b.warned {
		b.warned = true
		s.log.Warn(b.what+" failing, retrying", "error", err)
	}
}

// succeeded ends a failure streak.
func (b *backoff) succeeded(s *Store) {
	if b.warned {
		s.log.Info(b.what + " recovered")
	}
	b.cur, b.warned = 0, false
}
