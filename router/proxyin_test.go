package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// observedServers runs a configuration with metrics, an access log and a
// debug log, all kept for the test.
type observedServers struct {
	servers      *Servers
	m            *Metrics
	access, logs *testserver.Buffer
}

func serveObserved(t *testing.T, doc string) *observedServers {
	t.Helper()
	cfg := parseConfig(t, doc)
	m, err := NewMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &observedServers{m: m, access: &testserver.Buffer{}, logs: &testserver.Buffer{}}
	log := slog.New(slog.NewJSONHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := New(Config{Metrics: m, AccessLog: slog.New(slog.NewJSONHandler(o.access, nil)), Logger: log})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	servers, err := Listen(ServersConfig{Config: cfg, Router: rt, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	o.servers = servers
	done := make(chan error, 1)
	go func() { done <- servers.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		servers.Shutdown(ctx)
		<-done
		rt.Close()
	})
	return o
}

func (o *observedServers) count(ep, outcome string) float64 {
	return testutil.ToFloat64(o.m.proxyProtocol.WithLabelValues(ep, outcome))
}

// accessClients returns the client field of every access log record.
func (o *observedServers) accessClients() []string {
	var out []string
	for line := range strings.Lines(o.access.String()) {
		var rec struct{ Client string }
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec.Client)
		}
	}
	return out
}

// proxyClient is an HTTP client whose connections start with h (none when
// nil), for plain and TLS entry points alike.
func proxyClient(h *proxyproto.Header) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the entry point's self-signed default certificate
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil || h == nil {
				return c, err
			}
			if err := h.Write(c); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}}
}

func v1Header(src, dst string) *proxyproto.Header {
	return &proxyproto.Header{Version: 1, Command: proxyproto.Proxy, Transport: proxyproto.TransportStream,
		Source: netip.MustParseAddrPort(src), Destination: netip.MustParseAddrPort(dst)}
}

func v2Header(src, dst string) *proxyproto.Header {
	h := v1Header(src, dst)
	h.Version = 2
	return h
}

const proxyInConfig = `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.proxyProtocol]
trustedIPs = [%[1]q]
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[entryPoints.websecure.proxyProtocol]
trustedIPs = [%[1]q]
[http.routers.all]
rule = "PathPrefix(` + "`/`" + `)"
service = "s"
[http.routers.secure]
rule = "PathPrefix(` + "`/`" + `)"
service = "s"
entryPoints = ["websecure"]
[http.routers.secure.tls]
[[http.services.s.loadBalancer.servers]]
url = %[2]q
`

// TestProxyProtocolInTrusted sends version 1 and 2 headers from a trusted
// address to a plain and a TLS entry point: the header's source is the
// client the server forwards (X-Forwarded-For) and logs; a LOCAL header
// and no header leave the connection's own address.
func TestProxyProtocolInTrusted(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "127.0.0.0/8", backend.URL))
	cases := []struct {
		name        string
		h           *proxyproto.Header
		xff, logged string
	}{
		{"v1", v1Header("203.0.113.7:4242", "198.51.100.1:443"), "203.0.113.7", "203.0.113.7:4242"},
		{"v2", v2Header("[2001:db8::7]:4243", "[2001:db8::1]:443"), "2001:db8::7", "[2001:db8::7]:4243"},
		{"v2 LOCAL", &proxyproto.Header{Version: 2, Command: proxyproto.Local}, "127.0.0.1", "127.0.0.1:"},
		{"v1 UNKNOWN", &proxyproto.Header{Version: 1, Command: proxyproto.Proxy}, "127.0.0.1", "127.0.0.1:"},
		{"no header", nil, "127.0.0.1", "127.0.0.1:"},
	}
	for _, ep := range []string{"web", "websecure"} {
		scheme := map[string]string{"web": "http", "websecure": "https"}[ep]
		for _, tc := range cases {
			before := len(o.accessClients())
			resp, body := get(t, proxyClient(tc.h), scheme+"://"+o.servers.Addr(ep).String()+"/", "", nil)
			if resp.StatusCode != http.StatusOK || body != "a" {
				t.Errorf("%s %s: %d %q, want 200 from the backend", ep, tc.name, resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Seen-Forwarded-For"); got != tc.xff {
				t.Errorf("%s %s: the backend saw X-Forwarded-For %q, want %q", ep, tc.name, got, tc.xff)
			}
			clients := waitRecords(t, o, before+1)
			if got := clients[before]; !strings.HasPrefix(got, tc.logged) || (strings.HasSuffix(tc.logged, ":") && got == tc.logged) {
				t.Errorf("%s %s: the access log has client %q, want %q", ep, tc.name, got, tc.logged)
			}
		}
		if got := o.count(ep, ppHeader); got != 4 {
			t.Errorf("%s: %v connections counted with a header, want 4", ep, got)
		}
		if got := o.count(ep, ppNoHeader); got != 1 {
			t.Errorf("%s: %v connections counted without a header, want 1", ep, got)
		}
	}
}

