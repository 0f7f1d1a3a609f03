package etcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/kvstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newCluster(t *testing.T) kvstoretest.Cluster {
	srv := testserver.Etcd(t)
	return &kvstoretest.ServerCluster{
		Server: srv,
		Open:   func(t *testing.T) kvstore.Store { return newStore(t, srv.Addr) },
		CompactHistory: func(t *testing.T, rev int64) {
			t.Helper()
			cli := rawClient(t, srv.Addr)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
				t.Fatalf("compact at %d: %v", rev, err)
			}
		},
	}
}

// newStore opens a Store on addr, closed at the end of t.
func newStore(t testing.TB, addr string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, Config{Endpoints: []string{addr}})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain etcd client on addr, closed at the end of t.
func rawClient(t testing.TB, addr string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func TestConformance(t *testing.T) {
	kvstoretest.Run(t, kvstoretest.Harness{
		NewCluster: newCluster,
		Unreachable: func(t *testing.T) (string, kvstore.Store, error) {
			addr := fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t))
			s, err := New(t.Context(), Config{Endpoints: []string{addr}, DialTimeout: 2 * time.Second})
			return "etcd://" + addr, s, err
		},
	})
}

// TestFenceLimit checks that a fenced batch whose conditions and the fence
// exceed etcd's comparison limit fails before it is sent.
func TestFenceLimit(t *testing.T) {
	srv := testserver.Etcd(t)
	s := newStore(t, srv.Addr)
	ctx := t.Context()
	l, err := s.Lock(ctx, "fence/lock", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	ops := make([]kvstore.Op, s.Limits().MaxTxnOps)
	for i := range ops {
		ops[i] = kvstore.PutIfOp(fmt.Sprintf("fence/k%d", i), nil, 0)
	}
	if _, err := s.Apply(ctx, l, ops...); !errors.Is(err, kvstore.ErrTxnTooLarge) {
		t.Fatalf("fenced batch of %d conditions: got %v, want ErrTxnTooLarge", len(ops), err)
	}
	if _, err := s.Apply(ctx, l, ops[1:]...); err != nil {
		t.Fatalf("fenced batch of %d conditions: %v", len(ops)-1, err)
	}
}

// TestConflictNamesKey checks that a failed condition names its key and
// that a lost fence wins over a failed condition.
func TestConflictNamesKey(t *testing.T) {
	srv := testserver.Etcd(t)
	s := newStore(t, srv.Addr)
	ctx := t.Context()
	rev, err := kvstore.Put(ctx, s, "c/a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(ctx, nil, kvstore.CheckOp("c/a", rev), kvstore.PutIfOp("c/b", nil, 7))
	if !errors.Is(err, kvstore.ErrConflict) || !strings.Contains(err.Error(), `"c/b" does not exist`) {
		t.Fatalf("conflict on c/b: got %v, want ErrConflict naming c/b", err)
	}

	l, err := s.Lock(ctx, "c/lock", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := newStore(t, srv.Addr)
	if err := other.BreakLock(ctx, "c/lock"); err != nil {
		t.Fatal(err)
	}
	// Whether or not Done has closed yet, the fence must win.
	_, err = s.Apply(ctx, l, kvstore.PutIfOp("c/a", nil, rev+100))
	if !errors.Is(err, kvstore.ErrFenced) || errors.Is(err, kvstore.ErrConflict) {
		t.Fatalf("lost fence and failed condition: got %v, want ErrFenced only", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release of a broken lock: %v", err)
	}
}

// TestCloseWhileDown closes a store with a watch, a held lock and a
// waiting Lock while the server is down: Close must return, stop every
// goroutine (TestMain checks), close the watch channel and the lock's Done.
func TestCloseWhileDown(t *testing.T) {
	srv := testserver.Etcd(t)
	ctx := t.Context()
	s, err := New(ctx, Config{Endpoints: []string{srv.Addr}, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "down/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != kvstore.EventResync {
		t.Fatalf("first event: got %s, want resync", ev.Type)
	}
	l, err := s.Lock(ctx, "down/lock", kvstore.LockOptions{TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := s.Lock(ctx, "down/lock", kvstore.LockOptions{})
		waiting <- err
	}()
	srv.Stop(t)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for range ch {
	}
	<-l.Done()
	// Depending on where it was when the server stopped, the waiting Lock
	// ran into its request timeout or the Close.
	if err := <-waiting; err == nil {
		t.Fatal("lock waiting during close: got nil error")
	}
}

// TestAuth enables authentication and checks that the password is read
// from the file, that a wrong one fails New without being echoed, and
// that a user without a password is refused before connecting.
func TestAuth(t *testing.T) {
	srv := testserver.Etcd(t)
	ctx := t.Context()
	cli := rawClient(t, srv.Addr)
	if _, err := cli.UserAdd(ctx, "root", "s3cret-root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("s3cret-root\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wr0ng-guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPassword, "")

	s, err := New(ctx, Config{Endpoints: []string{srv.Addr}, Username: "root", PasswordFile: good})
	if err != nil {
		t.Fatalf("open with the right password: %v", err)
	}
	defer s.Close()
	if _, err := kvstore.Put(ctx, s, "auth/k", []byte("v")); err != nil {
		t.Fatalf("put as root: %v", err)
	}

	_, err = New(ctx, Config{Endpoints: []string{srv.Addr}, Username: "root", PasswordFile: bad})
	if err == nil || strings.Contains(err.Error(), "wr0ng-guess") || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("open with a wrong password: got %v, want an authentication error without the password", err)
	}
	_, err = New(ctx, Config{Endpoints: []string{srv.Addr}, Username: "root"})
	if err == nil || !strings.Contains(err.Error(), EnvPassword) {
		t.Fatalf("open without a password: got %v, want an error pointing at %s", err, EnvPassword)
	}
}

// TestRequestSizeEdges sends batches whose estimated size is exactly the
// server's limit, with and without conditions and a fence: etcd must
// accept them (the estimate is not too low), and one byte more must be
// refused before sending.
func TestRequestSizeEdges(t *testing.T) {
	s := newStore(t, testserver.Etcd(t).Addr)
	ctx := t.Context()
	lim := s.Limits()
	fence, err := s.Lock(ctx, "size/lock", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fence.Release(ctx)
	for _, tc := range []struct {
		name        string
		n           int
		conditional bool
		fenced      bool
	}{
		{"two puts", 2, false, false},
		{"conditional puts", lim.MaxTxnOps, true, false},
		{"fenced conditional puts", lim.MaxTxnOps - 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pad := strings.Repeat("x", 470)
			ops := make([]kvstore.Op, tc.n)
			for i := range ops {
				ops[i] = kvstore.PutOp(fmt.Sprintf("size/%s/%03d/%s", strings.ReplaceAll(tc.name, " ", "-"), i, pad), nil)
				ops[i].Conditional = tc.conditional
			}
			var l *lock
			var fl kvstore.Lock
			if tc.fenced {
				l, fl = fence.(*lock), fence
			}
			room := s.cfg.MaxRequestBytes - requestBytes(lim, ops, l)
			ops[0].Value = make([]byte, room/2)
			ops[1].Value = make([]byte, room-room/2+1)
			if _, err := s.Apply(ctx, fl, ops...); !errors.Is(err, kvstore.ErrTxnTooLarge) {
				t.Fatalf("one byte over: got %v, want ErrTxnTooLarge", err)
			}
			ops[1].Value = ops[1].Value[1:]
			if _, err := s.Apply(ctx, fl, ops...); err != nil {
				t.Fatalf("exactly at the limit: %v", err)
			}
		})
	}
}

// TestWatchAheadOfStore watches from a revision the store has not reached,
// as after a restore without --bump-revision: the watch must resync
// instead of waiting silently for that revision, then deliver new changes.
func TestWatchAheadOfStore(t *testing.T) {
	s := newStore(t, testserver.Etcd(t).Addr)
	ctx := t.Context()
	rev, err := kvstore.Put(ctx, s, "ahead/a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "ahead/", rev+20)
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, ch)
	if ev.Type != kvstore.EventResync || ev.Revision != rev || len(ev.Snapshot) != 1 || ev.Snapshot[0].Key != "ahead/a" {
		t.Fatalf("first event: got %s at %d with %d entries, want a resync at %d holding ahead/a",
			ev.Type, ev.Revision, len(ev.Snapshot), rev)
	}
	rev2, err := kvstore.Put(ctx, s, "ahead/b", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, ch)
	if ev.Type != kvstore.EventPut || ev.KV.Key != "ahead/b" || ev.Revision != rev2 {
		t.Fatalf("second event: got %s of %q at %d, want put of ahead/b at %d", ev.Type, ev.KV.Key, ev.Revision, rev2)
	}
}

// nextEvent receives from ch, failing t if nothing comes for long.
func nextEvent(t *testing.T, ch <-chan kvstore.Event) kvstore.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return kvstore.Event{}
}
