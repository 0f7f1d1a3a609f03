package middleware

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// NewRedirectScheme returns a handler that redirects requests whose scheme
// is not cfg.Scheme to the same host and request URI with cfg.Scheme, as
// Traefik's RedirectScheme does. Requests that already use cfg.Scheme pass
// on to next; when cfg.Port is set, so do only those that already use that
// port, and others are redirected to it.
//
// The request's scheme is X-Forwarded-Proto when a trusted hop set it (the
// router removes it from untrusted clients' requests; "ws" and "wss" count
// as "http" and "https"), else "https" for a TLS connection, else the
// scheme of an absolute request URI, else "http". Behind a TLS-terminating
// load balancer this is what stops a redirect loop.
//
// The port of the original Host is dropped; cfg.Port is added unless it is
// the default port of cfg.Scheme (80 for http, 443 for https), so that an
// empty cfg.Port and the default port mean the same. Statuses follow
// Traefik v3: 302 (301 when cfg.Permanent) for GET, and 307 (308) for
// other methods, which clients must repeat unchanged. A request without a
// Host cannot be redirected and is answered 400.
func NewRedirectScheme(next http.Handler, cfg *config.RedirectScheme) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("redirect scheme: no configuration")
	}
	if cfg.Scheme != "http" && cfg.Scheme != "https" {
		return nil, fmt.Errorf("redirect scheme: scheme %q: use https or http", cfg.Scheme)
	}
	port := cfg.Port
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("redirect scheme: port %q is not a number from 1 to 65535", port)
		}
	}
	if port == defaultPortOf(cfg.Scheme) {
		port = ""
	}
	return &redirectScheme{next: next, scheme: cfg.Scheme, port: port, permanent: cfg.Permanent}, nil
}

type redirectScheme struct {
	next      http.Handler
	scheme    string
	port      string // empty for the default port of scheme
	permanent bool
}

func (s *redirectScheme) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme := requestScheme(r)
	host, port := splitHostPort(r.Host)
	if port == "" {
		port = defaultPortOf(scheme)
	}
	if scheme == s.scheme && (s.port == "" || port == s.port) {
		s.next.ServeHTTP(w, r)
		return
	}
	if host == "" {
		http.Error(w, "the request has no Host to redirect to", http.StatusBadRequest)
		return
	}
	if s.port != "" {
		host = net.JoinHostPort(host, s.port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	loc := s.scheme + "://" + host + r.URL.RequestURI()
	writeRedirect(w, loc, traefikRedirectCode(r.Method, s.permanent))
}

// NewRedirectRegex returns a handler that matches cfg.Regex against the
// full request URL, scheme://host/path?query, and redirects to the URL
// that replacing the match with cfg.Replacement gives ($1 and ${name}
// expand to submatches, as in regexp.Regexp.Expand). As in Traefik, the
// scheme is "https" for TLS connections and "http" otherwise,
// X-Forwarded-Proto is not considered, the host is the Host header with
// its port, and the path and query are the escaped ones the service would
// receive. Requests that do not match, or whose URL the replacement leaves
// unchanged, pass on to next.
//
// Statuses follow Traefik v3: 302 (301 when cfg.Permanent) for GET, and
// 307 (308) for other methods. A replacement that yields an unparsable URL
// is answered 500.
func NewRedirectRegex(next http.Handler, cfg *config.RedirectRegex) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("redirect regex: no configuration")
	}
	if cfg.Regex == "" {
		return nil, errors.New("redirect regex: regex is required")
	}
	re, err := regexp.Compile(cfg.Regex)
	if err != nil {
		return nil, fmt.Errorf("redirect regex: %w", err)
	}
	if cfg.Replacement == "" {
		return nil, errors.New("redirect regex: replacement is required")
	}
	return &redirectRegex{next: next, re: re, replacement: cfg.Replacement, permanent: cfg.Permanent}, nil
}

type redirectRegex struct {
	next        http.Handler
	re          *regexp.Regexp
	replacement string
	permanent   bool
}

func (rr *redirectRegex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil || r.URL.Scheme == "https" {
		scheme = "https"
	}
	old := scheme + "://" + r.Host + r.URL.RequestURI()
	if !rr.re.MatchString(old) {
		rr.next.ServeHTTP(w, r)
		return
	}
	target := rr.re.ReplaceAllString(old, rr.replacement)
	if target == old {
		rr.next.ServeHTTP(w, r)
		return
	}
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "the redirect replacement does not give a URL", http.StatusInternalServerError)
		return
	}
	writeRedirect(w, u.String(), traefikRedirectCode(r.Method, rr.permanent))
}

