package kvstoretest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// watcher folds a watch stream into the state it describes and checks the
// stream's invariants on the way.
type watcher struct {
	t      *testing.T
	prefix string
	ch     <-chan kvstore.Event
	state  map[string]kvstore.KV
	rev    int64
	events []kvstore.Event
}

func startWatch(t *testing.T, s kvstore.Store, prefix string, from int64) *watcher {
	t.Helper()
	ch, err := s.Watch(ctxFor(t), prefix, from)
	if err != nil {
		t.Fatalf("watch %q from %d: %v", prefix, from, err)
	}
	return &watcher{t: t, prefix: prefix, ch: ch, state: map[string]kvstore.KV{}, rev: from}
}

// next returns the next event, failing the test if none comes in time or
// the stream closes.
func (w *watcher) next() kvstore.Event {
	w.t.Helper()
	select {
	case ev, ok := <-w.ch:
		if !ok {
			w.t.Fatalf("watch %q closed while the store is open", w.prefix)
		}
		w.apply(ev)
		return ev
	case <-time.After(wait):
		w.t.Fatalf("watch %q: no event within %v (state %s)", w.prefix, wait, w)
	}
	return kvstore.Event{}
}

// drain consumes the stream until it closes, failing if it stays open.
func (w *watcher) drain() {
	w.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-w.ch:
			if !ok {
				return
			}
		case <-timeout:
			w.t.Fatalf("watch %q still open %v after its store was closed", w.prefix, wait)
		}
	}
}

func (w *watcher) apply(ev kvstore.Event) {
	w.t.Helper()
	w.events = append(w.events, ev)
	switch ev.Type {
	case kvstore.EventResync:
		w.state = map[string]kvstore.KV{}
		for _, kv := range ev.Snapshot {
			w.checkKey(kv.Key)
			w.state[kv.Key] = kv
		}
		w.rev = ev.Revision
		return
	case kvstore.EventPut:
		w.state[ev.KV.Key] = ev.KV
		if ev.KV.Revision != ev.Revision {
			w.t.Errorf("put %q: KV.Revision %d differs from event revision %d", ev.KV.Key, ev.KV.Revision, ev.Revision)
		}
	case kvstore.EventDelete:
		delete(w.state, ev.KV.Key)
	default:
		w.t.Fatalf("event of unknown type %d", ev.Type)
	}
	w.checkKey(ev.KV.Key)
	if ev.Revision < w.rev || ev.Revision <= 0 {
		w.t.Errorf("%s %q at revision %d after revision %d: want increasing revisions",
			ev.Type, ev.KV.Key, ev.Revision, w.rev)
	}
	w.rev = ev.Revision
}

func (w *watcher) checkKey(key string) {
	if !strings.HasPrefix(key, w.prefix) {
		w.t.Errorf("watch %q delivered key %q outside the prefix", w.prefix, key)
	}
}

// until consumes events until the folded state equals want (key → value).
func (w *watcher) until(want map[string]string) {
	w.t.Helper()
	for !w.equals(want) {
		w.next()
	}
}

func (w *watcher) equals(want map[string]string) bool {
	if len(w.state) != len(want) {
		return false
	}
	for k, v := range want {
		if kv, ok := w.state[k]; !ok || string(kv.Value) != v {
			return false
		}
	}
	return true
}

func (w *watcher) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(w.state)) {
		fmt.Fprintf(&b, "%s=%q@%d ", k, w.state[k].Value, w.state[k].Revision)
	}
	return fmt.Sprintf("{%s} at %d", strings.TrimSpace(b.String()), w.rev)
}

func testWatchOrdering(t *testing.T, c Cluster, p string) {
	s, other := c.Client(t), c.Client(t)
	mustPut(t, s, p+"pre", "0")
	mustPut(t, s, strings.TrimSuffix(p, "/")+"X", "outside") // shares the prefix minus its slash

	w := startWatch(t, other, p, 0)
	if ev := w.next(); ev.Type != kvstore.EventResync || len(ev.Snapshot) != 1 || ev.Snapshot[0].Key != p+"pre" {
		t.Fatalf("first event from revision 0: got %s with %d entries, want a resync holding %q",
			ev.Type, len(ev.Snapshot), p+"pre")
	}

	// One change at a time: each must arrive as its own event.
	rev := mustPut(t, s, p+"a", "1")
	if ev := w.next(); ev.Type != kvstore.EventPut || ev.KV.Key != p+"a" || string(ev.KV.Value) != "1" || ev.Revision != rev {
		t.Fatalf("after put: got %s %q=%q@%d, want put %q=1@%d", ev.Type, ev.KV.Key, ev.KV.Value, ev.Revision, p+"a", rev)
	}
	if err := kvstore.Delete(ctxFor(t), s, p+"pre"); err != nil {
		t.Fatal(err)
	}
	if ev := w.next(); ev.Type != kvstore.EventDelete || ev.KV.Key != p+"pre" {
		t.Fatalf("after delete: got %s %q, want delete %q", ev.Type, ev.KV.Key, p+"pre")
	}

	// A burst from two clients: the stream must converge on the final
	// state with revisions never going back (checked by apply).
	second := startWatch(t, s, p, 0)
	want := map[string]string{p + "a": "1"}
	for i := range 40 {
		k := fmt.Sprintf("%sk%d", p, i%7)
		writer := s
		if i%2 == 1 {
			writer = other
		}
		if i%5 == 4 {
			if err := kvstore.Delete(ctxFor(t), writer, k); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
			continue
		}
		mustPut(t, writer, k, fmt.Sprint(i))
		want[k] = fmt.Sprint(i)
	}
	w.until(want)
	second.until(want)
}

