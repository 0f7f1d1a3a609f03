package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// lineServer is a TCP (or TLS) server for the TCP routing tests: it
// answers every line with name, the address the connection came from (as
// a PROXY header said, when proxyProtocol), and the line; when the client
// closes its writing half it answers "bye N" (N lines read) before
// closing. With banner it speaks first, as SMTP or MySQL do.
type lineServer struct {
	name   string
	ln     net.Listener
	banner bool
	proxy  bool
	wg     sync.WaitGroup
}

func startLineServer(t *testing.T, name string, tc *tls.Config, banner, proxy bool) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &lineServer{name: name, ln: ln, banner: banner, proxy: proxy}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }

func (s *lineServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	rd := bufio.NewReader(c)
	from := c.RemoteAddr().String()
	if s.proxy {
		h, err := proxyproto.Read(rd)
		if err != nil {
			fmt.Fprintf(c, "%s: no PROXY header: %v\n", s.name, err)
			return
		}
		from = "none"
		if h.Source.IsValid() {
			from = h.Source.String()
		}
	}
	if s.banner {
		fmt.Fprintf(c, "%s ready\n", s.name)
	}
	n := 0
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				fmt.Fprintf(c, "bye %d\n", n)
			}
			return
		}
		n++
		fmt.Fprintf(c, "%s from %s: %s", s.name, from, line)
	}
}

