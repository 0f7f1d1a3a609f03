package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/tollgate-proxy/tollgate/config"
)

// Defaults of Compress.
const (
	// DefaultCompressMinBytes is the smallest body compressed when
	// MinResponseBodyBytes is zero.
	DefaultCompressMinBytes = 1024
	// brotliLevel and the zstd settings favour latency over ratio, as
	// on-the-fly compression should.
	brotliLevel = 4
	zstdWindow  = 1 << 20
)

// NewCompress returns a handler that compresses responses with the
// content coding the client prefers among cfg.Encodings (gzip, br, zstd;
// gzip only when empty). Accept-Encoding is read with its q-values: the
// encoding with the highest q wins, ties go to the earlier one in
// cfg.Encodings, "*" stands for encodings not listed, q=0 refuses one,
// x-gzip means gzip, and an identity preferred over every offered encoding
// leaves the response alone. As in Traefik, a request without
// Accept-Encoding is not compressed.
//
// A response is sent as is when the request is HEAD, has a Range header,
// is a protocol upgrade (WebSocket; Connection: Upgrade or CONNECT) or is
// gRPC; when its status is 1xx, 204, 206 or 304; when it already has a
// Content-Encoding or a Content-Range, or Cache-Control: no-transform; when
// its media type (parameters ignored, "type/*" allowed in the lists) is in
// cfg.ExcludedContentTypes, or not in cfg.IncludedContentTypes when that is
// set, or is application/grpc; and when its body is shorter than
// cfg.MinResponseBodyBytes (DefaultCompressMinBytes when zero). To know
// that, up to that many bytes are buffered before anything is sent, unless
// Content-Length already tells. A response without Content-Type gets the
// one its first bytes are sniffed as.
//
// A compressed response loses Content-Length and Accept-Ranges, and its
// ETag becomes weak; every response gets "Vary: Accept-Encoding". A Flush
// by the handler decides at once with what is buffered (compressing if the
// response qualifies apart from its size) and flushes the compressor, so
// streams such as server-sent events keep flowing.
func NewCompress(next http.Handler, cfg *config.Compress) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("compress: no configuration")
	}
	if len(cfg.IncludedContentTypes) > 0 && len(cfg.ExcludedContentTypes) > 0 {
		return nil, errors.New("compress: includedContentTypes and excludedContentTypes exclude each other")
	}
	if cfg.MinResponseBodyBytes < 0 {
		return nil, fmt.Errorf("compress: minResponseBodyBytes %d is negative", cfg.MinResponseBodyBytes)
	}
	c := &compress{next: next, minSize: cfg.MinResponseBodyBytes, encodings: []string{"gzip"}}
	if c.minSize == 0 {
		c.minSize = DefaultCompressMinBytes
	}
	if len(cfg.Encodings) > 0 {
		c.encodings = nil
		for _, e := range cfg.Encodings {
			if encoderPools[e] == nil {
				return nil, fmt.Errorf("compress: encoding %q: use gzip, br or zstd", e)
			}
			if !slices.Contains(c.encodings, e) {
				c.encodings = append(c.encodings, e)
			}
		}
	}
	var err error
	if c.excluded, err = parseMediaTypes(cfg.ExcludedContentTypes); err != nil {
		return nil, fmt.Errorf("compress: excludedContentTypes: %w", err)
	}
	if c.included, err = parseMediaTypes(cfg.IncludedContentTypes); err != nil {
		return nil, fmt.Errorf("compress: includedContentTypes: %w", err)
	}
	return c, nil
}

type compress struct {
	next      http.Handler
	encodings []string // offered, in order of preference
	minSize   int
	excluded  []string // media types
	included  []string
}

func (c *compress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || headerHasToken(r.Header, "Connection", "upgrade") ||
		strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/grpc") {
		c.next.ServeHTTP(w, r)
		return
	}
	enc := ""
	if ae, ok := r.Header["Accept-Encoding"]; ok && r.Method != http.MethodHead && r.Header.Get("Range") == "" {
		enc = negotiateEncoding(ae, c.encodings)
	}
	cw := &compressWriter{rw: w, c: c, enc: enc, status: http.StatusOK}
	c.next.ServeHTTP(cw, r)
	_ = cw.finish() // the client is gone if this fails
}

