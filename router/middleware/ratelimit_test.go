package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-proxy/tollgate/config"
)

// mwClock is a clock tests move by hand.
type mwClock struct {
	mu sync.Mutex
	t  time.Time
}

func newMWClock() *mwClock { return &mwClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *mwClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *mwClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mwWaits records the waits asked for, advancing clock by them, instead
// of sleeping.
type mwWaits struct {
	mu    sync.Mutex
	clock *mwClock
	got   []time.Duration
	err   error // returned instead of waiting when set
}

func (w *mwWaits) wait(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.got = append(w.got, d)
	if w.clock != nil {
		w.clock.Advance(d)
	}
	return nil
}

func (w *mwWaits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.got...)
}

// rateStep is one request of a rate limit test.
type rateStep struct {
	advance    time.Duration
	headers    []string
	want       int
	retryAfter string
	wait       time.Duration // the delay imposed, if any
}

func rlXFF(ip string) string { return "X-Forwarded-For: " + ip }

var rateLimitCases = []struct {
	name  string
	cfg   config.RateLimit
	steps []rateStep
}{
	{
		name: "burst then refill",
		cfg:  config.RateLimit{Average: 1, Burst: 2},
		steps: []rateStep{
			{want: 200}, {want: 200}, {want: 429, retryAfter: "1"},
			{advance: time.Second, want: 200}, {want: 429, retryAfter: "1"},
			{advance: 2 * time.Second, want: 200}, {want: 200}, {want: 429, retryAfter: "1"},
		},
	},
	{
		name: "period",
		cfg:  config.RateLimit{Average: 1, Period: config.Duration(2 * time.Second)},
		steps: []rateStep{
			{want: 200}, {want: 429, retryAfter: "2"},
			{advance: time.Second, want: 429, retryAfter: "1"},
			{advance: 500 * time.Millisecond, want: 200, wait: 500 * time.Millisecond}, // below 1/s, up to 500ms
		},
	},
	{
		name: "short waits are delayed",
		cfg:  config.RateLimit{Average: 8}, // a token every 125ms, delays up to 62.5ms
		steps: []rateStep{
			{want: 200},
			{advance: 62500 * time.Microsecond, want: 200, wait: 62500 * time.Microsecond},
			{want: 429, retryAfter: "1"},
			{advance: 125 * time.Millisecond, want: 200},
		},
	},
	{
		name: "sources are client IPs",
		cfg:  config.RateLimit{Average: 1, SourceCriterion: &config.SourceCriterion{IPStrategy: &config.IPStrategy{Depth: 1}}},
		steps: []rateStep{
			{headers: []string{rlXFF("192.0.2.1")}, want: 200},
			{headers: []string{rlXFF("192.0.2.1")}, want: 429, retryAfter: "1"},
			{headers: []string{rlXFF("192.0.2.2")}, want: 200},
			{headers: []string{rlXFF("192.0.2.9, 192.0.2.1")}, want: 429, retryAfter: "1"},
			{want: 200}, // no client IP: the shared bucket
			{want: 429, retryAfter: "1"},
		},
	},
	{
		name: "default source is the remote address",
		cfg:  config.RateLimit{Average: 1},
		steps: []rateStep{
			{headers: []string{rlXFF("192.0.2.1")}, want: 200},
			{headers: []string{rlXFF("192.0.2.2")}, want: 429, retryAfter: "1"},
		},
	},
	{
		name: "sources are header values",
		cfg:  config.RateLimit{Average: 1, SourceCriterion: &config.SourceCriterion{RequestHeaderName: "x-api-key"}},
		steps: []rateStep{
			{headers: []string{"X-Api-Key: a"}, want: 200},
			{headers: []string{"X-Api-Key: a"}, want: 429, retryAfter: "1"},
			{headers: []string{"X-Api-Key: b"}, want: 200},
			{headers: []string{"X-Api-Key: " + strings.Repeat("k", 1000)}, want: 200},
			{headers: []string{"X-Api-Key: " + strings.Repeat("k", 1000)}, want: 429, retryAfter: "1"},
			{want: 200}, // without the header: one shared bucket
			{want: 429, retryAfter: "1"},
		},
	},
	{
		name: "sources are hosts",
		cfg:  config.RateLimit{Average: 1, SourceCriterion: &config.SourceCriterion{RequestHost: true}},
		steps: []rateStep{
			{headers: []string{"Host: a.example"}, want: 200},
			{headers: []string{"Host: a.example"}, want: 429, retryAfter: "1"},
			{headers: []string{"Host: b.example"}, want: 200},
		},
	},
}

func TestRateLimit(t *testing.T) {
	for _, tt := range rateLimitCases {
		t.Run(tt.name, func(t *testing.T) {
			clock := newMWClock()
			waits := &mwWaits{clock: clock}
			next := &mwNext{}
			h, err := newRateLimit(next, &tt.cfg, clock.Now, waits.wait)
			if err != nil {
				t.Fatal(err)
			}
			srv := newMWServer(t, h)
			wantCalls, wantWaits := 0, []time.Duration(nil)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				for _, hd := range s.headers {
					k, v, _ := strings.Cut(hd, ": ")
					if k == "Host" {
						req.Host = v
					} else {
						req.Header.Set(k, v)
					}
				}
				resp, _ := mwDo(t, req)
				if resp.StatusCode != s.want {
					t.Fatalf("step %d: got %d, want %d", i, resp.StatusCode, s.want)
				}
				if got := resp.Header.Get("Retry-After"); got != s.retryAfter {
					t.Errorf("step %d: got Retry-After %q, want %q", i, got, s.retryAfter)
				}
				if s.want == 200 {
					wantCalls++
				}
				if s.wait > 0 {
					wantWaits = append(wantWaits, s.wait)
				}
			}
			if next.calls() != wantCalls {
				t.Errorf("got %d calls of next, want %d", next.calls(), wantCalls)
			}
			if got := waits.list(); fmt.Sprint(got) != fmt.Sprint(wantWaits) {
				t.Errorf("got waits %v, want %v", got, wantWaits)
			}
		})
	}
}

