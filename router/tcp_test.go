package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// tcpServer is a TCP backend for tests: handle serves each connection,
// which is closed when it returns. Cleanup closes the listener and the
// connections still open, and waits for the handlers.
type tcpServer struct {
	addr string
	mu   sync.Mutex
	open map[net.Conn]bool
	wg   sync.WaitGroup
}

func startTCPServer(t *testing.T, cert *tls.Certificate, handle func(net.Conn)) *tcpServer {
	t.Helper()
	var tc *tls.Config
	if cert != nil {
		tc = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	return startTCPServerTLS(t, tc, handle)
}

// startTCPServerTLS is startTCPServer speaking TLS with tc, when not nil.
func startTCPServerTLS(t *testing.T, tc *tls.Config, handle func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{addr: ln.Addr().String(), open: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc != nil {
				c = tls.Server(c, tc)
			}
			s.mu.Lock()
			s.open[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.open, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// echoAs answers each line with "name:line".
func echoAs(name string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(c, "%s:%s", name, line); err != nil {
				return
			}
		}
	}
}

// certFor makes a self-signed certificate named cn for names.
func certFor(t *testing.T, cn string, names ...string) *tls.Certificate {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{CommonName: cn, Names: names, Usage: testcert.Server}).TLS()
	return &c
}

// ask sends line on c and returns the answer's line.
func ask(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("answer to %q: %v (got %q)", line, err, got)
	}
	return strings.TrimSuffix(got, "\n")
}

