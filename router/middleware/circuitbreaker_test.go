package middleware

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// breakerBackend answers the status in the request's X-Status header (200
// when absent) after moving clock on by X-Latency, and counts its calls.
type breakerBackend struct {
	clock *mwClock
	calls atomic.Int64
}

func (b *breakerBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	if d, err := time.ParseDuration(r.Header.Get("X-Latency")); err == nil {
		b.clock.Advance(d)
	}
	code := http.StatusOK
	if s := r.Header.Get("X-Status"); s != "" {
		code, _ = strconv.Atoi(s)
	}
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, "backend")
}

// breakerStep is one request of a circuit breaker test, sent repeat
// times (once when zero).
type breakerStep struct {
	advance time.Duration
	status  int           // the backend's answer
	latency time.Duration // the backend's latency
	want    int
	repeat  int
}

var circuitBreakerCases = []struct {
	name      string
	cfg       config.CircuitBreaker
	steps     []breakerStep
	wantCalls int64
}{
	{
		name: "closed, open, recovering, closed",
		cfg:  config.CircuitBreaker{Expression: "NetworkErrorRatio() > 0.5"},
		steps: []breakerStep{
			{status: 200, want: 200},                                  // evaluated: 0
			{advance: 100 * time.Millisecond, status: 502, want: 502}, // 1/2: not above 0.5
			{status: 502, want: 502},                                  // too early to evaluate
			{advance: 100 * time.Millisecond, status: 504, want: 504}, // 3/4: opens
			{status: 200, want: 503},
			{advance: 9900 * time.Millisecond, status: 200, want: 503},
			{advance: 100 * time.Millisecond, status: 200, want: 503},             // recovering, share 0
			{advance: 5 * time.Second, status: 200, want: 200},                    // share 0.5: 1 of 2
			{status: 200, want: 503},                                              // 2 of 3 would be above 0.5
			{advance: 2500 * time.Millisecond, status: 200, want: 200, repeat: 5}, // share 0.75: up to 6 of 8
			{status: 200, want: 503},                                              // 7 of 9 would be above
			{advance: 2500 * time.Millisecond, status: 200, want: 200, repeat: 5}, // closed
		},
		wantCalls: 4 + 1 + 5 + 5,
	},
	{
		name: "opens again while recovering",
		cfg: config.CircuitBreaker{Expression: "NetworkErrorRatio() > 0.5", FallbackDuration: config.Duration(time.Second),
			RecoveryDuration: config.Duration(2 * time.Second), ResponseCode: 429},
		steps: []breakerStep{
			{status: 502, want: 502}, // 1/1: opens
			{status: 200, want: 429},
			{advance: 2 * time.Second, status: 502, want: 429}, // recovering since 1s, share 0.5: 1 of 1 is above
			{status: 502, want: 502},                           // 1 of 2 passes, fails, and opens again
			{status: 200, want: 429},
			{advance: 999 * time.Millisecond, status: 200, want: 429},
			{advance: time.Millisecond, status: 200, want: 429}, // recovering again, share 0
			{advance: 2 * time.Second, status: 200, want: 200, repeat: 3},
		},
		wantCalls: 2 + 3,
	},
	{
		name: "response code ratio",
		cfg:  config.CircuitBreaker{Expression: "ResponseCodeRatio(500, 600, 0, 600) > 0.25", CheckPeriod: config.Duration(time.Second)},
		steps: []breakerStep{
			{status: 200, want: 200, repeat: 3},
			{status: 500, want: 500},                       // 1/4, and not evaluated before a second
			{status: 503, want: 503},                       // 2/5, not evaluated either
			{advance: time.Second, status: 200, want: 200}, // 2/6: opens
			{status: 200, want: 503},
		},
		wantCalls: 6,
	},
	{
		name: "errors leave the window",
		cfg:  config.CircuitBreaker{Expression: "ResponseCodeRatio(500, 600, 0, 600) > 0.5", CheckPeriod: config.Duration(time.Second)},
		steps: []breakerStep{
			{status: 200, want: 200},
			{status: 500, want: 500, repeat: 3},
			{advance: 10 * time.Second, status: 200, want: 200, repeat: 3}, // the 500s are 10s old: 0/3
		},
		wantCalls: 7,
	},
	{
		name: "latency",
		cfg:  config.CircuitBreaker{Expression: "LatencyAtQuantileMS(50) > 100"},
		steps: []breakerStep{
			{latency: 50 * time.Millisecond, want: 200},                                  // [50]
			{advance: 50 * time.Millisecond, latency: 150 * time.Millisecond, want: 200}, // [50 150]: 50
			{latency: 150 * time.Millisecond, want: 200},                                 // [50 150 150]: 150, opens
			{want: 503},
		},
		wantCalls: 3,
	},
}