// TestRateLimitClientGone checks that a request whose client leaves
// while delayed gives its token back.
func TestRateLimitClientGone(t *testing.T) {
	clock := newMWClock()
	waits := &mwWaits{clock: clock}
	next := &mwNext{}
	rl, err := newRateLimit(next, &config.RateLimit{Average: 10}, clock.Now, waits.wait)
	if err != nil {
		t.Fatal(err)
	}
	serve := func() int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		rl.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := serve(); got != 200 {
		t.Fatalf("got %d, want 200", got)
	}
	clock.Advance(60 * time.Millisecond)
	waits.err = context.Canceled
	if got := serve(); got != statusClientClosedRequest {
		t.Fatalf("got %d, want %d", got, statusClientClosedRequest)
	}
	waits.err = nil
	clock.Advance(40 * time.Millisecond)
	if got := serve(); got != 200 {
		t.Errorf("got %d after the token came back, want 200", got)
	}
	if next.calls() != 2 {
		t.Errorf("got %d calls of next, want 2", next.calls())
	}
}

// TestRateLimitBoundedSources checks that many sources cannot grow the
// buckets without bound, and that idle buckets go.
func TestRateLimitBoundedSources(t *testing.T) {
	clock := newMWClock()
	rl, err := newRateLimit(&mwNext{}, &config.RateLimit{Average: 1, Burst: 3,
		SourceCriterion: &config.SourceCriterion{RequestHeaderName: "Key"}}, clock.Now, (&mwWaits{}).wait)
	if err != nil {
		t.Fatal(err)
	}
	rl.buckets = newBucketLRU(100, rl.buckets.idle)
	for i := range 1000 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Key", fmt.Sprint(i))
		rl.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := rl.buckets.len(); n != 100 {
		t.Errorf("got %d buckets, want 100", n)
	}
	if want := 4 * time.Second; rl.buckets.idle != want {
		t.Errorf("got idle time %v, want %v", rl.buckets.idle, want)
	}
	clock.Advance(rl.buckets.idle)
	rl.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if n := rl.buckets.len(); n != 1 {
		t.Errorf("got %d buckets after idling, want 1", n)
	}
}

func TestBucketLRU(t *testing.T) {
	c := newBucketLRU(2, time.Minute)
	t0 := newMWClock().Now()
	made := 0
	mk := func() *rate.Limiter { made++; return rate.NewLimiter(1, 1) }
	a := c.get("a", t0, mk)
	c.get("b", t0.Add(time.Second), mk)
	if c.get("a", t0.Add(2*time.Second), mk) != a {
		t.Error("got a new bucket for a, want the same")
	}
	c.get("c", t0.Add(3*time.Second), mk) // evicts b, the least recently used
	if c.get("a", t0.Add(4*time.Second), mk) != a {
		t.Error("got a evicted, want b evicted")
	}
	if made != 3 {
		t.Errorf("got %d buckets made, want 3", made)
	}
	c.get("b", t0.Add(5*time.Second), mk)
	if made != 4 {
		t.Errorf("got %d buckets made, want 4 (b again)", made)
	}
	c.get("d", t0.Add(5*time.Second+time.Minute), mk) // a and b idle a minute: both go
	if c.len() != 1 {
		t.Errorf("got %d buckets, want 1", c.len())
	}
}

func TestNewRateLimitErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.RateLimit
		want string
	}{
		{name: "nil", want: "no configuration"},
		{name: "no average", cfg: &config.RateLimit{}, want: "at least 1 request per period"},
		{name: "negative burst", cfg: &config.RateLimit{Average: 1, Burst: -1}, want: "must not be negative"},
		{name: "negative period", cfg: &config.RateLimit{Average: 1, Period: -1}, want: "must not be negative"},
		{name: "huge burst", cfg: &config.RateLimit{Average: 1, Burst: 1 << 40}, want: "too large"},
		{
			name: "bad strategy",
			cfg:  &config.RateLimit{Average: 1, SourceCriterion: &config.SourceCriterion{IPStrategy: &config.IPStrategy{ExcludedIPs: []string{"x"}}}},
			want: "excluded IPs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRateLimit(&mwNext{}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRateLimitConcurrent runs many clients at once, for the race
// detector, with the real clock.
func TestRateLimitConcurrent(t *testing.T) {
	h, err := NewRateLimit(&mwNext{}, &config.RateLimit{Average: 1000, Burst: 50,
		SourceCriterion: &config.SourceCriterion{RequestHeaderName: "Key"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Key", fmt.Sprint(g, i%3))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] == 0 || codes[200]+codes[429] != 1600 {
		t.Errorf("got statuses %v, want 1600 of 200 and 429 with some 200", codes)
	}
}

func TestSleepCtx(t *testing.T) {
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
