package middleware

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// tempFiles returns the number of files in dir.
func tempFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestBufferingBodies sends requests through a Buffering middleware to a
// real server that reports the body it got and answers with a body of
// the size it is asked for, and checks the limits and that temporary
// files exist while a large body is held and are gone afterwards.
func TestBufferingBodies(t *testing.T) {
	tests := []struct {
		name       string
		cfg        config.Buffering
		body       string
		chunked    bool // send the body without a Content-Length
		respSize   int
		want       int
		wantCalled bool
		wantFiles  int // temporary files while the server answers
	}{
		{name: "small bodies in memory", cfg: config.Buffering{MaxRequestBodyBytes: 10, MaxResponseBodyBytes: 10}, body: "0123456789", respSize: 10, want: 200, wantCalled: true},
		{name: "request too large by Content-Length", cfg: config.Buffering{MaxRequestBodyBytes: 9}, body: "0123456789", want: 413},
		{name: "request too large, chunked", cfg: config.Buffering{MaxRequestBodyBytes: 9}, body: "0123456789", chunked: true, want: 413},
		{name: "no limit by default", body: strings.Repeat("x", 100000), respSize: 100000, want: 200, wantCalled: true},
		{name: "request body partly in a file", cfg: config.Buffering{MemRequestBodyBytes: 4}, body: strings.Repeat("y", 5000), chunked: true, respSize: 1, want: 200, wantCalled: true, wantFiles: 1},
		{name: "response too large", cfg: config.Buffering{MaxResponseBodyBytes: 99}, respSize: 100, want: 500, wantCalled: true},
		{name: "response too large, in a file", cfg: config.Buffering{MaxResponseBodyBytes: 5000, MemResponseBodyBytes: 10}, respSize: 100000, want: 500, wantCalled: true},
		{name: "response body partly in a file", cfg: config.Buffering{MemResponseBodyBytes: 10}, respSize: 100000, want: 200, wantCalled: true},
		{name: "no body", want: 200, wantCalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var called atomic.Bool
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called.Store(true)
				body, _ := io.ReadAll(r.Body)
				if string(body) != tt.body || r.ContentLength != int64(len(tt.body)) {
					t.Errorf("server got %d bytes with Content-Length %d, want the %d sent", len(body), r.ContentLength, len(tt.body))
				}
				if n := tempFiles(t, dir); n != tt.wantFiles {
					t.Errorf("%d temporary files while the server answers, want %d", n, tt.wantFiles)
				}
				n, _ := strconv.Atoi(r.URL.Query().Get("size"))
				w.Header()["Content-Type"] = nil
				for range n / 1000 {
					fmt.Fprint(w, strings.Repeat("r", 1000))
					w.(http.Flusher).Flush() // no Content-Length from the server
				}
				fmt.Fprint(w, strings.Repeat("r", n%1000))
			}))
			t.Cleanup(backend.Close)
			h, err := newBuffering(newRetryProxy(t, backend), &tt.cfg, dir)
			if err != nil {
				t.Fatal(err)
			}
			ts := newFrontServer(t, h, false)
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req, err := http.NewRequest("POST", ts.URL+"/?size="+strconv.Itoa(tt.respSize), body)
			if err != nil {
				t.Fatal(err)
			}
			resp, got := fetchResponse(t, frontClient(ts), req)
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.want)
			}
			if called.Load() != tt.wantCalled {
				t.Errorf("server called: %v, want %v", called.Load(), tt.wantCalled)
			}
			if tt.want == 200 {
				if len(got) != tt.respSize || resp.ContentLength != int64(tt.respSize) {
					t.Errorf("got %d response bytes with Content-Length %d, want %d", len(got), resp.ContentLength, tt.respSize)
				}
			}
			if n := tempFiles(t, dir); n != 0 {
				t.Errorf("%d temporary files left after the request, want 0", n)
			}
		})
	}
}

// lateBackend is a server on a port where connections are refused until
// start is called.
type lateBackend struct {
	addr    string
	started atomic.Bool
	ts      *httptest.Server
}

func newLateBackend(t *testing.T, h http.Handler) *lateBackend {
	b := &lateBackend{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t)))}
	b.ts = httptest.NewUnstartedServer(h)
	t.Cleanup(func() {
		if b.started.Load() {
			b.ts.Close()
		}
	})
	return b
}

