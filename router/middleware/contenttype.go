package middleware

import (
	"errors"
	"net/http"

	"github.com/tollgate-proxy/tollgate/config"
)

// NewContentType returns a handler that gives a response written without a
// Content-Type one detected from its first bytes with
// http.DetectContentType, as Traefik v3's ContentType middleware does.
// Without this middleware the router passes on a proxied response that
// has no Content-Type without one, as Traefik v3 does, rather than let
// net/http guess it.
//
// The type is detected from the first non-empty write (net/http looks at
// the same bytes, at most 512 of them): a response flushed before any
// body byte, and one without a body, get none. A Content-Type set by the
// service or by a middleware inside this one is kept. cfg.AutoDetect false
// returns next unchanged, as in Traefik, where the option is deprecated.
func NewContentType(next http.Handler, cfg *config.ContentType) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("content type: no configuration")
	}
	if cfg.AutoDetect != nil && !*cfg.AutoDetect {
		return next, nil
	}
	return contentType{next: next}, nil
}

type contentType struct{ next http.Handler }

func (c contentType) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &sniffWriter{w: w}
	defer sw.finish()
	c.next.ServeHTTP(sw, r)
}

// sniffWriter holds back the status of a response without a
// Content-Type until its first body bytes are known.
type sniffWriter struct {
	w       http.ResponseWriter
	code    int  // the held status while pending
	pending bool // a status is held back
	done    bool // the status was passed on
}

func (sw *sniffWriter) Header() http.Header { return sw.w.Header() }

// hasType reports whether h holds a Content-Type; a key without values
// is the router's mark that none may be guessed, not a type.
func hasType(h http.Header) bool { return len(h["Content-Type"]) > 0 }

func (sw *sniffWriter) WriteHeader(code int) {
	switch {
	case sw.done || sw.pending:
		return
	case code >= 100 && code < 200 && code != http.StatusSwitchingProtocols:
		sw.w.WriteHeader(code) // informational: more headers follow
		return
	case hasType(sw.w.Header()) || !bodyAllowed(code):
		sw.done = true
		sw.w.WriteHeader(code)
		return
	}
	sw.code, sw.pending = code, true
}

func (sw *sniffWriter) Write(p []byte) (int, error) {
	if !sw.done && !sw.pending {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.pending {
		if len(p) == 0 {
			return 0, nil
		}
		if !hasType(sw.w.Header()) {
			sw.w.Header().Set("Content-Type", http.DetectContentType(p))
		}
		sw.release()
	}
	return sw.w.Write(p)
}

// release passes the held status on.
func (sw *sniffWriter) release() {
	if sw.pending {
		sw.pending, sw.done = false, true
		sw.w.WriteHeader(sw.code)
	}
}

// finish passes on the status of a response that wrote no body byte.
func (sw *sniffWriter) finish() { sw.release() }

// FlushError sends what was written so far; a held status goes without a
// Content-Type.
func (sw *sniffWriter) FlushError() error {
	sw.release()
	return http.NewResponseController(sw.w).Flush()
}

// Flush is FlushError for http.Flusher.
func (sw *sniffWriter) Flush() { _ = sw.FlushError() }

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (sw *sniffWriter) Unwrap() http.ResponseWriter { return sw.w }

// bodyAllowed reports whether a response with status code may have a
// body (RFC 9110, 6.4.1).
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}
