package kvstoretest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// wait bounds every wait in the suite. It is a failure deadline, not a
// timing assertion: a healthy backend answers far sooner.
const wait = 60 * time.Second

// lockTTL is the TTL of the suite's locks; backends round it up to their
// minimum (Consul: 10s).
const lockTTL = 5 * time.Second

// Run runs the conformance suite against the backend h adapts.
func Run(t *testing.T, h Harness) {
	shared := h.NewCluster(t)
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c Cluster, prefix string)
	}{
		{"CRUD", testCRUD},
		{"StaleRead", testStaleRead},
		{"CompareAndSet", testCompareAndSet},
		{"CASRace", testCASRace},
		{"BatchAtomicity", testBatchAtomicity},
		{"SizeLimits", testSizeLimits},
		{"BadKeys", testBadKeys},
		{"WatchOrdering", testWatchOrdering},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchCompaction", testWatchCompaction},
		{"LockExclusion", testLockExclusion},
		{"LockTokensIncrease", testLockTokensIncrease},
		{"FencedWrites", testFencedWrites},
		{"LockBroken", testLockBroken},
		{"LockUpdate", testLockUpdate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, shared, "suite/"+tc.name+"/")
		})
	}
	// These stop the server, so each gets a cluster of its own.
	t.Run("WatchAcrossRestart", func(t *testing.T) { testWatchAcrossRestart(t, h.NewCluster(t)) })
	t.Run("LockLostInOutage", func(t *testing.T) { testLockLostInOutage(t, h.NewCluster(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, h.NewCluster(t)) })
	if h.Unreachable != nil {
		t.Run("Unreachable", func(t *testing.T) { testUnreachable(t, h) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s kvstore.Store, key, value string) int64 {
	t.Helper()
	rev, err := kvstore.Put(ctxFor(t), s, key, []byte(value))
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	if rev <= 0 {
		t.Fatalf("put %q: got revision %d, want > 0", key, rev)
	}
	return rev
}

func mustGet(t *testing.T, s kvstore.Store, key string) kvstore.KV {
	t.Helper()
	kv, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return kv
}

func wantNotFound(t *testing.T, s kvstore.Store, key string) {
	t.Helper()
	if kv, err := s.Get(ctxFor(t), key); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("get %q: got %q, %v; want ErrNotFound", key, kv.Value, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testCRUD(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	wantNotFound(t, s, p+"a")

	r1 := mustPut(t, s, p+"a", "one")
	if kv := mustGet(t, s, p+"a"); string(kv.Value) != "one" || kv.Revision != r1 || kv.Key != p+"a" {
		t.Fatalf("get: got %q=%q@%d, want %q=%q@%d", kv.Key, kv.Value, kv.Revision, p+"a", "one", r1)
	}
	r2 := mustPut(t, s, p+"a", "two")
	if r2 <= r1 {
		t.Fatalf("overwrite: got revision %d, want > %d", r2, r1)
	}
	mustPut(t, s, p+"b/x", "")
	mustPut(t, s, p+"b/y", "y")
	mustPut(t, s, p+"bz", "z")
	mustPut(t, s, "suite/other/"+p+"x", "elsewhere")

	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{p, []string{p + "a", p + "b/x", p + "b/y", p + "bz"}},
		{p + "b", []string{p + "b/x", p + "b/y", p + "bz"}},
		{p + "b/", []string{p + "b/x", p + "b/y"}},
		{p + "nothing/", nil},
	} {
		l, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("list %q: %v", tc.prefix, err)
		}
		if got := keys(l.KVs); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("list %q: got %q, want %q", tc.prefix, got, tc.want)
		}
		if l.Revision < r2 {
			t.Errorf("list %q: got revision %d, want >= %d", tc.prefix, l.Revision, r2)
		}
	}
	if kv := mustGet(t, s, p+"b/x"); kv.Value == nil && len(kv.Value) != 0 {
		t.Fatalf("empty value: got %v", kv.Value)
	}

	if err := kvstore.Delete(ctx, s, p+"a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantNotFound(t, s, p+"a")
	if err := kvstore.Delete(ctx, s, p+"a"); err != nil {
		t.Fatalf("delete of a missing key: got %v, want nil", err)
	}
}

func testStaleRead(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	rev := mustPut(t, s, p+"k", "v")
	kv, err := s.Get(ctxFor(t), p+"k", kvstore.Stale)
	if err != nil {
		t.Fatalf("stale get: %v", err)
	}
	// A single server has applied its own write by the time it answered.
	if string(kv.Value) != "v" || kv.Revision != rev {
		t.Fatalf("stale get: got %q@%d, want %q@%d", kv.Value, kv.Revision, "v", rev)
	}
	l, err := s.List(ctxFor(t), p, kvstore.Stale)
	if err != nil || len(l.KVs) != 1 {
		t.Fatalf("stale list: got %d entries, %v; want 1", len(l.KVs), err)
	}
}

func testCompareAndSet(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	k := p + "k"
	r1, err := kvstore.CompareAndPut(ctx, s, k, []byte("1"), 0)
	if err != nil {
		t.Fatalf("create with revision 0: %v", err)
	}
	_, err = kvstore.CompareAndPut(ctx, s, k, []byte("x"), 0)
	wantErr(t, "create of an existing key", err, kvstore.ErrConflict)
	r2, err := kvstore.CompareAndPut(ctx, s, k, []byte("2"), r1)
	if err != nil {
		t.Fatalf("update at current revision: %v", err)
	}
	_, err = kvstore.CompareAndPut(ctx, s, k, []byte("x"), r1)
	wantErr(t, "update at an old revision", err, kvstore.ErrConflict)
	wantErr(t, "delete at an old revision", kvstore.CompareAndDelete(ctx, s, k, r1), kvstore.ErrConflict)
	if kv := mustGet(t, s, k); string(kv.Value) != "2" || kv.Revision != r2 {
		t.Fatalf("after refused writes: got %q@%d, want %q@%d", kv.Value, kv.Revision, "2", r2)
	}
	if err := kvstore.CompareAndDelete(ctx, s, k, r2); err != nil {
		t.Fatalf("delete at current revision: %v", err)
	}
	wantNotFound(t, s, k)
	wantErr(t, "conditional delete of a missing key", kvstore.CompareAndDelete(ctx, s, k, r2), kvstore.ErrConflict)
	_, err = kvstore.CompareAndPut(ctx, s, k, []byte("x"), r2)
	wantErr(t, "update of a missing key", err, kvstore.ErrConflict)
}

func keys(kvs []kvstore.KV) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", err.Error())
}
