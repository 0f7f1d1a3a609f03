package router

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// newCA makes a certificate authority named name for one test and writes
// its certificate to dir/name.pem.
func newCA(t testing.TB, dir, name string) (ca *testcert.Cert, file string) {
	t.Helper()
	ca = testcert.NewCA(t, testcert.Spec{CommonName: name})
	return ca, ca.WriteCert(t, dir, name)
}

// issue makes a certificate for names signed by ca, for a client or a
// server, and writes it and its key to dir as name.pem and name-key.pem.
func issue(t testing.TB, ca *testcert.Cert, dir, name string, usage testcert.Usage, names ...string) (certFile, keyFile string) {
	t.Helper()
	return ca.Issue(t, testcert.Spec{CommonName: name, Names: names, Usage: usage}).WriteFiles(t, dir, name)
}

// mtlsBackend is an https server that requires a client certificate
// from its client CA. It answers with the HTTP version of the request,
// and counts its connections and the health checks it answered.
type mtlsBackend struct {
	*httptest.Server
	conns, checks atomic.Int32
}

func startMTLSBackend(t *testing.T, serverCA, clientCA *testcert.Cert, names ...string) *mtlsBackend {
	t.Helper()
	pair := serverCA.Issue(t, testcert.Spec{CommonName: "backend", Names: names, Usage: testcert.Server}).TLS()
	b := &mtlsBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.checks.Add(1)
		}
		w.Header().Set("X-Proto-Major", fmt.Sprint(r.ProtoMajor))
		fmt.Fprint(w, "mtls")
	}))
	b.EnableHTTP2 = true
	b.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA.Pool(),
		NextProtos:   []string{"h2", "http/1.1"},
	}
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// transportSite routes everything on entry point web to service s, which
// reaches url through [http.serversTransports.backend], whose settings
// follow.
const transportSite = catchAll + `[http.services.s.loadBalancer]
serversTransport = "backend"
[[http.services.s.loadBalancer.servers]]
url = %q
[http.serversTransports.backend]
%s
`

// proxied sends one request through entry point web of rt and returns
// the status and the HTTP major version the backend saw.
func proxied(t *testing.T, rt *Router) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	rt.Handler("web").ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://site.test/", nil))
	return w.Code, w.Header().Get("X-Proto-Major")
}

// applyTo applies a configuration to rt and returns Apply's error.
func applyTo(t *testing.T, rt *Router, doc string) error {
	t.Helper()
	return rt.Apply(parseConfig(t, doc))
}

// TestServersTransportMTLS reaches an https backend that requires a
// client certificate through a serversTransport: with its CA and the
// client certificate it answers, over HTTP/2 unless disableHTTP2; without
// the client certificate, with the wrong CA, or without the serverName its
// certificate names (the backend's URL is an IP address), the proxy
// answers 502 and logs why.
func TestServersTransportMTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCAFile := newCA(t, dir, "server-ca")
	clientCA, _ := newCA(t, dir, "client-ca")
	_, otherCAFile := newCA(t, dir, "other-ca")
	clientCert, clientKey := issue(t, clientCA, dir, "client", testcert.Client)
	b := startMTLSBackend(t, serverCA, clientCA, "backend.test")
	certs := fmt.Sprintf("[[http.serversTransports.backend.certificates]]\ncertFile = %q\nkeyFile = %q\n", clientCert, clientKey)
	for _, tc := range []struct {
		name, settings string
		want           int
		wantProto      string
		wantLog        string
	}{
		{"rootCAs, certificate and serverName", fmt.Sprintf("serverName = \"backend.test\"\nrootCAs = [%q]\n", serverCAFile) + certs, http.StatusOK, "2", ""},
		{"disableHTTP2", fmt.Sprintf("serverName = \"backend.test\"\nrootCAs = [%q]\ndisableHTTP2 = true\n", serverCAFile) + certs, http.StatusOK, "1", ""},
		{"insecureSkipVerify", "insecureSkipVerify = true\n" + certs, http.StatusOK, "2", ""},
		{"no client certificate", fmt.Sprintf("serverName = \"backend.test\"\nrootCAs = [%q]\n", serverCAFile), http.StatusBadGateway, "", ""},
		{"wrong CA", fmt.Sprintf("serverName = \"backend.test\"\nrootCAs = [%q]\n", otherCAFile) + certs, http.StatusBadGateway, "", "certificate signed by unknown authority"},
		{"no serverName for an IP address URL", fmt.Sprintf("rootCAs = [%q]\n", serverCAFile) + certs, http.StatusBadGateway, "", "doesn't contain any IP SANs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			rt := New(Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			defer rt.Close()
			if err := applyTo(t, rt, fmt.Sprintf(transportSite, b.URL, tc.settings)); err != nil {
				t.Fatal(err)
			}
			code, proto := proxied(t, rt)
			if code != tc.want || proto != tc.wantProto {
				t.Errorf("got %d over HTTP/%s, want %d over HTTP/%s", code, proto, tc.want, tc.wantProto)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("the log does not say %q:\n%s", tc.wantLog, logs)
			}
		})
	}
}

