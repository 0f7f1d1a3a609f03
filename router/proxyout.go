package router

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/tollgate-proxy/tollgate/router/proxyproto"
)

// PROXY protocol to servers ([http.serversTransports.NAME.proxyProtocol])
//
// A serversTransport with proxyProtocol writes a header on every
// connection it dials, before TLS for an https server: its source is the
// client's address as the entry point saw it, its destination the address
// the client connected to (the entry point's own, as the client saw it),
// both after the entry point's own PROXY protocol, if any: what the
// specification asks for, as HAProxy's send-proxy and the TCP transport
// send. A request without the address it came to has the server's dialed
// address as destination. Since the header names one client, a
// connection must never carry the requests of another: such a transport
// keeps one pool per client connection (the client's address and port,
// and the address it connected to), built on the client's
// first request and kept, with its idle connections, until
// maxClientPools other clients have come since its last use; then it is
// dropped and its idle connections closed. The cost is one server
// connection (and TLS handshake) at least per client connection, where a
// transport without proxyProtocol shares its connections between every
// client. Requests without a client (health checks) have their own pool,
// whose header is LOCAL (version 2) or "PROXY UNKNOWN" (version 1).

// maxClientPools bounds the pools of one PROXY protocol transport.
const maxClientPools = 1024

// clientPools is an http.RoundTripper that sends each request through the
// pool of its client connection.
type clientPools struct {
	// build makes a pool whose connections start with dial's.
	build   func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	version int

	mu    sync.Mutex
	pools map[clientConn]*clientPool
	uses  uint64 // counts pool lookups, to order pools by last use
}

// clientConn names a client connection: the client's address (the
// request's RemoteAddr) and the address it connected to (its server
// connection's LocalAddr). Either is zero when unknown.
type clientConn struct {
	client, local netip.AddrPort
}

type clientPool struct {
	t    *http.Transport
	used uint64 // the value of uses at the last lookup
}

func newClientPools(version int, dial func(ctx context.Context, network, addr string) (net.Conn, error), build func(func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport) *clientPools {
	return &clientPools{build: build, dial: dial, version: version, pools: map[clientConn]*clientPool{}}
}

// RoundTrip sends r through its client connection's pool. A RemoteAddr
// that is not an IP and port (none, for a health check) is no client;
// the address the client connected to is the LocalAddr that the server
// put in r's context (a PROXY header's destination, after one).
func (c *clientPools) RoundTrip(r *http.Request) (*http.Response, error) {
	var cc clientConn
	if client, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		cc.client = client
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && local != nil {
		// An unspecified address (a UDP listener's, for HTTP/3) says
		// nothing of where the client connected to.
		if lp, err := netip.ParseAddrPort(local.String()); err == nil && !lp.Addr().IsUnspecified() {
			cc.local = lp
		}
	}
	return c.pool(cc).RoundTrip(r)
}

func (c *clientPools) pool(client clientConn) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uses++
	if p := c.pools[client]; p != nil {
		p.used = c.uses
		return p.t
	}
	if len(c.pools) >= maxClientPools {
		var oldest clientConn
		at := c.uses
		for k, p := range c.pools {
			if p.used < at {
				oldest, at = k, p.used
			}
		}
		c.pools[oldest].t.CloseIdleConnections()
		delete(c.pools, oldest)
	}
	p := &clientPool{t: c.build(proxyDial(c.dial, c.version, client)), used: c.uses}
	c.pools[client] = p
	return p.t
}

// CloseIdleConnections closes the idle connections of every pool and
// drops the pools.
func (c *clientPools) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.pools {
		p.t.CloseIdleConnections()
		delete(c.pools, k)
	}
}

// proxyDial returns a dial function that writes a PROXY protocol header
// for client on every connection dial makes.
func proxyDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), version int, client clientConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h, err := proxyHeader(version, client, conn.RemoteAddr())
		if err == nil {
			err = h.Write(conn)
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("PROXY protocol header to %s: %w", addr, err)
		}
		return conn, nil
	}
}

// proxyHeader is the header for a server connection of client: from the
// client's address to the address it connected to, or to the server's
// address when that is unknown. Without a client it says so: LOCAL in
// version 2, UNKNOWN in version 1. A source and a destination of
// different families are both sent as IPv6 (the IPv4 one mapped), since
// a header carries one family.
func proxyHeader(version int, client clientConn, server net.Addr) (*proxyproto.Header, error) {
	h := &proxyproto.Header{Version: version, Command: proxyproto.Proxy}
	if !client.client.IsValid() {
		if version == 2 {
			h.Command = proxyproto.Local
		}
		return h, nil
	}
	dst := client.local
	if !dst.IsValid() {
		ta, ok := server.(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("the server's address %v is not a TCP address", server)
		}
		dst = ta.AddrPort()
	}
	src := netip.AddrPortFrom(client.client.Addr().Unmap().WithZone(""), client.client.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap().WithZone(""), dst.Port())
	if src.Addr().Is4() != dst.Addr().Is4() {
		src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	}
	h.Transport = proxyproto.TransportStream
	h.Source, h.Destination = src, dst
	return h, nil
}
