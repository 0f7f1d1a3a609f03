package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestHTTPParityThroughStore publishes a configuration with storeconfig
// to a real etcd, starts a replica on the store, then publishes a second
// version that uses forwardAuth, errors, replacePath, weighted, mirroring
// and failover services and a servers transport with a client certificate:
// the running replica applies it without a restart, and each behaves as
// configured. Every new key therefore goes through the file, the store
// encoding, storeconfig and the live watcher.
func TestHTTPParityThroughStore(t *testing.T) {
	text := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/broken" {
				http.Error(w, "backend detail", http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, "%s %s user=%s", body, r.URL.Path, r.Header.Get("X-Auth-User"))
		}
	}
	appA := httptest.NewServer(text("a"))
	t.Cleanup(appA.Close)
	appB := httptest.NewServer(text("b"))
	t.Cleanup(appB.Close)
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "page for %s", r.URL.RequestURI())
	}))
	t.Cleanup(pages.Close)
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "good" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "denied by auth")
			return
		}
		w.Header().Set("X-Auth-User", "alice")
	}))
	t.Cleanup(auth.Close)
	var mirrored atomic.Int64
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrored.Add(1)
		http.Error(w, "mirror fails", http.StatusInternalServerError)
	}))
	t.Cleanup(mirror.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	ca := testcert.NewCA(t, testcert.Spec{})
	caFile := ca.WriteCert(t, t.TempDir(), "ca")
	serverPair := ca.Issue(t, testcert.Spec{CommonName: "backend", Names: []string{"backend.internal"}, Usage: testcert.Server}).TLS()
	clientCert, clientKey := ca.Issue(t, testcert.Spec{CommonName: "client", Names: []string{"tollgate.internal"}, Usage: testcert.Client}).WriteFiles(t, t.TempDir(), "client")
	mtls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "mtls %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	mtls.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	mtls.StartTLS()
	t.Cleanup(mtls.Close)

	etcd := testserver.Etcd(t)
	endpoint := "etcd://" + etcd.Addr
	port := testserver.FreePort(t)
	web := fmt.Sprintf("127.0.0.1:%d", port)
	route := func(name, rule, service string, middlewares ...string) string {
		mw := ""
		if len(middlewares) > 0 {
			mw = fmt.Sprintf("middlewares = [%q]\n", strings.Join(middlewares, `", "`))
		}
		return fmt.Sprintf("[http.routers.%s]\nrule = %q\nservice = %q\n%s", name, rule, service, mw)
	}
	lb := func(name, url string) string {
		return fmt.Sprintf("[[http.services.%s.loadBalancer.servers]]\nurl = %q\n", name, url)
	}
	base := fmt.Sprintf("[store]\nendpoint = %q\n[entryPoints.web]\naddress = %q\n", endpoint, web) +
		route("all", "PathPrefix(`/`)", "a") + lb("a", appA.URL) + lb("b", appB.URL)
	v1 := writeFile(t, "v1.toml", base)
	if code, _, stderr := tollgate(t, "storeconfig", "--config", v1); code != exitOK {
		t.Fatalf("storeconfig v1: exit %d:\n%s", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	log := &testserver.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--kv", endpoint}, io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve stopped with exit %d:\n%s", code, log.String())
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, header ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+web+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	waitFor := func(what, path, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			code, body, _ := get(path)
			if code == http.StatusOK && strings.Contains(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET %s = %d %q, want 200 with %q; log:\n%s", what, path, code, body, want, log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("v1", "/x", "a /x")

	v2 := base +
		route("auth", "PathPrefix(`/auth`)", "a", "auth") +
		"[http.middlewares.auth.forwardAuth]\n" + fmt.Sprintf("address = %q\n", auth.URL) + "authResponseHeaders = [\"X-Auth-User\"]\n" +
		route("pages", "PathPrefix(`/broken`)", "a", "pages") +
		"[http.middlewares.pages.errors]\nstatus = [\"500-599\"]\nservice = \"pages\"\nquery = \"/{status}.html\"\n" + lb("pages", pages.URL) +
		route("replace", "PathPrefix(`/old`)", "a", "replace") +
		"[http.middlewares.replace.replacePath]\npath = \"/new\"\n" +
		route("canary", "PathPrefix(`/canary`)", "canary") +
		"[http.services.canary.weighted]\n[[http.services.canary.weighted.services]]\nname = \"a\"\nweight = 1\n[[http.services.canary.weighted.services]]\nname = \"b\"\nweight = 1\n" +
		route("shadow", "PathPrefix(`/shadow`)", "shadow") +
		"[http.services.shadow.mirroring]\nservice = \"a\"\n[[http.services.shadow.mirroring.mirrors]]\nname = \"mirror\"\npercent = 100\n" + lb("mirror", mirror.URL) +
		route("failover", "PathPrefix(`/failover`)", "failover") +
		"[http.services.failover.failover]\nservice = \"dead\"\nfallback = \"b\"\n" + lb("dead", deadURL) +
		"[http.services.dead.loadBalancer.passiveHealthCheck]\n" +
		route("mtls", "PathPrefix(`/mtls`)", "mtls") +
		lb("mtls", mtls.URL) + "[http.services.mtls.loadBalancer]\nserversTransport = \"internal\"\n" +
		fmt.Sprintf("[http.serversTransports.internal]\nserverName = \"backend.internal\"\nrootCAs = [%q]\n[[http.serversTransports.internal.certificates]]\ncertFile = %q\nkeyFile = %q\n",
			caFile, clientCert, clientKey)
	v2File := writeFile(t, "v2.toml", v2)
	if code, stdout, stderr := tollgate(t, "check", v2File); code != exitOK {
		t.Fatalf("check v2: exit %d:\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := tollgate(t, "storeconfig", "--config", v2File); code != exitOK {
		t.Fatalf("storeconfig v2: exit %d:\n%s", code, stderr)
	}
	// Under v1 every path reaches a: wait for an answer only v2 gives.
	waitFor("v2", "/old/x", "a /new")

	if code, body, h := get("/auth"); code != http.StatusUnauthorized || body != "denied by auth" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("forwardAuth without a token: %d %q %v, want the auth server's 401, body and WWW-Authenticate", code, body, h)
	}
	if code, body, _ := get("/auth", "X-Token", "good"); code != http.StatusOK || body != "a /auth user=alice" {
		t.Errorf("forwardAuth with a token: %d %q, want 200 with the user copied", code, body)
	}
	if code, body, _ := get("/broken"); code != http.StatusBadGateway || body != "page for /502.html" {
		t.Errorf("errors: %d %q, want 502 with the page", code, body)
	}
	if code, body, h := get("/old/x"); code != http.StatusOK || body != "a /new user=" {
		t.Errorf("replacePath: %d %q %v, want the backend to see /new", code, body, h)
	}
	seen := map[string]int{}
	for range 100 {
		_, body, _ := get("/canary")
		seen[strings.Fields(body + " ?")[0]]++
	}
	if seen["a"] != 50 || seen["b"] != 50 {
		t.Errorf("weighted 1:1 over 100 requests: %v, want 50 each", seen)
	}
	before := mirrored.Load()
	for range 10 {
		if code, body, _ := get("/shadow"); code != http.StatusOK || body != "a /shadow user=" {
			t.Fatalf("mirroring: %d %q, want the main service's answer", code, body)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); mirrored.Load()-before < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := mirrored.Load() - before; n != 10 {
		t.Errorf("the mirror got %d copies of 10 requests at 100%%", n)
	}
	waitFor("failover", "/failover", "b /failover")
	if code, body, _ := get("/mtls"); code != http.StatusOK || body != "mtls client" {
		t.Errorf("backend mTLS: %d %q, want the backend to see the client certificate", code, body)
	}
}
