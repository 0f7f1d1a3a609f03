package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// ForwardedPrefixHeader tells the service which path prefix StripPrefix
// removed, so that it can build links that work for the client.
const ForwardedPrefixHeader = "X-Forwarded-Prefix"

// NewAddPrefix returns a handler that prepends cfg.Prefix to the request
// path before passing the request to next, as Traefik's AddPrefix does:
// "/users" becomes "/api/users" with prefix "/api". The escaped form of the
// path (URL.RawPath) is prefixed too, so encoded characters such as %2F
// reach the service unchanged.
//
// Unlike Traefik, a trailing "/" of the prefix is not doubled: prefix
// "/api/" also turns "/users" into "/api/users", and prefix "/" changes
// nothing.
func NewAddPrefix(next http.Handler, cfg *config.AddPrefix) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("add prefix: no configuration")
	}
	if err := checkPathPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("add prefix: %w", err)
	}
	p := strings.TrimSuffix(cfg.Prefix, "/")
	return &addPrefix{next: next, prefix: p, rawPrefix: (&url.URL{Path: p}).EscapedPath()}, nil
}

type addPrefix struct {
	next      http.Handler
	prefix    string // without a trailing "/"
	rawPrefix string // prefix escaped for URL.RawPath
}

func (a *addPrefix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r2 := rewritableCopy(r, false)
	r2.URL.Path = a.prefix + leadingSlash(r.URL.Path)
	if r.URL.RawPath != "" {
		r2.URL.RawPath = a.rawPrefix + leadingSlash(r.URL.RawPath)
	}
	r2.RequestURI = r2.URL.RequestURI()
	a.next.ServeHTTP(w, r2)
}

// NewStripPrefix returns a handler that removes the first of cfg.Prefixes,
// in the configured order, that the request path starts with, and passes
// the request to next with the removed prefix added to the
// X-Forwarded-Prefix header. This is Traefik's StripPrefix: the match is a
// plain string prefix, not a path segment one ("/api" also strips
// "/apiv2/x" to "/v2/x"), and the remaining path always starts with "/"
// ("/api" becomes "/"). Requests that match no prefix pass on unchanged.
//
// URL.RawPath is stripped as well, so that encoded characters after the
// prefix reach the service as the client sent them.
//
// X-Forwarded-Prefix is added to, not replaced, so that stripping twice
// forwards both prefixes in order; the router removes forwarded headers of
// untrusted clients before middlewares run.
func NewStripPrefix(next http.Handler, cfg *config.StripPrefix) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("strip prefix: no configuration")
	}
	if len(cfg.Prefixes) == 0 {
		return nil, errors.New("strip prefix: at least one prefix is required")
	}
	for i, p := range cfg.Prefixes {
		if err := checkPathPrefix(p); err != nil {
			return nil, fmt.Errorf("strip prefix: prefix %d: %w", i, err)
		}
	}
	return &stripPrefix{next: next, prefixes: slices.Clone(cfg.Prefixes)}, nil
}

type stripPrefix struct {
	next     http.Handler
	prefixes []string
}

func (s *stripPrefix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, p := range s.prefixes {
		if !strings.HasPrefix(r.URL.Path, p) {
			continue
		}
		s.next.ServeHTTP(w, stripped(r, p))
		return
	}
	s.next.ServeHTTP(w, r)
}

// NewStripPrefixRegex returns a handler that tries cfg.Regex in order on
// the decoded request path and, for the first whose leftmost match starts
// at the beginning of the path and is not empty, removes the matched text
// and adds it to X-Forwarded-Prefix, as Traefik's StripPrefixRegex does:
// "^/tenant/[a-z]+" strips "/tenant/acme/x" to "/x". The remaining path
// always starts with "/". URL.RawPath is stripped as StripPrefix strips
// it, so encoded characters after the prefix reach the service as the
// client sent them. Requests that match no regex pass on unchanged.
func NewStripPrefixRegex(next http.Handler, cfg *config.StripPrefixRegex) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("strip prefix regex: no configuration")
	}
	if len(cfg.Regex) == 0 {
		return nil, errors.New("strip prefix regex: at least one regex is required")
	}
	s := &stripPrefixRegex{next: next}
	for i, expr := range cfg.Regex {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("strip prefix regex: regex %d: %w", i, err)
		}
		s.res = append(s.res, re)
	}
	return s, nil
}

type stripPrefixRegex struct {
	next http.Handler
	res  []*regexp.Regexp
}

func (s *stripPrefixRegex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, re := range s.res {
		loc := re.FindStringIndex(r.URL.Path)
		if loc == nil || loc[0] != 0 || loc[1] == 0 {
			continue
		}
		p := r.URL.Path[:loc[1]]
		s.next.ServeHTTP(w, stripped(r, p))
		return
	}
	s.next.ServeHTTP(w, r)
}

// stripped returns a copy of r without the path prefix p, which the path
// starts with, and with p added to X-Forwarded-Prefix.
func stripped(r *http.Request, p string) *http.Request {
	r2 := rewritableCopy(r, true)
	r2.URL.Path = leadingSlash(r.URL.Path[len(p):])
	if r.URL.RawPath != "" {
		r2.URL.RawPath = stripRawPrefix(r.URL.RawPath, p)
	}
	r2.Header.Add(ForwardedPrefixHeader, p)
	r2.RequestURI = r2.URL.RequestURI()
	return r2
}

// stripRawPrefix removes from the escaped path raw the characters that
// decode to prefix. It returns "" when raw does not start with an encoding
// of prefix, which makes net/url escape the decoded path afresh.
func stripRawPrefix(raw, prefix string) string {
	i, n := 0, 0
	for n < len(prefix) && i < len(raw) {
		if raw[i] == '%' && i+2 < len(raw) {
			i += 3
		} else {
			i++
		}
		n++
	}
	if dec, err := url.PathUnescape(raw[:i]); err != nil || dec != prefix {
		return ""
	}
	return leadingSlash(raw[i:])
}

// leadingSlash returns p starting with "/".
func leadingSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// checkPathPrefix accepts a URL path prefix: it starts with "/" and has no
// control characters.
func checkPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("prefix %q must start with \"/\"", p)
	}
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return fmt.Errorf("prefix %q contains a control character", p)
	}
	return nil
}

// rewritableCopy returns a shallow copy of r with its own URL and, when
// header is true, its own header map, for a middleware to change before it
// passes the request on: handlers must not modify the request they are
// given, which the router's access log still reads afterwards.
func rewritableCopy(r *http.Request, header bool) *http.Request {
	r2 := r.WithContext(r.Context())
	u := *r.URL
	r2.URL = &u
	if header {
		r2.Header = r.Header.Clone()
		if r2.Header == nil {
			r2.Header = make(http.Header)
		}
	}
	return r2
}
