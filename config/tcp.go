package config

// TCP is the dynamic configuration of connections routed without HTTP:
// by the server name of a TLS ClientHello (passed through to a backend
// that terminates TLS itself, or terminated by tollgate), by the client's
// address, or every connection of an entry point. It is applied without
// a restart, like HTTP.
type TCP struct {
	// Routers match connections and hand them to a service, by name.
	Routers map[string]*TCPRouter `toml:"routers"`
	// Services are the backends, by name.
	Services map[string]*TCPService `toml:"services"`
	// Middlewares act on connections before the service, by name.
	Middlewares map[string]*TCPMiddleware `toml:"middlewares"`
	// ServersTransports are named settings for the connections to
	// servers (timeouts, TLS, PROXY protocol), chosen by a loadBalancer's
	// serversTransport.
	ServersTransports map[string]*TCPServersTransport `toml:"serversTransports"`
}

// TCPRouter matches connections with a rule and sends them through
// middlewares to a service.
//
// A connection is matched on the first bytes the client sends: a TLS
// ClientHello gives the server name (HostSNI) and the ALPN protocols;
// anything else matches only rules that need no TLS (HostSNI(`*`),
// ClientIP). TCP routers are tried before the HTTP routers of the same
// entry point; a connection no TCP router takes goes to HTTP.
type TCPRouter struct {
	// Rule is a Traefik v3 TCP rule made of HostSNI, HostSNIRegexp,
	// ClientIP and ALPN, such as "HostSNI(`db.example.com`)". Required.
	Rule string `toml:"rule"`
	// EntryPoints the router listens on. Empty means all of them.
	EntryPoints []string `toml:"entryPoints"`
	// Middlewares applied in order before the service.
	Middlewares []string `toml:"middlewares"`
	// Service receives the connections. Required.
	Service string `toml:"service"`
	// Priority orders routers whose rules both match: higher wins. Zero
	// means the length of the rule.
	Priority int `toml:"priority"`
	// TLS, when set, makes the router match TLS connections only, and
	// either terminate TLS with tollgate's certificates or pass it
	// through. Nil matches connections that are not TLS; its rule must
	// then be HostSNI(`*`), possibly with ClientIP.
	TLS *TCPRouterTLS `toml:"tls"`
}

// TCPRouterTLS configures TLS for a TCP router.
type TCPRouterTLS struct {
	// Passthrough sends the TLS connection to the service as it is, the
	// ClientHello included: the server holds the certificate and key,
	// tollgate never sees them. False terminates TLS with tollgate's
	// certificates (files, provided, ACME) and sends the plain bytes.
	Passthrough bool `toml:"passthrough"`
	// Options names the TLS options used when terminating. Empty means
	// "default". Not allowed with Passthrough.
	Options string `toml:"options"`
	// Domains are certificates to obtain for this router when
	// terminating, overriding the names of its HostSNI matchers when
	// ACME's onHostRule is on. Not allowed with Passthrough.
	Domains []Domain `toml:"domains"`
}

// TCPService is a named backend of TCP routers; exactly one of its fields
// is set.
type TCPService struct {
	// LoadBalancer spreads connections over servers.
	LoadBalancer *TCPLoadBalancer `toml:"loadBalancer"`
	// Weighted spreads connections over other TCP services by weight.
	Weighted *TCPWeighted `toml:"weighted"`
}

// TCPLoadBalancer spreads connections over servers by weighted round
// robin, skipping servers its health check finds down.
type TCPLoadBalancer struct {
	// Servers are the backends. At least one is required.
	Servers []TCPServer `toml:"servers"`
	// ServersTransport names the [tcp.serversTransports.NAME] used to
	// reach the servers. Empty means the defaults described there.
	ServersTransport string `toml:"serversTransport"`
	// HealthCheck enables active health checks: a connection (and
	// optionally a payload and an expected answer) to each server.
	HealthCheck *TCPHealthCheck `toml:"healthCheck"`
}

// TCPServer is one backend of a TCP service.
type TCPServer struct {
	// Address is host:port. Required.
	Address string `toml:"address"`
	// TLS speaks TLS to the server (with the serversTransport's TLS
	// settings) instead of plain TCP.
	TLS bool `toml:"tls"`
	// Weight in the round robin. Nil means 1; 0 sends no new connections.
	Weight *int `toml:"weight"`
}

// TCPHealthCheck checks that servers accept connections.
type TCPHealthCheck struct {
	// Port overrides the server's port.
	Port int `toml:"port"`
	// Send is written to the server once connected. Empty writes nothing.
	Send string `toml:"send"`
	// Expect must be what the server answers first (a prefix of it).
	// Empty means a connection is enough.
	Expect string `toml:"expect"`
	// Interval between checks. Zero means 30s.
	Interval Duration `toml:"interval"`
	// UnhealthyInterval between checks of a server found down. Zero
	// means Interval.
	UnhealthyInterval Duration `toml:"unhealthyInterval"`
	// Timeout of one check; less than Interval. Zero means 5s.
	Timeout Duration `toml:"timeout"`
}