// tlsDial connects to addr with TLS for sni, offering alpn, and returns
// the connection and the common name of the certificate served.
func tlsDial(t *testing.T, addr, sni string, alpn ...string) (*tls.Conn, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		t.Fatalf("TLS to %s for %q: %v", addr, sni, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// serveWith serves doc like serveConfig, with the ServersConfig changed by
// mod first.
func serveWith(t *testing.T, doc string, mod func(*ServersConfig)) *running {
	t.Helper()
	cfg := parseConfig(t, doc)
	var m *Metrics
	sc := ServersConfig{Config: cfg}
	if mod != nil {
		mod(&sc)
		m = sc.Metrics
	}
	rt := New(Config{Metrics: m})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	sc.Router = rt
	servers, err := Listen(sc)
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

const tlsEntryPoint = "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.http.tls]\n"

// TestTCPPassthroughAndHTTP: TLS passed through by server name (exact,
// one-label wildcard, with ALPN) reaches each backend, whose own
// certificate the client sees, while HTTP/1.1 and HTTP/2 are still served
// on the same entry point for the names no TCP router takes. A catch-all
// HostSNI(`*`) on another entry point takes TLS with any name or none.
func TestTCPPassthroughAndHTTP(t *testing.T) {
	a := startTCPServer(t, certFor(t, "a", "a.example.com"), echoAs("a"))
	b := startTCPServer(t, certFor(t, "b", "x.b.example.com"), echoAs("b"))
	p := startTCPServer(t, certFor(t, "p", "alpn.example.com"), echoAs("p"))
	c := startTCPServer(t, certFor(t, "c", "other.example.com"), echoAs("c"))
	web := backendServer(t, "http")
	r := serveConfig(t, tlsEntryPoint+fmt.Sprintf(`
[entryPoints.all]
address = "127.0.0.1:0"
[http.routers.www]
rule = "Host(`+"`www.example.com`"+`)"
service = "web"
[http.routers.www.tls]
[[http.services.web.loadBalancer.servers]]
url = %q
[tcp.routers.a]
rule = "HostSNI(`+"`A.example.com`"+`)"
service = "a"
entryPoints = ["web"]
[tcp.routers.a.tls]
passthrough = true
[tcp.routers.b]
rule = "HostSNI(`+"`*.b.example.com`"+`)"
service = "b"
entryPoints = ["web"]
[tcp.routers.b.tls]
passthrough = true
[tcp.routers.p]
rule = "HostSNI(`+"`alpn.example.com`"+`) && ALPN(`+"`x-test`"+`)"
service = "p"
entryPoints = ["web"]
[tcp.routers.p.tls]
passthrough = true
[tcp.routers.c]
rule = "HostSNI(`+"`*`"+`)"
service = "c"
entryPoints = ["all"]
[tcp.routers.c.tls]
passthrough = true
[[tcp.services.a.loadBalancer.servers]]
address = %q
[[tcp.services.b.loadBalancer.servers]]
address = %q
[[tcp.services.p.loadBalancer.servers]]
address = %q
[[tcp.services.c.loadBalancer.servers]]
address = %q
`, web.URL, a.addr, b.addr, p.addr, c.addr))
	addr := r.servers.Addr("web").String()
	for _, tc := range []struct {
		sni, want string
		alpn      []string
	}{
		{"a.example.com", "a", nil},
		{"x.b.example.com", "b", nil},
		{"alpn.example.com", "p", []string{"h2", "x-test"}},
	} {
		conn, cn := tlsDial(t, addr, tc.sni, tc.alpn...)
		if cn != tc.want {
			t.Errorf("%s: certificate %q, want the backend's %q", tc.sni, cn, tc.want)
		}
		if got := ask(t, conn, bufio.NewReader(conn), "hi"); got != tc.want+":hi" {
			t.Errorf("%s: answer %q, want %q", tc.sni, got, tc.want+":hi")
		}
	}
	// Not a TCP router's: a.b.b.example.com is two labels under the
	// wildcard; alpn.example.com without the protocol.
	for _, sni := range []string{"www.example.com", "y.x.b.example.com", "alpn.example.com"} {
		if _, cn := tlsDial(t, addr, sni); cn == "a" || cn == "b" || cn == "p" {
			t.Errorf("%s: passed through to %q", sni, cn)
		}
	}
	// HTTP/1.1 and HTTP/2 on the same entry point.
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, body := get(t, &http.Client{Transport: tr}, "https://"+addr+"/", "www.example.com", nil)
		tr.CloseIdleConnections()
		wantProto := map[bool]int{false: 1, true: 2}[h2]
		if resp.StatusCode != 200 || body != "http" || resp.ProtoMajor != wantProto {
			t.Errorf("HTTP/%d: %d %q over HTTP/%d", wantProto, resp.StatusCode, body, resp.ProtoMajor)
		}
	}
	// The catch-all takes TLS with any name, and without one.
	for _, sni := range []string{"whatever.test", ""} {
		conn, cn := tlsDial(t, r.servers.Addr("all").String(), sni)
		if cn != "c" {
			t.Errorf("catch-all, SNI %q: certificate %q", sni, cn)
		}
		conn.Close()
	}
}

// TestTCPTermination: tollgate terminates TLS with its certificates and
// sends the plain bytes to one backend, TLS to another.
func TestTCPTermination(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "ca"})
	certFile, keyFile := issue(t, ca, dir, "tollgate", testcert.Server, "plain.example.com", "tls.example.com")
	plain := startTCPServer(t, nil, echoAs("plain"))
	secure := startTCPServer(t, certFor(t, "backend", "backend.test"), echoAs("secure"))
	r := serveConfig(t, tlsEntryPoint+fmt.Sprintf(`
[[tls.certificates]]
certFile = %q
keyFile = %q
[tcp.routers.plain]
rule = "HostSNI(`+"`plain.example.com`"+`)"
service = "plain"
[tcp.routers.plain.tls]
[tcp.routers.secure]
rule = "HostSNI(`+"`tls.example.com`"+`)"
service = "secure"
[tcp.routers.secure.tls]
[[tcp.services.plain.loadBalancer.servers]]
address = %q
[tcp.services.secure.loadBalancer]
serversTransport = "insecure"
[[tcp.services.secure.loadBalancer.servers]]
address = %q
tls = true
[tcp.serversTransports.insecure.tls]
insecureSkipVerify = true
`, certFile, keyFile, plain.addr, secure.addr))
	for _, tc := range []struct{ sni, want string }{{"plain.example.com", "plain"}, {"tls.example.com", "secure"}} {
		conn, cn := tlsDial(t, r.servers.Addr("web").String(), tc.sni, "h2", "http/1.1")
		if cn != "tollgate" {
			t.Errorf("%s: certificate %q, want tollgate's", tc.sni, cn)
		}
		if p := conn.ConnectionState().NegotiatedProtocol; p != "" {
			t.Errorf("%s: ALPN %q negotiated on terminated TCP", tc.sni, p)
		}
		if got := ask(t, conn, bufio.NewReader(conn), "x"); got != tc.want+":x" {
			t.Errorf("%s: %q", tc.sni, got)
		}
	}
}