// lineClient talks to a lineServer through tollgate.
type lineClient struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func newLineClient(t *testing.T, conn net.Conn) *lineClient {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &lineClient{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

// say sends line and returns the answer, without its line break.
func (l *lineClient) say(line string) string {
	l.t.Helper()
	if _, err := fmt.Fprintf(l.conn, "%s\n", line); err != nil {
		l.t.Fatalf("send %q: %v", line, err)
	}
	return l.read()
}

func (l *lineClient) read() string {
	l.t.Helper()
	s, err := l.rd.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// TestTCPRouting: two replicas on etcd with TCP and HTTP routers on one
// TLS entry point. A passed-through connection gets the backend's own
// certificate (tollgate holds no key for it); a terminated one gets the
// certificate Pebble issued for its HostSNI, like the HTTP router's Host
// on the same port, both by TLS-ALPN-01 answered on that port despite the
// passthrough router; PROXY protocol headers are read from the trusted
// address only (versions 1 and 2, the address reaching the access log,
// X-Forwarded-For and a TCP backend through a PROXY header tollgate
// writes); HTTP/3 on the same port; half-close, a server that speaks first, a reload and a drain
// keep open connections working.
func TestTCPRouting(t *testing.T) {
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "backend CA"})
	dbCert := ca.Issue(t, testcert.Spec{Names: []string{"db.tcp.test"}}).TLS()
	db := startLineServer(t, "db", &tls.Config{Certificates: []tls.Certificate{dbCert}, MinVersion: tls.VersionTLS12}, false, false)
	plain := startLineServer(t, "plain", nil, false, false)
	pp := startLineServer(t, "pp", nil, false, true)
	smtp := startLineServer(t, "smtp", nil, true, false)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "web %s xff=%s", r.Proto, r.Header.Get("X-Forwarded-For"))
	}))
	defer web.Close()

	c := newCluster(t, "etcd://"+etcdAddr(t), "tcp", 2)
	ports := testserver.FreePorts(t, 2*len(c.replicas))
	routes := func(extraRouter string) string {
		return fmt.Sprintf(`
[accessLog]

[entryPoints.web.proxyProtocol]
trustedIPs = ["127.0.0.1/32"]
[entryPoints.websecure.proxyProtocol]
trustedIPs = ["127.0.0.1"]
[entryPoints.websecure.http3]

[http.routers.web]
rule = "Host(`+"`web.tcp.test`"+`)"
service = "web"
  [http.routers.web.tls]
[http.routers.webplain]
rule = "Host(`+"`web.tcp.test`"+`)"
entryPoints = ["web"]
service = "web"
[http.services.web.loadBalancer]
  [[http.services.web.loadBalancer.servers]]
  url = %q

[tcp.routers.db]
rule = "HostSNI(`+"`db.tcp.test`"+`)"
entryPoints = ["websecure"]
service = "db"
  [tcp.routers.db.tls]
  passthrough = true
[tcp.services.db.loadBalancer]
  [[tcp.services.db.loadBalancer.servers]]
  address = %q

[tcp.routers.term]
rule = "HostSNI(`+"`term.tcp.test`"+`)"
entryPoints = ["websecure"]
service = "plain"
  [tcp.routers.term.tls]
[tcp.services.plain.loadBalancer]
  [[tcp.services.plain.loadBalancer.servers]]
  address = %q

[tcp.routers.pp]
rule = "HostSNI(`+"`pp.tcp.test`"+`)"
entryPoints = ["websecure"]
service = "pp"
  [tcp.routers.pp.tls]
[tcp.services.pp.loadBalancer]
serversTransport = "pp"
  [[tcp.services.pp.loadBalancer.servers]]
  address = %q
[tcp.serversTransports.pp.proxyProtocol]
version = 1

[tcp.routers.smtp]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["smtp"]
service = "smtp"
[tcp.services.smtp.loadBalancer]
  [[tcp.services.smtp.loadBalancer.servers]]
  address = %q
%s`, web.URL, db.addr(), plain.addr(), pp.addr(), smtp.addr(), extraRouter)
	}
	setExtra := func(extraRouter string) {
		c.extra = routes(extraRouter)
		c.configure("onHostRule = true\n[acme.tlsChallenge]\n", nil)
		// Each replica gets its own port for the smtp entry point.
		for i, r := range c.replicas {
			b, err := os.ReadFile(r.configFile)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, fmt.Sprintf("\n[entryPoints.smtp]\naddress = \"127.0.0.1:%d\"\n", ports[i])...)
			if err := os.WriteFile(r.configFile, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	setExtra("")
	c.start()
	acmeNames := []string{"term.tcp.test", "web.tcp.test", "pp.tcp.test"}
	got := c.waitCerts(acmeNames, 3*time.Minute, nil)
	c.checkServed(got, acmeNames)
	if o := c.pebble.Orders(); o["db.tcp.test"] != 0 {
		t.Errorf("an order for the passed-through name db.tcp.test: %v", o)
	}
	for _, n := range acmeNames {
		if o := c.pebble.Orders()[n]; o != 1 {
			t.Errorf("%s: %d orders, want 1", n, o)
		}
	}
	roots := c.pebble.IssuerRoots(t)

	dialTLS := func(t *testing.T, r *replica, name string, pool *x509.CertPool) *tls.Conn {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", r.https),
			&tls.Config{ServerName: name, RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("%s: TLS to %s: %v", r.id, name, err)
		}
		return conn
	}

	t.Run("passthrough", func(t *testing.T) {
		for _, r := range c.replicas {
			conn := dialTLS(t, r, "db.tcp.test", ca.Pool())
			leaf := conn.ConnectionState().PeerCertificates[0]
			if leaf.Issuer.CommonName != "backend CA" {
				t.Errorf("%s: certificate issued by %q, want the backend's own", r.id, leaf.Issuer.CommonName)
			}
			l := newLineClient(t, conn)
			if got := l.say("select 1"); !strings.HasPrefix(got, "db from 127.0.0.1:") || !strings.HasSuffix(got, ": select 1") {
				t.Errorf("%s: answer %q", r.id, got)
			}
			conn.Close()
		}
	})

	t.Run("termination and HTTP on the same port", func(t *testing.T) {
		for _, r := range c.replicas {
			conn := dialTLS(t, r, "term.tcp.test", roots)
			if got := conn.ConnectionState().NegotiatedProtocol; got != "" {
				t.Errorf("%s: terminated TCP negotiated ALPN %q", r.id, got)
			}
			l := newLineClient(t, conn)
			if got := l.say("hello"); !strings.HasPrefix(got, "plain from 127.0.0.1:") {
				t.Errorf("%s: answer %q", r.id, got)
			}
			conn.Close()

			for _, h2 := range []bool{false, true} {
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: h2}
				if !h2 {
					tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
				}
				tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", r.https))
				}
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://web.tcp.test/")
				if err != nil {
					t.Fatalf("%s: HTTPS next to TCP routers: %v", r.id, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := "web HTTP/1.1"
				if h2 {
					want = "web HTTP/1.1" // the backend speaks HTTP/1.1; the client's protocol is checked below
					if resp.ProtoMajor != 2 {
						t.Errorf("%s: HTTP/2 not negotiated next to TCP routers: %s", r.id, resp.Proto)
					}
				}
				if !strings.HasPrefix(string(body), want) {
					t.Errorf("%s: body %q", r.id, body)
				}
				if got, want := resp.Header.Get("Alt-Svc"), fmt.Sprintf(`h3=":%d"`, r.https); !strings.HasPrefix(got, want) {
					t.Errorf("%s: Alt-Svc %q, want %s…", r.id, got, want)
				}
				tr.CloseIdleConnections()
			}
		}
	})

	t.Run("HTTP/3 next to TCP routers", func(t *testing.T) {
		for _, r := range c.replicas {
			tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "web.tcp.test"}}
			defer tr.Close()
			h3 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", r.https), nil)
			req.Host = "web.tcp.test"
			resp, err := h3.Do(req)
			if err != nil {
				t.Fatalf("%s: HTTP/3: %v", r.id, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 3 || !strings.HasPrefix(string(body), "web ") {
				t.Errorf("%s: HTTP/3 answer %s %q", r.id, resp.Proto, body)
			}
		}
	})

	t.Run("PROXY protocol in", func(t *testing.T) {
		r := c.replicas[0]
		// Version 1 on the plain entry point: the address reaches
		// X-Forwarded-For and the access log.
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.http))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "PROXY TCP4 203.0.113.7 127.0.0.1 41000 %d\r\nGET / HTTP/1.1\r\nHost: web.tcp.test\r\nUser-Agent: pp-v1\r\nConnection: close\r\n\r\n", r.http)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "xff=203.0.113.7") {
			t.Errorf("v1: backend saw %q, want X-Forwarded-For 203.0.113.7", body)
		}
		waitLog(t, r, `"client":"203.0.113.7:41000"`, `"entry_point":"web"`)

		// Version 2 before a TLS handshake to a terminating TCP router
		// whose server gets a PROXY header from tollgate: the client's
		// address travels through both.
		raw, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.https))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		hdr := proxyproto.Header{Version: 2, Command: proxyproto.Proxy, Transport: proxyproto.TransportStream,
			Source:      netip.MustParseAddrPort("198.51.100.9:52000"),
			Destination: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", r.https))}
		if err := hdr.Write(raw); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(raw, &tls.Config{ServerName: "pp.tcp.test", RootCAs: roots, MinVersion: tls.VersionTLS12})
		l := newLineClient(t, tc)
		if got := l.say("who"); got != "pp from 198.51.100.9:52000: who" {
			t.Errorf("v2 in, v1 out: backend answered %q, want the client address 198.51.100.9:52000", got)
		}

		// Version 2 before HTTPS: the access log has the address.
		raw2, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.https))
		if err != nil {
			t.Fatal(err)
		}
		defer raw2.Close()
		hdr.Source = netip.MustParseAddrPort("198.51.100.10:52001")
		if err := hdr.Write(raw2); err != nil {
			t.Fatal(err)
		}
		tc2 := tls.Client(raw2, &tls.Config{ServerName: "web.tcp.test", RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		_ = tc2.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(tc2, "GET / HTTP/1.1\r\nHost: web.tcp.test\r\nUser-Agent: pp-v2\r\nConnection: close\r\n\r\n")
		resp, err = http.ReadResponse(bufio.NewReader(tc2), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "xff=198.51.100.10") {
			t.Errorf("v2 over TLS: backend saw %q", body)
		}
		waitLog(t, r, `"client":"198.51.100.10:52001"`, `"entry_point":"websecure"`)
	})

	t.Run("PROXY header from an untrusted address", func(t *testing.T) {
		r := c.replicas[0]
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.http))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(conn, "PROXY TCP4 203.0.113.99 127.0.0.1 41000 80\r\nGET / HTTP/1.1\r\nHost: web.tcp.test\r\nUser-Agent: pp-forged\r\n\r\n")
		b, err := io.ReadAll(conn)
		if len(b) != 0 {
			t.Errorf("an untrusted PROXY header got an answer: %q", b)
		}
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("untrusted PROXY header: %v, want the connection closed", err)
		}
		if strings.Contains(r.log.String(), "203.0.113.99") {
			t.Error("the forged address reached the log")
		}
		// The same client without a header is served with its own address.
		conn2, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.http))
		if err != nil {
			t.Fatal(err)
		}
		defer conn2.Close()
		_ = conn2.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(conn2, "GET / HTTP/1.1\r\nHost: web.tcp.test\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "xff=127.0.0.2") {
			t.Errorf("untrusted client without header: backend saw %q", body)
		}
	})

	t.Run("half-close", func(t *testing.T) {
		for _, name := range []string{"db.tcp.test", "term.tcp.test"} {
			pool := roots
			if name == "db.tcp.test" {
				pool = ca.Pool()
			}
			conn := dialTLS(t, c.replicas[1], name, pool)
			l := newLineClient(t, conn)
			l.say("one")
			l.say("two")
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got := l.read(); got != "bye 2" {
				t.Errorf("%s: after half-close got %q, want the server's answer to EOF", name, got)
			}
			conn.Close()
		}
	})

	t.Run("server speaks first", func(t *testing.T) {
		for i := range c.replicas {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[i]))
			if err != nil {
				t.Fatal(err)
			}
			l := newLineClient(t, conn)
			if got := l.read(); got != "smtp ready" {
				t.Errorf("banner %q", got)
			}
			conn.Close()
		}
	})

	t.Run("reload and drain keep connections", func(t *testing.T) {
		r := c.replicas[1]
		conn := dialTLS(t, r, "db.tcp.test", ca.Pool())
		defer conn.Close()
		l := newLineClient(t, conn)
		l.say("before")
		applied := strings.Count(r.log.String(), "configuration applied")
		setExtra(`
[tcp.routers.extra]
rule = "HostSNI(` + "`extra.tcp.test`" + `)"
service = "db"
  [tcp.routers.extra.tls]
  passthrough = true
`)
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(r.log.String(), "configuration applied") == applied {
			if time.Now().After(deadline) {
				t.Fatalf("no reload logged:\n%s", tail(r.log.String(), 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := l.say("after reload"); !strings.HasSuffix(got, ": after reload") {
			t.Errorf("after reload: %q", got)
		}
		// The new router is served on the same replica.
		extra, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.https), &tls.Config{ServerName: "extra.tcp.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("the router added by the reload: %v", err)
		}
		if cn := extra.ConnectionState().PeerCertificates[0].Issuer.CommonName; cn != "backend CA" {
			t.Errorf("the router added by the reload: certificate from %q, want the backend's", cn)
		}
		extra.Close()
		// Drain: SIGTERM; the connection works during the drain delay and
		// the grace period, and is closed when the process exits.
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
		if got := l.say("while draining"); !strings.HasSuffix(got, ": while draining") {
			t.Errorf("while draining: %q", got)
		}
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("replica did not exit within 30s of SIGTERM with a TCP connection open")
		}
		r.cmd = nil
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := l.rd.ReadString('\n'); err == nil {
			t.Error("the connection is still open after the replica exited")
		}
	})
}

// waitLog waits until a line of r's log has every one of parts.
func waitLog(t *testing.T, r *replica, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(r.log.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("no log line of %s has %q:\n%s", r.id, parts, tail(r.log.String(), 20))
}