// waitRecords waits for the access log to hold n records, which it
// writes after the response.
func waitRecords(t *testing.T, o *observedServers, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		clients := o.accessClients()
		if len(clients) >= n {
			return clients
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log has %d records, want %d", len(clients), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawExchange sends b on a new connection to addr and returns what comes
// back until the server closes it.
func rawExchange(t *testing.T, addr string, b []byte) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		return "", err
	}
	got, err := io.ReadAll(c)
	return string(got), err
}

// TestProxyProtocolInOneWrite sends the header and the request in one
// write: the bytes read past the header reach the HTTP server.
func TestProxyProtocolInOneWrite(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "127.0.0.1", backend.URL))
	for _, h := range []*proxyproto.Header{v1Header("203.0.113.8:1000", "198.51.100.1:80"), v2Header("203.0.113.8:1000", "198.51.100.1:80")} {
		b, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"...)
		got, err := rawExchange(t, o.servers.Addr("web").String(), b)
		if err != nil || !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, "X-Seen-Forwarded-For: 203.0.113.8\r\n") {
			t.Errorf("version %d: %q, %v; want 200 for 203.0.113.8", h.Version, got, err)
		}
	}
}

// TestProxyProtocolInUntrusted connects from 127.0.0.1 to entry points
// that trust 10.0.0.0/8 only: a header is refused (the connection closed
// without an answer, counted), a request without one is served with the
// connection's own address.
func TestProxyProtocolInUntrusted(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "10.0.0.0/8", backend.URL))
	for _, ep := range []string{"web", "websecure"} {
		scheme := map[string]string{"web": "http", "websecure": "https"}[ep]
		url := scheme + "://" + o.servers.Addr(ep).String() + "/"
		for _, h := range []*proxyproto.Header{v1Header("203.0.113.7:4242", "198.51.100.1:443"), v2Header("203.0.113.7:4242", "198.51.100.1:443")} {
			if resp, err := proxyClient(h).Get(url); err == nil {
				resp.Body.Close()
				t.Errorf("%s: a version %d header from an untrusted address was served: %s", ep, h.Version, resp.Status)
			}
		}
		if got := o.count(ep, ppRefused); got != 2 {
			t.Errorf("%s: %v headers counted as refused, want 2", ep, got)
		}
		resp, _ := get(t, proxyClient(nil), url, "", nil)
		if got := resp.Header.Get("X-Seen-Forwarded-For"); resp.StatusCode != http.StatusOK || got != "127.0.0.1" {
			t.Errorf("%s: without a header: %s, X-Forwarded-For %q; want 200 for 127.0.0.1", ep, resp.Status, got)
		}
		if got := o.count(ep, ppNoHeader) + o.count(ep, ppHeader) + o.count(ep, ppInvalid); got != 0 {
			t.Errorf("%s: untrusted connections counted as trusted ones: %v", ep, got)
		}
	}
	if !strings.Contains(o.logs.String(), "untrusted address refused") {
		t.Errorf("the refusal is not logged:\n%s", o.logs.String())
	}
	if strings.Contains(o.logs.String(), "203.0.113.7") {
		t.Errorf("the log quotes the refused header:\n%s", o.logs.String())
	}
}

