package middleware

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

const (
	// maxRetryBody is the largest request body a Retry middleware keeps
	// to send again; requests with larger bodies are tried once.
	maxRetryBody = 64 << 10
	// defaultRetryInterval is the first backoff when InitialInterval is
	// zero.
	defaultRetryInterval = 100 * time.Millisecond
	// maxRetryInterval caps the doubling backoff, unless InitialInterval
	// is larger.
	maxRetryInterval = 10 * time.Second
)

// NewRetry returns a handler that sends a request to next again, up to
// cfg.Attempts tries in all, when the service's proxy could not reach a
// server before receiving any response byte — a dial error, a refused or
// reset connection. Like Traefik's, it does not retry on HTTP error
// statuses: an answer is an answer.
//
// The contract with the proxy is Retryable: when the proxy fails to reach
// a server it calls Retryable(req); true means this middleware takes the
// request over, and the proxy returns without writing anything. After a
// failed try the middleware waits — InitialInterval (100ms when zero),
// doubling after each further try, at most 10s unless InitialInterval is
// larger — and runs next again with a fresh copy of the request. It gives
// up waiting when the request's context is done, answering 504 when its
// deadline passed and recording 499 when the client went away.
//
// Only idempotent requests (RFC 9110, 9.2.2: GET, HEAD, OPTIONS, TRACE,
// PUT, DELETE) are retried, and only when their body is empty or at most
// 64 KiB: such a body is read into memory before the first try and sent
// anew with each. Requests with larger bodies, or with other methods, are
// passed to next once, untouched.
//
// Headers set by a failed try are discarded; each try starts from the
// response headers set before this middleware.
func NewRetry(next http.Handler, cfg *config.Retry) (http.Handler, error) {
	return newRetry(next, cfg, sleepCtx)
}

// newRetry is NewRetry with a way to wait, for tests.
func newRetry(next http.Handler, cfg *config.Retry, wait func(context.Context, time.Duration) error) (*retry, error) {
	if cfg == nil {
		return nil, errors.New("retry: no configuration")
	}
	if cfg.Attempts < 1 {
		return nil, fmt.Errorf("retry: attempts %d: at least 1 is required", cfg.Attempts)
	}
	if cfg.InitialInterval < 0 {
		return nil, fmt.Errorf("retry: initialInterval %v is negative", cfg.InitialInterval)
	}
	initial := cfg.InitialInterval.Std()
	if initial == 0 {
		initial = defaultRetryInterval
	}
	return &retry{next: next, attempts: cfg.Attempts, initial: initial, wait: wait}, nil
}

// Retryable is called by the service's proxy when it could not reach a
// server for r before receiving any response byte. It reports whether a
// Retry middleware takes r over: a Retry middleware handles r, this is not
// its last try, r is idempotent with an empty or buffered body, and
// nothing has been written for this try yet. When it returns true the
// caller must write nothing and return; the Retry middleware then tries
// again after its backoff. When it returns false the caller answers the
// request itself, usually with 502. Retryable is safe for concurrent use.
//
// When it returns false it records the failure for a Buffering middleware
// that forwarded r, as its retry expression's IsNetworkError().
func Retryable(r *http.Request) bool {
	if st, _ := r.Context().Value(retryKey{}).(*retryState); st != nil && st.take() {
		return true
	}
	if ba, _ := r.Context().Value(bufferingKey{}).(*bufferingAttempt); ba != nil {
		ba.networkError.Store(true)
	}
	return false
}

type retry struct {
	next     http.Handler
	attempts int
	initial  time.Duration
	wait     func(context.Context, time.Duration) error
}

// retryKey is the context key of a request's *retryState.
type retryKey struct{}

// retryState is what Retryable shares with the Retry middleware for one
// request.
type retryState struct {
	attempts  int
	attempt   atomic.Int32
	requested atomic.Bool                 // Retryable said yes during this try
	writer    atomic.Pointer[retryWriter] // the writer of this try
}

// take answers Retryable for the current try.
func (st *retryState) take() bool {
	if int(st.attempt.Load()) >= st.attempts {
		return false
	}
	if w := st.writer.Load(); w != nil && w.committed.Load() {
		return false
	}
	st.requested.Store(true)
	return true
}

