package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// NewHeaders returns a handler that edits request and response headers,
// as Traefik's Headers middleware does for the options tollgate has:
//
//   - CustomRequestHeaders are set on the request before next sees it; an
//     empty value removes the header, and "Host" sets the request's host.
//   - Security headers are set on every response, replacing what the
//     service sent: X-Frame-Options (CustomFrameOptionsValue, else DENY
//     when FrameDeny), X-Content-Type-Options: nosniff,
//     Content-Security-Policy, Referrer-Policy and Permissions-Policy, each
//     when configured.
//   - Strict-Transport-Security ("max-age=N", with "; includeSubDomains"
//     and "; preload" when asked) when STSSeconds > 0, only on responses
//     to HTTPS requests (TLS, or X-Forwarded-Proto https from a trusted
//     hop) unless ForceSTSHeader.
//   - CustomResponseHeaders are applied next, so they can override or, with
//     an empty value, remove any of the above and what the service sent.
//   - AppendRequestHeaders and AppendResponseHeaders (set by providers
//     only) add a value after a header's existing ones, last.
//
// Response headers are applied when the response header is written;
// informational (1xx) responses and hijacked connections are left alone.
func NewHeaders(next http.Handler, cfg *config.Headers) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("headers: no configuration")
	}
	req, err := headerEdits(cfg.CustomRequestHeaders)
	if err != nil {
		return nil, fmt.Errorf("headers: customRequestHeaders: %w", err)
	}
	resp, err := headerEdits(cfg.CustomResponseHeaders)
	if err != nil {
		return nil, fmt.Errorf("headers: customResponseHeaders: %w", err)
	}
	reqAdd, err := headerAppends(cfg.AppendRequestHeaders)
	if err != nil {
		return nil, fmt.Errorf("headers: request headers to add: %w", err)
	}
	respAdd, err := headerAppends(cfg.AppendResponseHeaders)
	if err != nil {
		return nil, fmt.Errorf("headers: response headers to add: %w", err)
	}
	req, resp = append(req, reqAdd...), append(resp, respAdd...)
	if cfg.STSSeconds < 0 {
		return nil, fmt.Errorf("headers: stsSeconds %d is negative", cfg.STSSeconds)
	}
	h := &headers{next: next, request: req, response: resp, forceSTS: cfg.ForceSTSHeader}
	if cfg.STSSeconds > 0 {
		h.sts = "max-age=" + strconv.FormatInt(cfg.STSSeconds, 10)
		if cfg.STSIncludeSubdomains {
			h.sts += "; includeSubDomains"
		}
		if cfg.STSPreload {
			h.sts += "; preload"
		}
	}
	h.security = securityHeaders(cfg)
	return h, nil
}

// securityHeaders lists the security headers cfg sends on every response.
func securityHeaders(cfg *config.Headers) []headerEdit {
	var out []headerEdit
	add := func(name, value string) {
		if value != "" {
			out = append(out, headerEdit{name: name, value: value})
		}
	}
	frame := cfg.CustomFrameOptionsValue
	if frame == "" && cfg.FrameDeny {
		frame = "DENY"
	}
	add("X-Frame-Options", frame)
	if cfg.ContentTypeNosniff {
		add("X-Content-Type-Options", "nosniff")
	}
	add("Content-Security-Policy", cfg.ContentSecurityPolicy)
	add("Referrer-Policy", cfg.ReferrerPolicy)
	add("Permissions-Policy", cfg.PermissionsPolicy)
	return out
}

// headerEdit sets a header, or removes it when value is empty, or adds
// value after the header's values when add.
type headerEdit struct {
	name  string // canonical
	value string
	add   bool
}

// headerAppends validates headers whose values are added, not set.
func headerAppends(m map[string]string) ([]headerEdit, error) {
	out, err := headerEdits(m)
	for i := range out {
		if out[i].value == "" || out[i].name == "Host" {
			return nil, fmt.Errorf("header %q: an added value must not be empty, and Host has one value", out[i].name)
		}
		out[i].add = true
	}
	return out, err
}