// TestProxyProtocolInInvalid sends malformed headers from a trusted
// address: the connection is closed without an answer, counted and
// logged without the header's content.
func TestProxyProtocolInInvalid(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "127.0.0.1", backend.URL))
	bad := []string{
		"PROXY TCP4 198.51.100.99 x\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PROXY TCP4 198.51.100.99 198.51.100.1 1 2\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x02\xc6\x33", // length too short for IPv4
	}
	for _, b := range bad {
		got, err := rawExchange(t, o.servers.Addr("web").String(), []byte(b))
		if got != "" {
			t.Errorf("%q was answered: %q, %v", b, got, err)
		}
	}
	if got := o.count("web", ppInvalid); got != float64(len(bad)) {
		t.Errorf("%v invalid headers counted, want %d", got, len(bad))
	}
	logs := o.logs.String()
	if !strings.Contains(logs, "invalid PROXY protocol header") {
		t.Errorf("the invalid headers are not logged:\n%s", logs)
	}
	if strings.Contains(logs, "198.51.100.99") {
		t.Errorf("the log quotes a header:\n%s", logs)
	}
}

// TestProxyProtocolInInvalidNoContent sends headers from a trusted
// address, each wrong in another field, to a plain and a TLS entry point:
// the log names what was wrong and holds no byte of any field.
func TestProxyProtocolInInvalidNoContent(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "127.0.0.1", backend.URL))
	bad := []struct{ header, reason string }{
		{"PROXY s3cr3t-t0ken 192.0.2.201 192.0.2.202 4711 4712\r\n", "bad protocol"},
		{"PROXY TCP4 src-t0ken 192.0.2.202 4711 4712\r\n", "bad source address"},
		{"PROXY TCP4 192.0.2.201 dst-t0ken 4711 4712\r\n", "bad destination address"},
		{"PROXY TCP4 192.0.2.201 192.0.2.202 sport-t0ken 4712\r\n", "bad source port"},
		{"PROXY TCP4 192.0.2.201 192.0.2.202 4711 dport-t0ken\r\n", "bad destination port"},
		{"PROXY TCP6 2001:db8::7a11 192.0.2.202 4711 4712\r\n", "bad destination address"},
		{"PROXY TCP4 192.0.2.201 192.0.2.202 4711 4712 extra-t0ken\r\n", "bad field count"},
	}
	for _, ep := range []string{"web", "websecure"} {
		for _, b := range bad {
			got, err := rawExchange(t, o.servers.Addr(ep).String(), []byte(b.header))
			if got != "" {
				t.Errorf("%s: %q was answered: %q, %v", ep, b.header, got, err)
			}
		}
		if got := o.count(ep, ppInvalid); got != float64(len(bad)) {
			t.Errorf("%s: %v invalid headers counted, want %d", ep, got, len(bad))
		}
	}
	// The connections are closed before the log is written: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(o.logs.String(), "invalid PROXY protocol header, connection closed") < 2*len(bad) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	logs := o.logs.String()
	for _, b := range bad {
		if !strings.Contains(logs, `"reason":"`+b.reason+`"`) {
			t.Errorf("no reason %q logged for %q", b.reason, b.header)
		}
	}
	for _, token := range []string{"t0ken", "192.0.2.20", "2001:db8::7a11", "4711", "4712"} {
		if strings.Contains(logs, token) {
			t.Errorf("the log holds %q from a header:\n%s", token, logs)
		}
	}
}

// TestProxyProtocolInSlowClient keeps a trusted connection that sends
// nothing open while another is served, and sees it closed after the
// entry point's readHeaderTimeout.
func TestProxyProtocolInSlowClient(t *testing.T) {
	backend := backendServer(t, "a")
	o := serveObserved(t, fmt.Sprintf(proxyInConfig, "127.0.0.1", backend.URL)+`
[entryPoints.web.transport.respondingTimeouts]
readHeaderTimeout = "300ms"
`)
	addr := o.servers.Addr("web").String()
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	resp, body := get(t, proxyClient(v2Header("203.0.113.5:1", "198.51.100.1:80")), "http://"+addr+"/", "", nil)
	if resp.StatusCode != http.StatusOK || body != "a" {
		t.Errorf("with a silent connection open: %d %q, want 200 from the backend", resp.StatusCode, body)
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(slow).ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent connection was not closed by the server: %v", err)
	}
	if got := o.count("web", ppInvalid); got != 1 {
		t.Errorf("%v connections without a header in time counted as invalid, want 1", got)
	}
}