// NewHeaderRedirect returns a handler that redirects according to the
// value of the request header cfg.Header, for example to send each
// region's clients to their own site. The first line of the header is
// compared with the keys of cfg.Targets exactly, case-sensitively (header
// values are case-sensitive, and "eu" and "EU" may be configured as
// different targets); a missing header or an unknown value selects
// cfg.Default, and when that is empty the request passes on to next.
//
// The redirect keeps the request: Location is the target URL with the
// request path appended to the target's path and the request query
// appended to the target's query. The status is 307, or 308 when
// cfg.Permanent, for every method, so that clients repeat the request
// unchanged. A request already on the target's scheme and host, under the
// target's path, passes on rather than being redirected to itself again.
//
// Every response, redirect or not, carries "Vary: <cfg.Header>", so that
// caches keep one answer per header value.
func NewHeaderRedirect(next http.Handler, cfg *config.HeaderRedirect) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("header redirect: no configuration")
	}
	if err := checkHeaderName(cfg.Header); err != nil {
		return nil, fmt.Errorf("header redirect: %w", err)
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("header redirect: at least one target is required")
	}
	h := &headerRedirect{
		next:    next,
		header:  http.CanonicalHeaderKey(cfg.Header),
		targets: make(map[string]*url.URL, len(cfg.Targets)),
		code:    http.StatusTemporaryRedirect,
	}
	if cfg.Permanent {
		h.code = http.StatusPermanentRedirect
	}
	for k, v := range cfg.Targets {
		u, err := parseRedirectTarget(v)
		if err != nil {
			return nil, fmt.Errorf("header redirect: target %q: %w", k, err)
		}
		h.targets[k] = u
	}
	if cfg.Default != "" {
		u, err := parseRedirectTarget(cfg.Default)
		if err != nil {
			return nil, fmt.Errorf("header redirect: default: %w", err)
		}
		h.def = u
	}
	return h, nil
}

type headerRedirect struct {
	next    http.Handler
	header  string // canonical
	targets map[string]*url.URL
	def     *url.URL // nil: pass on
	code    int
}

func (h *headerRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := h.targets[r.Header.Get(h.header)]
	if !ok {
		t = h.def
	}
	if t == nil || h.alreadyAt(t, r) {
		hw := &headerHookWriter{rw: w, before: func(hd http.Header) { addVary(hd, h.header) }}
		h.next.ServeHTTP(hw, r)
		hw.finish()
		return
	}
	addVary(w.Header(), h.header)
	writeRedirect(w, redirectLocation(t, r), h.code)
}

// alreadyAt reports whether r is on the scheme and host of t, under the
// path of t.
func (h *headerRedirect) alreadyAt(t *url.URL, r *http.Request) bool {
	scheme := requestScheme(r)
	if t.Scheme != scheme {
		return false
	}
	th, tp := splitHostPort(t.Host)
	rh, rp := splitHostPort(r.Host)
	if tp == "" {
		tp = defaultPortOf(scheme)
	}
	if rp == "" {
		rp = defaultPortOf(scheme)
	}
	if !strings.EqualFold(th, rh) || tp != rp {
		return false
	}
	base := strings.TrimSuffix(t.Path, "/")
	return base == "" || r.URL.Path == base || strings.HasPrefix(r.URL.Path, base+"/")
}

// redirectLocation appends the path and query of r to target.
func redirectLocation(target *url.URL, r *http.Request) string {
	u := *target
	reqPath := leadingSlash(r.URL.Path)
	u.Path = strings.TrimSuffix(target.Path, "/") + reqPath
	u.RawPath = strings.TrimSuffix(target.EscapedPath(), "/") + leadingSlash(r.URL.EscapedPath())
	switch {
	case target.RawQuery == "":
		u.RawQuery = r.URL.RawQuery
	case r.URL.RawQuery != "":
		u.RawQuery = target.RawQuery + "&" + r.URL.RawQuery
	}
	return u.String()
}

// parseRedirectTarget parses an absolute http or https URL with a host.
func parseRedirectTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: the scheme must be https or http", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	return u, nil
}

// traefikRedirectCode is the status Traefik's redirect middlewares answer:
// 301 or 302 for GET, which clients may turn into a GET anyway, and 308 or
// 307, which forbid changing the method, for the others.
func traefikRedirectCode(method string, permanent bool) int {
	switch {
	case method == http.MethodGet && permanent:
		return http.StatusMovedPermanently
	case method == http.MethodGet:
		return http.StatusFound
	case permanent:
		return http.StatusPermanentRedirect
	default:
		return http.StatusTemporaryRedirect
	}
}

// writeRedirect answers with status code and Location loc, without a body.
func writeRedirect(w http.ResponseWriter, loc string, code int) {
	w.Header().Set("Location", loc)
	w.WriteHeader(code)
}

// requestScheme returns "https" or "http": X-Forwarded-Proto when a trusted
// hop set it (the router drops the header from untrusted clients before
// middlewares run), else whether the connection is TLS or the request URI
// is an absolute https one.
func requestScheme(r *http.Request) string {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))) {
	case "https", "wss":
		return "https"
	case "http", "ws":
		return "http"
	}
	if r.TLS != nil || r.URL.Scheme == "https" {
		return "https"
	}
	return "http"
}

// splitHostPort splits a Host header value into a host, without IPv6
// brackets, and a port, which is empty when the value has none.
func splitHostPort(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}

// defaultPortOf returns the port a scheme implies.
func defaultPortOf(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}
