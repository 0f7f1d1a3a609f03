package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// h3Site is one TLS entry point serving HTTP/3 (its http3 table's keys
// follow), with a router for www.example.com and one for
// locked.example.com, whose TLS options require a client certificate,
// both sending to service "a" at the URL given last.
const h3Site = `
[entryPoints.websecure]
address = %q
[entryPoints.websecure.http.tls]
[entryPoints.websecure.http3]
%s
[tls.options.mtls.clientAuth]
clientAuthType = "RequireAnyClientCert"
[http.routers.www]
rule = "Host(` + "`www.example.com`" + `)"
service = "a"
[http.routers.www.tls]
[http.routers.locked]
rule = "Host(` + "`locked.example.com`" + `)"
service = "a"
[http.routers.locked.tls]
options = "mtls"
[[http.services.a.loadBalancer.servers]]
url = %q
`

// h3Running is a router serving h3Site with certificates of ca provided.
type h3Running struct {
	*running
	cfg *config.Config
	ca  *testcert.Cert
}

// serveH3Site serves h3Site on addr with the http3 keys given, the
// service's server at backend, and sc's Extra.
func serveH3Site(t *testing.T, addr, h3Keys, backend string, sc ServersConfig) *h3Running {
	t.Helper()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "ca"})
	cfg := parseConfig(t, fmt.Sprintf(h3Site, addr, h3Keys, backend))
	cfg.ProvidedCertificates = []config.KeyPair{h3Pair(t, ca, "www", "www.example.com", "locked.example.com")}
	rt := New(Config{})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	sc.Config, sc.Router = cfg, rt
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
		if err := <-r.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		rt.Close()
	})
	return &h3Running{running: r, cfg: cfg, ca: ca}
}

func h3Pair(t *testing.T, ca *testcert.Cert, cn string, names ...string) config.KeyPair {
	c := ca.Issue(t, testcert.Spec{CommonName: cn, Names: names, Usage: testcert.Server})
	return config.KeyPair{Source: "test", Cert: c.CertPEM(), Key: c.KeyPEM(t)}
}

func (r *h3Running) port() string {
	_, port, _ := net.SplitHostPort(r.servers.Addr("websecure").String())
	return port
}

// h3Client is an HTTP/3 client trusting roots, sending sni; certs are its
// client certificates.
func h3Client(t *testing.T, roots *x509.CertPool, sni string, certs ...tls.Certificate) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: sni, Certificates: certs}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// tcpClient is an HTTPS client over TCP trusting roots, sending sni.
func tcpClient(t *testing.T, roots *x509.CertPool, sni string) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: sni}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// do sends a GET for path with host, and returns the response with its
// body read.
func do(t *testing.T, c *http.Client, url, host string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// protoExtra answers /proto with the protocol of the request as the
// entry point's handler chain saw it.
type protoExtra struct{}

func (protoExtra) Claims(r *http.Request) bool { return r.URL.Path == "/proto" }
func (protoExtra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, r.Proto)
}

// TestHTTP3 serves a request over HTTP/3 through the router to a real
// backend, with the handler chain of the TCP entry point (its extra
// handler saw HTTP/3.0). HTTPS responses over TCP advertise the UDP
// port, which is the TCP one also for ":0"; HTTP/3 responses do not.
func TestHTTP3(t *testing.T) {
	a := backendServer(t, "a")
	r := serveH3Site(t, "127.0.0.1:0", "", a.URL, ServersConfig{Extra: map[string]http.Handler{"websecure": protoExtra{}}})
	url := "https://127.0.0.1:" + r.port()

	h3 := h3Client(t, r.ca.Pool(), "www.example.com")
	resp, body, err := do(t, h3, url+"/x", "www.example.com")
	if err != nil {
		t.Fatalf("HTTP/3 request: %v", err)
	}
	if resp.Proto != "HTTP/3.0" || body != "a" || resp.Header.Get("X-Seen-Host") != "www.example.com" {
		t.Errorf("HTTP/3 request: %s, body %q, host seen %q; want HTTP/3.0 from backend a for www.example.com", resp.Proto, body, resp.Header.Get("X-Seen-Host"))
	}
	if v := resp.Header.Values("Alt-Svc"); len(v) != 0 {
		t.Errorf("HTTP/3 response carries Alt-Svc %q, want none", v)
	}
	if _, body, err := do(t, h3, url+"/proto", "www.example.com"); err != nil || body != "HTTP/3.0" {
		t.Errorf("the entry point's handler saw %q (%v), want HTTP/3.0", body, err)
	}

	resp, body, err = do(t, tcpClient(t, r.ca.Pool(), "www.example.com"), url+"/x", "www.example.com")
	if err != nil {
		t.Fatalf("HTTPS request over TCP: %v", err)
	}
	want := `h3=":` + r.port() + `"; ma=86400`
	if v := resp.Header.Values("Alt-Svc"); len(v) != 1 || v[0] != want || body != "a" {
		t.Errorf("HTTPS over TCP: Alt-Svc %q, body %q; want one %q and backend a", v, body, want)
	}
}

