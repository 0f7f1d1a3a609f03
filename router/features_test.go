package router

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// TestWebSocketUpgrade upgrades a connection through the proxy and
// exchanges bytes both ways on it.
func TestWebSocketUpgrade(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		fmt.Fprintf(rw, "echo %s", line)
		rw.Flush()
	}))
	t.Cleanup(backend.Close)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.ws]
rule = "Path(`+"`/ws`"+`)"
service = "ws"
middlewares = ["hdr", "gz"]
[http.middlewares.hdr.headers]
frameDeny = true
[http.middlewares.gz.compress]
[[http.services.ws.loadBalancer.servers]]
url = %q
`, backend.URL))
	conn, err := net.Dial("tcp", r.servers.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
	}
	fmt.Fprint(conn, "hello\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo hello\n" {
		t.Fatalf("after the upgrade read %q, %v; want \"echo hello\\n\"", got, err)
	}
}

// writeCert writes a self-signed certificate for names into dir and
// returns the file paths.
func writeCert(t *testing.T, dir, file string, names ...string) (certFile, keyFile string) {
	t.Helper()
	return testcert.SelfSigned(t, testcert.Spec{Names: names, NotAfter: time.Now().Add(time.Hour)}).WriteFiles(t, dir, file)
}

// TestTLS serves HTTPS with certificate files: an exact name beats a
// wildcard, an unknown name gets the default certificate, HTTP/2 is
// negotiated, TLS 1.1 is refused, and plain-text routers do not answer
// on the TLS entry point.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	exactCert, exactKey := writeCert(t, dir, "exact", "www.example.com")
	wildCert, wildKey := writeCert(t, dir, "wild", "*.example.com")
	a := backendServer(t, "a")
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[[tls.certificates]]
certFile = %q
keyFile = %q
[[tls.certificates]]
certFile = %q
keyFile = %q
[http.routers.secure]
rule = "PathPrefix(`+"`/`"+`)"
service = "a"
[http.routers.secure.tls]
[[http.services.a.loadBalancer.servers]]
url = %q
`, exactCert, exactKey, wildCert, wildKey, a.URL))
	addr := r.servers.Addr("websecure").String()
	for _, tc := range []struct{ sni, wantCN string }{
		{"www.example.com", "www.example.com"},
		{"api.example.com", "*.example.com"},
		{"unknown.test", "TOLLGATE DEFAULT CERT"},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("%s: %v", tc.sni, err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if got := st.PeerCertificates[0].Subject.CommonName; got != tc.wantCN {
			t.Errorf("SNI %s: got certificate %q, want %q", tc.sni, got, tc.wantCN)
		}
		if st.NegotiatedProtocol != "h2" {
			t.Errorf("SNI %s: negotiated %q, want h2", tc.sni, st.NegotiatedProtocol)
		}
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "www.example.com"},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "a" {
		t.Fatalf("HTTPS request: %s %q, want HTTP/2 from a", resp.Proto, body)
	}
}

// TestStreamingAndTrailers checks that flushed chunks arrive before the
// response ends and that trailers pass.
func TestStreamingAndTrailers(t *testing.T) {
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "second\n")
		w.Header().Set("X-Checksum", "42")
	}))
	t.Cleanup(backend.Close)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.s]
rule = "PathPrefix(`+"`/`"+`)"
service = "s"
[[http.services.s.loadBalancer.servers]]
url = %q
`, backend.URL))
	resp, err := http.Get(r.url("web") + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" || resp.Trailer.Get("X-Checksum") != "42" {
		t.Fatalf("rest %q, trailer %q; want second and 42", rest, resp.Trailer.Get("X-Checksum"))
	}
}

// TestStickyAndPassive checks the sticky cookie, and that a server that
// fails is ejected by passive health checking.
func TestStickyAndPassive(t *testing.T) {
	a, b := backendServer(t, "a"), backendServer(t, "b")
	deadURL := deadServerURL(t)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.web]
address = "127.0.0.1:0"
[http.routers.sticky]
rule = "Path(`+"`/sticky`"+`)"
service = "sticky"
[http.routers.passive]
rule = "Path(`+"`/passive`"+`)"
service = "passive"
[http.services.sticky.loadBalancer.sticky.cookie]
name = "lb"
[[http.services.sticky.loadBalancer.servers]]
url = %q
[[http.services.sticky.loadBalancer.servers]]
url = %q
[http.services.passive.loadBalancer.passiveHealthCheck]
maxFailedAttempts = 1
failureWindow = "1m"
[[http.services.passive.loadBalancer.servers]]
url = %q
[[http.services.passive.loadBalancer.servers]]
url = %q
`, a.URL, b.URL, a.URL, deadURL))
	resp, first := get(t, http.DefaultClient, r.url("web")+"/sticky", "", nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "lb" {
			cookie = c
		}
	}
	if cookie == nil || strings.Contains(cookie.Value, "127.0.0.1") {
		t.Fatalf("sticky cookie %v: want one that does not reveal the address", cookie)
	}
	for range 6 {
		_, body := get(t, http.DefaultClient, r.url("web")+"/sticky", "", http.Header{"Cookie": {cookie.String()}})
		if body != first {
			t.Fatalf("with the cookie a request went to %s, want %s", body, first)
		}
	}
	codes := map[int]int{}
	for range 10 {
		resp, _ := get(t, http.DefaultClient, r.url("web")+"/passive", "", nil)
		codes[resp.StatusCode]++
	}
	if codes[http.StatusBadGateway] > 1 || codes[http.StatusOK] < 9 {
		t.Fatalf("statuses %v: the dead server should fail once, then be ejected", codes)
	}
}

