package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/breaker"
)

const (
	defaultCheckPeriod      = 100 * time.Millisecond
	defaultFallbackDuration = 10 * time.Second
	defaultRecoveryDuration = 10 * time.Second

	// windowBuckets is the number of one-second buckets the measurements cover.
	windowBuckets = 10
	// maxLatencySamples bounds the latencies kept for quantiles.
	maxLatencySamples = 1024
)

// NewCircuitBreaker returns a handler that stops sending requests to next
// while cfg.Expression holds, with the semantics of Traefik's (oxy's)
// circuit breaker:
//
//   - Closed: requests go to next and their outcome is measured over the
//     last 10 seconds. The expression is evaluated at most every
//     cfg.CheckPeriod (100ms when zero), after a request completes; there
//     is no background goroutine. When it holds the breaker opens and the
//     measurements start afresh. There is no minimum number of requests:
//     a first request answered 502 makes NetworkErrorRatio() 1.
//   - Open: for cfg.FallbackDuration (10s when zero) every request is
//     answered cfg.ResponseCode (503 when zero) without calling next.
//   - Recovering: for cfg.RecoveryDuration (10s when zero) a share of
//     requests growing linearly from 0 to 1 goes to next and the rest is
//     answered as when open. If the expression holds again the breaker
//     opens again; otherwise it closes at the end.
//
// A network error, for NetworkErrorRatio(), is a 502 or 504 answered by
// next — what the proxy writes when it cannot reach a server or times out
// — or a try the proxy handed to a Retry middleware (see Retryable).
// LatencyAtQuantileMS uses the latest 1024 latencies of the window, from
// the call of next to its return.
func NewCircuitBreaker(next http.Handler, cfg *config.CircuitBreaker) (http.Handler, error) {
	return newCircuitBreaker(next, cfg, time.Now)
}

// newCircuitBreaker is NewCircuitBreaker with a clock, for tests.
func newCircuitBreaker(next http.Handler, cfg *config.CircuitBreaker, now func() time.Time) (*circuitBreaker, error) {
	if cfg == nil {
		return nil, errors.New("circuit breaker: no configuration")
	}
	cond, err := breaker.Parse(cfg.Expression)
	if err != nil {
		return nil, fmt.Errorf("circuit breaker: expression %q: %w", cfg.Expression, err)
	}
	if cfg.CheckPeriod < 0 || cfg.FallbackDuration < 0 || cfg.RecoveryDuration < 0 {
		return nil, errors.New("circuit breaker: checkPeriod, fallbackDuration and recoveryDuration must not be negative")
	}
	code := cfg.ResponseCode
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	if code < 400 || code > 599 {
		return nil, fmt.Errorf("circuit breaker: responseCode %d is not an error status", code)
	}
	orDefault := func(d config.Duration, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d.Std()
	}
	return &circuitBreaker{
		next:        next,
		cond:        cond,
		checkPeriod: orDefault(cfg.CheckPeriod, defaultCheckPeriod),
		fallback:    orDefault(cfg.FallbackDuration, defaultFallbackDuration),
		recovery:    orDefault(cfg.RecoveryDuration, defaultRecoveryDuration),
		code:        code,
		now:         now,
		window:      newBreakerWindow(now()),
	}, nil
}

type breakerState int

const (
	stateClosed breakerState = iota
	stateOpen
	stateRecovering
)

func (s breakerState) String() string {
	return [...]string{"closed", "open", "recovering"}[s]
}

type circuitBreaker struct {
	next                            http.Handler
	cond                            breaker.Expr
	checkPeriod, fallback, recovery time.Duration
	code                            int
	now                             func() time.Time

	mu               sync.Mutex
	state            breakerState
	until            time.Time // end of the open or recovering state
	recoveryStart    time.Time
	allowed, refused int // requests of the recovering state
	nextCheck        time.Time
	window           *breakerWindow
}

func (cb *circuitBreaker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !cb.admit() {
		http.Error(w, http.StatusText(cb.code), cb.code)
		return
	}
	start := cb.now()
	sw := &breakerWriter{w: w}
	defer func() {
		// Deferred, so that a request that panics (an aborted stream)
		// is measured too.
		cb.record(sw.result(r), cb.now().Sub(start))
	}()
	cb.next.ServeHTTP(sw, r)
}

// admit moves the state on with the clock and reports whether a request
// may go to next.
func (cb *circuitBreaker) admit() bool {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	now := cb.now()
	switch cb.state {
	case stateClosed:
		return true
	case stateOpen:
		if now.Before(cb.until) {
			return false
		}
		// Recovery began when the open state ended, whether or not a
		// request came then.
		cb.state, cb.recoveryStart, cb.until = stateRecovering, cb.until, cb.until.Add(cb.recovery)
		cb.allowed, cb.refused = 0, 0
	}
	// Recovering.
	if !now.Before(cb.until) {
		cb.state = stateClosed
		return true
	}
	target := float64(now.Sub(cb.recoveryStart)) / float64(cb.recovery)
	if float64(cb.allowed+1)/float64(cb.allowed+cb.refused+1) <= target {
		cb.allowed++
		return true
	}
	cb.refused++
	return false
}