// TestHTTP3ListeningLogged: HTTP/3 listening is an info record, as the
// entry points' listening lines are, with the entry point and the UDP
// address.
func TestHTTP3ListeningLogged(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := serveH3Site(t, "127.0.0.1:0", "", "http://127.0.0.1:9", ServersConfig{Logger: log})
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if rec["msg"] != "HTTP/3 listening" {
			continue
		}
		if rec["level"] != "INFO" || rec["entry_point"] != "websecure" || rec["address"] != "127.0.0.1:"+r.port() {
			t.Errorf("HTTP/3 listening: %v; want INFO, entry_point websecure, address 127.0.0.1:%s", rec, r.port())
		}
		return
	}
	t.Errorf("no HTTP/3 listening record at level info:\n%s", buf.String())
}

// TestHTTP3AdvertisedPort advertises advertisedPort instead of the
// entry point's, and serves HTTP/3 on every address for ":0".
func TestHTTP3AdvertisedPort(t *testing.T) {
	a := backendServer(t, "a")
	r := serveH3Site(t, ":0", "advertisedPort = 8443", a.URL, ServersConfig{})
	url := "https://127.0.0.1:" + r.port() + "/"
	resp, _, err := do(t, tcpClient(t, r.ca.Pool(), "www.example.com"), url, "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Header.Values("Alt-Svc"); len(v) != 1 || v[0] != `h3=":8443"; ma=86400` {
		t.Errorf("Alt-Svc %q, want one h3=\":8443\"; ma=86400", v)
	}
	resp, body, err := do(t, h3Client(t, r.ca.Pool(), "www.example.com"), url, "www.example.com")
	if err != nil || resp.Proto != "HTTP/3.0" || body != "a" {
		t.Errorf("HTTP/3 on the port of \":0\": %v; want HTTP/3.0 from backend a", err)
	}
}

