package middleware

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-proxy/tollgate/config"
)

// maxRateSources bounds the token buckets one RateLimit middleware keeps,
// as Traefik does (65536). Beyond it the least recently used bucket is
// dropped.
const maxRateSources = 65536

// maxSourceKeyLen is the longest source kept verbatim as a map key;
// longer ones (header values can be large) are replaced by their SHA-256.
const maxSourceKeyLen = 64

// NewRateLimit returns a handler that limits the requests of each source
// with a token bucket that holds cfg.Burst tokens (1 when zero) and gains
// cfg.Average tokens per cfg.Period (1s when zero).
//
// A source is, after cfg.SourceCriterion: the client IP found with its
// IPStrategy (the default, also when SourceCriterion is nil), the value
// of the request header RequestHeaderName, or the request host when
// RequestHost is set. As in Traefik, requests whose source is empty — no
// such header, or no client IP — share one bucket.
//
// As in Traefik, a request that would have to wait a little for its token
// is delayed instead of refused: up to half the interval between two
// tokens, and at most 500ms. A request that would have to wait longer is
// answered 429 with Retry-After, in whole seconds rounded up.
//
// At most 65536 buckets are kept; the least recently used one goes first.
// A bucket left alone until it is full again is dropped when another
// request comes by, since a new bucket behaves the same. Nothing runs in
// the background.
func NewRateLimit(next http.Handler, cfg *config.RateLimit) (http.Handler, error) {
	return newRateLimit(next, cfg, time.Now, sleepCtx)
}

// newRateLimit is NewRateLimit with a clock and a way to wait, for tests.
func newRateLimit(next http.Handler, cfg *config.RateLimit, now func() time.Time, wait func(context.Context, time.Duration) error) (*rateLimit, error) {
	if cfg == nil {
		return nil, errors.New("rate limit: no configuration")
	}
	if cfg.Average <= 0 {
		return nil, fmt.Errorf("rate limit: average %d: at least 1 request per period is required", cfg.Average)
	}
	if cfg.Burst < 0 || cfg.Period < 0 {
		return nil, errors.New("rate limit: burst and period must not be negative")
	}
	period := cfg.Period.Std()
	if period == 0 {
		period = time.Second
	}
	burst := max(cfg.Burst, 1)
	if burst > math.MaxInt32 {
		return nil, fmt.Errorf("rate limit: burst %d is too large", burst)
	}
	source, err := newSourceFunc(cfg.SourceCriterion)
	if err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	perSecond := float64(cfg.Average) / period.Seconds()
	maxDelay := 500 * time.Millisecond
	if perSecond >= 1 {
		maxDelay = time.Duration(float64(time.Second) / (2 * perSecond))
	}
	// A bucket idle this long is full again, even one that lent a token
	// ahead of time to a delayed request.
	idle := time.Duration(float64(burst+1) / perSecond * float64(time.Second))
	return &rateLimit{
		next:     next,
		limit:    rate.Limit(perSecond),
		burst:    int(burst),
		maxDelay: maxDelay,
		source:   source,
		now:      now,
		wait:     wait,
		buckets:  newBucketLRU(maxRateSources, idle),
	}, nil
}

type rateLimit struct {
	next     http.Handler
	limit    rate.Limit
	burst    int
	maxDelay time.Duration
	source   func(*http.Request) string
	now      func() time.Time
	wait     func(context.Context, time.Duration) error

	mu      sync.Mutex
	buckets *bucketLRU
}

func (l *rateLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := sourceKey(l.source(r))
	l.mu.Lock()
	now := l.now() // under the lock, so that the LRU sees time go forward
	bucket := l.buckets.get(key, now, l.newLimiter)
	l.mu.Unlock()

	res := bucket.ReserveN(now, 1)
	if !res.OK() {
		tooManyRequests(w, time.Second)
		return
	}
	delay := res.DelayFrom(now)
	if delay > l.maxDelay {
		res.CancelAt(now)
		tooManyRequests(w, delay)
		return
	}
	if delay > 0 {
		if err := l.wait(r.Context(), delay); err != nil {
			res.CancelAt(l.now())
			w.WriteHeader(statusClientClosedRequest)
			return
		}
	}
	l.next.ServeHTTP(w, r)
}

func (l *rateLimit) newLimiter() *rate.Limiter { return rate.NewLimiter(l.limit, l.burst) }

// statusClientClosedRequest is recorded when the client went away while
// a middleware made it wait.
const statusClientClosedRequest = 499

// tooManyRequests answers 429 asking the client to retry after delay.
func tooManyRequests(w http.ResponseWriter, delay time.Duration) {
	secs := max(int64(math.Ceil(delay.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
}

// newSourceFunc returns what groups requests into sources.
func newSourceFunc(sc *config.SourceCriterion) (func(*http.Request) string, error) {
	switch {
	case sc != nil && sc.RequestHeaderName != "":
		name := http.CanonicalHeaderKey(sc.RequestHeaderName)
		return func(r *http.Request) string { return r.Header.Get(name) }, nil
	case sc != nil && sc.RequestHost:
		return func(r *http.Request) string { return r.Host }, nil
	}
	var s *config.IPStrategy
	if sc != nil {
		s = sc.IPStrategy
	}
	st, err := newIPStrategy(s)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) string {
		ip, err := st.clientIP(r)
		if err != nil {
			return ""
		}
		return ip.String()
	}, nil
}

// sourceKey bounds the memory a source costs: long values are hashed.
func sourceKey(s string) string {
	if len(s) <= maxSourceKeyLen {
		return "=" + s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting %v: %w", d, ctx.Err())
	}
}

// bucketLRU holds token buckets by source, most recently used first. It
// is not safe for concurrent use.
type bucketLRU struct {
	max   int
	idle  time.Duration
	order *list.List // of *bucketEntry, most recently used at the front
	byKey map[string]*list.Element
}

type bucketEntry struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

func newBucketLRU(maxEntries int, idle time.Duration) *bucketLRU {
	return &bucketLRU{max: maxEntries, idle: idle, order: list.New(), byKey: make(map[string]*list.Element)}
}

// get returns the bucket of key, made with newBucket when there is none,
// after dropping buckets idle since before now-idle. Each bucket is
// dropped once, so the pruning costs O(1) per call on average.
func (c *bucketLRU) get(key string, now time.Time, newBucket func() *rate.Limiter) *rate.Limiter {
	for e := c.order.Back(); e != nil; e = c.order.Back() {
		be := e.Value.(*bucketEntry)
		if now.Sub(be.lastSeen) < c.idle {
			break
		}
		c.remove(e)
	}
	if e, ok := c.byKey[key]; ok {
		be := e.Value.(*bucketEntry)
		if now.After(be.lastSeen) {
			be.lastSeen = now
		}
		c.order.MoveToFront(e)
		return be.limiter
	}
	be := &bucketEntry{key: key, limiter: newBucket(), lastSeen: now}
	c.byKey[key] = c.order.PushFront(be)
	if c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
	return be.limiter
}

func (c *bucketLRU) remove(e *list.Element) {
	c.order.Remove(e)
	delete(c.byKey, e.Value.(*bucketEntry).key)
}

// len returns the number of buckets.
func (c *bucketLRU) len() int { return c.order.Len() }
