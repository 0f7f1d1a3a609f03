package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Limits of a TCP health check's payloads: what it sends is one small
// probe, and what it expects must arrive in the first answer.
const (
	// MaxTCPHealthCheckSend is the longest send of a TCP health check.
	MaxTCPHealthCheckSend = 4096
	// MaxTCPHealthCheckExpect is the longest expect of a TCP health check.
	MaxTCPHealthCheckExpect = 4096
)

// Defaults of a TCP health check, for the checks of their relation.
const (
	defaultTCPHealthInterval = 30 * time.Second
	defaultTCPHealthTimeout  = 5 * time.Second
)

// tcpNames are the defined names of [tcp], sorted.
type tcpNames struct {
	routers, services, middlewares, transports []string
}

// tcp checks [tcp]: routers, services, middlewares and serversTransports.
// Its names are a namespace of their own: a TCP router may have the name
// of an HTTP router.
func (v *validator) tcp() {
	t := v.cfg.TCP
	if t == nil {
		return
	}
	n := tcpNames{
		routers:     sorted(t.Routers),
		services:    sorted(t.Services),
		middlewares: sorted(t.Middlewares),
		transports:  sorted(t.ServersTransports),
	}
	v.names(p("tcp", "routers"), n.routers)
	v.names(p("tcp", "services"), n.services)
	v.names(p("tcp", "middlewares"), n.middlewares)
	v.names(p("tcp", "serversTransports"), n.transports)
	for _, name := range n.routers {
		v.tcpRouter(p("tcp", "routers", name), t.Routers[name], &n)
	}
	for _, name := range n.services {
		v.tcpService(p("tcp", "services", name), t.Services[name], &n)
	}
	for _, name := range n.middlewares {
		v.tcpMiddleware(p("tcp", "middlewares", name), t.Middlewares[name])
	}
	for _, name := range n.transports {
		v.tcpServersTransport(p("tcp", "serversTransports", name), t.ServersTransports[name])
	}
	v.tcpServiceCycles(n.services)
}

func (v *validator) tcpRouter(path []string, r *TCPRouter, n *tcpNames) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	var e rule.Expr
	if r.Rule == "" {
		v.add(at("rule"), "rule is required, such as \"HostSNI(`db.example.com`)\", or \"HostSNI(`*`)\" for every connection")
	} else if parsed, err := rule.ParseTCP(r.Rule); err != nil {
		v.add(at("rule"), "invalid rule: %v", err)
	} else {
		e = parsed
	}
	for i, ep := range r.EntryPoints {
		v.ref(at("entryPoints", strconv.Itoa(i)), "entry point", ep, v.entryPointNames)
	}
	for i, mw := range r.Middlewares {
		v.tcpRef(at("middlewares", strconv.Itoa(i)), "middleware", mw, n.middlewares, v.middlewareNames)
	}
	if r.Service == "" {
		v.add(at("service"), "service is required: the name of a service under [tcp.services]")
	} else {
		v.tcpRef(at("service"), "service", r.Service, n.services, v.serviceNames)
	}
	if r.Priority < 0 {
		v.add(at("priority"), "priority %d is negative; use 0 (the rule's length) or more", r.Priority)
	}
	if r.TLS == nil {
		if e != nil && !rule.MatchesWithoutTLS(e) {
			v.add(at("rule"), "this rule needs TLS (a server name or ALPN protocols, which only a TLS ClientHello carries), but the router has no [tls], so it takes only connections that are not TLS and never matches: add [%s.tls] (with passthrough = true to pass TLS on to the service), or write HostSNI(`*`) to take every connection", strings.Join(path, "."))
		}
		return
	}
	if r.TLS.Passthrough {
		if r.TLS.Options != "" {
			v.add(at("tls", "options"), "options are not used with passthrough: the service terminates TLS; remove options or passthrough")
		}
		if len(r.TLS.Domains) > 0 {
			v.add(at("tls", "domains"), "domains are not used with passthrough: the service holds the certificates; remove domains or passthrough")
		}
		return
	}
	v.tlsOptionsRef(at("tls", "options"), r.TLS.Options)
	for i, d := range r.TLS.Domains {
		v.domain(at("tls", "domains", strconv.Itoa(i)), d)
	}
}