// TestTCPServersTransportTLS: a servers transport's rootCAs, serverName
// and client certificates are used towards a server that requires a
// client certificate; without the certificate the server refuses.
func TestTCPServersTransportTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "backend ca"})
	caFile := ca.WriteCert(t, dir, "ca")
	clientCert, clientKey := issue(t, ca, dir, "client", testcert.Client)
	backend := startTCPServerTLS(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, testcert.Spec{Names: []string{"backend.test"}}).TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}, echoAs("mtls"))
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.with]
address = "127.0.0.1:0"
[entryPoints.without]
address = "127.0.0.1:0"
[tcp.routers.with]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["with"]
service = "with"
[tcp.routers.without]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["without"]
service = "without"
[tcp.services.with.loadBalancer]
serversTransport = "mtls"
[[tcp.services.with.loadBalancer.servers]]
address = %[1]q
tls = true
[tcp.services.without.loadBalancer]
serversTransport = "nocert"
[[tcp.services.without.loadBalancer.servers]]
address = %[1]q
tls = true
[tcp.serversTransports.mtls.tls]
serverName = "backend.test"
rootCAs = [%[2]q]
[[tcp.serversTransports.mtls.tls.certificates]]
certFile = %[3]q
keyFile = %[4]q
[tcp.serversTransports.nocert.tls]
serverName = "backend.test"
rootCAs = [%[2]q]
`, backend.addr, caFile, clientCert, clientKey))
	conn, err := net.Dial("tcp", r.servers.Addr("with").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := ask(t, conn, bufio.NewReader(conn), "x"); got != "mtls:x" {
		t.Errorf("with the client certificate: %q", got)
	}
	conn2, err := net.Dial("tcp", r.servers.Addr("without").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn2, "x\n")
	if line, err := bufio.NewReader(conn2).ReadString('\n'); err == nil {
		t.Errorf("without a client certificate the server answered %q", line)
	}
}

// TestTCPServerFirst: on an entry point with only a catch-all router
// without TLS, the connection is routed before the client sends anything,
// so a server that speaks first is heard.
func TestTCPServerFirst(t *testing.T) {
	smtp := startTCPServer(t, nil, func(c net.Conn) {
		io.WriteString(c, "220 ready\n")
		echoAs("smtp")(c)
	})
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.smtp]
address = "127.0.0.1:0"
[tcp.routers.smtp]
rule = "HostSNI(`+"`*`"+`)"
service = "smtp"
[[tcp.services.smtp.loadBalancer.servers]]
address = %q
`, smtp.addr))
	conn, err := net.Dial("tcp", r.servers.Addr("smtp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if banner, err := br.ReadString('\n'); err != nil || banner != "220 ready\n" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	if got := ask(t, conn, br, "EHLO x"); got != "smtp:EHLO x" {
		t.Errorf("got %q", got)
	}
}

// TestTCPChallengeBeforePassthrough: a TLS-ALPN-01 handshake gets the
// challenge certificate, even for a name a router passes through; other
// handshakes for that name reach the backend.
func TestTCPChallengeBeforePassthrough(t *testing.T) {
	backend := startTCPServer(t, certFor(t, "backend", "db.example.com"), echoAs("db"))
	doc := tlsEntryPoint + fmt.Sprintf(`
[tcp.routers.db]
rule = "HostSNI(`+"`db.example.com`"+`)"
service = "db"
[tcp.routers.db.tls]
passthrough = true
[[tcp.services.db.loadBalancer.servers]]
address = %q
`, backend.addr)
	challenge := certFor(t, "challenge", "db.example.com")
	r := serveWith(t, doc, func(sc *ServersConfig) { sc.Challenges = staticChallenges{challenge} })
	addr := r.servers.Addr("web").String()
	conn, cn := tlsDial(t, addr, "db.example.com", ACMETLSProto)
	if cn != "challenge" || conn.ConnectionState().NegotiatedProtocol != ACMETLSProto {
		t.Errorf("TLS-ALPN-01: certificate %q, protocol %q", cn, conn.ConnectionState().NegotiatedProtocol)
	}
	if _, cn := tlsDial(t, addr, "db.example.com"); cn != "backend" {
		t.Errorf("without acme-tls/1: certificate %q, want the backend's", cn)
	}
}