// TestServersTransportDefault: a service that names no serversTransport
// reaches its servers through the default pools, which do not trust the
// test CA.
func TestServersTransportDefault(t *testing.T) {
	dir := t.TempDir()
	serverCA, _ := newCA(t, dir, "server-ca")
	clientCA, _ := newCA(t, dir, "client-ca")
	b := startMTLSBackend(t, serverCA, clientCA, "127.0.0.1")
	rt := New(Config{})
	defer rt.Close()
	if err := applyTo(t, rt, catchAll+fmt.Sprintf("[[http.services.s.loadBalancer.servers]]\nurl = %q\n", b.URL)); err != nil {
		t.Fatal(err)
	}
	if code, _ := proxied(t, rt); code != http.StatusBadGateway {
		t.Errorf("got %d, want 502: the default pools trust the system's CAs only", code)
	}
}

// TestServersTransportReload checks that a reload that changes neither
// the settings of a serversTransport nor its files keeps the backend
// connection, that a change of either makes a new one, and that a file
// that cannot be read fails Apply and keeps the configuration in force.
func TestServersTransportReload(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCAFile := newCA(t, dir, "server-ca")
	clientCA, _ := newCA(t, dir, "client-ca")
	clientCert, clientKey := issue(t, clientCA, dir, "client", testcert.Client)
	b := startMTLSBackend(t, serverCA, clientCA, "127.0.0.1")
	settings := fmt.Sprintf("rootCAs = [%q]\n[[http.serversTransports.backend.certificates]]\ncertFile = %q\nkeyFile = %q\n", serverCAFile, clientCert, clientKey)
	doc := fmt.Sprintf(transportSite, b.URL, settings)
	rt := New(Config{})
	defer rt.Close()
	request := func(step string) {
		t.Helper()
		if code, _ := proxied(t, rt); code != http.StatusOK {
			t.Fatalf("%s: got %d, want 200", step, code)
		}
	}
	wantConns := func(step string, want int32) {
		t.Helper()
		if got := b.conns.Load(); got != want {
			t.Errorf("%s: the backend accepted %d connections in all, want %d", step, got, want)
		}
	}
	if err := applyTo(t, rt, doc); err != nil {
		t.Fatal(err)
	}
	request("first")
	wantConns("first", 1)

	// Another router changes the configuration, not the transport.
	if err := applyTo(t, rt, doc+"[http.routers.other]\nrule = \"Host(`other.test`)\"\nservice = \"s\"\n"); err != nil {
		t.Fatal(err)
	}
	request("after a reload that keeps the transport")
	wantConns("after a reload that keeps the transport", 1)

	// A setting changes.
	doc = fmt.Sprintf(transportSite, b.URL, "maxIdleConnsPerHost = 8\n"+settings)
	if err := applyTo(t, rt, doc); err != nil {
		t.Fatal(err)
	}
	request("after a change of settings")
	wantConns("after a change of settings", 2)

	// The client certificate file is renewed in place.
	issue(t, clientCA, dir, "client", testcert.Client)
	if err := applyTo(t, rt, doc); err != nil {
		t.Fatal(err)
	}
	request("after a new client certificate")
	wantConns("after a new client certificate", 3)

	// The CA file goes away: Apply fails, and the transport in force
	// stays.
	if err := os.Remove(serverCAFile); err != nil {
		t.Fatal(err)
	}
	err := applyTo(t, rt, doc+"[http.routers.other]\nrule = \"Host(`other.test`)\"\nservice = \"s\"\n")
	if err == nil || !strings.Contains(err.Error(), "serversTransport backend") || !strings.Contains(err.Error(), serverCAFile) {
		t.Fatalf("Apply with a missing CA file: %v, want an error naming the serversTransport and the file", err)
	}
	request("after a failed Apply")
	wantConns("after a failed Apply", 3)
}

