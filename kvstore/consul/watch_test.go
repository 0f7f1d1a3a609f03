package consul

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

func testKV(k string, rev int64) kvstore.KV {
	return kvstore.KV{Key: k, Value: []byte(k), Revision: rev}
}

// summary writes events as "type:key@revision", space-separated.
func summary(evs []kvstore.Event) string {
	var b []string
	for _, ev := range evs {
		b = append(b, ev.Type.String()+":"+ev.KV.Key+"@"+strconv.FormatInt(ev.Revision, 10))
	}
	return strings.Join(b, " ")
}

// TestWatchEvents drives a running watch's state machine with made-up
// answers.
func TestWatchEvents(t *testing.T) {
	var logs bytes.Buffer
	s := &Store{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w := &watcher{s: s}
	for _, step := range []struct {
		name string
		kvs  []kvstore.KV
		idx  uint64
		want string
	}{
		{"first answer", []kvstore.KV{testKV("a", 3)}, 5, "resync:@5"},
		{"same index again", []kvstore.KV{testKV("a", 3)}, 5, ""},
		{"puts", []kvstore.KV{testKV("a", 9), testKV("b", 7), testKV("c", 8)}, 9, "put:b@7 put:c@8 put:a@9"},
		{"deletes", []kvstore.KV{testKV("c", 8)}, 12, "delete:a@12 delete:b@12"},
		{"index going backwards", []kvstore.KV{testKV("c", 8)}, 8, "resync:@8"},
		{"after going backwards", []kvstore.KV{testKV("c", 8), testKV("d", 13)}, 13, "put:d@13"},
	} {
		if got := summary(w.events(step.kvs, step.idx)); got != step.want {
			t.Fatalf("%s: got %q, want %q", step.name, got, step.want)
		}
	}
	// Tombstone reaping makes the index go backwards routinely: the log
	// line is informational, names no key and blames nothing.
	got := logs.String()
	if !strings.Contains(got, "level=INFO") || !strings.Contains(got, "tombstone reaping or snapshot restore") {
		t.Errorf("log for the index going backwards: got %q, want an INFO line naming tombstone reaping", got)
	}
	if strings.Contains(got, "level=WARN") || strings.Contains(got, "c@") || strings.Contains(got, `"c"`) {
		t.Errorf("log for the index going backwards: got %q, want no warning and no key", got)
	}
}

// TestWatchFirstAnswer checks the first answer of a watch from a revision:
// only an index equal to it means nothing changed. A lower index (the
// prefix's newest tombstone reaped, a snapshot restored) is no proof of
// that, and neither is a higher one.
func TestWatchFirstAnswer(t *testing.T) {
	s := &Store{log: slog.New(slog.DiscardHandler)}
	kvs := []kvstore.KV{testKV("a", 3), testKV("b", 5)}
	for _, tc := range []struct {
		name     string
		from, at uint64
		want     string
	}{
		{"from 0", 0, 5, "resync:@5"},
		{"from the index", 5, 5, ""},
		{"from an older index", 4, 5, "resync:@5"},
		{"from a later index", 21, 5, "resync:@5"},
		{"from a later index, index 1", 21, 1, "resync:@1"},
	} {
		w := &watcher{s: s, fromRev: tc.from}
		if got := summary(w.events(kvs, tc.at)); got != tc.want {
			t.Errorf("%s: first answer at %d from %d: got %q, want %q", tc.name, tc.at, tc.from, got, tc.want)
		}
		// Either way the watch goes on from the answer's state.
		got := summary(w.events([]kvstore.KV{testKV("a", 3)}, 9))
		if want := "delete:b@9"; got != want {
			t.Errorf("%s: next answer: got %q, want %q", tc.name, got, want)
		}
	}
}

// TestWatchAfterSnapshotRestore restores a snapshot taken before the last
// change under a prefix, which takes the prefix's index back below the
// revision a consumer has seen; a watch from that revision must resync
// rather than report that nothing changed.
func TestWatchAfterSnapshotRestore(t *testing.T) {
	srv := testserver.Consul(t)
	s := newClient(t, srv, Config{})
	ctx := t.Context()
	const p = "test/restore/"
	if _, err := kvstore.Put(ctx, s, p+"x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	snap := saveSnapshot(t, s.client)
	if _, err := kvstore.Put(ctx, s, p+"y", []byte("2")); err != nil {
		t.Fatal(err)
	}
	seen, err := s.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.Snapshot().Restore(nil, bytes.NewReader(snap)); err != nil {
		t.Fatalf("restore snapshot: %v", err)
	}

	ch, err := s.Watch(ctx, p, seen.Revision)
	if err != nil {
		t.Fatalf("watch from %d: %v", seen.Revision, err)
	}
	ev := nextEvent(t, ch)
	if ev.Type != kvstore.EventResync || len(ev.Snapshot) != 1 || ev.Snapshot[0].Key != p+"x" {
		t.Fatalf("first event from %d after the restore: got %s %q with snapshot %v, want a resync holding only %q",
			seen.Revision, ev.Type, ev.KV.Key, ev.Snapshot, p+"x")
	}
	// The watch goes on from the restored state.
	rev, err := kvstore.Put(ctx, s, p+"z", []byte("3"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ch); ev.Type != kvstore.EventPut || ev.KV.Key != p+"z" || ev.Revision != rev {
		t.Fatalf("after a put: got %s %q@%d, want put %q@%d", ev.Type, ev.KV.Key, ev.Revision, p+"z", rev)
	}
}

func saveSnapshot(t *testing.T, c *api.Client) []byte {
	t.Helper()
	r, _, err := c.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return b.Bytes()
}

// nextEvent returns the next event of ch, failing the test if none comes
// within a generous time or ch closes.
func nextEvent(t *testing.T, ch <-chan kvstore.Event) kvstore.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no watch event within 30s")
	}
	return kvstore.Event{}
}