func (rt *retry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.attempts < 2 || !idempotent(r.Method) {
		rt.next.ServeHTTP(w, r)
		return
	}
	body, ok := bufferBody(r)
	if !ok {
		rt.next.ServeHTTP(w, r)
		return
	}
	st := &retryState{attempts: rt.attempts}
	ctx := context.WithValue(r.Context(), retryKey{}, st)
	for attempt := 1; ; attempt++ {
		st.attempt.Store(int32(attempt))
		st.requested.Store(false)
		rw := newRetryWriter(w)
		st.writer.Store(rw)
		rt.next.ServeHTTP(rw, attemptRequest(ctx, r, body))
		if !st.requested.Load() || rw.committed.Load() || attempt >= rt.attempts {
			rw.finish()
			return
		}
		if err := rt.wait(ctx, rt.backoff(attempt)); err != nil {
			answerContextDone(w, err)
			return
		}
	}
}

// backoff returns the wait after the given failed try (1 for the first).
func (rt *retry) backoff(attempt int) time.Duration {
	limit := max(rt.initial, maxRetryInterval)
	d := rt.initial
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// answerContextDone answers a request whose context ended while it
// waited: 504 after a deadline, 499 (client gone) otherwise.
func answerContextDone(w http.ResponseWriter, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, http.StatusText(http.StatusGatewayTimeout), http.StatusGatewayTimeout)
		return
	}
	w.WriteHeader(statusClientClosedRequest)
}

// idempotent reports whether method is idempotent (RFC 9110, 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// bufferBody reads r's body into memory when it is at most maxRetryBody
// bytes long and reports whether r can be sent again; a nil slice means
// no body. When it cannot, r.Body is replaced by one that yields the same
// bytes, and error, as the original would have.
func bufferBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > maxRetryBody {
		return nil, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBody+1))
	if err != nil || len(buf) > maxRetryBody {
		rest := r.Body
		if err != nil {
			rest = io.NopCloser(errorReader{err})
		}
		r.Body = replayedBody{Reader: io.MultiReader(bytes.NewReader(buf), rest), Closer: r.Body}
		return nil, false
	}
	if len(buf) == 0 {
		return nil, true // r.Body is at its end and stays there
	}
	return buf, true
}

type replayedBody struct {
	io.Reader
	io.Closer
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// attemptRequest returns a copy of r for one try: next may change the
// request it gets (a path prefix stripped in place, say) without
// affecting the next try.
func attemptRequest(ctx context.Context, r *http.Request, body []byte) *http.Request {
	req := r.Clone(ctx)
	if body == nil {
		return req
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	// The body has been read; asking the server whether to send it
	// makes no sense any more.
	req.Header.Del("Expect")
	return req
}

// retryWriter is the ResponseWriter of one try. It keeps the try's
// headers apart until the try writes something; from then on the try is
// committed and can no longer be retried.
type retryWriter struct {
	w         http.ResponseWriter
	header    http.Header
	committed atomic.Bool
}

func newRetryWriter(w http.ResponseWriter) *retryWriter {
	h := w.Header().Clone()
	if h == nil {
		h = make(http.Header)
	}
	return &retryWriter{w: w, header: h}
}

// commit makes the try's headers the response's headers.
func (rw *retryWriter) commit() {
	if rw.committed.Swap(true) {
		return
	}
	h := rw.w.Header()
	clear(h)
	maps.Copy(h, rw.header)
}

// finish passes on the headers of a last try that wrote nothing, so that
// the server sends them with its implicit 200.
func (rw *retryWriter) finish() { rw.commit() }

func (rw *retryWriter) Header() http.Header {
	if rw.committed.Load() {
		return rw.w.Header()
	}
	return rw.header
}

func (rw *retryWriter) WriteHeader(code int) {
	rw.commit()
	rw.w.WriteHeader(code)
}

func (rw *retryWriter) Write(b []byte) (int, error) {
	rw.commit()
	return rw.w.Write(b)
}

// FlushError sends what was written so far.
func (rw *retryWriter) FlushError() error {
	rw.commit()
	return http.NewResponseController(rw.w).Flush()
}

// Flush is FlushError for http.Flusher.
func (rw *retryWriter) Flush() { _ = rw.FlushError() }

// Hijack takes over the connection; the try can no longer be retried.
func (rw *retryWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rw.commit()
	return http.NewResponseController(rw.w).Hijack()
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (rw *retryWriter) Unwrap() http.ResponseWriter { return rw.w }
