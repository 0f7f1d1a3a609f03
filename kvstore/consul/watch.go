package consul

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// blockWait is how long one blocking query waits for a change. Consul adds
// up to 1/16 of it as jitter.
const blockWait = 5 * time.Minute

// Watch streams the changes under prefix after fromRevision.
//
// It runs blocking queries on the prefix listing and compares each answer
// with the previous one: keys whose ModifyIndex changed become put events
// (in ModifyIndex order), keys gone become delete events at the answer's
// index. With fromRevision > 0 the first listing either is at exactly
// fromRevision, so nothing under prefix changed after it, or the watch
// starts with a Resync: Consul cannot say which keys were deleted since an
// older index. A listing index below fromRevision resyncs too: the index of
// a prefix goes down when the tombstone of its newest change is reaped
// (Consul's tombstone_ttl, 15 minutes by default, after a delete) or after
// a snapshot restore.
//
// Consul keeps no history, so one case stays undetectable: a delete after
// fromRevision whose tombstone was reaped while the newest remaining entry
// is exactly at fromRevision looks like no change at all. Resume from a
// revision only within tombstone_ttl of having seen it.
//
// Watch takes the first listing before it returns (within the request
// timeout); when that fails, the watch goroutine retries it with backoff.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan kvstore.Event, error) {
	if err := kvstore.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if fromRevision < 0 {
		return nil, fmt.Errorf("%s: watch %q: negative revision %d", s.endpoint, prefix, fromRevision)
	}
	op := fmt.Sprintf("watch %q", prefix)
	if err := s.begin(); err != nil {
		return nil, s.fail(op, err)
	}
	w := &watcher{s: s, prefix: prefix, fromRev: uint64(fromRevision), ch: make(chan kvstore.Event, 16)}
	// The first listing is taken before Watch returns, so the watch starts
	// from the state at the call: a change made after Watch returns comes
	// as an event of its own, never folded into a Resync. If the listing
	// fails, the goroutine retries it.
	first, err := w.poll(ctx)
	if err := s.track(1); err != nil {
		return nil, s.fail(op, err)
	}
	go w.run(ctx, first, err)
	return w.ch, nil
}

// watcher is the state of one Watch goroutine.
type watcher struct {
	s       *Store
	prefix  string
	fromRev uint64
	ch      chan kvstore.Event

	index uint64 // index of the last answer; 0 before the first
	// state is the revision of every key of the last answer: all that
	// telling changes apart needs, without holding every value.
	state map[string]int64
}

// run sends the events of the first poll (or retries it after err), then
// polls until ctx is done or the Store is closed.
func (w *watcher) run(ctx context.Context, evs []kvstore.Event, err error) {
	defer w.s.wg.Done()
	defer close(w.ch)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(w.s.ctx, cancel)
	defer stop()

	b := retry.Backoff{What: "consul watch", Log: w.s.log}
	for {
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.Failed(err)
			if !b.Wait(ctx) {
				return
			}
		default:
			b.Succeeded()
			if !w.sendAll(ctx, evs) {
				return
			}
		}
		evs, err = w.poll(ctx)
	}
}

// poll lists the prefix and returns the events since the last listing.
func (w *watcher) poll(ctx context.Context) ([]kvstore.Event, error) {
	kvs, idx, err := w.list(ctx)
	if err != nil {
		return nil, err
	}
	return w.events(kvs, idx), nil
}

// list fetches the prefix: at once the first time, then as a blocking query
// from the last index.
func (w *watcher) list(ctx context.Context) ([]kvstore.KV, uint64, error) {
	q := w.s.query(ctx)
	extra := time.Duration(0)
	if w.index == 0 {
		q.RequireConsistent = true
	} else {
		q.WaitIndex, q.WaitTime = w.index, blockWait
		extra = blockWait + blockWait/16
	}
	rctx, cancel := w.s.opContext(ctx, extra)
	defer cancel()
	pairs, meta, err := w.s.client.KV().List(w.prefix, q.WithContext(rctx))
	if err != nil {
		return nil, 0, fmt.Errorf("list %q: %w", w.prefix, err)
	}
	return toKVs(pairs), normIndex(meta.LastIndex), nil
}

// events compares an answer with the previous state and adopts it.
func (w *watcher) events(kvs []kvstore.KV, idx uint64) []kvstore.Event {
	var evs []kvstore.Event
	switch {
	case w.index == 0 && w.fromRev > 0 && idx == w.fromRev:
		// Nothing under the prefix changed after fromRev. Any other index,
		// lower included, cannot be trusted to mean that: see Watch.
	case w.index == 0:
		evs = resync(kvs, idx)
	case idx < w.index:
		// The tombstone of the newest change was reaped (routine), or a
		// snapshot was restored or the cluster rebuilt: the previous state
		// cannot be trusted.
		w.s.log.Info("consul index went backwards (tombstone reaping or snapshot restore); resyncing watch",
			"from_index", w.index, "to_index", idx)
		evs = resync(kvs, idx)
	case idx == w.index:
		return nil // the blocking query timed out
	default:
		evs = diff(w.state, kvs, idx)
	}
	w.index = idx
	w.state = make(map[string]int64, len(kvs))
	for _, kv := range kvs {
		w.state[kv.Key] = kv.Revision
	}
	return evs
}

func resync(kvs []kvstore.KV, idx uint64) []kvstore.Event {
	return []kvstore.Event{{Type: kvstore.EventResync, Snapshot: kvs, Revision: int64(idx)}}
}

// diff returns the events leading from old to kvs, the state at idx: puts
// in revision order, then deletes at idx.
func diff(old map[string]int64, kvs []kvstore.KV, idx uint64) []kvstore.Event {
	var evs []kvstore.Event
	present := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		present[kv.Key] = true
		if o, ok := old[kv.Key]; !ok || o != kv.Revision {
			evs = append(evs, kvstore.Event{Type: kvstore.EventPut, KV: kv, Revision: kv.Revision})
		}
	}
	slices.SortStableFunc(evs, func(a, b kvstore.Event) int {
		if c := cmp.Compare(a.Revision, b.Revision); c != 0 {
			return c
		}
		return strings.Compare(a.KV.Key, b.KV.Key)
	})
	var gone []string
	for k := range old {
		if !present[k] {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		evs = append(evs, kvstore.Event{
			Type:     kvstore.EventDelete,
			KV:       kvstore.KV{Key: k, Revision: int64(idx)},
			Revision: int64(idx),
		})
	}
	return evs
}

// sendAll delivers evs unless ctx (the watch's or the Store's) ends first.
func (w *watcher) sendAll(ctx context.Context, evs []kvstore.Event) bool {
	for _, ev := range evs {
		select {
		case w.ch <- ev:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// blockingGet waits until key's index passes index (or blockWait passes)
// and returns the key's entry (nil when missing) and the answer's index.
func (s *Store) blockingGet(ctx context.Context, key string, index uint64, wait time.Duration) (*api.KVPair, uint64, error) {
	q := s.query(ctx)
	q.WaitIndex, q.WaitTime = index, wait
	rctx, cancel := s.opContext(ctx, wait+wait/16)
	defer cancel()
	pair, meta, err := s.client.KV().Get(key, q.WithContext(rctx))
	if err != nil {
		return nil, 0, err
	}
	return pair, normIndex(meta.LastIndex), nil
}