func testWatchFromRevision(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	mustPut(t, s, p+"x", "0")
	l, err := s.List(ctxFor(t), p)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, p+"x", "1")
	mustPut(t, s, p+"y", "1")
	if err := kvstore.Delete(ctxFor(t), s, p+"x"); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, s, p, l.Revision)
	w.state = map[string]kvstore.KV{p + "x": l.KVs[0]} // what the consumer had
	w.until(map[string]string{p + "y": "1"})
	for _, ev := range w.events {
		if ev.Type != kvstore.EventResync && ev.Revision <= l.Revision {
			t.Errorf("%s %q at revision %d: want only changes after %d", ev.Type, ev.KV.Key, ev.Revision, l.Revision)
		}
	}

	// From the current revision, the next change is the next event.
	l, err = s.List(ctxFor(t), p)
	if err != nil {
		t.Fatal(err)
	}
	w = startWatch(t, s, p, l.Revision)
	rev := mustPut(t, s, p+"z", "1")
	if ev := w.next(); ev.Type != kvstore.EventPut || ev.KV.Key != p+"z" || ev.Revision != rev {
		t.Fatalf("watch from the current revision: got %s %q@%d, want put %q@%d", ev.Type, ev.KV.Key, ev.Revision, p+"z", rev)
	}
}

func testWatchCompaction(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	r1 := mustPut(t, s, p+"k1", "1")
	mustPut(t, s, p+"k2", "2")
	if err := kvstore.Delete(ctxFor(t), s, p+"k1"); err != nil {
		t.Fatal(err)
	}
	last := mustPut(t, s, p+"k3", "3")
	if !c.Compact(t, last) {
		t.Log("backend keeps no history to compact; nothing to check")
		return
	}
	w := startWatch(t, s, p, r1)
	if ev := w.next(); ev.Type != kvstore.EventResync {
		t.Fatalf("watch from a compacted revision: got %s %q first, want a resync", ev.Type, ev.KV.Key)
	}
	if !w.equals(map[string]string{p + "k2": "2", p + "k3": "3"}) {
		t.Fatalf("resync after compaction: got %s, want k2 and k3", w)
	}
	mustPut(t, s, p+"k4", "4")
	w.until(map[string]string{p + "k2": "2", p + "k3": "3", p + "k4": "4"})
}

// testWatchAcrossRestart stops and starts the server under a running watch:
// no change may be lost.
func testWatchAcrossRestart(t *testing.T, c Cluster) {
	const p = "suite/restart/"
	s := c.Client(t)
	w := startWatch(t, s, p, 0)
	w.next() // the initial resync
	mustPut(t, s, p+"a", "1")
	w.until(map[string]string{p + "a": "1"})

	survive := c.Restart(t)
	if !survive {
		// The store was closed and reopened: the old stream must have
		// ended, and a new one resumes from the revision seen.
		w.drain()
		s = c.Client(t)
		old := w.state
		w = startWatch(t, s, p, w.rev)
		w.state = old
	}
	mustPut(t, s, p+"b", "2")
	if err := kvstore.Delete(ctxFor(t), s, p+"a"); err != nil {
		t.Fatalf("delete after restart: %v", err)
	}
	mustPut(t, s, p+"c", "3")
	w.until(map[string]string{p + "b": "2", p + "c": "3"})

	// A second restart, then changes made while the watch reconnects.
	c.Stop(t)
	if survive = c.Start(t); !survive {
		s = c.Client(t)
		old, rev := w.state, w.rev
		w = startWatch(t, s, p, rev)
		w.state = old
	}
	if err := kvstore.Delete(ctxFor(t), s, p+"b"); err != nil {
		t.Fatalf("delete after second restart: %v", err)
	}
	mustPut(t, s, p+"c", "4")
	w.until(map[string]string{p + "c": "4"})
}
