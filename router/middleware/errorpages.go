package middleware

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// ErrorPageTimeout bounds the request for an error page; a page service
// that does not answer in time gets the plain answer.
const ErrorPageTimeout = 10 * time.Second

// maxErrorPageBytes bounds an error page; a larger one gets the plain
// answer.
const maxErrorPageBytes = 1 << 20

// statusRange is an inclusive range of statuses.
type statusRange struct{ from, to int }

func (s statusRange) has(code int) bool { return s.from <= code && code <= s.to }

// statusRewrite sends the page of a status in a range with another
// status.
type statusRewrite struct {
	statusRange
	status int
}

// NewErrorPages replaces the answers of next whose status is in
// cfg.Status with the page service answers for cfg.Query: its body and
// headers, with the original status, or the status cfg.StatusRewrites
// gives it (the range that is narrowest wins). The page is asked for with
// GET and the request's headers (less conditional and range ones), and
// the original answer's body is discarded; of the original answer's
// headers only WWW-Authenticate, Proxy-Authenticate, Retry-After, Allow
// and Set-Cookie are kept.
//
// When the page service fails, answers with other than 2xx, takes longer
// than ErrorPageTimeout or sends a page larger than 1 MiB, the client
// gets the status the page would have had with a plain text body (its
// status text). Informational (1xx) answers always pass through, as do
// answers of other statuses, streamed as they are written.
func NewErrorPages(next http.Handler, cfg *config.ErrorPages, service http.Handler) (http.Handler, error) {
	if len(cfg.Status) == 0 {
		return nil, errors.New("errors: no status")
	}
	if service == nil {
		return nil, fmt.Errorf("errors: service %q is not defined", cfg.Service)
	}
	e := &errorPages{next: next, service: service, query: cmp.Or(cfg.Query, "/")}
	for _, s := range cfg.Status {
		from, to, err := config.ParseStatusRange(s)
		if err != nil {
			return nil, fmt.Errorf("errors: status: %w", err)
		}
		e.status = append(e.status, statusRange{max(from, 200), to})
	}
	for k, status := range cfg.StatusRewrites {
		from, to, err := config.ParseStatusRange(k)
		if err != nil {
			return nil, fmt.Errorf("errors: statusRewrites: %w", err)
		}
		if status < 100 || status > 599 {
			return nil, fmt.Errorf("errors: statusRewrites: %s: status %d is not from 100 to 599", k, status)
		}
		e.rewrites = append(e.rewrites, statusRewrite{statusRange{from, to}, status})
	}
	slices.SortFunc(e.rewrites, func(a, b statusRewrite) int {
		return cmp.Or(cmp.Compare(a.to-a.from, b.to-b.from), cmp.Compare(a.from, b.from))
	})
	return e, nil
}

type errorPages struct {
	next     http.Handler
	service  http.Handler
	query    string
	status   []statusRange
	rewrites []statusRewrite
}

func (e *errorPages) catches(code int) bool {
	for _, s := range e.status {
		if s.has(code) {
			return true
		}
	}
	return false
}

func (e *errorPages) rewrite(code int) int {
	for _, rw := range e.rewrites {
		if rw.has(code) {
			return rw.status
		}
	}
	return code
}

func (e *errorPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ew := &errorWriter{rw: w, e: e}
	if h := w.Header(); len(h) > 0 {
		ew.before = make(map[string]bool, len(h))
		for k := range h {
			ew.before[k] = true
		}
	}
	e.next.ServeHTTP(ew, r)
	if ew.caught != 0 {
		e.page(w, r, ew.caught, ew.before)
	}
}

// keptErrorHeaders of the original answer stay with its page.
var keptErrorHeaders = []string{"Www-Authenticate", "Proxy-Authenticate", "Retry-After", "Allow", "Set-Cookie"}

// pageRequestHeaders are not sent to the page service: they could make
// it answer other than the whole page.
var pageRequestHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"}

