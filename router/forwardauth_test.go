package router

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestForwardAuthAndErrorPagesRouted serves a router with a forwardAuth
// and an errors middleware: the wiring of both, the errors middleware's
// service among the generation's, and their view in the API.
func TestForwardAuthAndErrorPagesRouted(t *testing.T) {
	var authSeenFor atomic.Value
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authSeenFor.Store(r.Header.Get("X-Forwarded-For"))
		if r.Header.Get("Authorization") != "Bearer ok" {
			w.Header().Set("Location", "/login")
			http.Error(w, "log in", http.StatusFound)
			return
		}
		w.Header().Set("X-User", "alice")
	}))
	t.Cleanup(auth.Close)
	var appHits atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appHits.Add(1)
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("X-App-Secret", "1")
		w.WriteHeader(code)
		fmt.Fprintf(w, "app %s", r.Header.Get("X-User"))
	}))
	t.Cleanup(app.Close)
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page %s", r.URL.RequestURI())
	}))
	t.Cleanup(pages.Close)

	doc := catchAll + fmt.Sprintf(`middlewares = ["auth", "pages"]
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.errorpages.loadBalancer.servers]]
url = %q
[http.middlewares.auth.forwardAuth]
address = %q
trustForwardHeader = true
authResponseHeaders = ["X-User"]
[http.middlewares.pages.errors]
status = ["404", "500-599"]
service = "errorpages"
query = "/{status}.html?from={url}"
`, app.URL, pages.URL, auth.URL+"/verify")
	r := serveConfig(t, doc)
	client := noRedirects()

	resp, body := get(t, client, r.url("web")+"/200", "", http.Header{"X-Forwarded-For": {"6.6.6.6"}})
	if resp.StatusCode != http.StatusFound || body != "log in\n" || resp.Header.Get("Location") != auth.URL+"/login" || appHits.Load() != 0 {
		t.Errorf("without credentials: %d %q Location %q, %d app hits; want the auth server's 302 and none", resp.StatusCode, body, resp.Header.Get("Location"), appHits.Load())
	}
	// The entry point trusts no proxy: the router dropped the client's
	// X-Forwarded-For before the middleware, which trusts what is left.
	if got := authSeenFor.Load(); got != "127.0.0.1" {
		t.Errorf("the auth server saw X-Forwarded-For %q, want the client's address only", got)
	}
	ok := http.Header{"Authorization": {"Bearer ok"}}
	if resp, body := get(t, client, r.url("web")+"/200", "", ok); resp.StatusCode != 200 || body != "app alice" {
		t.Errorf("with credentials: %d %q, want 200 \"app alice\"", resp.StatusCode, body)
	}
	resp, body = get(t, client, r.url("web")+"/503?x=1", "", ok)
	if resp.StatusCode != 503 || body != "page /503.html?from=%2F503%3Fx%3D1" || resp.Header.Get("X-App-Secret") != "" {
		t.Errorf("app error: %d %q %v, want 503 with the page", resp.StatusCode, body, resp.Header)
	}

	// The API shows both, by Traefik's type names, and the page service
	// as used by the middleware.
	api := httptest.NewServer(r.rt.APIHandler(APIOptions{}))
	t.Cleanup(api.Close)
	var mws []map[string]any
	getJSON(t, api.URL+"/api/http/middlewares", &mws)
	types := map[string]string{}
	for _, m := range mws {
		types[m["name"].(string)], _ = m["type"].(string)
	}
	if types["auth@file"] != "forwardauth" || types["pages@file"] != "errors" {
		t.Errorf("middleware types %v", types)
	}
	var fa map[string]any
	getJSON(t, api.URL+"/api/http/middlewares/auth@file", &fa)
	if s, _ := fa["forwardAuth"].(map[string]any); s == nil || s["address"] != auth.URL+"/verify" || s["trustForwardHeader"] != true {
		t.Errorf("forwardAuth settings: %v", fa)
	}
	var svc map[string]any
	getJSON(t, api.URL+"/api/http/services/errorpages@file", &svc)
	if used, _ := svc["usedBy"].([]any); !slices.Equal(used, []any{"pages@file"}) {
		t.Errorf("errorpages@file usedBy %v, want the errors middleware", svc["usedBy"])
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestForwardAuthReloadKeepsClient reuses the client of unchanged TLS
// settings across a reload and retires it with the router.
func TestForwardAuthReloadKeepsClient(t *testing.T) {
	var conns atomic.Int32
	auth := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	auth.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			conns.Add(-1)
		}
	}
	auth.Start()
	t.Cleanup(auth.Close)
	app := backendServer(t, "app")
	doc := func(header string) string {
		return catchAll + fmt.Sprintf("middlewares = [\"auth\"]\n[[http.services.s.loadBalancer.servers]]\nurl = %q\n[http.middlewares.auth.forwardAuth]\naddress = %q\nauthResponseHeaders = [%q]\n", app.URL, auth.URL, header)
	}
	r := serveConfig(t, doc("X-A"))
	client := &http.Client{}
	if resp, _ := get(t, client, r.url("web")+"/", "", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := r.rt.Apply(parseConfig(t, doc("X-B"))); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, client, r.url("web")+"/", "", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections to the auth server after a reload, want the one kept idle", n)
	}
	client.CloseIdleConnections()
}

// TestErrorPagesAccessLog logs a request answered with an error page
// under the service that failed it, not the page service.
func TestErrorPagesAccessLog(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(app.Close)
	pages := backendServer(t, "page")
	cfg := parseConfig(t, catchAll+fmt.Sprintf(`middlewares = ["pages"]
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.errorpages.loadBalancer.servers]]
url = %q
[http.middlewares.pages.errors]
status = ["500"]
service = "errorpages"
`, app.URL, pages.URL))
	var logBuf testserver.Buffer
	rt := New(Config{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler("web"))
	defer srv.Close()
	if resp, body := get(t, http.DefaultClient, srv.URL+"/", "", nil); resp.StatusCode != 500 || body != "page" {
		t.Fatalf("got %d %q, want 500 with the page", resp.StatusCode, body)
	}
	var rec map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for rec == nil && time.Now().Before(deadline) {
		_ = json.Unmarshal([]byte(logBuf.String()), &rec)
		time.Sleep(10 * time.Millisecond)
	}
	if rec["service"] != "s" || rec["status"] != float64(500) {
		t.Errorf("access log service %v status %v, want s and 500", rec["service"], rec["status"])
	}
}
