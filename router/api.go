package router

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// OpsMux serves tollgate's own endpoints (/ping, /ready, /metrics, /api/…)
// on an entry point before routing: requests for its paths are its own,
// every other request goes on to the routers.
type OpsMux struct {
	exact  map[string]http.Handler
	prefix map[string]http.Handler
}

// Handle serves path with h; a path ending in "/" serves everything below
// it.
func (m *OpsMux) Handle(path string, h http.Handler) {
	if m.exact == nil {
		m.exact, m.prefix = map[string]http.Handler{}, map[string]http.Handler{}
	}
	if strings.HasSuffix(path, "/") {
		m.prefix[path] = h
		return
	}
	m.exact[path] = h
}

func (m *OpsMux) handler(r *http.Request) http.Handler {
	if h := m.exact[r.URL.Path]; h != nil {
		return h
	}
	for p, h := range m.prefix {
		if strings.HasPrefix(r.URL.Path, p) {
			return h
		}
	}
	return nil
}

// Claims reports whether the request is for one of the mux's paths.
func (m *OpsMux) Claims(r *http.Request) bool { return m.handler(r) != nil }

// ServeHTTP serves a claimed request.
func (m *OpsMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := m.handler(r); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// ServerStatus is one server of a service as the API shows it.
type ServerStatus struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Weight  int    `json:"weight"`
	Healthy bool   `json:"healthy"`
	Ejected bool   `json:"ejected"`
}

// APIHandler serves the read-only JSON API: /api/http/routers,
// /api/http/services (with each server's health) and
// /api/http/middlewares (secret values hidden), from the generation in
// force.
func (rt *Router) APIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only API", http.StatusMethodNotAllowed)
			return
		}
		g := rt.current.Load()
		if g == nil {
			http.Error(w, "no configuration loaded", http.StatusServiceUnavailable)
			return
		}
		h := g.cfg.HTTP
		if h == nil {
			h = &config.HTTP{}
		}
		var body any
		switch r.URL.Path {
		case "/api/http/routers":
			body = h.Routers
		case "/api/http/middlewares":
			// Basic-auth users and sensitive header values are not shown.
			shown, err := config.Redacted(&config.Config{HTTP: &config.HTTP{Middlewares: h.Middlewares}})
			if err != nil {
				http.Error(w, "middlewares cannot be shown: "+err.Error(), http.StatusInternalServerError)
				return
			}
			body = map[string]*config.Middleware{}
			if shown.HTTP != nil && shown.HTTP.Middlewares != nil {
				body = shown.HTTP.Middlewares
			}
		case "/api/http/services":
			body = g.serviceStatus()
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
}

// serviceStatus lists every service with its servers' state.
func (g *generation) serviceStatus() map[string][]ServerStatus {
	out := map[string][]ServerStatus{}
	now := time.Now()
	for name, s := range g.services {
		list := make([]ServerStatus, 0, len(s.lb.backends))
		for _, b := range s.lb.backends {
			u := *b.target.url
			u.User = nil
			list = append(list, ServerStatus{
				ID: b.target.id, URL: u.String(), Weight: b.weight,
				Healthy: b.healthy.Load(), Ejected: now.UnixNano() < b.ejectedUntil.Load(),
			})
		}
		slices.SortFunc(list, func(a, b ServerStatus) int { return strings.Compare(a.URL, b.URL) })
		out[name] = list
	}
	return out
}
