package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// headerListener reads a PROXY protocol header at the start of every
// connection it accepts, as a server behind tollgate would.
type headerListener struct {
	net.Listener
	accepted atomic.Int64
}

type headerConn struct {
	net.Conn
	br *bufio.Reader
	h  *proxyproto.Header
}

func (c *headerConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (l *headerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepted.Add(1)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		c.SetReadDeadline(time.Time{})
		if err != nil {
			c.Close()
			continue
		}
		return &headerConn{Conn: c, br: br, h: h}, nil
	}
}

type headerKey struct{}

// headerBackend is a server that reads a PROXY protocol header on every
// connection and answers with what it said in X-PP: the source, or the
// command without addresses ("LOCAL", "PROXY"), and its version, and its
// destination in X-PP-Dst. Health
// checks (path /health) are reported on health.
func headerBackend(t *testing.T, useTLS bool) (*httptest.Server, *headerListener, chan string) {
	t.Helper()
	health := make(chan string, 100)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := r.Context().Value(headerKey{}).(*proxyproto.Header)
		w.Header().Set("X-Proto", r.Proto)
		seen := "none"
		if h != nil {
			seen = fmt.Sprintf("v%d %s", h.Version, h.Command)
			if h.HasAddrs() {
				seen = fmt.Sprintf("v%d %s", h.Version, h.Source)
				w.Header().Set("X-PP-Dst", h.Destination.String())
			}
		}
		if r.URL.Path == "/health" {
			select {
			case health <- seen:
			default:
			}
		}
		w.Header().Set("X-PP", seen)
	}))
	hl := &headerListener{Listener: s.Listener}
	s.Listener = hl
	s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		if hc, ok := c.(*headerConn); ok {
			return context.WithValue(ctx, headerKey{}, hc.h)
		}
		return ctx
	}
	if useTLS {
		s.EnableHTTP2 = true
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, hl, health
}

const proxyOutConfig = `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.proxyProtocol]
trustedIPs = ["127.0.0.1"]
[http.routers.all]
rule = "PathPrefix(` + "`/`" + `)"
service = "s"
[http.services.s.loadBalancer]
serversTransport = "pp"
[[http.services.s.loadBalancer.servers]]
url = %q
[http.serversTransports.pp]
insecureSkipVerify = true
[http.serversTransports.pp.proxyProtocol]
version = %d
`

// keepAliveClient is a client whose connections start with h (none when
// nil) and are kept for the next request.
func keepAliveClient(h *proxyproto.Header) *http.Client {
	c := proxyClient(h)
	c.Transport.(*http.Transport).DisableKeepAlives = false
	return c
}

// TestProxyProtocolOut sends requests of several clients through a
// serversTransport with proxyProtocol, to http and https servers: each
// server connection starts with the header of its client (the address the
// entry point saw, after its own PROXY protocol), and never carries
// another client's requests.
func TestProxyProtocolOut(t *testing.T) {
	for _, tc := range []struct {
		version int
		tls     bool
	}{{1, false}, {2, false}, {0, true}} {
		want := tc.version
		if want == 0 {
			want = 2
		}
		t.Run(fmt.Sprintf("version %d tls %v", tc.version, tc.tls), func(t *testing.T) {
			backend, hl, _ := headerBackend(t, tc.tls)
			o := serveObserved(t, fmt.Sprintf(proxyOutConfig, backend.URL, tc.version))
			url := "http://" + o.servers.Addr("web").String() + "/"

			// A client behind a load balancer, twice on one connection.
			behind := keepAliveClient(v2Header("203.0.113.9:5555", "198.51.100.1:80"))
			for range 2 {
				resp, _ := get(t, behind, url, "", nil)
				if got, exp := resp.Header.Get("X-PP"), fmt.Sprintf("v%d 203.0.113.9:5555", want); got != exp {
					t.Errorf("the server saw %q, want %q", got, exp)
				}
				// The address the client connected to: the destination
				// of the load balancer's header.
				if got := resp.Header.Get("X-PP-Dst"); got != "198.51.100.1:80" {
					t.Errorf("the server saw the destination %q, want 198.51.100.1:80", got)
				}
			}
			// A direct client, with a connection of its own.
			direct := keepAliveClient(nil)
			local := ""
			direct.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err == nil {
					local = c.LocalAddr().String()
				}
				return c, err
			}
			resp, _ := get(t, direct, url, "", nil)
			if got, exp := resp.Header.Get("X-PP"), fmt.Sprintf("v%d %s", want, local); got != exp {
				t.Errorf("the server saw %q for a direct client, want %q", got, exp)
			}
			// The address the client connected to: the entry point's.
			if got, exp := resp.Header.Get("X-PP-Dst"), o.servers.Addr("web").String(); got != exp {
				t.Errorf("the server saw the destination %q for a direct client, want %q", got, exp)
			}
			// The first client again: its own connection still.
			resp, _ = get(t, behind, url, "", nil)
			if got, exp := resp.Header.Get("X-PP"), fmt.Sprintf("v%d 203.0.113.9:5555", want); got != exp {
				t.Errorf("the server saw %q, want %q", got, exp)
			}
			if p := resp.Header.Get("X-Proto"); tc.tls != (p == "HTTP/2.0") {
				t.Errorf("the server was reached over %s", p)
			}
			if got := hl.accepted.Load(); got != 2 {
				t.Errorf("the server accepted %d connections for two clients, want 2", got)
			}
		})
	}
}

