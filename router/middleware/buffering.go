package middleware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/retryexpr"
)

const (
	// defaultBufferMem is the part of a body kept in memory when the
	// configuration says 0, as in Traefik: 1 MiB.
	defaultBufferMem = 1 << 20
	// maxBufferingAttempts bounds the attempts at one request, whatever
	// the retry expression says.
	maxBufferingAttempts = 10
)

// errBodyTooLarge is a body above its configured maximum.
var errBodyTooLarge = errors.New("body too large")

// NewBuffering returns a handler that reads a request's whole body before
// passing the request to next, and next's whole response before sending
// it, as Traefik's Buffering middleware does.
//
// A request body above cfg.MaxRequestBodyBytes (when not 0) is answered
// 413 and not forwarded; one whose Content-Length says so is refused
// before it is read. A response body above cfg.MaxResponseBodyBytes (when
// not 0) is replaced by a 500. Up to cfg.MemRequestBodyBytes and
// cfg.MemResponseBodyBytes (1 MiB when 0) of a body are held in memory,
// the rest in a temporary file of the system's temporary directory that is
// removed when the request ends. The forwarded request and the buffered
// response carry a Content-Length; trailers of the response are sent as
// headers, since the whole response is known before it is sent. A
// response cannot switch protocols (WebSocket) through this middleware.
//
// After each attempt cfg.RetryExpression, when set, is evaluated (see
// package retryexpr): while it holds the buffered request is sent again at
// once, up to 10 attempts in all, and the attempt's response is dropped.
// IsNetworkError() is true when the service's proxy could not reach a
// server or got no answer from it (502 or 504 from tollgate, never a
// status the server sent); the proxy reports this through Retryable. A
// Retry middleware inside this one retries first; one outside it does not
// see the network errors of the requests this one forwards.
func NewBuffering(next http.Handler, cfg *config.Buffering) (http.Handler, error) {
	return newBuffering(next, cfg, "")
}

// newBuffering is NewBuffering with a directory for the temporary files,
// for tests; "" is the system's.
func newBuffering(next http.Handler, cfg *config.Buffering, dir string) (*buffering, error) {
	if cfg == nil {
		return nil, errors.New("buffering: no configuration")
	}
	for _, n := range []int64{cfg.MaxRequestBodyBytes, cfg.MemRequestBodyBytes, cfg.MaxResponseBodyBytes, cfg.MemResponseBodyBytes} {
		if n < 0 {
			return nil, fmt.Errorf("buffering: body size %d is negative", n)
		}
	}
	b := &buffering{
		next:    next,
		maxReq:  cfg.MaxRequestBodyBytes,
		memReq:  cfg.MemRequestBodyBytes,
		maxResp: cfg.MaxResponseBodyBytes,
		memResp: cfg.MemResponseBodyBytes,
		dir:     dir,
	}
	if b.memReq == 0 {
		b.memReq = defaultBufferMem
	}
	if b.memResp == 0 {
		b.memResp = defaultBufferMem
	}
	if cfg.RetryExpression != "" {
		e, err := retryexpr.Parse(cfg.RetryExpression)
		if err != nil {
			return nil, fmt.Errorf("buffering: retryExpression: %w", err)
		}
		b.retry = e
	}
	return b, nil
}

type buffering struct {
	next           http.Handler
	maxReq, memReq int64
	maxResp        int64
	memResp        int64
	retry          retryexpr.Expr // nil: no retries
	dir            string
}

// bufferingKey is the context key of an attempt's *bufferingAttempt.
type bufferingKey struct{}

// bufferingAttempt is what Retryable tells a Buffering middleware about
// one attempt.
type bufferingAttempt struct {
	networkError atomic.Bool
}

func (b *buffering) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.maxReq > 0 && r.ContentLength > b.maxReq {
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	}
	body := &spool{mem: b.memReq, max: b.maxReq, dir: b.dir}
	defer body.Close()
	if r.Body != nil && r.Body != http.NoBody {
		if _, err := io.Copy(body, r.Body); err != nil {
			answerBodyError(w, r, body, err)
			return
		}
	}
	for attempt := 1; ; attempt++ {
		st := &bufferingAttempt{}
		// A Retry middleware outside this one does not take over
		// network errors: the retry expression decides.
		ctx := context.WithValue(r.Context(), retryKey{}, (*retryState)(nil))
		ctx = context.WithValue(ctx, bufferingKey{}, st)
		bw := &bufferWriter{header: w.Header().Clone(), body: spool{mem: b.memResp, max: b.maxResp, dir: b.dir}}
		if bw.header == nil {
			bw.header = make(http.Header)
		}
		serveAttempt(b.next, bw, bufferedRequest(ctx, r, body))
		if err := r.Context().Err(); err != nil {
			bw.body.Close()
			answerContextDone(w, err)
			return
		}
		state := retryexpr.State{NetworkError: st.networkError.Load(), Attempts: attempt, ResponseCode: bw.status(), Method: r.Method}
		if !bw.tooLarge && b.retry != nil && attempt < maxBufferingAttempts && b.retry.Eval(state) {
			bw.body.Close()
			continue
		}
		bw.send(w, r)
		bw.body.Close()
		return
	}
}