// TCPWeighted spreads connections over TCP services by smooth weighted
// round robin.
type TCPWeighted struct {
	// Services are the children with their weights. At least one is
	// required.
	Services []WeightedService `toml:"services"`
}

// TCPMiddleware acts on a connection before its service; exactly one
// field is set.
type TCPMiddleware struct {
	// IPAllowList closes connections from addresses outside its ranges.
	IPAllowList *TCPIPAllowList `toml:"ipAllowList"`
	// InFlightConn limits the connections open at once per client IP.
	InFlightConn *InFlightConn `toml:"inFlightConn"`
}

// TCPIPAllowList admits only connections from listed ranges.
type TCPIPAllowList struct {
	// SourceRange lists IPs and CIDR ranges. At least one is required.
	SourceRange []string `toml:"sourceRange"`
}

// InFlightConn limits the connections open at once from one client IP;
// the ones above the limit are closed at once.
type InFlightConn struct {
	// Amount is the number of connections allowed. Required, positive.
	Amount int64 `toml:"amount"`
}

// TCPServersTransport configures the connections to TCP servers.
type TCPServersTransport struct {
	// DialTimeout bounds connecting. Zero means 30s.
	DialTimeout Duration `toml:"dialTimeout"`
	// DialKeepAlive is the interval of TCP keep-alive probes on the
	// connections to servers. Zero means 15s; negative turns them off.
	DialKeepAlive Duration `toml:"dialKeepAlive"`
	// IdleTimeout closes a connection on which neither side has sent
	// anything for this long. Zero means no limit (long-lived database
	// connections sit idle).
	IdleTimeout Duration `toml:"idleTimeout"`
	// TerminationDelay is how long the other direction may go on after
	// one side has closed its writing half (half-close) before the
	// connection is closed. Zero means 100ms; negative waits without
	// limit (until IdleTimeout).
	TerminationDelay Duration `toml:"terminationDelay"`
	// ProxyProtocol, when set, sends a PROXY protocol header with the
	// client's address first on every connection to a server.
	ProxyProtocol *ProxyProtocolOut `toml:"proxyProtocol"`
	// TLS configures the connections to servers marked tls.
	TLS *TCPClientTLS `toml:"tls"`
}

// ProxyProtocolOut sends a PROXY protocol header to servers.
type ProxyProtocolOut struct {
	// Version is 1 (text) or 2 (binary). Zero means 2.
	Version int `toml:"version"`
}

// TCPClientTLS configures TLS to TCP servers.
type TCPClientTLS struct {
	// ServerName is sent as SNI and checked in the server's certificate.
	// Empty means the host of the server's address.
	ServerName string `toml:"serverName"`
	// InsecureSkipVerify accepts any certificate.
	InsecureSkipVerify bool `toml:"insecureSkipVerify"`
	// RootCAs are PEM files of the CAs that servers' certificates must
	// chain to. Empty means the system's roots.
	RootCAs []string `toml:"rootCAs" file:"true"`
	// Certificates are client certificates presented to servers that ask
	// for one (mutual TLS).
	Certificates []Certificate `toml:"certificates"`
}

// ProxyProtocolIn accepts PROXY protocol headers (versions 1 and 2) on an
// entry point, so that the address of the client behind a network load
// balancer is the one routed on, logged and forwarded.
//
// A connection from a trusted address may start with a header; its
// address replaces the connection's, and a connection without one keeps
// its own. A header with the LOCAL command (or a version 1 UNKNOWN line)
// keeps the connection's own address too. A trusted connection whose
// header is invalid, or incomplete after the entry point's
// readHeaderTimeout (10s by default), is closed. A connection from any
// other address is served with its own address, and one that starts with
// a PROXY header anyway is refused: closed (the header would be read as
// the request otherwise), and counted.
type ProxyProtocolIn struct {
	// TrustedIPs are the IPs and CIDR ranges of the load balancers whose
	// headers are read. Required unless Insecure.
	TrustedIPs []string `toml:"trustedIPs"`
	// Insecure reads the header from every client. Use only when nothing
	// but the load balancer can reach the entry point.
	Insecure bool `toml:"insecure"`
}

// HTTP3 serves HTTP/3 (QUIC, on UDP) on a TLS entry point next to HTTP/1.1
// and HTTP/2, with the same certificates, and advertises it in Alt-Svc.
type HTTP3 struct {
	// AdvertisedPort is the UDP port advertised in Alt-Svc, when clients
	// reach the entry point on another port than it listens on (behind a
	// load balancer). Zero means the entry point's port.
	AdvertisedPort int `toml:"advertisedPort"`
}
