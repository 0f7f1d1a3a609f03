package middleware

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// flakyBackend is a real server that drops the connection of its first
// fails requests without answering, then answers status (200 when zero)
// with "METHOD PATH body=BODY".
type flakyBackend struct {
	fails  int64
	status int
	calls  atomic.Int64
}

func (b *flakyBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if b.calls.Add(1) <= b.fails {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if b.status != 0 {
		w.WriteHeader(b.status)
	}
	fmt.Fprintf(w, "%s %s body=%s", r.Method, r.URL.Path, body)
}

// newRetryProxy returns a reverse proxy to backend that keeps the
// router's side of the contract: when the server cannot be reached it
// asks Retryable and writes nothing on true, 502 on false.
func newRetryProxy(t *testing.T, backend *httptest.Server) http.Handler {
	t.Helper()
	u, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true} // no reused connections, so no retries of its own
	t.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// As the router does: end the body at its declared length, so
			// that the transport's check read past it cannot meet a body
			// the server closed once the answer began (it cut answers).
			if out := pr.Out; out.ContentLength > 0 && out.Body != nil && out.Body != http.NoBody {
				out.Body = struct {
					io.Reader
					io.Closer
				}{io.LimitReader(out.Body, out.ContentLength), out.Body}
			}
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, _ error) {
			if r.Context().Err() != nil || Retryable(r) {
				return
			}
			http.Error(w, http.StatusText(http.StatusBadGateway), http.StatusBadGateway)
		},
	}
}

