package kvstoretest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

func mustLock(t *testing.T, s kvstore.Store, key, value string) kvstore.Lock {
	t.Helper()
	l, err := s.Lock(ctxFor(t), key, kvstore.LockOptions{TTL: lockTTL, Value: []byte(value)})
	if err != nil {
		t.Fatalf("lock %q: %v", key, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func mustRelease(t *testing.T, l kvstore.Lock) {
	t.Helper()
	if err := l.Release(ctxFor(t)); err != nil {
		t.Fatalf("release %q: %v", l.Key(), err)
	}
	waitDone(t, l, "after release")
}

func waitDone(t *testing.T, l kvstore.Lock, when string) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(wait):
		t.Fatalf("%s: Done of %q not closed within %v", when, l.Key(), wait)
	}
}

func testLockExclusion(t *testing.T, c Cluster, p string) {
	a, b := c.Client(t), c.Client(t)
	key := p + "lock"
	la := mustLock(t, a, key, "holder-a")
	if kv := mustGet(t, b, key); string(kv.Value) != "holder-a" {
		t.Fatalf("lock value: got %q, want %q", kv.Value, "holder-a")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	lb, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: lockTTL})
	cancel()
	if err == nil {
		_ = lb.Release(context.Background())
		t.Fatalf("second locker acquired %q while the first held it", key)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second locker with a deadline: got %v, want context.DeadlineExceeded", err)
	}

	got := make(chan kvstore.Lock, 1)
	go func() {
		l, err := b.Lock(ctxFor(t), key, kvstore.LockOptions{TTL: lockTTL, Value: []byte("holder-b")})
		if err != nil {
			t.Errorf("second locker after release: %v", err)
		}
		got <- l
	}()
	mustRelease(t, la)
	lb = <-got
	if lb == nil {
		t.FailNow()
	}
	defer mustRelease(t, lb)
	if lb.Token() <= la.Token() {
		t.Fatalf("tokens: second holder got %d, first had %d; want strictly greater", lb.Token(), la.Token())
	}
	if kv := mustGet(t, a, key); string(kv.Value) != "holder-b" {
		t.Fatalf("lock value after hand-over: got %q, want %q", kv.Value, "holder-b")
	}

	// Several clients contend; at most one may be inside at any time, and
	// each holder's fenced write must succeed.
	mustRelease(t, lb)
	var inside, entries atomic.Int32
	var wg sync.WaitGroup
	for i := range 3 {
		s := c.Client(t)
		wg.Go(func() {
			for round := range 3 {
				l, err := s.Lock(ctxFor(t), key, kvstore.LockOptions{TTL: lockTTL})
				if err != nil {
					t.Errorf("client %d round %d: %v", i, round, err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("client %d round %d: %d holders at once", i, round, n)
				}
				entries.Add(1)
				if _, err := s.Apply(ctxFor(t), l, kvstore.PutOp(p+"owner", []byte(fmt.Sprint(i)))); err != nil {
					t.Errorf("client %d round %d: fenced write while holding: %v", i, round, err)
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				if err := l.Release(ctxFor(t)); err != nil {
					t.Errorf("client %d round %d: release: %v", i, round, err)
				}
			}
		})
	}
	wg.Wait()
	if entries.Load() != 9 {
		t.Fatalf("got %d lock entries, want 9", entries.Load())
	}
}

func testLockTokensIncrease(t *testing.T, c Cluster, p string) {
	key := p + "lock"
	clients := []kvstore.Store{c.Client(t), c.Client(t)}
	var last int64
	for i := range 4 {
		s := clients[i%2]
		l := mustLock(t, s, key, "")
		if l.Token() <= last {
			t.Fatalf("acquisition %d: token %d after %d; want strictly increasing", i, l.Token(), last)
		}
		if l.Key() != key {
			t.Fatalf("lock key: got %q, want %q", l.Key(), key)
		}
		last = l.Token()
		if i == 2 {
			breakLock(t, s, key)
			waitDone(t, l, "after BreakLock")
			continue
		}
		mustRelease(t, l)
	}
}

func breakLock(t *testing.T, s kvstore.Store, key string) {
	t.Helper()
	lb, ok := s.(kvstore.LockBreaker)
	if !ok {
		t.Fatalf("%T does not implement kvstore.LockBreaker", s)
	}
	if err := lb.BreakLock(ctxFor(t), key); err != nil {
		t.Fatalf("break lock %q: %v", key, err)
	}
}

func testFencedWrites(t *testing.T, c Cluster, p string) {
	s := c.Client(t)
	ctx := ctxFor(t)
	l := mustLock(t, s, p+"lock", "")
	rev, err := s.Apply(ctx, l, kvstore.PutOp(p+"data", []byte("1")))
	if err != nil {
		t.Fatalf("fenced write while holding: %v", err)
	}
	_, err = s.Apply(ctx, l, kvstore.PutIfOp(p+"data", []byte("x"), rev-1))
	wantErr(t, "fenced write with a stale revision while holding", err, kvstore.ErrConflict)
	if errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("fenced write with a stale revision while holding: got %v, want ErrConflict only", err)
	}

	mustRelease(t, l)
	_, err = s.Apply(ctx, l, kvstore.PutOp(p+"data", []byte("2")))
	wantErr(t, "fenced write after release", err, kvstore.ErrFenced)
	_, err = s.Apply(ctx, l, kvstore.DeleteOp(p+"data"))
	wantErr(t, "fenced delete after release", err, kvstore.ErrFenced)
	if kv := mustGet(t, s, p+"data"); string(kv.Value) != "1" {
		t.Fatalf("after refused fenced writes: got %q, want %q", kv.Value, "1")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second release: got %v, want nil", err)
	}
}

// testLockBroken revokes a holder's lease behind its back, as an operator
// or an expiry would.
func testLockBroken(t *testing.T, c Cluster, p string) {
	a, b := c.Client(t), c.Client(t)
	key := p + "lock"
	la := mustLock(t, a, key, "a")
	breakLock(t, b, key)
	waitDone(t, la, "after the lease was revoked")
	_, err := a.Apply(ctxFor(t), la, kvstore.PutOp(p+"data", []byte("late")))
	wantErr(t, "fenced write after the lease was revoked", err, kvstore.ErrFenced)
	wantNotFound(t, b, p+"data")

	lb := mustLock(t, b, key, "b")
	if lb.Token() <= la.Token() {
		t.Fatalf("tokens: new holder got %d, revoked one had %d; want strictly greater", lb.Token(), la.Token())
	}
	if _, err := b.Apply(ctxFor(t), lb, kvstore.PutOp(p+"data", []byte("b"))); err != nil {
		t.Fatalf("new holder's fenced write: %v", err)
	}
	breakLock(t, b, p+"not-locked")
}

// testLockLostInOutage stops the server for longer than the lock's TTL: the
// holder must give the lock up, and its fenced writes must fail once the
// server is back.
func testLockLostInOutage(t *testing.T, c Cluster) {
	const p = "suite/outage/"
	s := c.Client(t)
	l := mustLock(t, s, p+"lock", "a")
	c.Stop(t)
	waitDone(t, l, "while the server is down")
	if !c.Start(t) {
		s = c.Client(t)
	}
	_, err := s.Apply(ctxFor(t), l, kvstore.PutOp(p+"data", []byte("late")))
	wantErr(t, "fenced write with a lock lost in an outage", err, kvstore.ErrFenced)
	wantNotFound(t, s, p+"data")
	l2 := mustLock(t, c.Client(t), p+"lock", "b")
	if l2.Token() <= l.Token() {
		t.Fatalf("tokens: holder after the outage got %d, before had %d; want strictly greater", l2.Token(), l.Token())
	}
}

func testClose(t *testing.T, c Cluster) {
	const p = "suite/close/"
	s := c.Client(t)
	w := startWatch(t, s, p, 0)
	w.next()
	l := mustLock(t, s, p+"lock", "")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	w.drain()
	waitDone(t, l, "after Close")
	ctx := ctxFor(t)
	if _, err := s.Get(ctx, p+"x"); !errors.Is(err, kvstore.ErrClosed) {
		t.Errorf("get after close: got %v, want ErrClosed", err)
	}
	if _, err := kvstore.Put(ctx, s, p+"x", nil); !errors.Is(err, kvstore.ErrClosed) {
		t.Errorf("put after close: got %v, want ErrClosed", err)
	}
	if _, err := s.Watch(ctx, p, 0); !errors.Is(err, kvstore.ErrClosed) {
		t.Errorf("watch after close: got %v, want ErrClosed", err)
	}
	if _, err := s.Lock(ctx, p+"lock", kvstore.LockOptions{}); !errors.Is(err, kvstore.ErrClosed) {
		t.Errorf("lock after close: got %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: got %v, want nil", err)
	}
	// The lock was released, not left to expire.
	l2 := mustLock(t, c.Client(t), p+"lock", "")
	if l2.Token() <= l.Token() {
		t.Fatalf("token after close: got %d, want > %d", l2.Token(), l.Token())
	}
}

func testUnreachable(t *testing.T, h Harness) {
	done := make(chan struct{})
	var endpoint string
	var err error
	go func() {
		defer close(done)
		var s kvstore.Store
		endpoint, s, err = h.Unreachable(t)
		if err != nil {
			return
		}
		defer s.Close()
		_, err = s.Get(context.Background(), "suite/unreachable")
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("operation against unreachable %s still running after %v: want a bounded time", endpoint, wait)
	}
	if err == nil || !strings.Contains(err.Error(), endpoint) {
		t.Fatalf("unreachable endpoint: got error %s, want one naming %s", errText(err), endpoint)
	}
	t.Logf("unreachable endpoint error: %v", err)
}

// testLockUpdate changes a held lock's value: the lease and the token stay,
// and once the lock is gone the update is refused.
func testLockUpdate(t *testing.T, c Cluster, p string) {
	a, b := c.Client(t), c.Client(t)
	key := p + "lock"
	l := mustLock(t, a, key, "v1")
	if exp := l.Expires(); !exp.IsZero() && !exp.After(time.Now()) {
		t.Fatalf("Expires of a fresh lock: got %v, want zero or in the future", exp)
	}
	rev, err := l.Update(ctxFor(t), []byte("v2"))
	if err != nil {
		t.Fatalf("update while holding: %v", err)
	}
	if kv := mustGet(t, b, key); string(kv.Value) != "v2" || kv.Revision != rev {
		t.Fatalf("after update: got %q@%d, want %q@%d", kv.Value, kv.Revision, "v2", rev)
	}
	select {
	case <-l.Done():
		t.Fatal("update ended the lock")
	default:
	}
	if _, err := a.Apply(ctxFor(t), l, kvstore.PutOp(p+"data", []byte("x"))); err != nil {
		t.Fatalf("fenced write after update: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	other, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: lockTTL})
	cancel()
	if err == nil {
		_ = other.Release(context.Background())
		t.Fatal("another client acquired the lock after an update")
	}
	breakLock(t, b, key)
	waitDone(t, l, "after BreakLock")
	_, err = l.Update(ctxFor(t), []byte("v3"))
	wantErr(t, "update after the lease was revoked", err, kvstore.ErrFenced)
	wantNotFound(t, b, key)
}