// TestTCPWeightedHealthCheck: a weighted service over two loadBalancers
// sends connections to both by weight, and never to a server its health
// check finds down.
func TestTCPWeightedHealthCheck(t *testing.T) {
	one := startTCPServer(t, nil, echoAs("one"))
	two := startTCPServer(t, nil, echoAs("two"))
	dead := deadAddr(t)
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "both"
[[tcp.services.both.weighted.services]]
name = "first"
weight = 3
[[tcp.services.both.weighted.services]]
name = "second"
weight = 1
[[tcp.services.first.loadBalancer.servers]]
address = %q
[[tcp.services.first.loadBalancer.servers]]
address = %q
[tcp.services.first.loadBalancer.healthCheck]
interval = "50ms"
timeout = "40ms"
[[tcp.services.second.loadBalancer.servers]]
address = %q
`, one.addr, dead, two.addr))
	addr := r.servers.Addr("db").String()
	// Wait for the health check to find the dead server down.
	waitFor(t, "the dead server marked down", func() bool {
		g := r.rt.current.Load()
		return !g.tcp.ServerUp("first", dead)
	})
	got := map[string]int{}
	for range 8 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		answer := ask(t, conn, bufio.NewReader(conn), "q")
		conn.Close()
		got[strings.TrimSuffix(answer, ":q")]++
	}
	if got["one"] != 6 || got["two"] != 2 {
		t.Errorf("connections by server: %v, want one 6, two 2", got)
	}
}

// deadAddr returns an address where connections are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// closedByPeer reports whether the peer closes c without sending anything.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !os.IsTimeout(err)
}

// TestTCPMiddlewares: ipAllowList closes a connection from outside its
// ranges at once; inFlightConn closes a client's connection above its
// limit, and admits it again once the first has closed.
func TestTCPMiddlewares(t *testing.T) {
	backend := startTCPServer(t, nil, echoAs("b"))
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := serveWith(t, fmt.Sprintf(`
[entryPoints.denied]
address = "127.0.0.1:0"
[entryPoints.limited]
address = "127.0.0.1:0"
[tcp.routers.denied]
rule = "HostSNI(`+"`*`"+`)"
service = "b"
entryPoints = ["denied"]
middlewares = ["lan"]
[tcp.routers.limited]
rule = "HostSNI(`+"`*`"+`)"
service = "b"
entryPoints = ["limited"]
middlewares = ["local", "one"]
[tcp.middlewares.lan.ipAllowList]
sourceRange = ["10.0.0.0/8"]
[tcp.middlewares.local.ipAllowList]
sourceRange = ["127.0.0.1"]
[tcp.middlewares.one.inFlightConn]
amount = 1
[[tcp.services.b.loadBalancer.servers]]
address = %q
`, backend.addr), func(sc *ServersConfig) { sc.Metrics = m })
	dial := func(ep string) net.Conn {
		c, err := net.Dial("tcp", r.servers.Addr(ep).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	if c := dial("denied"); !closedByPeer(c) {
		t.Error("ipAllowList: a client outside the ranges was not closed")
	}
	first := dial("limited")
	if got := ask(t, first, bufio.NewReader(first), "1"); got != "b:1" {
		t.Fatalf("first connection: %q", got)
	}
	if c := dial("limited"); !closedByPeer(c) {
		t.Error("inFlightConn: a second connection was not closed")
	}
	first.Close()
	waitFor(t, "a new connection admitted once the first closed", func() bool {
		c := dial("limited")
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "3\n"); err != nil {
			return false
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line == "b:3\n"
	})
	refused := gaugeSeries(t, reg, "tollgate_tcp_refused_connections_total", "router", "middleware")
	if refused["denied|ipAllowList"] != 1 || refused["limited|inFlightConn"] < 1 {
		t.Errorf("refused connections: %v", refused)
	}
}

// TestTCPHalfClose: the client closes its writing half; the backend,
// which answers only once it has read everything, is heard.
func TestTCPHalfClose(t *testing.T) {
	backend := startTCPServer(t, nil, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		fmt.Fprintf(c, "read %d bytes", len(b))
	})
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[tcp.services.db.loadBalancer]
serversTransport = "slow"
[[tcp.services.db.loadBalancer.servers]]
address = %q
[tcp.serversTransports.slow]
terminationDelay = "-1s"
`, backend.addr))
	conn, err := net.Dial("tcp", r.servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "hello")
	conn.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "read 5 bytes" {
		t.Errorf("after half-close: %q, %v", got, err)
	}
}