func TestRetry(t *testing.T) {
	big := strings.Repeat("b", maxRetryBody+1)
	limit := strings.Repeat("l", maxRetryBody)
	tests := []struct {
		name      string
		method    string
		body      string
		chunked   bool
		cfg       config.Retry
		fails     int64
		status    int
		want      int
		wantBody  string
		wantCalls int64
		wantWaits string
	}{
		{name: "GET succeeds on the third try", method: "GET", cfg: config.Retry{Attempts: 3}, fails: 2, want: 200, wantBody: "GET /x body=", wantCalls: 3, wantWaits: "[100ms 200ms]"},
		{name: "GET fails every try", method: "GET", cfg: config.Retry{Attempts: 3}, fails: 5, want: 502, wantCalls: 3, wantWaits: "[100ms 200ms]"},
		{name: "one attempt", method: "GET", cfg: config.Retry{Attempts: 1}, fails: 1, want: 502, wantCalls: 1, wantWaits: "[]"},
		{name: "no failure", method: "HEAD", cfg: config.Retry{Attempts: 3}, want: 200, wantCalls: 1, wantWaits: "[]"},
		{name: "POST is not retried", method: "POST", body: "x", cfg: config.Retry{Attempts: 3}, fails: 1, want: 502, wantCalls: 1, wantWaits: "[]"},
		{name: "PATCH is not retried", method: "PATCH", cfg: config.Retry{Attempts: 3}, fails: 1, want: 502, wantCalls: 1, wantWaits: "[]"},
		{name: "PUT body sent again", method: "PUT", body: "hello", cfg: config.Retry{Attempts: 2}, fails: 1, want: 200, wantBody: "PUT /x body=hello", wantCalls: 2, wantWaits: "[100ms]"},
		{name: "chunked body sent again", method: "PUT", body: "hello", chunked: true, cfg: config.Retry{Attempts: 2}, fails: 1, want: 200, wantBody: "PUT /x body=hello", wantCalls: 2, wantWaits: "[100ms]"},
		{name: "body at the limit sent again", method: "PUT", body: limit, cfg: config.Retry{Attempts: 2}, fails: 1, want: 200, wantBody: "PUT /x body=" + limit, wantCalls: 2, wantWaits: "[100ms]"},
		{name: "larger body not retried", method: "PUT", body: big, cfg: config.Retry{Attempts: 3}, fails: 1, want: 502, wantCalls: 1, wantWaits: "[]"},
		{name: "larger chunked body not retried", method: "PUT", body: big, chunked: true, cfg: config.Retry{Attempts: 3}, fails: 1, want: 502, wantCalls: 1, wantWaits: "[]"},
		{name: "larger body passed whole", method: "PUT", body: big, cfg: config.Retry{Attempts: 3}, want: 200, wantBody: "PUT /x body=" + big, wantCalls: 1, wantWaits: "[]"},
		{name: "larger chunked body passed whole", method: "PUT", body: big, chunked: true, cfg: config.Retry{Attempts: 3}, want: 200, wantBody: "PUT /x body=" + big, wantCalls: 1, wantWaits: "[]"},
		{name: "DELETE retried", method: "DELETE", cfg: config.Retry{Attempts: 2}, fails: 1, want: 200, wantBody: "DELETE /x body=", wantCalls: 2, wantWaits: "[100ms]"},
		{name: "HTTP errors are answers", method: "GET", cfg: config.Retry{Attempts: 3}, status: 500, want: 500, wantBody: "GET /x body=", wantCalls: 1, wantWaits: "[]"},
		{
			name: "backoff doubles", method: "GET", cfg: config.Retry{Attempts: 4, InitialInterval: config.Duration(time.Second)},
			fails: 3, want: 200, wantBody: "GET /x body=", wantCalls: 4, wantWaits: "[1s 2s 4s]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := &flakyBackend{fails: tt.fails, status: tt.status}
			waits := &mwWaits{}
			h, err := newRetry(newRetryProxy(t, newMWServer(t, backend)), &tt.cfg, waits.wait)
			if err != nil {
				t.Fatal(err)
			}
			front := newMWServer(t, h)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, _ := http.NewRequest(tt.method, front.URL+"/x", body)
			resp, got := mwDo(t, req)
			if resp.StatusCode != tt.want {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.wantBody != "" && tt.method != "HEAD" && got != tt.wantBody {
				t.Errorf("got body %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), tt.wantBody, len(tt.wantBody))
			}
			if n := backend.calls.Load(); n != tt.wantCalls {
				t.Errorf("got %d tries at the backend, want %d", n, tt.wantCalls)
			}
			if got := fmt.Sprint(waits.list()); got != tt.wantWaits {
				t.Errorf("got waits %s, want %s", got, tt.wantWaits)
			}
		})
	}
}

// TestRetryFreshTries checks that each try starts from the request and
// the response headers as they were before the first.
func TestRetryFreshTries(t *testing.T) {
	backend := &flakyBackend{fails: 2}
	proxy := newRetryProxy(t, newMWServer(t, backend))
	var tries atomic.Int64
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tries.Add(1)
		w.Header().Add("X-Try", fmt.Sprint(n))
		if got := w.Header().Get("X-Outer"); got != "set before" {
			t.Errorf("try %d: got X-Outer %q, want %q", n, got, "set before")
		}
		r.URL.Path = "/prefix" + r.URL.Path // changed in place, as some middlewares do
		proxy.ServeHTTP(w, r)
	})
	rt, err := newRetry(inner, &config.Retry{Attempts: 3}, (&mwWaits{}).wait)
	if err != nil {
		t.Fatal(err)
	}
	front := newMWServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Outer", "set before")
		rt.ServeHTTP(w, r)
	}))
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/x", nil)
	resp, body := mwDo(t, req)
	if body != "GET /prefix/x body=" {
		t.Errorf("got body %q, want %q", body, "GET /prefix/x body=")
	}
	if got := resp.Header.Values("X-Try"); fmt.Sprint(got) != "[3]" {
		t.Errorf("got X-Try %v, want [3]: headers of failed tries are dropped", got)
	}
	if got := resp.Header.Get("X-Outer"); got != "set before" {
		t.Errorf("got X-Outer %q, want %q", got, "set before")
	}
}

// TestRetryable checks the contract from the proxy's side.
func TestRetryable(t *testing.T) {
	if Retryable(httptest.NewRequest(http.MethodGet, "/", nil)) {
		t.Error("got true without a Retry middleware, want false")
	}
	tests := []struct {
		name       string
		attempts   int
		writeFirst bool
		want       string
		wantCode   int
	}{
		{name: "until the last try", attempts: 3, want: "[true true false]", wantCode: 502},
		{name: "single try", attempts: 1, want: "[false]", wantCode: 502},
		{name: "not after writing", attempts: 3, writeFirst: true, want: "[false]", wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []bool
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.writeFirst {
					_, _ = io.WriteString(w, "partial")
				}
				ok := Retryable(r)
				got = append(got, ok)
				if !ok && !tt.writeFirst {
					w.WriteHeader(http.StatusBadGateway)
				}
			})
			h, err := newRetry(inner, &config.Retry{Attempts: tt.attempts}, (&mwWaits{}).wait)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if fmt.Sprint(got) != tt.want {
				t.Errorf("got Retryable %v, want %s", got, tt.want)
			}
			if rec.Code != tt.wantCode {
				t.Errorf("got status %d, want %d", rec.Code, tt.wantCode)
			}
		})
	}
}

