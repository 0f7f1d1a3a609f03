package consul

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// rawKey reads key straight from Consul, failing the test if it is missing.
func rawKey(t *testing.T, s *Store, key string, q *api.QueryOptions) *api.KVPair {
	t.Helper()
	pair, _, err := s.client.KV().Get(key, q)
	if err != nil || pair == nil {
		t.Fatalf("get %q: %v, %v", key, pair, err)
	}
	return pair
}

// TestLockHeartbeat checks on the real agent what the beats rely on: a
// fenced lock op by the holding session keeps the key's session and
// LockIndex (a set would reset LockIndex), new Flags move the
// ModifyIndex even for an unchanged value, and the renew loop beats by
// itself.
func TestLockHeartbeat(t *testing.T) {
	srv := testserver.Consul(t)
	s := newClient(t, srv, Config{})
	ctx := t.Context()
	const key = "test/heartbeat/lock"
	l, err := s.Lock(ctx, key, kvstore.LockOptions{Value: []byte("v1")})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer l.Release(context.Background())
	first := rawKey(t, s, key, nil)
	if first.Flags&beatMark == 0 {
		t.Errorf("flags after locking: got %#x, want beatMark set", first.Flags)
	}
	exp := l.Expires()

	var last int64
	for i, v := range []string{"v1", "v1", "v2"} {
		rev, err := l.Update(ctx, []byte(v))
		if err != nil {
			t.Fatalf("update %d to %q: %v", i, v, err)
		}
		if rev <= last || rev <= l.Token() {
			t.Fatalf("update %d to %q: revision %d, want above %d and the token %d", i, v, rev, last, l.Token())
		}
		last = rev
		p := rawKey(t, s, key, nil)
		if p.Session != first.Session || p.LockIndex != first.LockIndex || p.CreateIndex != first.CreateIndex {
			t.Errorf("update %d: session %q, lock index %d, create index %d; want %q, %d, %d kept",
				i, p.Session, p.LockIndex, p.CreateIndex, first.Session, first.LockIndex, first.CreateIndex)
		}
		if string(p.Value) != v || int64(p.ModifyIndex) != rev {
			t.Errorf("update %d: got %q@%d, want %q@%d", i, p.Value, p.ModifyIndex, v, rev)
		}
	}
	if got := l.Expires(); got.Before(exp) {
		t.Errorf("Expires after updates: got %v, want no earlier than %v", got, exp)
	}

	// The renew loop moves the index on its own, keeping value and session.
	q := &api.QueryOptions{WaitIndex: uint64(last), WaitTime: time.Minute}
	p := rawKey(t, s, key, q.WithContext(ctx))
	if int64(p.ModifyIndex) <= last || string(p.Value) != "v2" || p.Session != first.Session || p.LockIndex != first.LockIndex {
		t.Fatalf("after a beat: got %q@%d session %q lock index %d; want %q above %d, session and lock index kept",
			p.Value, p.ModifyIndex, p.Session, p.LockIndex, "v2", last)
	}

	// The server ends the session behind the lock's back: Update reports
	// the loss, and Done is closed by the time it returns.
	if _, err := s.client.Session().Destroy(first.Session, nil); err != nil {
		t.Fatalf("destroy session: %v", err)
	}
	_, err = l.Update(ctx, []byte("v3"))
	if !errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("update after the session ended: got %v, want ErrFenced", err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("update refused as fenced, but Done is still open")
	}
}

func TestHolderView(t *testing.T) {
	t0 := time.Now()
	t1 := t0.Add(time.Second)
	beating := &api.KVPair{Session: "s1", ModifyIndex: 7, Flags: beatMark | 3}
	for _, tc := range []struct {
		name string
		from holderView
		pair *api.KVPair
		want holderView
	}{
		{"first look", holderView{}, beating, holderView{"s1", 7, t1, true}},
		{"unchanged", holderView{"s1", 7, t0, true}, beating, holderView{"s1", 7, t0, true}},
		{"new index", holderView{"s1", 6, t0, true}, beating, holderView{"s1", 7, t1, true}},
		{"new holder", holderView{"s0", 7, t0, true}, beating, holderView{"s1", 7, t1, true}},
		{"holder without beats", holderView{}, &api.KVPair{Session: "s1", ModifyIndex: 7}, holderView{"s1", 7, t1, false}},
	} {
		if got := tc.from.next(tc.pair, t1); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestLockWaiterSparesLiveHolder checks that a waiter leaves a holder that
// keeps beating alone for longer than the TTL.
func TestLockWaiterSparesLiveHolder(t *testing.T) {
	srv := testserver.Consul(t)
	a, b := newClient(t, srv, Config{}), newClient(t, srv, Config{})
	const key, ttl = "test/spare/lock", 10 * time.Second
	la, err := a.Lock(t.Context(), key, kvstore.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer la.Release(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), ttl+ttl/4)
	lb, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: ttl})
	cancel()
	if err == nil {
		_ = lb.Release(context.Background())
		t.Fatal("a waiter acquired the lock of a live holder")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: got %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-la.Done():
		t.Fatal("the live holder lost its lock to a waiter")
	default:
	}
	if _, err := a.Apply(t.Context(), la, kvstore.PutOp("test/spare/data", []byte("x"))); err != nil {
		t.Fatalf("the live holder's fenced write: %v", err)
	}
}