// TestProxyProtocolOutHealthCheck checks that health checks through a
// serversTransport with proxyProtocol send a header without a client.
func TestProxyProtocolOutHealthCheck(t *testing.T) {
	for version, want := range map[int]string{1: "v1 PROXY", 2: "v2 LOCAL"} {
		backend, _, health := headerBackend(t, false)
		serveObserved(t, fmt.Sprintf(proxyOutConfig, backend.URL, version)+`
[http.services.s.loadBalancer.healthCheck]
path = "/health"
interval = "1h"
`)
		select {
		case got := <-health:
			if got != want {
				t.Errorf("version %d: the health check sent %q, want %q", version, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("version %d: no health check reached the server", version)
		}
	}
}

// TestProxyHeaderFamilies checks the header's destination (the address
// the client connected to, else the server's) and a source and a
// destination of different address families: both are sent as IPv6.
func TestProxyHeaderFamilies(t *testing.T) {
	for _, tc := range []struct{ client, local, server, src, dst string }{
		{"192.0.2.1:1000", "", "198.51.100.1:80", "192.0.2.1:1000", "198.51.100.1:80"},
		{"192.0.2.1:1000", "", "[2001:db8::1]:80", "[::ffff:192.0.2.1]:1000", "[2001:db8::1]:80"},
		{"[2001:db8::2]:1000", "", "198.51.100.1:80", "[2001:db8::2]:1000", "[::ffff:198.51.100.1]:80"},
		{"[::ffff:192.0.2.1]:1000", "", "198.51.100.1:80", "192.0.2.1:1000", "198.51.100.1:80"},
		{"192.0.2.1:1000", "192.0.2.80:443", "198.51.100.1:80", "192.0.2.1:1000", "192.0.2.80:443"},
		{"192.0.2.1:1000", "[2001:db8::80]:443", "198.51.100.1:80", "[::ffff:192.0.2.1]:1000", "[2001:db8::80]:443"},
		{"[2001:db8::2]:1000", "[::ffff:192.0.2.80]:443", "[2001:db8::1]:80", "[2001:db8::2]:1000", "[::ffff:192.0.2.80]:443"},
	} {
		cc := clientConn{client: netip.MustParseAddrPort(tc.client)}
		if tc.local != "" {
			cc.local = netip.MustParseAddrPort(tc.local)
		}
		h, err := proxyHeader(2, cc, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.server)))
		if err != nil {
			t.Fatalf("%s to %s: %v", tc.client, tc.server, err)
		}
		if h.Source.String() != tc.src || h.Destination.String() != tc.dst {
			t.Errorf("%s to %s: header from %s to %s, want from %s to %s", tc.client, tc.server, h.Source, h.Destination, tc.src, tc.dst)
		}
		if _, err := h.Append(nil); err != nil {
			t.Errorf("%s to %s: %v", tc.client, tc.server, err)
		}
	}
}

// TestClientPoolsBound checks that a transport keeps at most
// maxClientPools pools, dropping the least recently used.
func TestClientPoolsBound(t *testing.T) {
	c := newClientPools(2, (&net.Dialer{}).DialContext, func(dial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
		return &http.Transport{DialContext: dial}
	})
	first := clientConn{client: netip.MustParseAddrPort("192.0.2.1:1")}
	c.pool(first)
	for i := range maxClientPools {
		c.pool(clientConn{client: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(i+1))})
	}
	if len(c.pools) != maxClientPools {
		t.Errorf("%d pools, want %d", len(c.pools), maxClientPools)
	}
	if c.pools[first] != nil {
		t.Error("the least recently used pool was kept")
	}
	c.CloseIdleConnections()
	if len(c.pools) != 0 {
		t.Errorf("%d pools left after CloseIdleConnections", len(c.pools))
	}
}

// TestProxyProtocolPoolKey checks that proxyProtocol and its version are
// part of a serversTransport's pool key: a reload that changes them
// builds new pools, one that does not keeps them.
func TestProxyProtocolPoolKey(t *testing.T) {
	key := func(st *config.ServersTransport) poolKey {
		k, err := transportKey(st)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	none := key(&config.ServersTransport{})
	v1 := key(&config.ServersTransport{ProxyProtocol: &config.ProxyProtocolOut{Version: 1}})
	v2 := key(&config.ServersTransport{ProxyProtocol: &config.ProxyProtocolOut{Version: 2}})
	if none == v1 || v1 == v2 || none == v2 {
		t.Error("proxyProtocol does not change the pool key")
	}
	if v1 != key(&config.ServersTransport{ProxyProtocol: &config.ProxyProtocolOut{Version: 1}}) {
		t.Error("the same proxyProtocol gives another pool key")
	}
}