// TestActiveHealthCheck takes a failing server out of rotation.
func TestActiveHealthCheck(t *testing.T) {
	a := backendServer(t, "a")
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "sick")
	}))
	t.Cleanup(sick.Close)
	r := serveConfig(t, fmt.Sprintf(catchAll+`
[http.services.s.loadBalancer.healthCheck]
path = "/health"
interval = "50ms"
timeout = "20ms"
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.s.loadBalancer.servers]]
url = %q
`, a.URL, sick.URL))
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := newAPIView(r.rt.current.Load(), "file", nil)
		st := v.render(v.services[0]).ServerDetails
		if len(st) == 2 && st[0].Healthy != st[1].Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing server was not marked unhealthy: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 6 {
		if _, body := get(t, http.DefaultClient, r.url("web")+"/", "", nil); body != "a" {
			t.Fatalf("a request went to %q after its health check failed", body)
		}
	}
}

// TestRouterTLSOptions checks that the TLS options a router names apply
// to handshakes for its host: here they require a client certificate.
func TestRouterTLSOptions(t *testing.T) {
	a := backendServer(t, "a")
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[tls.options.mtls.clientAuth]
clientAuthType = "RequireAnyClientCert"
[http.routers.open]
rule = "Host(`+"`open.example.com`"+`)"
service = "a"
[http.routers.open.tls]
[http.routers.locked]
rule = "Host(`+"`locked.example.com`"+`)"
service = "a"
[http.routers.locked.tls]
options = "mtls"
[[http.services.a.loadBalancer.servers]]
url = %q
`, a.URL))
	addr := r.servers.Addr("websecure").String()
	handshake := func(sni string) error {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Handshake()
	}
	if err := handshake("open.example.com"); err != nil {
		t.Fatalf("handshake for a router without options: %v", err)
	}
	if err := handshake("locked.example.com"); err == nil {
		t.Fatal("a handshake without a client certificate succeeded for a router whose TLS options require one")
	}
}

// TestRouterTLSOptionsPerEntryPoint checks that a router's TLS options
// apply on its own entry points only: the same host may require a client
// certificate on one entry point and not on another, whatever the order
// the routers are built in. Two routers naming different options for one
// host on one entry point are refused.
func TestRouterTLSOptionsPerEntryPoint(t *testing.T) {
	a := backendServer(t, "a")
	doc := fmt.Sprintf(`
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[entryPoints.partners]
address = "127.0.0.1:0"
[entryPoints.partners.http.tls]
[tls.options.mtls.clientAuth]
clientAuthType = "RequireAnyClientCert"
[http.routers.public]
rule = "Host(`+"`api.example.com`"+`)"
entryPoints = ["websecure"]
service = "a"
[http.routers.public.tls]
[http.routers.partners]
rule = "Host(`+"`api.example.com`"+`)"
entryPoints = ["partners"]
service = "a"
[http.routers.partners.tls]
options = "mtls"
[[http.services.a.loadBalancer.servers]]
url = %q
`, a.URL)
	r := serveConfig(t, doc)
	handshake := func(ep string) error {
		conn, err := tls.Dial("tcp", r.servers.Addr(ep).String(), &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Handshake()
	}
	for range 5 {
		if err := handshake("websecure"); err != nil {
			t.Fatalf("websecure, whose router names no options: %v", err)
		}
		if err := handshake("partners"); err == nil {
			t.Fatal("partners: a handshake without a client certificate succeeded")
		}
	}

	// Validation refuses the conflict; the router, given it without
	// validation, refuses it too.
	_, err := config.Parse("conflict.toml", []byte(strings.Replace(doc, `entryPoints = ["partners"]`, `entryPoints = ["websecure"]`, 1)))
	if err == nil || !strings.Contains(err.Error(), "routers partners and public both serve api.example.com on entry point websecure with different TLS options (\"mtls\" and the entry point's)") {
		t.Fatalf("validation of two option sets for one host on one entry point: %v", err)
	}
	conflict := parseConfig(t, doc)
	conflict.HTTP.Routers["partners"].EntryPoints = []string{"websecure"}
	rt := New(Config{})
	defer rt.Close()
	err = rt.Apply(conflict)
	if err == nil || !strings.Contains(err.Error(), "routers partners and public both serve api.example.com on entry point websecure with different TLS options (\"mtls\" and the entry point's)") {
		t.Fatalf("two option sets for one host on one entry point: %v", err)
	}
}