// tcpRef checks a reference from [tcp] to a TCP object of kind, and says
// so when the name is that of an HTTP one (http, sorted), which TCP
// routers cannot use.
func (v *validator) tcpRef(path []string, kind, name string, defined, http []string) {
	if _, found := slices.BinarySearch(defined, name); found {
		return
	}
	if _, found := slices.BinarySearch(http, name); found {
		v.add(path, "%s %q is an HTTP %s; name a %s under [tcp.%ss]", kind, name, kind, kind, kind)
		return
	}
	v.ref(path, "TCP "+kind, name, defined)
}

func (v *validator) tcpService(path []string, s *TCPService, n *tcpNames) {
	at, ok := oneType(v, path, s, "service", ", such as [tcp.services.NAME.loadBalancer] with at least one server", "")
	if !ok {
		return
	}
	if w := s.Weighted; w != nil {
		if len(w.Services) == 0 {
			v.add(at("services"), "at least one service is required: [[tcp.services.NAME.weighted.services]] with name = \"a TCP service\"")
		}
		for i, c := range w.Services {
			cp := at("services", strconv.Itoa(i))
			if c.Name == "" {
				v.add(append(cp, "name"), "name is required: the name of a service under [tcp.services]")
			} else {
				v.tcpRef(append(slices.Clip(cp), "name"), "service", c.Name, n.services, v.serviceNames)
			}
			v.weight(append(cp, "weight"), c.Weight)
		}
		return
	}
	lb := s.LoadBalancer
	if len(lb.Servers) == 0 {
		v.add(at("servers"), "at least one server is required: [[tcp.services.NAME.loadBalancer.servers]] with address = \"10.0.0.7:5432\"")
	}
	for i, srv := range lb.Servers {
		sp := at("servers", strconv.Itoa(i))
		if srv.Address == "" {
			v.add(append(sp, "address"), "address is required: host:port, such as \"10.0.0.7:5432\"")
		} else {
			v.check(append(slices.Clip(sp), "address"), checkDialAddress(srv.Address))
		}
		v.weight(append(sp, "weight"), srv.Weight)
	}
	if lb.ServersTransport != "" {
		v.ref(at("serversTransport"), "TCP serversTransport", lb.ServersTransport, n.transports)
	}
	if hc := lb.HealthCheck; hc != nil {
		v.tcpHealthCheck(at("healthCheck"), hc)
	}
}

// weight checks an optional weight of a server or a weighted child.
func (v *validator) weight(path []string, w *int) {
	if w != nil && (*w < 0 || *w > 1_000_000) {
		v.add(path, "weight %d is out of range 0 to 1000000", *w)
	}
}

func (v *validator) tcpHealthCheck(path []string, hc *TCPHealthCheck) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if hc.Port < 0 || hc.Port > 65535 {
		v.add(at("port"), "port %d is out of range 1 to 65535 (0 is the server's port)", hc.Port)
	}
	if len(hc.Send) > MaxTCPHealthCheckSend {
		v.add(at("send"), "send is %d bytes, more than the %d a health check may send", len(hc.Send), MaxTCPHealthCheckSend)
	}
	if len(hc.Expect) > MaxTCPHealthCheckExpect {
		v.add(at("expect"), "expect is %d bytes, more than the %d a health check may expect", len(hc.Expect), MaxTCPHealthCheckExpect)
	}
	v.nonNegative(at("interval"), hc.Interval)
	v.nonNegative(at("unhealthyInterval"), hc.UnhealthyInterval)
	v.nonNegative(at("timeout"), hc.Timeout)
	if hc.Interval < 0 || hc.UnhealthyInterval < 0 || hc.Timeout < 0 {
		return
	}
	interval, timeout := effective(hc.Interval, defaultTCPHealthInterval), effective(hc.Timeout, defaultTCPHealthTimeout)
	unhealthy := effective(hc.UnhealthyInterval, interval)
	switch {
	case timeout >= interval:
		v.add(at("timeout"), "timeout (%s) must be shorter than interval (%s), or checks overlap", timeout, interval)
	case timeout >= unhealthy:
		v.add(at("timeout"), "timeout (%s) must be shorter than unhealthyInterval (%s), or checks overlap", timeout, unhealthy)
	}
}