// TestRetryContextDone checks what a request whose context ends during
// the backoff is answered, with real timers.
func TestRetryContextDone(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want int
	}{
		{name: "deadline", ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, want: http.StatusGatewayTimeout},
		{name: "client gone", ctx: func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, want: statusClientClosedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			calls := 0
			inner := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				calls++
				if !Retryable(r) {
					t.Error("got Retryable false, want true")
				}
				if tt.want == statusClientClosedRequest {
					cancel()
				}
			})
			h, err := NewRetry(inner, &config.Retry{Attempts: 5, InitialInterval: config.Duration(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
			if rec.Code != tt.want {
				t.Errorf("got status %d, want %d", rec.Code, tt.want)
			}
			if calls != 1 {
				t.Errorf("got %d tries, want 1", calls)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v, want the wait cut short", d)
			}
		})
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		initial time.Duration
		attempt int
		want    time.Duration
	}{
		{100 * time.Millisecond, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, 4, 800 * time.Millisecond},
		{100 * time.Millisecond, 8, 10 * time.Second},
		{100 * time.Millisecond, 1000, 10 * time.Second},
		{20 * time.Second, 3, 20 * time.Second},
	}
	for _, tt := range tests {
		rt := &retry{initial: tt.initial}
		if got := rt.backoff(tt.attempt); got != tt.want {
			t.Errorf("backoff(%d) from %v: got %v, want %v", tt.attempt, tt.initial, got, tt.want)
		}
	}
}

func TestNewRetryErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Retry
		want string
	}{
		{name: "nil", want: "no configuration"},
		{name: "no attempts", cfg: &config.Retry{}, want: "at least 1"},
		{name: "negative interval", cfg: &config.Retry{Attempts: 2, InitialInterval: -1}, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRetry(&mwNext{}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestWrappersKeepInterfaces checks that streaming and hijacking work
// through the response writers of Retry and CircuitBreaker.
func TestWrappersKeepInterfaces(t *testing.T) {
	wrappers := map[string]func(http.Handler) (http.Handler, error){
		"retry": func(h http.Handler) (http.Handler, error) {
			return NewRetry(h, &config.Retry{Attempts: 3})
		},
		"circuit breaker": func(h http.Handler) (http.Handler, error) {
			return NewCircuitBreaker(h, &config.CircuitBreaker{Expression: "NetworkErrorRatio() > 0.5"})
		},
	}
	for name, wrap := range wrappers {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, isFlusher := w.(http.Flusher)
				_, isHijacker := w.(http.Hijacker)
				_, unwraps := w.(interface{ Unwrap() http.ResponseWriter })
				if !isFlusher || !isHijacker || !unwraps {
					t.Errorf("got Flusher %v, Hijacker %v, Unwrap %v, want all", isFlusher, isHijacker, unwraps)
				}
				rc := http.NewResponseController(w)
				if r.URL.Path == "/hijack" {
					conn, brw, err := rc.Hijack()
					if err != nil {
						t.Errorf("hijack: %v", err)
						return
					}
					defer conn.Close()
					_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
					_ = brw.Flush()
					return
				}
				if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
					t.Errorf("set write deadline: %v", err)
				}
				_, _ = io.WriteString(w, "first\n")
				if err := rc.Flush(); err != nil {
					t.Errorf("flush: %v", err)
				}
				<-release // the client must have read "first" to get here
				_, _ = io.WriteString(w, "second\n")
			})
			h, err := wrap(inner)
			if err != nil {
				t.Fatal(err)
			}
			front := newMWServer(t, h)
			resp, err := http.Get(front.URL + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); line != "first\n" {
				t.Fatalf("got %q (%v) before the handler finished, want %q", line, err, "first\n")
			}
			close(release)
			if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
				t.Errorf("got %q, want %q", rest, "second\n")
			}
			hreq, _ := http.NewRequest(http.MethodGet, front.URL+"/hijack", nil)
			hresp, body := mwDo(t, hreq)
			if hresp.StatusCode != 200 || body != "hijacked" {
				t.Errorf("got %d %q, want 200 %q", hresp.StatusCode, body, "hijacked")
			}
		})
	}
}