// TestServersTransportHealthCheck: the health checks of a service reach
// its servers through its serversTransport; the backend answers only
// clients with a certificate of its client CA.
func TestServersTransportHealthCheck(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCAFile := newCA(t, dir, "server-ca")
	clientCA, _ := newCA(t, dir, "client-ca")
	clientCert, clientKey := issue(t, clientCA, dir, "client", testcert.Client)
	b := startMTLSBackend(t, serverCA, clientCA, "127.0.0.1")
	settings := fmt.Sprintf("rootCAs = [%q]\n[[http.serversTransports.backend.certificates]]\ncertFile = %q\nkeyFile = %q\n", serverCAFile, clientCert, clientKey)
	doc := fmt.Sprintf(transportSite, b.URL, settings) + "[http.services.s.loadBalancer.healthCheck]\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"40ms\"\n"
	rt := New(Config{})
	defer rt.Close()
	if err := rt.Apply(parseConfig(t, doc)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.checks.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.checks.Load(); n < 2 {
		t.Fatalf("the backend answered %d health checks, want 2 or more", n)
	}
	if code, _ := proxied(t, rt); code != http.StatusOK {
		t.Errorf("got %d, want 200 from a server its health checks keep up", code)
	}
}

// TestServersTransportKeys: equal settings and files share a key, and a
// change of either changes it.
func TestServersTransportKeys(t *testing.T) {
	dir := t.TempDir()
	_, caFile := newCA(t, dir, "ca")
	st := &config.ServersTransport{RootCAs: []string{caFile}, ForwardingTimeouts: &config.ForwardingTimeouts{DialTimeout: config.Duration(time.Second)}}
	k1, err := transportKey(st)
	if err != nil {
		t.Fatal(err)
	}
	same := *st
	if k, _ := transportKey(&same); k != k1 {
		t.Error("equal settings have different keys")
	}
	other := *st
	other.ForwardingTimeouts = &config.ForwardingTimeouts{DialTimeout: config.Duration(2 * time.Second)}
	if k, _ := transportKey(&other); k == k1 {
		t.Error("a changed dialTimeout keeps the key")
	}
	newCA(t, dir, "ca") // rewrites ca.pem
	if k, _ := transportKey(st); k == k1 {
		t.Error("a changed CA file keeps the key")
	}
}

// TestServersTransportSettings checks how the settings of a
// serversTransport and their defaults are set on its pools.
func TestServersTransportSettings(t *testing.T) {
	for _, tc := range []struct {
		name               string
		st                 config.ServersTransport
		idlePerHost        int
		idle, header, ping time.Duration
		sendPing           time.Duration
		http2              bool
	}{
		{name: "defaults", idlePerHost: 256, idle: 90 * time.Second, http2: true},
		{name: "set", st: config.ServersTransport{MaxIdleConnsPerHost: -1, DisableHTTP2: true, ForwardingTimeouts: &config.ForwardingTimeouts{
			IdleConnTimeout: config.Duration(time.Minute), ResponseHeaderTimeout: config.Duration(10 * time.Second),
			ReadIdleTimeout: config.Duration(5 * time.Second), PingTimeout: config.Duration(3 * time.Second)}},
			idlePerHost: -1, idle: time.Minute, header: 10 * time.Second, sendPing: 5 * time.Second, ping: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := newTransportsFor(&tc.st, newBufferPool())
			if err != nil {
				t.Fatal(err)
			}
			defer tr.closeIdle()
			for _, h := range []*http.Transport{tr.std.(*http.Transport), tr.h2c.(*http.Transport)} {
				if h.MaxIdleConnsPerHost != tc.idlePerHost || h.IdleConnTimeout != tc.idle || h.ResponseHeaderTimeout != tc.header {
					t.Errorf("maxIdleConnsPerHost %d, idleConnTimeout %s, responseHeaderTimeout %s; want %d, %s, %s",
						h.MaxIdleConnsPerHost, h.IdleConnTimeout, h.ResponseHeaderTimeout, tc.idlePerHost, tc.idle, tc.header)
				}
				if h.HTTP2.SendPingTimeout != tc.sendPing || h.HTTP2.PingTimeout != tc.ping {
					t.Errorf("HTTP/2 pings after %s, timeout %s; want %s, %s", h.HTTP2.SendPingTimeout, h.HTTP2.PingTimeout, tc.sendPing, tc.ping)
				}
			}
			std := tr.std.(*http.Transport)
			if std.Protocols.HTTP2() != tc.http2 || !std.Protocols.HTTP1() {
				t.Errorf("https protocols %s, want HTTP/2 %v and HTTP/1", std.Protocols, tc.http2)
			}
			if !tr.h2c.(*http.Transport).Protocols.UnencryptedHTTP2() {
				t.Error("the h2c pool does not speak HTTP/2 without TLS")
			}
		})
	}
}

// TestServersTransportResponseHeaderTimeout: a server that sends no
// response headers within responseHeaderTimeout gets the request answered
// with 504.
func TestServersTransportResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	rt := New(Config{})
	defer rt.Close()
	if err := applyTo(t, rt, fmt.Sprintf(transportSite, slow.URL, "[http.serversTransports.backend.forwardingTimeouts]\nresponseHeaderTimeout = \"100ms\"\n")); err != nil {
		t.Fatal(err)
	}
	if code, _ := proxied(t, rt); code != http.StatusGatewayTimeout {
		t.Errorf("got %d, want 504", code)
	}
}

// BenchmarkNamedTransports measures what a serversTransport with a CA and
// a client certificate costs an Apply that keeps its pools: reading its
// three files and hashing them with its settings.
func BenchmarkNamedTransports(b *testing.B) {
	dir := b.TempDir()
	ca, caFile := newCA(b, dir, "ca")
	cert, key := issue(b, ca, dir, "client", testcert.Client)
	h := &config.HTTP{ServersTransports: map[string]*config.ServersTransport{"backend": {
		RootCAs: []string{caFile}, Certificates: []config.Certificate{{CertFile: cert, KeyFile: key}}}}}
	rt := New(Config{})
	defer rt.Close()
	_, pools, err := rt.namedTransports(h)
	if err != nil {
		b.Fatal(err)
	}
	rt.keepPools(pools)
	for b.Loop() {
		if _, _, err := rt.namedTransports(h); err != nil {
			b.Fatal(err)
		}
	}
}