// record measures a completed request and evaluates the expression when
// it is time to.
func (cb *circuitBreaker) record(status int, latency time.Duration) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.state == stateOpen {
		return // admitted before the breaker opened; not part of the new measurements
	}
	now := cb.now()
	cb.window.add(now, status, latency)
	if now.Before(cb.nextCheck) {
		return
	}
	cb.nextCheck = now.Add(cb.checkPeriod)
	if cb.cond.Eval(cb.window.stats(now)) {
		cb.state, cb.until = stateOpen, now.Add(cb.fallback)
		cb.window.reset()
	}
}

// breakerWindow holds the measurements of the last windowBuckets seconds, in
// one-second buckets indexed by seconds since origin. It is not safe for
// concurrent use.
type breakerWindow struct {
	origin  time.Time
	buckets [windowBuckets]breakerBucket
	samples [maxLatencySamples]latencySample
	next    int // index of the next sample to write
}

type breakerBucket struct {
	tick      int64 // seconds since origin this bucket counts
	total     int64
	netErrors int64
	codes     [500]uint32 // statuses 100 to 599
}

type latencySample struct {
	tick int64
	d    time.Duration
}

func newBreakerWindow(now time.Time) *breakerWindow {
	w := &breakerWindow{origin: now}
	w.reset()
	return w
}

func (w *breakerWindow) tick(now time.Time) int64 { return int64(now.Sub(w.origin) / time.Second) }

// reset forgets all measurements.
func (w *breakerWindow) reset() {
	for i := range w.buckets {
		w.buckets[i] = breakerBucket{tick: math.MinInt64}
	}
	for i := range w.samples {
		w.samples[i] = latencySample{tick: math.MinInt64}
	}
	w.next = 0
}

func (w *breakerWindow) add(now time.Time, status int, latency time.Duration) {
	t := w.tick(now)
	b := &w.buckets[int(((t%windowBuckets)+windowBuckets)%windowBuckets)]
	if b.tick != t {
		*b = breakerBucket{tick: t}
	}
	b.total++
	if status == http.StatusBadGateway || status == http.StatusGatewayTimeout {
		b.netErrors++
	}
	if status >= 100 && status <= 599 {
		b.codes[status-100]++
	}
	w.samples[w.next] = latencySample{tick: t, d: latency}
	w.next = (w.next + 1) % len(w.samples)
}

// inWindow reports whether measurements of tick t count at tick now.
func inWindow(t, now int64) bool { return t <= now && t > now-windowBuckets }

// stats sums the buckets of the window ending at now.
func (w *breakerWindow) stats(now time.Time) *breakerStats {
	t := w.tick(now)
	s := &breakerStats{w: w, tick: t}
	for i := range w.buckets {
		b := &w.buckets[i]
		if !inWindow(b.tick, t) {
			continue
		}
		s.total += b.total
		s.netErrors += b.netErrors
		for c, n := range b.codes {
			s.codes[c] += int64(n)
		}
	}
	return s
}

// breakerStats are the metrics of one evaluation.
type breakerStats struct {
	w         *breakerWindow
	tick      int64
	total     int64
	netErrors int64
	codes     [500]int64
	latencies []time.Duration // sorted, gathered on first use
	gathered  bool
}

var _ breaker.Metrics = (*breakerStats)(nil)

func (s *breakerStats) NetworkErrorRatio() float64 {
	if s.total == 0 {
		return 0
	}
	return float64(s.netErrors) / float64(s.total)
}

func (s *breakerStats) ResponseCodeRatio(from, to, dividendFrom, dividendTo int) float64 {
	var a, b int64
	for i, n := range s.codes {
		code := i + 100
		if code >= from && code < to {
			a += n
		}
		if code >= dividendFrom && code < dividendTo {
			b += n
		}
	}
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (s *breakerStats) LatencyAtQuantileMS(q float64) float64 {
	if !s.gathered {
		for _, smp := range s.w.samples {
			if inWindow(smp.tick, s.tick) {
				s.latencies = append(s.latencies, smp.d)
			}
		}
		slices.Sort(s.latencies)
		s.gathered = true
	}
	n := len(s.latencies)
	if n == 0 {
		return 0
	}
	i := min(max(int(math.Ceil(q/100*float64(n)))-1, 0), n-1)
	return float64(s.latencies[i]) / float64(time.Millisecond)
}

// breakerWriter records the status next answers with.
type breakerWriter struct {
	w      http.ResponseWriter
	status int
}

// result is the status the request ended with: 502 for a try handed to
// a Retry middleware, 200 when nothing was written (the server's
// implicit status).
func (sw *breakerWriter) result(r *http.Request) int {
	if sw.status != 0 {
		return sw.status
	}
	if st, _ := r.Context().Value(retryKey{}).(*retryState); st != nil && st.requested.Load() {
		return http.StatusBadGateway
	}
	return http.StatusOK
}

func (sw *breakerWriter) Header() http.Header { return sw.w.Header() }

func (sw *breakerWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.w.WriteHeader(code)
}

func (sw *breakerWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.w.Write(b)
}

// FlushError sends what was written so far.
func (sw *breakerWriter) FlushError() error {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return http.NewResponseController(sw.w).Flush()
}

// Flush is FlushError for http.Flusher.
func (sw *breakerWriter) Flush() { _ = sw.FlushError() }

// Hijack takes over the connection, which counts as 101 Switching
// Protocols.
func (sw *breakerWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if sw.status == 0 {
		sw.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(sw.w).Hijack()
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (sw *breakerWriter) Unwrap() http.ResponseWriter { return sw.w }