func TestCircuitBreaker(t *testing.T) {
	for _, tt := range circuitBreakerCases {
		t.Run(tt.name, func(t *testing.T) {
			clock := newMWClock()
			backend := &breakerBackend{clock: clock}
			cb, err := newCircuitBreaker(backend, &tt.cfg, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			srv := newMWServer(t, cb)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				for range max(s.repeat, 1) {
					req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
					if s.status != 0 {
						req.Header.Set("X-Status", strconv.Itoa(s.status))
					}
					if s.latency != 0 {
						req.Header.Set("X-Latency", s.latency.String())
					}
					resp, body := mwDo(t, req)
					if resp.StatusCode != s.want {
						t.Fatalf("step %d: got %d, want %d (state %v)", i, resp.StatusCode, s.want, cb.state)
					}
					if fromBreaker := body != "backend"; fromBreaker != (s.want != s.status && s.want != 200) {
						t.Errorf("step %d: got body %q", i, body)
					}
				}
			}
			if n := backend.calls.Load(); n != tt.wantCalls {
				t.Errorf("got %d calls of next, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestCircuitBreakerCountsRetries checks that tries handed to a Retry
// middleware count as network errors.
func TestCircuitBreakerCountsRetries(t *testing.T) {
	clock := newMWClock()
	backend := &flakyBackend{fails: 2}
	cb, err := newCircuitBreaker(newRetryProxy(t, newMWServer(t, backend)),
		&config.CircuitBreaker{Expression: "NetworkErrorRatio() > 1"}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRetry(cb, &config.Retry{Attempts: 3}, (&mwWaits{}).wait)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := mwGet(t, newMWServer(t, rt))
	if resp.StatusCode != 200 {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	s := cb.window.stats(clock.Now())
	if s.total != 3 || s.netErrors != 2 {
		t.Errorf("got %d requests with %d network errors, want 3 with 2", s.total, s.netErrors)
	}
}

func TestBreakerWindow(t *testing.T) {
	t0 := newMWClock().Now()
	w := newBreakerWindow(t0)
	w.add(t0, 502, 10*time.Millisecond)
	w.add(t0.Add(500*time.Millisecond), 200, 30*time.Millisecond)
	w.add(t0.Add(3*time.Second), 404, 20*time.Millisecond)
	w.add(t0.Add(3*time.Second), 0, 40*time.Millisecond) // no status code: counted, no code
	tests := []struct {
		at                   time.Duration
		total, netErrors     int64
		codeRatio, p50, p100 float64
	}{
		{at: 3 * time.Second, total: 4, netErrors: 1, codeRatio: 2.0 / 3, p50: 20, p100: 40},
		{at: 9999 * time.Millisecond, total: 4, netErrors: 1, codeRatio: 2.0 / 3, p50: 20, p100: 40},
		{at: 10 * time.Second, total: 2, netErrors: 0, codeRatio: 1, p50: 20, p100: 40},
		{at: 13 * time.Second, total: 0, netErrors: 0, codeRatio: 0, p50: 0, p100: 0},
	}
	for _, tt := range tests {
		s := w.stats(t0.Add(tt.at))
		got := fmt.Sprint(s.total, s.netErrors, s.ResponseCodeRatio(400, 600, 100, 600), s.LatencyAtQuantileMS(50), s.LatencyAtQuantileMS(100))
		want := fmt.Sprint(tt.total, tt.netErrors, tt.codeRatio, tt.p50, tt.p100)
		if got != want {
			t.Errorf("at %v: got %s, want %s (total, network errors, 4xx-5xx ratio, p50, p100)", tt.at, got, want)
		}
	}
	// A bucket is reused ten seconds later.
	w.add(t0.Add(10*time.Second), 200, time.Millisecond)
	if s := w.stats(t0.Add(10 * time.Second)); s.total != 3 {
		t.Errorf("got %d requests after reuse, want 3", s.total)
	}
	// Only the latest latencies are kept.
	for i := range 2 * maxLatencySamples {
		w.add(t0.Add(11*time.Second), 200, time.Duration(i)*time.Millisecond)
	}
	if got := w.stats(t0.Add(11 * time.Second)).LatencyAtQuantileMS(0.01); got != maxLatencySamples {
		t.Errorf("got lowest latency %vms, want %dms", got, maxLatencySamples)
	}
	w.reset()
	if s := w.stats(t0.Add(11 * time.Second)); s.total != 0 || s.LatencyAtQuantileMS(50) != 0 {
		t.Errorf("got %d requests after reset, want 0", s.total)
	}
}

func TestNewCircuitBreakerErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.CircuitBreaker
		want string
	}{
		{name: "nil", want: "no configuration"},
		{name: "no expression", cfg: &config.CircuitBreaker{}, want: `expression "": column 1: expected a metric`},
		{name: "bad expression", cfg: &config.CircuitBreaker{Expression: "NetworkErrorRatio() >> 1"}, want: `column 22: expected a metric`},
		{name: "negative", cfg: &config.CircuitBreaker{Expression: "NetworkErrorRatio() > 1", CheckPeriod: -1}, want: "must not be negative"},
		{name: "bad code", cfg: &config.CircuitBreaker{Expression: "NetworkErrorRatio() > 1", ResponseCode: 302}, want: "not an error status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCircuitBreaker(&mwNext{}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCircuitBreakerConcurrent runs many requests at once, for the race
// detector, with the real clock.
func TestCircuitBreakerConcurrent(t *testing.T) {
	var n atomic.Int64
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	h, err := NewCircuitBreaker(next, &config.CircuitBreaker{Expression: "NetworkErrorRatio() > 1 || LatencyAtQuantileMS(99) > 100000", CheckPeriod: config.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				if rec.Code != 200 && rec.Code != 502 {
					t.Errorf("got %d, want 200 or 502", rec.Code)
				}
			}
		})
	}
	wg.Wait()
}
