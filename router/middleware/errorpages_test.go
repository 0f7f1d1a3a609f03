package middleware

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// statusBackend answers /code/NNN with status NNN, a body and headers the
// error pages must not leak; /code/103/404 sends 103 Early Hints first.
var statusBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/code/"), "/")
	if len(parts) == 2 {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		parts = parts[1:]
	}
	code, _ := strconv.Atoi(parts[0])
	w.Header().Set("X-Backend-Secret", "s3cret")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
	w.Header().Set("Set-Cookie", "backend=1")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, `{"secret":"backend body"}`)
})

// pageService answers with the request's URI in the body; /missing
// answers 404.
func pageService(hits *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasPrefix(r.URL.Path, "/missing") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Page", "1")
		w.Header().Set("Set-Cookie", "pages=1")
		fmt.Fprintf(w, "page %s %s %s %s", r.Method, r.RequestURI, r.Host, r.Header.Get("X-Client"))
	})
}

func TestErrorPages(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        config.ErrorPages
		method     string
		path       string
		status     int
		body       string
		header     map[string]string // "" means absent
		pageCalled bool
	}{
		{
			name: "single status", cfg: config.ErrorPages{Status: []string{"404"}, Query: "/{status}.html"},
			path: "/code/404", status: 404, body: "page GET /404.html front.example me", pageCalled: true,
			header: map[string]string{"Content-Type": "text/html", "X-Page": "1", "X-Backend-Secret": "", "X-Outer": "1", "Set-Cookie": "backend=1"},
		},
		{
			name: "range", cfg: config.ErrorPages{Status: []string{"404", "500-503"}, Query: "/e/{status}"},
			path: "/code/502", status: 502, body: "page GET /e/502 front.example me", pageCalled: true,
		},
		{
			name: "status outside the ranges passes untouched", cfg: config.ErrorPages{Status: []string{"404", "500-503"}},
			path: "/code/504", status: 504, body: `{"secret":"backend body"}`,
			header: map[string]string{"X-Backend-Secret": "s3cret", "Content-Type": "application/json"},
		},
		{
			name: "success passes untouched", cfg: config.ErrorPages{Status: []string{"400-599"}},
			path: "/code/200", status: 200, body: `{"secret":"backend body"}`,
		},
		{
			name: "empty query asks for /", cfg: config.ErrorPages{Status: []string{"400-599"}},
			path: "/code/401", status: 401, body: "page GET / front.example me", pageCalled: true,
			header: map[string]string{"Www-Authenticate": `Basic realm="app"`, "X-Backend-Secret": ""},
		},
		{
			name: "placeholders", cfg: config.ErrorPages{Status: []string{"418"}, Query: "/p?s={status}&o={originalStatus}&u={url}"},
			path: "/code/418?a=b&c=d%20e", status: 418, pageCalled: true,
			body: "page GET /p?s=418&o=418&u=" + url.QueryEscape("/code/418?a=b&c=d%20e") + " front.example me",
		},
		{
			name: "status rewritten, narrowest range first",
			cfg:  config.ErrorPages{Status: []string{"500-599"}, Query: "/{status}/{originalStatus}", StatusRewrites: map[string]int{"500-599": 503, "502": 500}},
			path: "/code/502", status: 500, body: "page GET /500/502 front.example me", pageCalled: true,
		},
		{
			name: "status rewritten by range",
			cfg:  config.ErrorPages{Status: []string{"500-599"}, Query: "/{status}/{originalStatus}", StatusRewrites: map[string]int{"500-599": 503, "502": 500}},
			path: "/code/504", status: 503, body: "page GET /503/504 front.example me", pageCalled: true,
		},
		{
			name: "page service without the page", cfg: config.ErrorPages{Status: []string{"500"}, Query: "/missing"},
			path: "/code/500", status: 500, body: "Internal Server Error\n", pageCalled: true,
			header: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Backend-Secret": ""},
		},
		{
			name: "HEAD", cfg: config.ErrorPages{Status: []string{"404"}, Query: "/x"}, method: "HEAD",
			path: "/code/404", status: 404, body: "", pageCalled: true,
			header: map[string]string{"Content-Length": strconv.Itoa(len("page GET /x front.example me"))},
		},
		{
			name: "after 103 Early Hints", cfg: config.ErrorPages{Status: []string{"404"}, Query: "/x"},
			path: "/code/103/404", status: 404, body: "page GET /x front.example me", pageCalled: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pageHits atomic.Int32
			cfg := tc.cfg
			cfg.Service = "pages"
			h, err := NewErrorPages(statusBackend, &cfg, pageService(&pageHits))
			if err != nil {
				t.Fatal(err)
			}
			outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Outer", "1")
				h.ServeHTTP(w, r)
			})
			front := newFrontServer(t, outer, false)
			req := frontRequest(t, cmpOr(tc.method, "GET"), front.URL+tc.path, http.Header{"X-Client": {"me"}, "If-None-Match": {`"x"`}})
			req.Host = "front.example"
			var early atomic.Int32
			req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { early.Add(1); return nil },
			}))
			resp, body := fetchResponse(t, frontClient(front), req)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			for k, v := range tc.header {
				if got := strings.Join(resp.Header.Values(k), "|"); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := pageHits.Load() > 0; got != tc.pageCalled {
				t.Errorf("page service called: %v, want %v", got, tc.pageCalled)
			}
			if strings.Contains(tc.path, "/103/") && early.Load() != 1 {
				t.Errorf("the client got %d informational answers, want 1", early.Load())
			}
		})
	}
}

