package embedded

import (
	"context"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Watch implements kvstore.Store. Changes come from the in-memory history;
// a watch from before it, from a revision this file never had, or one that
// fell behind a full history gets a resync read from the file.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan kvstore.Event, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if fromRevision < 0 {
		return nil, fmt.Errorf("watch %q: negative revision %d", prefix, fromRevision)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("watch %q: %w", prefix, kvstore.ErrClosed)
	}
	ch := make(chan kvstore.Event)
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer close(ch)
		s.watch(ctx, prefix, fromRevision, ch)
	}()
	return ch, nil
}

func (s *Store) watch(ctx context.Context, prefix string, rev int64, ch chan<- kvstore.Event) {
	resync := rev == 0
	bo := retry.Backoff{What: "embedded store watch resync", Log: s.log}
	for {
		if resync {
			ev, err := s.snapshot(prefix)
			if err != nil {
				// A damaged record under prefix: retry, as a write may
				// repair it.
				bo.Failed(err)
				if !s.pause(ctx, bo.Next()) {
					return
				}
				continue
			}
			bo.Succeeded()
			if !s.send(ctx, ch, ev) {
				return
			}
			rev = ev.Revision
		}
		s.mu.Lock()
		events, upTo, needResync := s.eventsAfter(rev, prefix)
		changed := s.changed
		s.mu.Unlock()
		if resync = needResync; resync {
			continue
		}
		for _, ev := range events {
			if !s.send(ctx, ch, ev) {
				return
			}
		}
		rev = upTo
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// pause waits d; false means the watch must end.
func (s *Store) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// eventsAfter returns the history's events after rev under prefix and the
// revision they bring the watcher to, or resync when the history cannot
// tell what happened after rev. s.mu must be held.
func (s *Store) eventsAfter(rev int64, prefix string) (events []kvstore.Event, upTo int64, resync bool) {
	if rev < s.histStart || rev > s.rev {
		return nil, 0, true
	}
	// Events are in revision order: find the first after rev.
	i := len(s.history)
	for i > 0 && s.history[i-1].Revision > rev {
		i--
	}
	for _, ev := range s.history[i:] {
		if strings.HasPrefix(ev.KV.Key, prefix) {
			events = append(events, ev)
		}
	}
	return events, s.rev, false
}

func (s *Store) snapshot(prefix string) (kvstore.Event, error) {
	var l kvstore.List
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		l, err = listTx(tx, prefix)
		return err
	})
	if err != nil {
		return kvstore.Event{}, err
	}
	return kvstore.Event{Type: kvstore.EventResync, Snapshot: l.KVs, Revision: l.Revision}, nil
}

func (s *Store) send(ctx context.Context, ch chan<- kvstore.Event, ev kvstore.Event) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}
