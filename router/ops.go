package router

import (
	"net/http"
	"sync/atomic"
)

// Ops serves the liveness and readiness endpoints on the API entry point:
// /ping answers 200 while the process runs; /ready answers 200 once the
// configuration is loaded and until shutdown begins, 503 otherwise, so
// that load balancers stop sending before tollgate stops accepting.
type Ops struct {
	ready atomic.Bool
}

// SetReady sets what /ready answers.
func (o *Ops) SetReady(ready bool) { o.ready.Store(ready) }

// Ready reports what /ready answers.
func (o *Ops) Ready() bool { return o.ready.Load() }

// Claims reports whether the request is for an endpoint of Ops.
func (o *Ops) Claims(r *http.Request) bool {
	return r.URL.Path == "/ping" || r.URL.Path == "/ready"
}

// ServeHTTP answers /ping and /ready.
func (o *Ops) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/ping":
		_, _ = w.Write([]byte("OK\n"))
	case o.ready.Load():
		_, _ = w.Write([]byte("ready\n"))
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
	}
}