// TestLockTakeover freezes the connection of a holder, as a hung process
// or a partition would: a waiter takes the lock over, and by the time it
// ends the holder's session the holder has given the lock up. The freeze
// comes right after the holder's last write, the slowest case: about TTL
// plus lock-delay.
func TestLockTakeover(t *testing.T) {
	srv := testserver.Consul(t)
	px := testserver.NewProxy(t, srv.Addr)
	a, err := New(t.Context(), Config{Address: px.Addr(), RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("open store through the proxy: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	t.Cleanup(px.Close) // first: a's Close then fails fast instead of hanging
	// When b logs that it ended a's session, a's Done must be closed.
	var aDone atomic.Value // of <-chan struct{}
	var doneAtBreak atomic.Int32
	var logs testserver.Buffer
	b := newClient(t, srv, Config{Logger: slog.New(hookHandler{
		Handler: slog.NewTextHandler(&logs, nil),
		hook: func(r slog.Record) {
			done, ok := aDone.Load().(<-chan struct{})
			if !ok || !strings.Contains(r.Message, "ended its session") {
				return
			}
			select {
			case <-done:
				doneAtBreak.Store(1)
			default:
				doneAtBreak.Store(2)
			}
		},
	})})

	const key, ttl = "test/takeover/lock", 10 * time.Second
	la, err := a.Lock(t.Context(), key, kvstore.LockOptions{TTL: ttl, Value: []byte("holder-a")})
	if err != nil {
		t.Fatalf("lock a: %v", err)
	}
	aDone.Store(la.Done())
	type result struct {
		l   kvstore.Lock
		err error
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go func() {
		l, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: ttl, Value: []byte("holder-b")})
		got <- result{l, err}
	}()
	frozen := time.Now()
	px.Freeze(false)
	r := <-got
	took := time.Since(frozen)
	if r.err != nil {
		t.Fatalf("lock b after a froze: %v", r.err)
	}
	defer r.l.Release(context.Background())
	select {
	case <-la.Done():
	default:
		t.Fatal("b acquired the lock while a's Done was still open")
	}
	switch doneAtBreak.Load() {
	case 0:
		t.Error("b acquired without logging that it ended a's session")
	case 2:
		t.Error("b ended a's session while a's Done was still open")
	}
	if r.l.Token() <= la.Token() {
		t.Fatalf("tokens: b got %d, a had %d; want strictly greater", r.l.Token(), la.Token())
	}
	if _, err := a.Apply(t.Context(), la, kvstore.PutOp("test/takeover/data", []byte("a"))); !errors.Is(err, kvstore.ErrFenced) {
		t.Fatalf("a's fenced write after the takeover: got %v, want ErrFenced", err)
	}
	if _, err := b.Apply(t.Context(), r.l, kvstore.PutOp("test/takeover/data", []byte("b"))); err != nil {
		t.Fatalf("b's fenced write: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "ended its session") {
		t.Errorf("waiter's log: got %q, want an INFO line about ending the silent holder's session", out)
	}
	if strings.Contains(out, key) || strings.Contains(out, "holder-") {
		t.Errorf("waiter's log names the key or a value: %q", out)
	}
	t.Logf("b acquired %v after a froze (TTL %v, lock-delay %v)", took.Round(time.Millisecond), ttl, DefaultLockDelay)
}

// hookHandler calls hook with every record it handles.
type hookHandler struct {
	slog.Handler
	hook func(slog.Record)
}

func (h hookHandler) Handle(ctx context.Context, r slog.Record) error {
	h.hook(r)
	return h.Handler.Handle(ctx, r)
}

func (h hookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return hookHandler{h.Handler.WithAttrs(as), h.hook}
}

func (h hookHandler) WithGroup(name string) slog.Handler {
	return hookHandler{h.Handler.WithGroup(name), h.hook}
}
