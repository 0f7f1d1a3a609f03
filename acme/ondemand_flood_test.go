package acme_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// askCounter is an ask URL that allows names starting with "ok", counts
// the asks by name, and runs hold (when set) before answering.
type askCounter struct {
	*httptest.Server
	mu       sync.Mutex
	byName   map[string]int
	inFlight atomic.Int64
	maxIn    atomic.Int64
	hold     func(name string) int // status to answer; 0: by the name
}

func newAskCounter(t *testing.T, hold func(name string) int) *askCounter {
	a := &askCounter{byName: map[string]int{}, hold: hold}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("domain")
		a.mu.Lock()
		a.byName[name]++
		a.mu.Unlock()
		n := a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		for m := a.maxIn.Load(); n > m && !a.maxIn.CompareAndSwap(m, n); m = a.maxIn.Load() {
		}
		status := 0
		if a.hold != nil {
			status = a.hold(name)
		}
		if status == 0 {
			status = http.StatusOK
			if !strings.HasPrefix(name, "ok") {
				status = http.StatusForbidden
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(a.Close)
	return a
}

// asks returns the asks about name, or about every name when name is "".
func (a *askCounter) asks(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if name != "" {
		return a.byName[name]
	}
	n := 0
	for _, c := range a.byName {
		n += c
	}
	return n
}

func hello(name string) *tls.ClientHelloInfo { return &tls.ClientHelloInfo{ServerName: name} }

// TestOnDemandDeniedKept (issue 14, A9): refusals are kept for Denied,
// at most MaxDenied of them, the oldest forgotten first; an allowed name
// is not forgotten for them.
func TestOnDemandDeniedKept(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	ask := newAskCounter(t, nil)
	clock := newTestClock()
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 50 * time.Millisecond, AsksPerSecond: 1000, AskBurst: 1000,
		Denied: time.Minute, MaxDenied: 5, Now: clock.Now})
	od.SetConfig(onDemandConfig(ask.URL))

	_, _ = od.GetCertificate(hello("ok.example.com"))
	var denied []string
	for i := range 8 {
		denied = append(denied, fmt.Sprintf("no%d.example.com", i))
		_, _ = od.GetCertificate(hello(denied[i]))
	}
	for _, n := range append([]string{"ok.example.com"}, denied[3:]...) {
		_, _ = od.GetCertificate(hello(n))
		if got := ask.asks(n); got != 1 {
			t.Errorf("%s asked %d times, want once: the answer was not kept", n, got)
		}
	}
	for _, n := range denied[:3] {
		_, _ = od.GetCertificate(hello(n))
		if got := ask.asks(n); got != 2 {
			t.Errorf("%s asked %d times, want twice: more than MaxDenied refusals kept", n, got)
		}
	}
	clock.Add(time.Minute + time.Second)
	_, _ = od.GetCertificate(hello(denied[7]))
	if got := ask.asks(denied[7]); got != 2 {
		t.Errorf("%s asked %d times after Denied passed, want twice", denied[7], got)
	}
}

// TestOnDemandAllowedBeforeKeepsPriority (issue 14, A9): once its answer
// expires, a name the ask URL allowed before is asked again even while
// unknown names have spent the budget, and keeps its answer when the ask
// URL fails.
func TestOnDemandAllowedBeforeKeepsPriority(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	var failing atomic.Bool
	ask := newAskCounter(t, func(name string) int {
		if failing.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	clock := newTestClock()
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 50 * time.Millisecond, AsksPerSecond: 1, AskBurst: 2,
		Allowed: time.Minute, Now: clock.Now})
	od.SetConfig(onDemandConfig(ask.URL))

	_, _ = od.GetCertificate(hello("ok.example.com"))
	clock.Add(2 * time.Minute)
	for i := range 50 {
		_, _ = od.GetCertificate(hello(fmt.Sprintf("flood%d.example.com", i)))
	}
	if got := ask.asks(""); got > 4 {
		t.Fatalf("%d asks during the flood, want the burst", got)
	}
	_, _ = od.GetCertificate(hello("ok.example.com"))
	if got := ask.asks("ok.example.com"); got != 2 {
		t.Fatalf("ok.example.com asked %d times, want twice: its expired answer was not asked again during the flood", got)
	}
	notIssued := f.metric("tollgate_acme_ondemand_refused_total", "reason", "not_issued")

	clock.Add(2 * time.Minute)
	failing.Store(true)
	_, _ = od.GetCertificate(hello("ok.example.com"))
	if got := ask.asks("ok.example.com"); got != 3 {
		t.Fatalf("ok.example.com asked %d times, want 3", got)
	}
	if got := f.metric("tollgate_acme_ondemand_refused_total", "reason", "not_issued"); got != notIssued+1 {
		t.Fatalf("with the ask URL failing, the name allowed before was not allowed: not_issued %v, want %v", got, notIssued+1)
	}
	if got := f.metric("tollgate_acme_ondemand_refused_total", "reason", "ask_failed"); got != 0 {
		t.Fatalf("ask_failed = %v, want 0", got)
	}
}