// compressible reports whether a response of Content-Type ct may be
// compressed.
func (c *compress) compressible(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt == "application/grpc" || strings.HasPrefix(mt, "application/grpc+") {
		return false
	}
	if len(c.included) > 0 {
		return matchMediaType(c.included, mt)
	}
	return !matchMediaType(c.excluded, mt)
}

// parseMediaTypes returns the media types of content types, without
// parameters.
func parseMediaTypes(cts []string) ([]string, error) {
	out := make([]string, 0, len(cts))
	for _, ct := range cts {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", ct, err)
		}
		if !strings.Contains(mt, "/") {
			return nil, fmt.Errorf("%q is not a media type such as text/html", ct)
		}
		out = append(out, mt)
	}
	return out, nil
}

// matchMediaType reports whether mt is one of list, where "type/*" stands
// for every subtype.
func matchMediaType(list []string, mt string) bool {
	for _, m := range list {
		if m == mt || strings.HasSuffix(m, "/*") && strings.HasPrefix(mt, m[:len(m)-1]) {
			return true
		}
	}
	return false
}

// negotiateEncoding returns the encoding of offered, in order of
// preference, that the Accept-Encoding header lines values make best, or
// "" for none. Elements with a malformed q-value are ignored; when an
// encoding is listed twice, its first q-value counts.
func negotiateEncoding(values, offered []string) string {
	qs := make([]float64, len(offered))
	seen := make([]bool, len(offered))
	var star, identity float64
	var starSeen, identitySeen bool
	for _, line := range values {
		for elem := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(elem, ";")
			name = strings.TrimSpace(name)
			q, ok := qValue(params)
			if name == "" || !ok {
				continue
			}
			switch {
			case name == "*":
				if !starSeen {
					star, starSeen = q, true
				}
			case strings.EqualFold(name, "identity"):
				if !identitySeen {
					identity, identitySeen = q, true
				}
			default:
				if strings.EqualFold(name, "x-gzip") {
					name = "gzip"
				}
				for i, o := range offered {
					if !seen[i] && strings.EqualFold(name, o) {
						qs[i], seen[i] = q, true
					}
				}
			}
		}
	}
	best, bestQ := "", 0.0
	for i, o := range offered {
		q := qs[i]
		if !seen[i] && starSeen {
			q = star
		}
		if q > bestQ {
			best, bestQ = o, q
		}
	}
	if identitySeen && identity > bestQ {
		return ""
	}
	return best
}

// qValue returns the weight the parameters of an Accept-Encoding element
// give it: 1 without "q", false when q is not a number from 0 to 1.
func qValue(params string) (float64, bool) {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) > 8 {
			return 0, false
		}
		q, err := strconv.ParseFloat(v, 64)
		if err != nil || !(q >= 0 && q <= 1) {
			return 0, false
		}
		return q, true
	}
	return 1, true
}

// encoder is a pooled streaming compressor.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// encoderPools hold idle compressors by content coding. The map itself is
// never modified.
var encoderPools = map[string]*sync.Pool{
	"gzip": {New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression) // a valid level cannot fail
		return w
	}},
	"br": {New: func() any { return brotli.NewWriterLevel(nil, brotliLevel) }},
	"zstd": {New: func() any {
		// One goroutine-free encoder per response; the options are valid,
		// so NewWriter cannot fail (TestCompressEncodings checks).
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true))
		return w
	}},
}

// compressState is where a compressWriter is in its response.
type compressState int

const (
	undecided   compressState = iota // buffering until the decision
	passing                          // writing the body as is
	compressing                      // writing the body through an encoder
	hijacked                         // the handler took the connection
)