func (b *lateBackend) start(t *testing.T) {
	if b.started.Swap(true) {
		return
	}
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Errorf("listen on %s: %v", b.addr, err)
		return
	}
	b.ts.Listener = l
	b.ts.Start()
}

// TestBufferingRetry sends requests through a Buffering middleware and a
// proxy to a server that refuses connections until the given attempt,
// then answers.
func TestBufferingRetry(t *testing.T) {
	tests := []struct {
		name         string
		expr         string
		startAt      int64 // the attempt before which the server starts; 0 never
		status       int   // the server's answer
		want         int
		wantAttempts int64
	}{
		{name: "no expression, no retry", startAt: 2, want: 502, wantAttempts: 1},
		{name: "refused then accepted", expr: "IsNetworkError() && Attempts() < 3", startAt: 2, want: 200, wantAttempts: 2},
		{name: "gives up when the expression says so", expr: "IsNetworkError() && Attempts() < 3", startAt: 4, want: 502, wantAttempts: 3},
		{name: "no retry of an answer", expr: "IsNetworkError() && Attempts() < 3", startAt: 1, status: 503, want: 503, wantAttempts: 1},
		{name: "retry on a status", expr: "ResponseCode() == 503 && Attempts() < 2", startAt: 1, status: 503, want: 503, wantAttempts: 2},
		{name: "method", expr: `RequestMethod() == "PUT" && IsNetworkError()`, startAt: 2, want: 502, wantAttempts: 1},
		{name: "at most 10 attempts", expr: "IsNetworkError()", want: 502, wantAttempts: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			backend := newLateBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if string(body) != "payload" {
					t.Errorf("server got body %q, want payload", body)
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				fmt.Fprint(w, "answered")
			}))
			u := &url.URL{Scheme: "http", Host: backend.addr}
			tr := &http.Transport{DisableKeepAlives: true}
			t.Cleanup(tr.CloseIdleConnections)
			proxy := &httputil.ReverseProxy{
				Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
				Transport: tr,
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, _ error) {
					if r.Context().Err() != nil || Retryable(r) {
						return
					}
					http.Error(w, http.StatusText(http.StatusBadGateway), http.StatusBadGateway)
				},
			}
			counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n := calls.Add(1); n == tt.startAt {
					backend.start(t)
				}
				proxy.ServeHTTP(w, r)
			})
			h, err := NewBuffering(counting, &config.Buffering{RetryExpression: tt.expr})
			if err != nil {
				t.Fatal(err)
			}
			ts := newFrontServer(t, h, false)
			req, err := http.NewRequest("POST", ts.URL+"/", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := fetchResponse(t, frontClient(ts), req)
			if resp.StatusCode != tt.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.want)
			}
			if got := calls.Load(); got != tt.wantAttempts {
				t.Errorf("got %d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}

// TestBufferingInsideRetry checks that a Retry middleware inside a
// Buffering one retries a refused connection first.
func TestBufferingAroundRetry(t *testing.T) {
	backend := &flakyBackend{fails: 1}
	ts := httptest.NewServer(backend)
	t.Cleanup(ts.Close)
	retry, err := NewRetry(newRetryProxy(t, ts), &config.Retry{Attempts: 2, InitialInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewBuffering(retry, &config.Buffering{RetryExpression: "IsNetworkError() && Attempts() < 5"})
	if err != nil {
		t.Fatal(err)
	}
	front := newFrontServer(t, h, false)
	resp, body := fetchResponse(t, frontClient(front), frontRequest(t, "GET", front.URL+"/x", nil))
	if resp.StatusCode != 200 || string(body) != "GET /x body=" {
		t.Errorf("got %d %q, want 200 \"GET /x body=\"", resp.StatusCode, body)
	}
	if got := backend.calls.Load(); got != 2 {
		t.Errorf("server called %d times, want 2", got)
	}
}

func TestBufferingConfig(t *testing.T) {
	for _, cfg := range []*config.Buffering{nil, {MaxRequestBodyBytes: -1}, {MemResponseBodyBytes: -1}, {RetryExpression: "Attempts()"}} {
		if _, err := NewBuffering(echoSeen, cfg); err == nil {
			t.Errorf("NewBuffering(%+v): got no error, want one", cfg)
		}
	}
}