// TestOnDemandLogSummary (issue 14, A9): a flood of refused handshakes
// makes one summary line a minute and is counted in full.
func TestOnDemandLogSummary(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	ask := newAskCounter(t, nil)
	clock := newTestClock()
	var logs syncBuffer
	// Wait bounds an ask; long enough that the local ask server answers
	// each in time on a loaded machine (a timed-out ask is counted and
	// logged apart).
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 10 * time.Second, AsksPerSecond: 1, AskBurst: 5, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	od.SetConfig(onDemandConfig(ask.URL))

	const flood = 1000
	for i := range flood {
		_, _ = od.GetCertificate(hello(fmt.Sprintf("flood%d.example.com", i)))
		if i == flood/2 {
			clock.Add(time.Minute)
		}
	}
	lines := strings.Count(logs.String(), "\n")
	summaries := strings.Count(logs.String(), "on-demand handshakes served the default certificate")
	if summaries != 2 || lines > 2+ask.asks("") {
		t.Errorf("%d lines, %d of them summaries, for %d refused handshakes over a minute and %d asks; want 2 summaries and one debug line an ask at most:\n%s",
			lines, summaries, flood, ask.asks(""), logs.String())
	}
	var total float64
	for _, r := range []string{"denied", "rate_limited", "busy", "ask_failed", "not_issued"} {
		total += f.metric("tollgate_acme_ondemand_refused_total", "reason", r)
	}
	if total != flood {
		t.Errorf("tollgate_acme_ondemand_refused_total sums to %v, want %d", total, flood)
	}
	if got := f.metric("tollgate_acme_ondemand_refused_total", "reason", "rate_limited"); got != float64(flood-ask.asks("")) {
		t.Errorf("rate_limited = %v, want %d", got, flood-ask.asks(""))
	}
}

// TestOnDemandSlowAsk (issue 14, B3): an ask URL that does not answer
// holds a handshake for AskTimeout, not for the HTTP client's timeout or
// Wait; a handshake whose context ends is let go at once.
func TestOnDemandSlowAsk(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	release := make(chan struct{})
	ask := newAskCounter(t, func(string) int {
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		return 0
	})
	defer close(release)
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 20 * time.Second, AskTimeout: 300 * time.Millisecond,
		Client: &http.Client{Timeout: 20 * time.Second}})
	od.SetConfig(onDemandConfig(ask.URL))

	start := time.Now()
	if c, _ := od.GetCertificate(hello("ok1.example.com")); c != nil {
		t.Fatal("served a certificate")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a handshake waited %s for a silent ask URL, want about AskTimeout (300ms)", d)
	}

	od2 := newOnDemand(t, f, acme.OnDemandConfig{Wait: 20 * time.Second, AskTimeout: 20 * time.Second})
	od2.SetConfig(onDemandConfig(ask.URL))
	front := tlsFront(t, od2, 200*time.Millisecond)
	clientHello(t, "127.0.0.1", front.addr, "ok2.example.com", true)
	if d := front.longest(1); d > 5*time.Second {
		t.Errorf("a handshake whose context ended after 200ms was held %s", d)
	}
}

// TestOnDemandSingleFlight (issue 14, B3): handshakes arriving together
// for one allowed name make one ask and one store write.
func TestOnDemandSingleFlight(t *testing.T) {
	cs := &countingStore{Store: backendtest.Embedded(t).Client(t)}
	f := newFixture(t, cs).start()
	ask := newAskCounter(t, func(string) int { time.Sleep(100 * time.Millisecond); return 0 })
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 500 * time.Millisecond})
	od.SetConfig(onDemandConfig(ask.URL))
	cs.applies.Store(0)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _, _ = od.GetCertificate(hello("ok.example.com")) })
	}
	wg.Wait()
	if got := ask.asks("ok.example.com"); got != 1 {
		t.Errorf("%d asks, want 1", got)
	}
	if got := cs.applies.Load(); got != 1 {
		t.Errorf("%d store writes for one name, want 1", got)
	}
}

// countingStore counts the writes made to a real store.
type countingStore struct {
	kvstore.Store
	applies atomic.Int64
}

func (s *countingStore) Apply(ctx context.Context, fence kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	s.applies.Add(1)
	return s.Store.Apply(ctx, fence, ops...)
}

