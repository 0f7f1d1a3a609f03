package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/tollgate-proxy/tollgate/config"
)

// NewInFlightReq returns a handler that lets at most cfg.Amount requests of
// each source be served at once, as Traefik's InFlightReq does; a request
// above the limit is answered 429 at once, without waiting. A request's
// slot is given back when next returns, also when it panics or the client
// goes away (next returns then too).
//
// A source is found as for RateLimit (see NewRateLimit): the client IP
// with cfg.SourceCriterion's IPStrategy by default, a request header's
// value, or the request host; requests with an empty source share one
// count. A source is forgotten as soon as it has no request in flight, so
// the counts held never outnumber the requests being served.
func NewInFlightReq(next http.Handler, cfg *config.InFlightReq) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("in-flight requests: no configuration")
	}
	if cfg.Amount < 1 {
		return nil, fmt.Errorf("in-flight requests: amount %d: at least 1 is required", cfg.Amount)
	}
	source, err := newSourceFunc(cfg.SourceCriterion)
	if err != nil {
		return nil, fmt.Errorf("in-flight requests: %w", err)
	}
	return &inFlightReq{next: next, amount: cfg.Amount, source: source, count: map[string]int64{}}, nil
}

type inFlightReq struct {
	next   http.Handler
	amount int64
	source func(*http.Request) string

	mu    sync.Mutex
	count map[string]int64 // requests in flight by source key; never 0
}

func (l *inFlightReq) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := sourceKey(l.source(r))
	if !l.acquire(key) {
		http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
		return
	}
	defer l.release(key)
	l.next.ServeHTTP(w, r)
}

// acquire takes a slot of key if one is free.
func (l *inFlightReq) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key] >= l.amount {
		return false
	}
	l.count[key]++
	return true
}

// release gives a slot of key back and forgets key at zero.
func (l *inFlightReq) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key]--; l.count[key] <= 0 {
		delete(l.count, key)
	}
}

// sources returns the number of sources with requests in flight.
func (l *inFlightReq) sources() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count)
}
