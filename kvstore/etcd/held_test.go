package etcd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// lossLog records the reasons of the "etcd lock lost" warnings a store
// logs.
type lossLog struct {
	mu      sync.Mutex
	reasons []string
}

func (h *lossLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *lossLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lossLog) WithGroup(string) slog.Handler            { return h }

func (h *lossLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "etcd lock lost" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			h.mu.Lock()
			h.reasons = append(h.reasons, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *lossLog) first() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reasons) == 0 {
		return ""
	}
	return h.reasons[0]
}

// rawKV reads key with a plain client; nil if it does not exist.
func rawKV(t *testing.T, cli *clientv3.Client, key string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := cli.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("raw get %q: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

// TestLockUpdateKeepsLease checks that Update rewrites the lock key bound
// to the same lease, so that ending the lease, by BreakLock or by a plain
// revoke, still deletes the key and ends the lock; and that the watch
// over the held key does not take the update for a loss.
func TestLockUpdateKeepsLease(t *testing.T) {
	srv := testserver.Etcd(t)
	cli := rawClient(t, srv.Addr)
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, s *Store, key string, lease int64)
	}{
		{"BreakLock", func(t *testing.T, s *Store, key string, _ int64) {
			if err := s.BreakLock(t.Context(), key); err != nil {
				t.Fatalf("break lock: %v", err)
			}
		}},
		{"Revoke", func(t *testing.T, _ *Store, _ string, lease int64) {
			if _, err := cli.Revoke(t.Context(), clientv3.LeaseID(lease)); err != nil {
				t.Fatalf("revoke: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			losses := &lossLog{}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := New(ctx, Config{Endpoints: []string{srv.Addr}, Logger: slog.New(losses)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			key := "update/" + tc.name
			const ttl = 5 * time.Second
			before := time.Now()
			l, err := s.Lock(ctx, key, kvstore.LockOptions{TTL: ttl, Value: []byte("v1")})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release(context.Background())
			if exp, after := l.Expires(), time.Now(); exp.Before(before.Add(ttl)) || exp.After(after.Add(ttl)) {
				t.Fatalf("Expires: got %v, want between %v and %v (a send time plus the TTL)",
					exp, before.Add(ttl), after.Add(ttl))
			}
			orig := rawKV(t, cli, key)
			if orig == nil || orig.Lease == 0 || orig.CreateRevision != l.Token() {
				t.Fatalf("lock key before update: got %v, want created at %d with a lease", orig, l.Token())
			}

			if _, err := l.Update(ctx, make([]byte, s.Limits().MaxValueBytes+1)); !errors.Is(err, kvstore.ErrValueTooLarge) {
				t.Fatalf("update with a value too large: got %v, want ErrValueTooLarge", err)
			}
			rev, err := l.Update(ctx, []byte("v2"))
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			got := rawKV(t, cli, key)
			if got == nil || string(got.Value) != "v2" || got.ModRevision != rev ||
				got.Lease != orig.Lease || got.CreateRevision != l.Token() {
				t.Fatalf("lock key after update: got %v, want %q at %d, created at %d, lease %x",
					got, "v2", rev, l.Token(), orig.Lease)
			}
			if _, err := l.Update(ctx, []byte("v3")); err != nil {
				t.Fatalf("second update: %v", err)
			}

			tc.end(t, s, key, orig.Lease)
			if kv := rawKV(t, cli, key); kv != nil {
				t.Fatalf("lock key after its lease ended: got %v, want deleted", kv)
			}
			waitLost(t, l)
			// The first loss the store noticed must be the lease ending,
			// not one of the updates.
			switch why := losses.first(); why {
			case "lock key deleted", "lease expired or revoked":
			default:
				t.Fatalf("reason of the loss: got %q, want the key deleted or the lease revoked", why)
			}
			if _, err := l.Update(ctx, []byte("late")); !errors.Is(err, kvstore.ErrFenced) {
				t.Fatalf("update after the lease ended: got %v, want ErrFenced", err)
			}
			if kv := rawKV(t, cli, key); kv != nil {
				t.Fatalf("lock key after a refused update: got %v, want deleted", kv)
			}
		})
	}
}

// TestLockUpdateAfterTakeover checks that an update which finds the lock
// key re-created by someone else is refused, ends the lock, and leaves the
// other holder's value alone; and that an update after Release is refused.
func TestLockUpdateAfterTakeover(t *testing.T) {
	srv := testserver.Etcd(t)
	cli := rawClient(t, srv.Addr)
	s := newStore(t, srv.Addr)
	ctx := t.Context()
	key := "update/takeover"
	l, err := s.Lock(ctx, key, kvstore.LockOptions{Value: []byte("mine")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	// Someone else deletes and re-creates the key. The update is refused
	// whether it finds the key taken over or the watch noticed first.
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, key, "theirs"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Update(ctx, []byte("late")); !errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("update after a takeover: got %v, want ErrFenced", err)
	}
	waitLost(t, l)
	if kv := rawKV(t, cli, key); kv == nil || !bytes.Equal(kv.Value, []byte("theirs")) {
		t.Fatalf("taken-over key after a refused update: got %v, want %q", kv, "theirs")
	}

	l2, err := s.Lock(ctx, "update/released", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Update(ctx, []byte("late")); !errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("update after release: got %v, want ErrFenced", err)
	}
	if kv := rawKV(t, cli, "update/released"); kv != nil {
		t.Fatalf("released key after a refused update: got %v, want deleted", kv)
	}
}

func waitLost(t *testing.T, l kvstore.Lock) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("Done of %q not closed within 30s", l.Key())
	}
}

// TestWatchKeyVerdicts checks how the watch over a held key judges what it
// sees: the lock's own writes (same create revision, same lease) keep the
// lock, anything else loses it.
func TestWatchKeyVerdicts(t *testing.T) {
	const token, leaseID = 10, 7
	l := &lock{key: "k", token: token, lease: &lease{id: leaseID}}
	for _, tc := range []struct {
		name     string
		ev       clientv3.Event
		wantLost bool
	}{
		{"own update", clientv3.Event{Type: mvccpb.PUT,
			Kv: &mvccpb.KeyValue{CreateRevision: token, ModRevision: 12, Lease: leaseID}}, false},
		{"put without the lease", clientv3.Event{Type: mvccpb.PUT,
			Kv: &mvccpb.KeyValue{CreateRevision: token, ModRevision: 12}}, true},
		{"put with another lease", clientv3.Event{Type: mvccpb.PUT,
			Kv: &mvccpb.KeyValue{CreateRevision: token, ModRevision: 12, Lease: leaseID + 1}}, true},
		{"taken over", clientv3.Event{Type: mvccpb.PUT,
			Kv: &mvccpb.KeyValue{CreateRevision: 12, ModRevision: 12, Lease: leaseID}}, true},
		{"deleted", clientv3.Event{Type: mvccpb.DELETE,
			Kv: &mvccpb.KeyValue{ModRevision: 12}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev
			rev, lost, err := l.inspect(t.Context(), clientv3.WatchResponse{Events: []*clientv3.Event{&ev}}, token)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if (lost != "") != tc.wantLost {
				t.Fatalf("lost: got %q, want lost=%v", lost, tc.wantLost)
			}
			if !tc.wantLost && rev != 12 {
				t.Fatalf("revision seen: got %d, want 12", rev)
			}
		})
	}
}