// TestOnDemandMaxAsking (issue 14, B3): with MaxAsking names being asked
// about, a handshake for one more unknown name is served at once without
// asking.
func TestOnDemandMaxAsking(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	release := make(chan struct{})
	ask := newAskCounter(t, func(string) int {
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		return 0
	})
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: testTimeout, AskTimeout: testTimeout,
		AsksPerSecond: 1000, AskBurst: 1000, MaxAsking: 4})
	od.SetConfig(onDemandConfig(ask.URL))

	var held sync.WaitGroup
	for i := range 4 {
		held.Go(func() { _, _ = od.GetCertificate(hello(fmt.Sprintf("held%d.example.com", i))) })
	}
	deadline := time.Now().Add(testTimeout)
	for ask.inFlight.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var more sync.WaitGroup
	for i := range 6 {
		more.Go(func() { _, _ = od.GetCertificate(hello(fmt.Sprintf("more%d.example.com", i))) })
	}
	done := make(chan struct{})
	go func() { more.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("handshakes beyond MaxAsking were held")
	}
	if got := ask.maxIn.Load(); got != 4 {
		t.Errorf("%d asks at once, want MaxAsking (4)", got)
	}
	close(release)
	held.Wait()
	<-done
}

// TestOnDemandFairShare (issue 14, A9): real handshakes on loopback, a
// flood of made-up names from one client network (127.1.0.0/24) while
// another (127.2.0.0/24) asks for names of its own: the second network
// gets its share of the asks. (All names are refused, so that no
// handshake waits for a certificate.)
func TestOnDemandFairShare(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	ask := newAskCounter(t, nil)
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: testTimeout, AsksPerSecond: 20, AskBurst: 4})
	od.SetConfig(onDemandConfig(ask.URL))
	addr := tlsFront(t, od, 0).addr

	ctx, cancel := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	var floodN atomic.Int64
	for w := range 8 {
		flood.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				clientHello(t, "127.1.0.1", addr, fmt.Sprintf("flood-%d-%d.example.com", w, i), false)
				floodN.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // the flood has spent the burst
	const allowed = 10
	asked := 0
	for i := range allowed {
		name := fmt.Sprintf("other%d.example.com", i)
		for try := 0; try < 3 && ask.asks(name) == 0; try++ {
			clientHello(t, "127.2.0.1", addr, name, false)
			time.Sleep(100 * time.Millisecond)
		}
		if ask.asks(name) > 0 {
			asked++
		}
	}
	cancel()
	flood.Wait()
	t.Logf("%d of %d names of the other network asked about during a flood of %d handshakes (%d asks in all)", asked, allowed, floodN.Load(), ask.asks(""))
	if asked != allowed {
		t.Errorf("%d of %d names of the other network asked about during the flood, want all", asked, allowed)
	}
}

// front is a TLS server on loopback.
type front struct {
	addr string
	mu   sync.Mutex
	took time.Duration // the longest GetCertificate
	done int           // handshakes over
}

// longest waits until n handshakes are over and returns the longest
// GetCertificate.
func (f *front) longest(n int) time.Duration {
	deadline := time.Now().Add(testTimeout)
	for {
		f.mu.Lock()
		took, done := f.took, f.done
		f.mu.Unlock()
		if done >= n || time.Now().After(deadline) {
			return took
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tlsFront serves TLS handshakes on 127.0.0.1 with od's certificates, or
// a self-signed default one. A handshake's context ends after
// handshakeTimeout, when not zero.
func tlsFront(t *testing.T, od *acme.OnDemand, handshakeTimeout time.Duration) *front {
	certPEM, keyPEM, _ := selfSigned(t, []string{"default.invalid"}, time.Now().Add(time.Hour))
	def, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fr := &front{}
	cfg := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		start := time.Now()
		c, err := od.GetCertificate(h)
		fr.mu.Lock()
		fr.took = max(fr.took, time.Since(start))
		fr.mu.Unlock()
		if c != nil || err != nil {
			return c, err
		}
		return &def, nil
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fr.addr = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(testTimeout))
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if handshakeTimeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
				}
				defer cancel()
				_ = tls.Server(conn, cfg).HandshakeContext(ctx)
				fr.mu.Lock()
				fr.done++
				fr.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return fr
}

// clientHello makes a TLS handshake for name to addr from the loopback
// address src; mayFail says whether the handshake may fail.
func clientHello(t *testing.T, src, addr, name string, mayFail bool) {
	d := &net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		if !mayFail {
			t.Errorf("handshake for %s from %s: %v", name, src, err)
		}
		return
	}
	conn.Close()
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
