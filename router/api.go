package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
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

// APIOptions configures the read-only JSON API (see APIHandler and
// docs/api.md).
type APIOptions struct {
	// Version and Commit are what /api/version reports; Commit may be
	// empty when unknown.
	Version string
	Commit  string
	// Start is when the replica started, /api/version's startDate.
	Start time.Time
	// BaseProvider names where the routers, services and middlewares
	// without "@provider" in their names come from: "file" or "store".
	// Empty means "file".
	BaseProvider string
	// Inspector supplies /api/certificates and /api/cluster. Nil makes
	// both answer 404: the replica has no view of the ACME store.
	Inspector Inspector
	// InspectTimeout bounds each call of the Inspector: past it the
	// request answers 503. Zero means 10s.
	InspectTimeout time.Duration
	// Events supplies /api/events, this replica's recent events (an
	// *Events). Nil makes it answer 404.
	Events EventLister
	// EntryPoints are the entry points as the listeners were started
	// with: their settings take effect only at a restart, so
	// /api/entrypoints shows these rather than a changed configuration's.
	// Nil shows the configuration in force.
	EntryPoints map[string]*config.EntryPoint
}

// EventLister lists recent events, newest first.
type EventLister interface {
	List() []Event
}

// APIHandler serves the read-only JSON API under /api/, shaped like
// Traefik v3's where the concept is the same: /api/overview,
// /api/version, /api/entrypoints[/NAME], /api/http/routers[/NAME],
// /api/http/services[/NAME] (with each server's health),
// /api/http/middlewares[/NAME] (secret values hidden),
// /api/tcp/routers[/NAME], /api/tcp/services[/NAME],
// /api/tcp/middlewares[/NAME], /api/certificates[/NAME], /api/cluster and /api/events (this
// replica's recent events). docs/api.md describes every
// field. Routing items come from the generation in force, worked out at
// the first request after a reload; the servers' health is read at each
// request.
func (rt *Router) APIHandler(opts APIOptions) http.Handler {
	a := &api{rt: rt, opts: opts}
	a.opts.BaseProvider = cmp.Or(a.opts.BaseProvider, "file")
	a.opts.InspectTimeout = cmp.Or(a.opts.InspectTimeout, 10*time.Second)
	return a
}

// api serves APIHandler.
type api struct {
	rt   *Router
	opts APIOptions
	// view is the view of the newest generation the API was asked
	// about.
	view atomic.Pointer[apiView]
}

// apiError is the body of every error answer.
type apiError struct {
	Message string `json:"message"`
}