// compressWriter buffers the start of a response until it knows whether
// to compress it, then either passes it on or compresses it.
type compressWriter struct {
	rw         http.ResponseWriter
	c          *compress
	enc        string // negotiated coding; "" never compresses
	status     int
	headerSeen bool // the handler wrote a final status or body
	state      compressState
	buf        []byte
	zw         encoder
}

// Header returns the header of the wrapped writer.
func (w *compressWriter) Header() http.Header { return w.rw.Header() }

// WriteHeader records a final status; informational ones pass through.
func (w *compressWriter) WriteHeader(code int) {
	if w.state != undecided || w.headerSeen {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	w.status, w.headerSeen = code, true
	if !w.mayCompress() {
		_ = w.start(false) // nothing is buffered yet: this cannot fail
	}
}

// Write buffers p until the decision, then writes it on.
func (w *compressWriter) Write(p []byte) (int, error) {
	if !w.headerSeen && w.state == undecided {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case passing:
		return w.rw.Write(p)
	case compressing:
		return w.zw.Write(p)
	case hijacked:
		return 0, http.ErrHijacked
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.c.minSize {
		if err := w.start(true); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// FlushError decides with what is buffered, then flushes the compressor
// and the connection.
func (w *compressWriter) FlushError() error {
	if w.state == undecided {
		if !w.headerSeen {
			w.WriteHeader(http.StatusOK)
		}
		if w.state == undecided {
			if err := w.start(true); err != nil {
				return err
			}
		}
	}
	switch w.state {
	case hijacked:
		return http.ErrHijacked
	case compressing:
		if err := w.zw.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.rw).Flush()
}

// Flush implements http.Flusher.
func (w *compressWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection over; nothing more is written by w.
func (w *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.state, w.buf = hijacked, nil
	}
	return c, brw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.rw }

// mayCompress reports whether the status and header allow compression
// whatever the body.
func (w *compressWriter) mayCompress() bool {
	h := w.rw.Header()
	switch {
	case w.enc == "",
		w.status < 200, w.status == http.StatusNoContent,
		w.status == http.StatusPartialContent, w.status == http.StatusNotModified,
		h.Get("Content-Encoding") != "", h.Get("Content-Range") != "",
		headerHasToken(h, "Cache-Control", "no-transform"):
		return false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < int64(w.c.minSize) {
			return false
		}
	}
	if ct := h.Get("Content-Type"); ct != "" && !w.c.compressible(ct) {
		return false
	}
	return true
}

// start sends the header, compressing when compress is true and the
// response qualifies, and writes what was buffered.
func (w *compressWriter) start(compress bool) error {
	h := w.rw.Header()
	if compress && h.Get("Content-Type") == "" && len(w.buf) > 0 {
		// net/http would sniff the compressed bytes: sniff the plain ones.
		h.Set("Content-Type", http.DetectContentType(w.buf))
	}
	compress = compress && h.Get("Content-Type") != "" && w.mayCompress()
	if w.status >= 200 {
		addVary(h, "Accept-Encoding")
	}
	buf := w.buf
	w.buf = nil
	if !compress {
		w.state = passing
		w.rw.WriteHeader(w.status)
		if len(buf) == 0 {
			return nil
		}
		_, err := w.rw.Write(buf)
		return err
	}
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", w.enc)
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		h.Set("ETag", "W/"+etag)
	}
	w.state = compressing
	w.zw = encoderPools[w.enc].Get().(encoder)
	w.zw.Reset(w.rw)
	w.rw.WriteHeader(w.status)
	_, err := w.zw.Write(buf)
	return err
}

// finish ends the response once the handler has returned: it closes the
// compressor, or sends a response that stayed below the minimum size with
// its length.
func (w *compressWriter) finish() error {
	switch w.state {
	case passing, hijacked:
		return nil
	case compressing:
		err := w.zw.Close()
		w.zw.Reset(nil)
		encoderPools[w.enc].Put(w.zw)
		w.zw = nil
		return err
	}
	h := w.rw.Header()
	if len(w.buf) > 0 && h.Get("Content-Length") == "" && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Length", strconv.Itoa(len(w.buf)))
	}
	return w.start(false)
}