// TestHTTP3Certificates serves over HTTP/3 a certificate provided after
// start, and the TLS options a router names: a handshake for its host
// needs a client certificate, and then negotiates h3.
func TestHTTP3Certificates(t *testing.T) {
	a := backendServer(t, "a")
	r := serveH3Site(t, "127.0.0.1:0", "", a.URL, ServersConfig{})
	url := "https://127.0.0.1:" + r.port() + "/"

	// A name no certificate covers gets the default one, which the
	// client does not trust; once provided, the name is served.
	if _, _, err := do(t, h3Client(t, r.ca.Pool(), "new.example.com"), url, "new.example.com"); err == nil {
		t.Fatal("new.example.com was served a trusted certificate before one was provided")
	}
	cfg := *r.cfg
	cfg.ProvidedCertificates = append(cfg.ProvidedCertificates, h3Pair(t, r.ca, "new", "new.example.com"))
	if err := r.rt.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	resp, _, err := do(t, h3Client(t, r.ca.Pool(), "new.example.com"), url, "new.example.com")
	if err != nil {
		t.Fatalf("new.example.com after its certificate was provided: %v", err)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "new" || resp.Proto != "HTTP/3.0" {
		t.Errorf("new.example.com: served %q over %s, want \"new\" over HTTP/3.0", cn, resp.Proto)
	}

	if _, _, err := do(t, h3Client(t, r.ca.Pool(), "locked.example.com"), url, "locked.example.com"); err == nil {
		t.Error("locked.example.com: served over HTTP/3 without the client certificate its TLS options require")
	}
	client := r.ca.Issue(t, testcert.Spec{CommonName: "client", Usage: testcert.Client}).TLS()
	resp, body, err := do(t, h3Client(t, r.ca.Pool(), "locked.example.com", client), url, "locked.example.com")
	if err != nil {
		t.Fatalf("locked.example.com with a client certificate: %v", err)
	}
	if resp.TLS.NegotiatedProtocol != "h3" || body != "a" {
		t.Errorf("locked.example.com: protocol %q, body %q; want h3 and backend a", resp.TLS.NegotiatedProtocol, body)
	}
}

// TestHTTP3ShutdownCompletesRequest shuts down while an HTTP/3 request
// waits for its backend: the request completes, and Shutdown returns.
func TestHTTP3ShutdownCompletesRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if once.CompareAndSwap(false, true) {
			close(entered)
		}
		<-release
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slow.Close)
	r := serveH3Site(t, "127.0.0.1:0", "", slow.URL, ServersConfig{})
	h3 := h3Client(t, r.ca.Pool(), "www.example.com")
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+r.port()+"/", nil)
		req.Host = "www.example.com"
		resp, err := h3.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.servers.Shutdown(ctx)
	}()
	// Once Shutdown has closed the TCP listener, the backend answers.
	for {
		c, err := net.Dial("tcp", r.servers.Addr("websecure").String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if res := <-got; res.err != nil || res.body != "slow" {
		t.Errorf("the request in flight at Shutdown: %q, %v; want it completed", res.body, res.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestHTTP3PortTaken fails Listen with a clear error when the UDP port of
// an entry point is taken, though its TCP port is free.
func TestHTTP3PortTaken(t *testing.T) {
	port := testserver.FreePorts(t, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	cfg := parseConfig(t, fmt.Sprintf(h3Site, addr, "", "http://127.0.0.1:1"))
	rt := New(Config{})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
	if err == nil {
		servers.Shutdown(context.Background())
		t.Fatal("Listen succeeded with the UDP port taken")
	}
	want := fmt.Sprintf("entry point websecure: http3: UDP port %d, which HTTP/3 shares with the TCP port of the entry point: ", port)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "free the UDP port or remove http3") {
		t.Errorf("Listen: %v\nwant it to contain %q", err, want)
	}
	// The TCP port was released.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the TCP port is still bound after Listen failed: %v", err)
	}
	ln.Close()
}

// TestHTTP3CertSourceAndMetrics serves a CertSource's certificate over
// QUIC, refuses TLS-ALPN-01 there (it is answered over TCP only), and
// counts an open QUIC connection and its handshake with the entry
// point's TCP ones.
func TestHTTP3CertSourceAndMetrics(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	source := staticCerts{"acme.example.com": mustParse(t, makePair(t, "", 30, "acme.example.com"))}
	challenge := mustParse(t, makePair(t, "", 20, "acme.example.com"))
	r := serveH3Site(t, "127.0.0.1:0", "", "http://127.0.0.1:1", ServersConfig{Certs: source, Challenges: staticChallenges{challenge}, Metrics: m})
	addr := r.servers.Addr("websecure").String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn, err := quic.DialAddr(ctx, addr, &tls.Config{ServerName: "acme.example.com", InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatalf("QUIC handshake for acme.example.com: %v", err)
	}
	if serial := conn.ConnectionState().TLS.PeerCertificates[0].SerialNumber.Int64(); serial != 30 {
		t.Errorf("acme.example.com over QUIC: served serial %d, want the CertSource's (30)", serial)
	}
	open, handshakes := m.connections.WithLabelValues("websecure"), m.handshakes.WithLabelValues("websecure")
	// The server counts the connection once it has handed it to HTTP/3,
	// which may be just after the client's handshake completes.
	waitFor(t, "one open connection", func() bool { return testutil.ToFloat64(open) == 1 })
	if got := testutil.ToFloat64(handshakes); got != 1 {
		t.Errorf("tollgate_tls_handshakes_total = %v after one QUIC handshake, want 1", got)
	}
	conn.CloseWithError(0, "")
	waitFor(t, "no open connection", func() bool { return testutil.ToFloat64(open) == 0 })

	if conn, err := quic.DialAddr(ctx, addr, &tls.Config{ServerName: "acme.example.com", InsecureSkipVerify: true, NextProtos: []string{ACMETLSProto}}, nil); err == nil {
		conn.CloseWithError(0, "")
		t.Error("a TLS-ALPN-01 handshake over QUIC succeeded, want it refused")
	}
}