// writeJSON answers with body, indented; if body cannot be encoded, with
// a 500 error instead of a truncated answer.
func writeJSON(w http.ResponseWriter, status int, body any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		b.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(apiError{Message: fmt.Sprintf("the answer cannot be encoded: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Message: fmt.Sprintf(format, args...)})
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "the API is read-only: use GET or HEAD")
		return
	}
	path := r.URL.Path
	switch path {
	case "/api/version":
		writeJSON(w, http.StatusOK, a.version())
		return
	case "/api/cluster":
		a.cluster(w, r)
		return
	case "/api/certificates":
		a.certificates(w, r, "", false)
		return
	case "/api/events":
		if a.opts.Events == nil {
			writeError(w, http.StatusNotFound, "this replica keeps no events")
			return
		}
		events := a.opts.Events.List()
		if events == nil {
			events = []Event{}
		}
		writeJSON(w, http.StatusOK, events)
		return
	}
	if name, ok := strings.CutPrefix(path, "/api/certificates/"); ok {
		a.certificates(w, r, name, true)
		return
	}
	v := a.currentView()
	if v == nil {
		writeError(w, http.StatusServiceUnavailable, "no configuration is loaded yet")
		return
	}
	if path == "/api/overview" {
		writeJSON(w, http.StatusOK, v.overview)
		return
	}
	for _, c := range v.collections() {
		if path == c.path {
			a.list(w, r, c)
			return
		}
		if name, ok := strings.CutPrefix(path, c.path+"/"); ok {
			if i, found := c.find(name); found {
				writeJSON(w, http.StatusOK, c.item(i))
			} else {
				writeError(w, http.StatusNotFound, "%s %q not found: %s lists them", c.kind, name, c.path)
			}
			return
		}
	}
	writeError(w, http.StatusNotFound, "no API endpoint at %s: the endpoints are /api/overview, /api/version, /api/entrypoints, /api/http/routers, /api/http/services, /api/http/middlewares, /api/tcp/routers, /api/tcp/services, /api/tcp/middlewares, /api/certificates, /api/cluster and /api/events", path)
}

// currentView returns the view of the generation in force, building it on
// the first request after a reload; nil before the first Apply.
func (a *api) currentView() *apiView {
	g := a.rt.current.Load()
	if g == nil {
		return nil
	}
	if v := a.view.Load(); v != nil && v.g == g {
		return v
	}
	v := newAPIView(g, a.opts.BaseProvider, a.opts.EntryPoints)
	a.view.Store(v)
	return v
}

// apiVersion is /api/version. Its Version key is capitalized as in
// Traefik's.
type apiVersion struct {
	Version   string    `json:"Version"`
	Commit    string    `json:"commit"`
	GoVersion string    `json:"goVersion"`
	StartDate time.Time `json:"startDate"`
}

func (a *api) version() apiVersion {
	return apiVersion{Version: a.opts.Version, Commit: a.opts.Commit, GoVersion: runtime.Version(), StartDate: a.opts.Start}
}

const noStoreView = "this replica has no view of the ACME store: ask a replica that runs with one"

func (a *api) cluster(w http.ResponseWriter, r *http.Request) {
	if a.opts.Inspector == nil {
		writeError(w, http.StatusNotFound, noStoreView)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.InspectTimeout)
	defer cancel()
	c, err := a.opts.Inspector.Cluster(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the cluster cannot be read: %v", err)
		return
	}
	if c.Nodes == nil {
		c.Nodes = []NodeInfo{}
	}
	writeJSON(w, http.StatusOK, c)
}

// certificates serves /api/certificates, or with one the certificate
// called name.
func (a *api) certificates(w http.ResponseWriter, r *http.Request, name string, one bool) {
	if a.opts.Inspector == nil {
		writeError(w, http.StatusNotFound, noStoreView)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.InspectTimeout)
	defer cancel()
	certs, err := a.opts.Inspector.Certificates(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the certificates cannot be read: %v", err)
		return
	}
	certs = slices.Clone(certs) // the Inspector's own may be shared
	for i := range certs {
		if certs[i].SANs == nil {
			certs[i].SANs = []string{}
		}
	}
	slices.SortStableFunc(certs, func(x, y CertificateInfo) int { return strings.Compare(x.Name, y.Name) })
	c := collection{
		kind: "certificate",
		len:  len(certs),
		name: func(i int) string { return certs[i].Name },
		status: func(i int) string {
			return certs[i].Status
		},
		statuses: []string{"ok", "renewalDue", "ordering", "failing", "gaveUp", "unusable", "misplaced", "missing"},
		item:     func(i int) any { return certs[i] },
	}
	if !one {
		a.list(w, r, c)
		return
	}
	for i := range certs {
		if strings.EqualFold(certs[i].Name, name) {
			writeJSON(w, http.StatusOK, certs[i])
			return
		}
	}
	writeError(w, http.StatusNotFound, "certificate %q not found: /api/certificates lists them", name)
}

// collection is one list the API serves: items 0…len-1, sorted by name.
type collection struct {
	path string // "/api/http/routers"
	kind string // "router", for errors
	len  int
	name func(i int) string
	// status returns the item's status word; statuses are the words it
	// can return, which the status parameter must name.
	status   func(i int) string
	statuses []string
	// search returns further text the search parameter looks in (a
	// router's rule); nil for none.
	search func(i int) string
	// keep applies the collection's own filters to item i; nil keeps all.
	keep func(q url.Values, i int) bool
	item func(i int) any
	// resolve returns the name of the item a path names; nil means the
	// name itself.
	resolve func(name string) string
}

// find returns the item called name, the collection being sorted by
// name.
func (c collection) find(name string) (int, bool) {
	if c.resolve != nil {
		name = c.resolve(name)
	}
	i := sort.Search(c.len, func(i int) bool { return c.name(i) >= name })
	return i, i < c.len && c.name(i) == name
}

// Pagination defaults, as in Traefik's API.
const (
	defaultPerPage = 100
	nextPageHeader = "X-Next-Page"
)

// list serves a collection filtered by the search and status parameters
// (and the collection's own), one page of it: page (from 1) of per_page
// items. X-Next-Page names the next page, or 1 on the last one.
func (a *api) list(w http.ResponseWriter, r *http.Request, c collection) {
	q := r.URL.Query()
	perPage, err := positiveParam(q, "per_page", defaultPerPage)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	page, err := positiveParam(q, "page", 1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	search, status := strings.ToLower(q.Get("search")), q.Get("status")
	if status != "" && !slices.ContainsFunc(c.statuses, func(s string) bool { return strings.EqualFold(s, status) }) {
		writeError(w, http.StatusBadRequest, "status %q: want one of %s", status, strings.Join(c.statuses, ", "))
		return
	}
	items := []any{}
	for i := range c.len {
		if status != "" && !strings.EqualFold(c.status(i), status) {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(c.name(i)), search) &&
			(c.search == nil || !strings.Contains(strings.ToLower(c.search(i)), search)) {
			continue
		}
		if c.keep != nil && !c.keep(q, i) {
			continue
		}
		items = append(items, c.item(i))
	}
	per := min(perPage, max(len(items), 1)) // the same pages, and no overflow
	if pages := (len(items) + per - 1) / per; page > 1 && page > pages {
		writeError(w, http.StatusBadRequest, "page %d is past the last page, %d: there are %d items, %d per page", page, pages, len(items), perPage)
		return
	}
	perPage = per
	start := (page - 1) * perPage
	end := min(start+perPage, len(items))
	next := 1
	if end < len(items) {
		next = page + 1
	}
	w.Header().Set(nextPageHeader, strconv.Itoa(next))
	writeJSON(w, http.StatusOK, items[start:end])
}

// positiveParam reads the query parameter key, a positive integer, or
// returns def when it is absent.
func positiveParam(q url.Values, key string, def int) (int, error) {
	raw := q.Get(key)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("query parameter %s=%q: give a whole number from 1", key, raw)
	}
	return n, nil
}