// page answers r with the page of status code, in place of the answer
// next gave, whose header is w's less the names in before.
func (e *errorPages) page(w http.ResponseWriter, r *http.Request, code int, before map[string]bool) {
	status := e.rewrite(code)
	h := w.Header()
	for k := range h {
		if !before[k] && !slices.Contains(keptErrorHeaders, k) {
			delete(h, k)
		}
	}
	query := strings.NewReplacer(
		"{status}", strconv.Itoa(status),
		"{originalStatus}", strconv.Itoa(code),
		"{url}", url.QueryEscape(r.URL.String()),
	).Replace(e.query)
	rec, ok := e.fetch(r, query)
	if !ok {
		h.Del("Content-Encoding")
		h.Del("Content-Length")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = fmt.Fprintln(w, http.StatusText(status))
		return
	}
	for k, v := range rec.header {
		if k == "Set-Cookie" || k == "Content-Length" || slices.Contains(hopHeaders, k) {
			continue
		}
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rec.body.Bytes())
	}
}

// fetch asks the page service for query and reports whether it answered
// with a page.
func (e *errorPages) fetch(r *http.Request, query string) (*pageRecorder, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), ErrorPageTimeout)
	defer cancel()
	// The page request is no attempt of a Retry middleware around this one.
	ctx = context.WithValue(ctx, retryKey{}, (*retryState)(nil))
	u, err := url.ParseRequestURI(query)
	if err != nil {
		return nil, false
	}
	preq := r.Clone(ctx)
	preq.Method = http.MethodGet
	preq.URL.Path, preq.URL.RawPath, preq.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	preq.RequestURI = u.RequestURI()
	preq.Body, preq.GetBody, preq.ContentLength = http.NoBody, nil, 0
	preq.Header.Del("Content-Length")
	for _, k := range pageRequestHeaders {
		preq.Header.Del(k)
	}
	rec := &pageRecorder{header: http.Header{}}
	e.service.ServeHTTP(rec, preq)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec, !rec.tooLarge && rec.code >= 200 && rec.code <= 299 && ctx.Err() == nil
}

// pageRecorder keeps the answer of the page service.
type pageRecorder struct {
	header   http.Header
	code     int
	body     bytes.Buffer
	tooLarge bool
}

func (p *pageRecorder) Header() http.Header { return p.header }

func (p *pageRecorder) WriteHeader(code int) {
	if p.code == 0 && code >= 200 {
		p.code = code
	}
}

func (p *pageRecorder) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	if p.body.Len()+len(b) > maxErrorPageBytes {
		p.tooLarge = true
		return 0, errors.New("error page too large")
	}
	return p.body.Write(b)
}

// Flush does nothing: the page is sent whole.
func (p *pageRecorder) Flush() {}

// errorWriter passes on the answers of statuses errorPages does not
// catch and swallows the others, remembering their status.
type errorWriter struct {
	rw      http.ResponseWriter
	e       *errorPages
	before  map[string]bool
	caught  int  // the status caught, 0 when none
	decided bool // a final status was seen
}

// The writer keeps streaming and upgrades working.
var (
	_ http.Flusher  = (*errorWriter)(nil)
	_ http.Hijacker = (*errorWriter)(nil)
)

// Header returns the header of the wrapped writer.
func (w *errorWriter) Header() http.Header { return w.rw.Header() }

// WriteHeader catches a status errorPages replaces and passes on the
// others.
func (w *errorWriter) WriteHeader(code int) {
	if w.decided {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	w.decided = true
	if w.e.catches(code) {
		w.caught = code
		return
	}
	w.rw.WriteHeader(code)
}

// Write discards the body of a caught answer.
func (w *errorWriter) Write(p []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.caught != 0 {
		return len(p), nil
	}
	return w.rw.Write(p)
}

// FlushError sends what was written so far, unless it is caught.
func (w *errorWriter) FlushError() error {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.caught != 0 {
		return nil
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements http.Flusher.
func (w *errorWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection over.
func (w *errorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.rw).Hijack()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.rw }