// TestErrorPagesServiceDown answers with the original status and a plain
// body when the page service cannot be reached.
func TestErrorPagesServiceDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	ln.Close()
	proxy := httputil.NewSingleHostReverseProxy(down)
	proxy.ErrorLog = nil
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	h, err := NewErrorPages(statusBackend, &config.ErrorPages{Status: []string{"500-599"}, Service: "pages"}, proxy)
	if err != nil {
		t.Fatal(err)
	}
	front := newFrontServer(t, h, false)
	resp, body := fetchResponse(t, frontClient(front), frontRequest(t, "GET", front.URL+"/code/503", nil))
	if resp.StatusCode != 503 || string(body) != "Service Unavailable\n" || resp.Header.Get("X-Backend-Secret") != "" {
		t.Errorf("got %d %q %v, want 503 with its status text only", resp.StatusCode, body, resp.Header)
	}
}

// TestErrorPagesStreams passes Flush of an answer it does not replace
// through, before the handler is done.
func TestErrorPagesStreams(t *testing.T) {
	release := make(chan struct{})
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the error pages: %v", err)
		}
		<-release
		_, _ = io.WriteString(w, "second\n")
	})
	var hits atomic.Int32
	h, err := NewErrorPages(backend, &config.ErrorPages{Status: []string{"500"}, Service: "pages"}, pageService(&hits))
	if err != nil {
		t.Fatal(err)
	}
	front := newFrontServer(t, h, false)
	resp, err := frontClient(front).Get(front.URL)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("first\n"))
	_, err = io.ReadFull(resp.Body, buf)
	close(release)
	if err != nil || string(buf) != "first\n" {
		t.Fatalf("read %q, %v before the end of the answer", buf, err)
	}
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
}

// TestErrorPagesUndefinedService is refused by the constructor.
func TestErrorPagesUndefinedService(t *testing.T) {
	if _, err := NewErrorPages(statusBackend, &config.ErrorPages{Status: []string{"500"}, Service: "nope"}, nil); err == nil {
		t.Error("no error for an undefined service")
	}
	var hits atomic.Int32
	if _, err := NewErrorPages(statusBackend, &config.ErrorPages{Status: []string{"5xx"}, Service: "pages"}, pageService(&hits)); err == nil {
		t.Error("no error for a bad status")
	}
}