// TestTCPIdleTimeout: a connection on which nothing is sent for the
// serversTransport's idleTimeout is closed; one with traffic is not.
func TestTCPIdleTimeout(t *testing.T) {
	backend := startTCPServer(t, nil, echoAs("b"))
	r := serveConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[tcp.services.db.loadBalancer]
serversTransport = "short"
[[tcp.services.db.loadBalancer.servers]]
address = %q
[tcp.serversTransports.short]
idleTimeout = "300ms"
`, backend.addr))
	conn, err := net.Dial("tcp", r.servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	// Traffic every 100ms for longer than the idle timeout.
	for i := range 6 {
		if got := ask(t, conn, br, fmt.Sprint(i)); got != fmt.Sprintf("b:%d", i) {
			t.Fatalf("answer %d: %q", i, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !closedByPeer(conn) {
		t.Error("an idle connection was not closed")
	}
}

// TestTCPReloadKeepsConnections: a connection open across a reload keeps
// its backend; new connections follow the new configuration.
func TestTCPReloadKeepsConnections(t *testing.T) {
	one := startTCPServer(t, nil, echoAs("one"))
	two := startTCPServer(t, nil, echoAs("two"))
	doc := `
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(` + "`*`" + `)"
service = "db"
[tcp.services.db.loadBalancer.healthCheck]
interval = "1h"
[[tcp.services.db.loadBalancer.servers]]
address = %q
`
	r := serveConfig(t, fmt.Sprintf(doc, one.addr))
	conn, err := net.Dial("tcp", r.servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if got := ask(t, conn, br, "before"); got != "one:before" {
		t.Fatalf("before the reload: %q", got)
	}
	if err := r.rt.Apply(parseConfig(t, fmt.Sprintf(doc, two.addr))); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, conn, br, "after"); got != "one:after" {
		t.Errorf("the open connection after the reload: %q", got)
	}
	c2, err := net.Dial("tcp", r.servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := ask(t, c2, bufio.NewReader(c2), "new"); got != "two:new" {
		t.Errorf("a new connection after the reload: %q", got)
	}
	// A bad [tcp] is refused and the routing in force stays.
	bad := parseConfig(t, fmt.Sprintf(doc, two.addr))
	bad.TCP.Routers["db"].Rule = "HostSNI(`x.example.com`)"
	if err := r.rt.Apply(bad); err == nil {
		t.Error("a router without tls matching a server name was applied")
	}
	if got := ask(t, conn, br, "still"); got != "one:still" {
		t.Errorf("after a refused reload: %q", got)
	}
}

// TestTCPShutdownDrains: Shutdown leaves an open connection working
// until its grace period ends, then closes it, and returns.
func TestTCPShutdownDrains(t *testing.T) {
	backend := startTCPServer(t, nil, echoAs("b"))
	cfg := parseConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[[tcp.services.db.loadBalancer.servers]]
address = %q
`, backend.addr))
	rt := New(Config{})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- servers.Serve() }()
	conn, err := net.Dial("tcp", servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if got := ask(t, conn, br, "0"); got != "b:0" {
		t.Fatalf("%q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- servers.Shutdown(ctx) }()
	// Accepting stops; the open connection goes on.
	waitFor(t, "the listener closed", func() bool {
		c, err := net.Dial("tcp", servers.Addr("db").String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if got := ask(t, conn, br, "1"); got != "b:1" {
		t.Errorf("during the grace period: %q", got)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a connection open in its grace period: %v", err)
	default:
	}
	cancel() // the grace period ends
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if !closedByPeer(conn) {
		t.Error("the connection was not closed at the end of the grace period")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestTCPProxyProtocolOut: a serversTransport with proxyProtocol sends
// the header (versions 1 and 2) naming the client's address first.
func TestTCPProxyProtocolOut(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			backend := startTCPServer(t, nil, func(c net.Conn) {
				br := bufio.NewReader(c)
				h, err := proxyproto.Read(br)
				if err != nil {
					fmt.Fprintf(c, "error %v\n", err)
					return
				}
				fmt.Fprintf(c, "v%d %s %s\n", h.Version, h.Source, h.Destination)
			})
			r := serveConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[tcp.services.db.loadBalancer]
serversTransport = "pp"
[[tcp.services.db.loadBalancer.servers]]
address = %q
[tcp.serversTransports.pp.proxyProtocol]
version = %d
`, backend.addr, version))
			conn, err := net.Dial("tcp", r.servers.Addr("db").String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			want := fmt.Sprintf("v%d %s %s\n", version, conn.LocalAddr(), conn.RemoteAddr())
			if err != nil || line != want {
				t.Errorf("backend saw %q, %v; want %q", line, err, want)
			}
		})
	}
}

// TestTCPMetrics: connections, open connections, bytes by direction,
// durations, dial failures and unrouted connections are counted.
func TestTCPMetrics(t *testing.T) {
	backend := startTCPServer(t, nil, echoAs("b"))
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := serveWith(t, tlsEntryPoint+fmt.Sprintf(`
[entryPoints.raw]
address = "127.0.0.1:0"
[entryPoints.raw.transport.respondingTimeouts]
readHeaderTimeout = "200ms"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
entryPoints = ["web"]
[tcp.routers.sni]
rule = "HostSNI(`+"`x.example.com`"+`)"
service = "dead"
entryPoints = ["raw"]
[tcp.routers.sni.tls]
passthrough = true
[[tcp.services.db.loadBalancer.servers]]
address = %q
[[tcp.services.dead.loadBalancer.servers]]
address = %q
`, backend.addr, deadAddr(t)), func(sc *ServersConfig) { sc.Metrics = m })
	conn, err := net.Dial("tcp", r.servers.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	ask(t, conn, br, "1234")
	if open := gaugeSeries(t, reg, "tollgate_tcp_open_connections", "entrypoint", "router"); open["web|db"] != 1 {
		t.Errorf("open connections: %v", open)
	}
	conn.Close()
	waitFor(t, "the connection counted closed", func() bool {
		return gaugeSeries(t, reg, "tollgate_tcp_open_connections", "entrypoint", "router")["web|db"] == 0
	})
	bytes := gaugeSeries(t, reg, "tollgate_tcp_bytes_total", "router", "direction")
	if bytes["db|in"] != 5 || bytes["db|out"] != 7 {
		t.Errorf("bytes: %v, want in 5, out 7", bytes)
	}
	if total := gaugeSeries(t, reg, "tollgate_tcp_connections_total", "router"); total["db"] != 1 {
		t.Errorf("connections: %v", total)
	}
	// A dial failure; a client that sends nothing; TLS no router takes.
	raw := r.servers.Addr("raw").String()
	c, _ := tls.Dial("tcp", raw, &tls.Config{ServerName: "x.example.com", InsecureSkipVerify: true})
	if c != nil {
		c.Close()
	}
	silent, err := net.Dial("tcp", raw)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closedByPeer(silent) {
		t.Error("a client that sent nothing was not closed")
	}
	if c, err := tls.Dial("tcp", raw, &tls.Config{ServerName: "y.example.com", InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("TLS no router takes was served on an entry point without HTTPS")
	}
	if f := gaugeSeries(t, reg, "tollgate_tcp_dial_failures_total", "service"); f["dead"] != 1 {
		t.Errorf("dial failures: %v", f)
	}
	waitFor(t, "unrouted connections counted", func() bool {
		u := gaugeSeries(t, reg, "tollgate_tcp_unrouted_connections_total", "entrypoint", "reason")
		return u["raw|timeout"] == 1 && u["raw|no_router"] == 1
	})
	if n := histogramCount(t, reg, "tollgate_tcp_connection_duration_seconds"); n < 1 {
		t.Errorf("durations observed: %d", n)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// TestTCPShutdownWaitsForConnections: Shutdown returns as soon as the
// TCP connections open when it began have ended, before its grace period
// does.
func TestTCPShutdownWaitsForConnections(t *testing.T) {
	backend := startTCPServer(t, nil, echoAs("b"))
	cfg := parseConfig(t, fmt.Sprintf(`
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
service = "db"
[[tcp.services.db.loadBalancer.servers]]
address = %q
`, backend.addr))
	rt := New(Config{})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- servers.Serve() }()
	conn, err := net.Dial("tcp", servers.Addr("db").String())
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	ask(t, conn, br, "0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- servers.Shutdown(ctx) }()
	ask(t, conn, br, "1")
	conn.Close()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("Shutdown waited for its grace period to end")
	}
	<-served
}