// serveAttempt runs next for one attempt. A handler that gives up with
// http.ErrAbortHandler because the response became too large, as
// httputil.ReverseProxy does when a write fails, ends the attempt; any
// other panic goes on.
func serveAttempt(next http.Handler, bw *bufferWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && bw.tooLarge {
				return
			}
			panic(v)
		}
	}()
	next.ServeHTTP(bw, r)
}

// answerBodyError answers a request whose body could not be buffered:
// 413 when it was too large, 500 when the temporary file failed, 499 when
// the client went away, else 400.
func answerBodyError(w http.ResponseWriter, r *http.Request, body *spool, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTooLarge) || errors.As(err, &mbe):
		http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
	case body.err != nil:
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	case r.Context().Err() != nil:
		answerContextDone(w, r.Context().Err())
	default:
		http.Error(w, "the request body could not be read", http.StatusBadRequest)
	}
}

// bufferedRequest returns a copy of r for one attempt, with the buffered
// body.
func bufferedRequest(ctx context.Context, r *http.Request, body *spool) *http.Request {
	req := r.Clone(ctx)
	req.TransferEncoding = nil
	req.ContentLength = body.size
	if body.size == 0 {
		req.Body, req.GetBody = http.NoBody, nil
		if r.Body == nil {
			req.Body = nil
		}
		return req
	}
	req.Body = io.NopCloser(body.reader())
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body.reader()), nil }
	// The body has been read; asking the server whether to send it
	// makes no sense any more.
	req.Header.Del("Expect")
	return req
}

// bufferWriter keeps a whole response.
type bufferWriter struct {
	header   http.Header
	code     int // 0 until written
	body     spool
	tooLarge bool
}

func (bw *bufferWriter) Header() http.Header { return bw.header }

func (bw *bufferWriter) WriteHeader(code int) {
	if bw.code != 0 || code >= 100 && code < 200 {
		return // informational answers are not passed on
	}
	bw.code = code
}

func (bw *bufferWriter) Write(p []byte) (int, error) {
	if bw.code == 0 {
		bw.code = http.StatusOK
	}
	if bw.tooLarge {
		return 0, errBodyTooLarge
	}
	n, err := bw.body.Write(p)
	if errors.Is(err, errBodyTooLarge) {
		bw.tooLarge = true
	}
	return n, err
}

// Flush does nothing: the response is sent once it is complete.
func (bw *bufferWriter) Flush() {}

// status returns the status written, 200 when none was.
func (bw *bufferWriter) status() int {
	if bw.code == 0 {
		return http.StatusOK
	}
	return bw.code
}

// send writes the buffered response to w, or 500 when its body was too
// large.
func (bw *bufferWriter) send(w http.ResponseWriter, r *http.Request) {
	if bw.tooLarge || bw.body.err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	clear(h)
	maps.Copy(h, bw.header)
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			h[strings.TrimPrefix(k, http.TrailerPrefix)] = h[k]
			delete(h, k)
		}
	}
	h.Del("Trailer")
	code := bw.status()
	if r.Method != http.MethodHead && bodyAllowed(code) {
		h.Del("Transfer-Encoding")
		h.Set("Content-Length", strconv.FormatInt(bw.body.size, 10))
	}
	w.WriteHeader(code)
	_, _ = io.Copy(w, bw.body.reader())
}

// spool holds a body: up to mem bytes in memory, the rest in a temporary
// file. Writing more than max bytes (when not 0) fails with
// errBodyTooLarge. Close removes the file.
type spool struct {
	mem, max int64
	dir      string
	buf      bytes.Buffer
	file     *os.File
	size     int64
	err      error // the first error of the file
}

func (s *spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.max > 0 && s.size+int64(len(p)) > s.max {
		return 0, errBodyTooLarge
	}
	n := 0
	if room := s.mem - int64(s.buf.Len()); room > 0 {
		k := min(int64(len(p)), room)
		s.buf.Write(p[:k])
		n = int(k)
	}
	if n < len(p) {
		if s.file == nil {
			if s.file, s.err = os.CreateTemp(s.dir, "tollgate-buffer-*"); s.err != nil {
				s.err = fmt.Errorf("buffering to a temporary file: %w", s.err)
				s.size += int64(n)
				return n, s.err
			}
		}
		m, err := s.file.Write(p[n:])
		n += m
		if err != nil {
			s.err = fmt.Errorf("buffering to a temporary file: %w", err)
		}
	}
	s.size += int64(n)
	return n, s.err
}

// reader returns a new reader of the whole body.
func (s *spool) reader() io.Reader {
	mem := bytes.NewReader(s.buf.Bytes())
	if s.file == nil {
		return mem
	}
	return io.MultiReader(mem, io.NewSectionReader(s.file, 0, s.size-int64(s.buf.Len())))
}

// Close removes the temporary file, if any.
func (s *spool) Close() {
	if s.file != nil {
		_ = s.file.Close()
		_ = os.Remove(s.file.Name())
		s.file = nil
	}
}