// headerEdits validates a configured header map and returns its edits in
// name order, so that two spellings of one name resolve the same way on
// every replica.
func headerEdits(m map[string]string) ([]headerEdit, error) {
	out := make([]headerEdit, 0, len(m))
	for name, value := range m {
		if err := checkHeaderName(name); err != nil {
			return nil, err
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("the value of header %q contains a line break or NUL", name)
		}
		out = append(out, headerEdit{name: http.CanonicalHeaderKey(name), value: value})
	}
	slices.SortFunc(out, func(a, b headerEdit) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

type headers struct {
	next     http.Handler
	request  []headerEdit
	response []headerEdit
	security []headerEdit
	sts      string // Strict-Transport-Security value; empty for none
	forceSTS bool
}

func (h *headers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(h.request) > 0 {
		r = rewritableCopy(r, true)
		for _, e := range h.request {
			switch {
			case e.add:
				r.Header.Add(e.name, e.value)
			case e.value == "":
				r.Header.Del(e.name)
			case e.name == "Host":
				r.Host = e.value
			default:
				r.Header.Set(e.name, e.value)
			}
		}
	}
	sts := ""
	if h.sts != "" && (h.forceSTS || requestScheme(r) == "https") {
		sts = h.sts
	}
	if len(h.response) == 0 && len(h.security) == 0 && sts == "" {
		h.next.ServeHTTP(w, r)
		return
	}
	hw := &headerHookWriter{rw: w, before: func(hd http.Header) { h.editResponse(hd, sts) }}
	h.next.ServeHTTP(hw, r)
	hw.finish()
}

// editResponse applies the response headers to hd.
func (h *headers) editResponse(hd http.Header, sts string) {
	for _, e := range h.security {
		hd.Set(e.name, e.value)
	}
	if sts != "" {
		hd.Set("Strict-Transport-Security", sts)
	}
	for _, e := range h.response {
		switch {
		case e.add:
			hd.Add(e.name, e.value)
		case e.value == "":
			hd.Del(e.name)
		default:
			hd.Set(e.name, e.value)
		}
	}
}

// The response writer wrappers keep streaming and upgrades working.
var (
	_ http.Flusher  = (*headerHookWriter)(nil)
	_ http.Hijacker = (*headerHookWriter)(nil)
	_ http.Flusher  = (*compressWriter)(nil)
	_ http.Hijacker = (*compressWriter)(nil)
)

// headerHookWriter calls before with the response header once, just
// before the header is sent: at the first final WriteHeader, Write or
// Flush, or at finish when the handler wrote nothing. Informational (1xx)
// headers pass through untouched, and a hijacked connection is left alone.
type headerHookWriter struct {
	rw     http.ResponseWriter
	before func(http.Header)
	done   bool
}

// Header returns the header of the wrapped writer.
func (w *headerHookWriter) Header() http.Header { return w.rw.Header() }

// WriteHeader edits the header before sending a final status.
func (w *headerHookWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	w.fire()
	w.rw.WriteHeader(code)
}

// Write edits the header if it has not been sent yet, then writes p.
func (w *headerHookWriter) Write(p []byte) (int, error) {
	w.fire()
	return w.rw.Write(p)
}

// FlushError edits the header if it has not been sent yet, then flushes.
func (w *headerHookWriter) FlushError() error {
	w.fire()
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements http.Flusher.
func (w *headerHookWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection over; the header is no longer edited.
func (w *headerHookWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.done = true
	}
	return c, brw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *headerHookWriter) Unwrap() http.ResponseWriter { return w.rw }

// finish edits the header of a response the handler wrote nothing to,
// which net/http sends when the handler returns.
func (w *headerHookWriter) finish() { w.fire() }

func (w *headerHookWriter) fire() {
	if !w.done {
		w.done = true
		w.before(w.rw.Header())
	}
}

// addVary adds name to the Vary header unless it is listed already or Vary
// is "*".
func addVary(h http.Header, name string) {
	for _, line := range h.Values("Vary") {
		for v := range strings.SplitSeq(line, ",") {
			v = strings.TrimSpace(v)
			if v == "*" || strings.EqualFold(v, name) {
				return
			}
		}
	}
	h.Add("Vary", name)
}

// headerHasToken reports whether a comma-separated header of h lists token,
// ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, line := range h.Values(name) {
		for v := range strings.SplitSeq(line, ",") {
			if v, _, _ = strings.Cut(v, ";"); strings.EqualFold(strings.TrimSpace(v), token) {
				return true
			}
		}
	}
	return false
}

// checkHeaderName accepts an HTTP header name (an RFC 9110 token).
func checkHeaderName(s string) error {
	if s == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return fmt.Errorf("header name %q contains %q, which HTTP does not allow", s, c)
		}
	}
	return nil
}