// checkDialAddress accepts the host:port of a server: an IP address or a
// host name, and a port from 1 to 65535.
func checkDialAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port; write it like \"10.0.0.7:5432\" or \"db.internal:5432\" (IPv6 in brackets: \"[2001:db8::7]:5432\")", truncate(addr, 80))
	}
	if host == "" {
		return fmt.Errorf("%q has no host; write the server's address or name before the port", truncate(addr, 80))
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %w", truncate(addr, 80), err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("%q: the address has a zone; write it without", truncate(addr, 80))
		}
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("%q: the host is longer than 253 bytes", truncate(addr, 80))
	}
	for _, l := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if err := checkLabel(host, l); err != nil {
			return fmt.Errorf("address: %w", err)
		}
	}
	return nil
}

func (v *validator) tcpMiddleware(path []string, m *TCPMiddleware) {
	at, ok := oneType(v, path, m, "middleware", "", " and list them both in the router")
	if !ok {
		return
	}
	switch {
	case m.IPAllowList != nil:
		ranges := m.IPAllowList.SourceRange
		if len(ranges) == 0 {
			v.add(at("sourceRange"), "at least one IP or CIDR range is required, such as [\"10.0.0.0/8\"]")
		}
		for i, r := range ranges {
			v.check(at("sourceRange", strconv.Itoa(i)), checkIPOrCIDR(r))
		}
	case m.InFlightConn != nil:
		if m.InFlightConn.Amount <= 0 {
			v.add(at("amount"), "amount %d: use the number of connections one client IP may have open, 1 or more", m.InFlightConn.Amount)
		}
	}
}

func (v *validator) tcpServersTransport(path []string, st *TCPServersTransport) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	v.nonNegative(at("dialTimeout"), st.DialTimeout)
	v.nonNegative(at("idleTimeout"), st.IdleTimeout)
	// dialKeepAlive and terminationDelay may be negative: no keep-alive,
	// no limit.
	if pp := st.ProxyProtocol; pp != nil {
		v.check(at("proxyProtocol", "version"), checkProxyProtocolVersion(pp.Version))
	}
	if t := st.TLS; t != nil {
		v.clientTLS(at("tls"), t.ServerName, t.InsecureSkipVerify, t.RootCAs, t.Certificates)
	}
}

// tcpServiceCycles reports weighted TCP services that send connections to
// each other, as serviceCycles does for HTTP.
func (v *validator) tcpServiceCycles(names []string) {
	svcs := v.cfg.TCP.Services
	next := func(name string) []string {
		s := svcs[name]
		if s == nil || s.Weighted == nil {
			return nil
		}
		out := make([]string, 0, len(s.Weighted.Services))
		for _, c := range s.Weighted.Services {
			out = append(out, c.Name)
		}
		return out
	}
	exists := func(name string) bool { return svcs[name] != nil }
	for _, c := range cycles(names, exists, next) {
		path := p("tcp", "services", c.group[0], "weighted")
		if len(c.group) == 1 {
			v.add(path, "service %q sends connections to itself; name other services", c.group[0])
			continue
		}
		v.add(path, "services %s send connections to each other: %s; break the cycle", strings.Join(c.group, ", "), strings.Join(c.path, " → "))
	}
}
