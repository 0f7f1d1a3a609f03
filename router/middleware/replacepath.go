package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/tollgate-proxy/tollgate/config"
)

// ReplacedPathHeader carries the path a ReplacePath or ReplacePathRegex
// middleware replaced, escaped as the client sent it.
const ReplacedPathHeader = "X-Replaced-Path"

// NewReplacePath returns a handler that replaces the request path with
// cfg.Path, as Traefik's ReplacePath does, and adds the path it replaced,
// escaped as the client sent it ("/a%2Fb"), to the X-Replaced-Path
// header. cfg.Path is an escaped path: "/x%2Fy" forwards an encoded
// slash, while URL.Path, which rules and later middlewares see, holds the
// decoded "/x/y". The query is kept.
func NewReplacePath(next http.Handler, cfg *config.ReplacePath) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("replace path: no configuration")
	}
	if cfg.Path == "" || cfg.Path[0] != '/' {
		return nil, fmt.Errorf("replace path: path %q must start with \"/\"", cfg.Path)
	}
	dec, err := url.PathUnescape(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("replace path: path %q: %w", cfg.Path, err)
	}
	return &replacePath{next: next, path: dec, rawPath: rawPathFor(dec, cfg.Path)}, nil
}

type replacePath struct {
	next    http.Handler
	path    string // decoded
	rawPath string // the escaped form when it differs from the default escaping, else ""
}

func (rp *replacePath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r2 := rewritableCopy(r, true)
	r2.Header.Add(ReplacedPathHeader, r.URL.EscapedPath())
	r2.URL.Path, r2.URL.RawPath = rp.path, rp.rawPath
	r2.RequestURI = r2.URL.RequestURI()
	rp.next.ServeHTTP(w, r2)
}

// NewReplacePathRegex returns a handler that, when cfg.Regex matches the
// request path, replaces the path with cfg.Replacement (which may refer to
// the regex's groups as $1 or ${name}), as Traefik's ReplacePathRegex
// does. The regex sees the path escaped as the client sent it ("/a%2Fb"
// stays so), the result is taken as an escaped path, and URL.Path is its
// decoded form. The replaced path, escaped, is added to X-Replaced-Path.
// A request the regex does not match passes on unchanged. A result with
// a "%" that starts no escape is answered 500, as in Traefik.
func NewReplacePathRegex(next http.Handler, cfg *config.ReplacePathRegex) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("replace path regex: no configuration")
	}
	re, err := regexp.Compile(cfg.Regex)
	if err != nil {
		return nil, fmt.Errorf("replace path regex: %w", err)
	}
	if cfg.Replacement == "" {
		return nil, errors.New("replace path regex: replacement is required")
	}
	return &replacePathRegex{next: next, re: re, replacement: cfg.Replacement}, nil
}

type replacePathRegex struct {
	next        http.Handler
	re          *regexp.Regexp
	replacement string
}

func (rp *replacePathRegex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	if !rp.re.MatchString(escaped) {
		rp.next.ServeHTTP(w, r)
		return
	}
	raw := rp.re.ReplaceAllString(escaped, rp.replacement)
	dec, err := url.PathUnescape(raw)
	if err != nil {
		http.Error(w, "the path replacement is not a valid escaped path", http.StatusInternalServerError)
		return
	}
	r2 := rewritableCopy(r, true)
	r2.Header.Add(ReplacedPathHeader, escaped)
	r2.URL.Path, r2.URL.RawPath = dec, rawPathFor(dec, raw)
	r2.RequestURI = r2.URL.RequestURI()
	rp.next.ServeHTTP(w, r2)
}

// rawPathFor returns the URL.RawPath to keep with the decoded path dec
// whose escaped form is raw: "" when net/url would escape dec as raw
// anyway, as URL.RawPath is only a hint kept when it differs.
func rawPathFor(dec, raw string) string {
	if (&url.URL{Path: dec}).EscapedPath() == raw {
		return ""
	}
	return raw
}
