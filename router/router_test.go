package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// backendServer is an httptest server that answers with its name and
// echoes what the proxy sent it in headers.
func backendServer(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Path", r.URL.Path)
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Request-Id", r.Header.Get(RequestIDHeader))
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// catchAll starts a configuration with one entry point and one router
// sending everything to service "s", whose servers follow.
const catchAll = "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[http.routers.all]\nrule = \"PathPrefix(`/`)\"\nservice = \"s\"\n"

// deadServerURL returns the URL of a server that has just closed, where
// connections are refused.
func deadServerURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

// running is a router serving a configuration on loopback.
type running struct {
	rt      *Router
	servers *Servers
	done    chan error
}

func parseConfig(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func serveConfig(t *testing.T, doc string) *running {
	t.Helper()
	cfg := parseConfig(t, doc)
	rt := New(Config{})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{rt: rt, servers: servers, done: make(chan error, 1)}
	go func() { r.done <- servers.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		servers.Shutdown(ctx)
		<-r.done
		rt.Close()
	})
	return r
}

func (r *running) url(ep string) string { return "http://" + r.servers.Addr(ep).String() }

// get sends a request with the given Host and returns the response, its
// body read.
func get(t *testing.T, client *http.Client, url, host string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestRouting(t *testing.T) {
	a, b, c := backendServer(t, "a"), backendServer(t, "b"), backendServer(t, "c")
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.forwardedHeaders]
trustedIPs = ["192.0.2.1"]

[http.routers.site]
rule = "Host(`+"`site.example.com`"+`)"
service = "a"
[http.routers.api]
rule = "Host(`+"`site.example.com`"+`) && PathPrefix(`+"`/api`"+`)"
service = "b"
[http.routers.any]
rule = "PathPrefix(`+"`/`"+`)"
priority = 1
service = "c"
[http.routers.nohost]
rule = "Host(`+"`nohost.example.com`"+`)"
service = "rewrite"

[[http.services.a.loadBalancer.servers]]
url = %q
[[http.services.b.loadBalancer.servers]]
url = %q
[[http.services.c.loadBalancer.servers]]
url = %q
[http.services.rewrite.loadBalancer]
passHostHeader = false
[[http.services.rewrite.loadBalancer.servers]]
url = %q
`, a.URL, b.URL, c.URL, a.URL))
	client := noRedirects()
	for _, tc := range []struct {
		name, host, path string
		header           http.Header
		backend          string
		check            func(t *testing.T, resp *http.Response)
	}{
		{"exact host", "site.example.com", "/", nil, "a", nil},
		{"host is case-insensitive, port ignored", "SITE.example.com:8080", "/x", nil, "a", nil},
		{"longer rule wins", "site.example.com", "/api/v1", nil, "b", nil},
		{"fallback", "other.example.com", "/", nil, "c", nil},
		{"host passed by default", "site.example.com", "/", nil, "a", func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get("X-Seen-Host"); got != "site.example.com" {
				t.Errorf("backend saw Host %q, want site.example.com", got)
			}
		}},
		{"passHostHeader false", "nohost.example.com", "/", nil, "a", func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get("X-Seen-Host"); got == "nohost.example.com" {
				t.Errorf("backend saw the client's Host with passHostHeader = false")
			}
		}},
		{"untrusted X-Forwarded-For replaced", "site.example.com", "/", http.Header{"X-Forwarded-For": {"6.6.6.6"}}, "a", func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get("X-Seen-Forwarded-For"); got != "127.0.0.1" {
				t.Errorf("backend saw X-Forwarded-For %q, want 127.0.0.1 only", got)
			}
		}},
		{"request id generated", "site.example.com", "/", nil, "a", func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get("X-Seen-Request-Id"); len(got) != 32 {
				t.Errorf("backend saw request id %q, want 32 hex digits", got)
			}
		}},
		{"request id passed on", "site.example.com", "/", http.Header{"X-Request-Id": {"abc"}}, "a", func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get("X-Seen-Request-Id"); got != "abc" {
				t.Errorf("backend saw request id %q, want abc", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, client, r.url("web")+tc.path, tc.host, tc.header)
			if resp.StatusCode != http.StatusOK || body != tc.backend {
				t.Fatalf("got %d %q, want 200 from backend %s", resp.StatusCode, body, tc.backend)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	a, b := backendServer(t, "a"), backendServer(t, "b")
	r := serveConfig(t, fmt.Sprintf(catchAll+`
[[http.services.s.loadBalancer.servers]]
url = %q
weight = 3
[[http.services.s.loadBalancer.servers]]
url = %q
`, a.URL, b.URL))
	counts := map[string]int{}
	var order []string
	for range 8 {
		_, body := get(t, http.DefaultClient, r.url("web")+"/", "", nil)
		counts[body]++
		order = append(order, body)
	}
	if counts["a"] != 6 || counts["b"] != 2 {
		t.Fatalf("8 requests went %v, want a=6 b=2", counts)
	}
	if strings.Contains(strings.Join(order, ""), "aaaa") {
		t.Fatalf("order %v: smooth round robin interleaves", order)
	}
}

func TestBackendErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
	}))
	t.Cleanup(slow.Close)
	downURL := deadServerURL(t)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.down]
rule = "Path(`+"`/down`"+`)"
service = "down"
[http.routers.none]
rule = "Path(`+"`/none`"+`)"
service = "none"
[[http.services.down.loadBalancer.servers]]
url = %q
[[http.services.none.loadBalancer.servers]]
url = %q
weight = 0
`, downURL, downURL))
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/down", http.StatusBadGateway},
		{"/none", http.StatusServiceUnavailable},
		{"/missing", http.StatusNotFound},
	} {
		resp, _ := get(t, http.DefaultClient, r.url("web")+tc.path, "", nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestRedirectEntryPoint(t *testing.T) {
	a := backendServer(t, "a")
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.http.redirections.entryPoint]
to = "websecure"
[entryPoints.websecure]
address = "127.0.0.1:8443"
[entryPoints.websecure.http.tls]
[http.routers.a]
rule = "PathPrefix(`+"`/`"+`)"
service = "a"
entryPoints = ["web"]
[[http.services.a.loadBalancer.servers]]
url = %q
`, a.URL))
	resp, _ := get(t, noRedirects(), r.url("web")+"/path?q=1", "example.com", nil)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://example.com:8443/path?q=1" {
		t.Fatalf("got %d to %q, want 308 to https://example.com:8443/path?q=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(t, noRedirects(), r.url("web")+"/.well-known/acme-challenge/token", "example.com", nil)
	if resp.StatusCode != http.StatusOK || body != "a" {
		t.Fatalf("ACME challenge path: got %d %q, want it routed, not redirected", resp.StatusCode, body)
	}
}

// TestReloadUnderLoad swaps configurations while clients send requests
// without pause: not one request may fail.
func TestReloadUnderLoad(t *testing.T) {
	a, b := backendServer(t, "a"), backendServer(t, "b")
	doc := func(backend string) string {
		return fmt.Sprintf(catchAll+`
[[http.services.s.loadBalancer.servers]]
url = %q
`, backend)
	}
	r := serveConfig(t, doc(a.URL))
	cfgs := []*config.Config{parseConfig(t, doc(a.URL)), parseConfig(t, doc(b.URL))}
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(r.url("web") + "/")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (string(body) != "a" && string(body) != "b") {
					failed.Add(1)
				}
			}
		})
	}
	const reloads = 200
	for i := range reloads {
		if err := r.rt.Apply(cfgs[i%2]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reloads, %d requests, %d failed", reloads, total.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads", failed.Load(), total.Load())
	}
}
