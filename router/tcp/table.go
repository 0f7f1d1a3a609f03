package tcp

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Options configures Build.
type Options struct {
	// Logger receives server state changes and connection errors. Nil
	// discards them.
	Logger *slog.Logger
	// Metrics, when set, counts connections and bytes.
	Metrics *Metrics
	// Start reads the files of serversTransports and starts the health
	// checks; false, for checking a configuration, does neither.
	Start bool
	// Previous is the table the new one replaces, if any: a server it
	// found down under the same service and address starts down.
	Previous *Table
}

// Table is the TCP routing of one configuration: the routers of each
// entry point in the order they are tried, and the services they use.
// It is immutable once built, but for the health of servers; Close stops
// its health checks, while the connections it routed go on.
type Table struct {
	eps map[string]*EntryPoint
	lbs map[string]*loadBalancer
	// inFlight are the inFlightConn middlewares by name: the next table
	// takes over those with the same amount, and with them the
	// connections open.
	inFlight map[string]*inFlight
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// EntryPoint holds the TCP routers of one entry point.
type EntryPoint struct {
	routes []*Route
	tls    bool
}

// Route is a TCP router on one entry point.
type Route struct {
	// Name is the router's name.
	Name string
	// TLS is the router's TLS settings; nil for a router of connections
	// without TLS.
	TLS *config.TCPRouterTLS

	priority    int
	match       matcher
	middlewares []middleware
	mwKinds     []string
	svc         service
	metrics     *routeMetrics
	log         *slog.Logger
}

// Build builds the TCP routing of cfg. A configuration without [tcp]
// gives a table without routers.
func Build(cfg *config.Config, o Options) (*Table, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Table{eps: map[string]*EntryPoint{}, lbs: map[string]*loadBalancer{}, inFlight: map[string]*inFlight{}, cancel: cancel}
	if cfg.TCP == nil || len(cfg.TCP.Routers) == 0 {
		return t, nil
	}
	tc := cfg.TCP
	transports := map[string]*transport{}
	for _, name := range slices.Sorted(maps.Keys(tc.ServersTransports)) {
		tr, err := newTransport(tc.ServersTransports[name], o.Start)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("tcp serversTransport %s: %w", name, err)
		}
		transports[name] = tr
	}
	defaultTransport, _ := newTransport(nil, false)
	services := map[string]service{}
	var checks []*healthCheck
	building := map[string]bool{}
	var buildService func(name string) (service, error)
	buildService = func(name string) (service, error) {
		if s := services[name]; s != nil {
			return s, nil
		}
		sc := tc.Services[name]
		if sc == nil {
			return nil, fmt.Errorf("tcp service %q is not defined", name)
		}
		if building[name] {
			return nil, fmt.Errorf("tcp service %s: services send connections to each other", name)
		}
		building[name] = true
		switch {
		case sc.LoadBalancer != nil:
			tr := defaultTransport
			if ref := sc.LoadBalancer.ServersTransport; ref != "" {
				if tr = transports[ref]; tr == nil {
					return nil, fmt.Errorf("tcp service %s: serversTransport %q is not defined", name, ref)
				}
			}
			lb, err := newLoadBalancer(name, sc.LoadBalancer, tr, o.Metrics, log)
			if err != nil {
				return nil, fmt.Errorf("tcp %w", err)
			}
			if o.Previous != nil && sc.LoadBalancer.HealthCheck != nil {
				lb.inherit(o.Previous.lbs[name])
			}
			if hc := sc.LoadBalancer.HealthCheck; hc != nil {
				checks = append(checks, newHealthCheck(lb, hc))
			}
			t.lbs[name] = lb
			services[name] = lb
		case sc.Weighted != nil:
			if len(sc.Weighted.Services) == 0 {
				return nil, fmt.Errorf("tcp service %s: weighted needs services", name)
			}
			w := &weighted{name: name, current: make([]int, len(sc.Weighted.Services))}
			for _, c := range sc.Weighted.Services {
				child, err := buildService(c.Name)
				if err != nil {
					return nil, fmt.Errorf("tcp service %s: %w", name, err)
				}
				weight := 1
				if c.Weight != nil {
					weight = *c.Weight
				}
				w.children = append(w.children, child)
				w.weights = append(w.weights, weight)
			}
			services[name] = w
		default:
			return nil, fmt.Errorf("tcp service %s: no service type is set", name)
		}
		return services[name], nil
	}
	mws := map[string]middleware{}
	kinds := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(tc.Middlewares)) {
		m, kind, err := buildMiddleware(name, tc.Middlewares[name])
		if err != nil {
			cancel()
			return nil, fmt.Errorf("tcp %w", err)
		}
		if f, ok := m.(*inFlight); ok {
			// A reload neither forgets the connections open nor lets a
			// client open more than the limit.
			if prev := o.Previous.inFlightNamed(name); prev != nil && prev.limit == f.limit {
				m = prev
			}
			t.inFlight[name] = m.(*inFlight)
		}
		mws[name], kinds[name] = m, kind
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Routers)) {
		r := tc.Routers[name]
		rte, err := newRoute(name, r, buildService, mws, kinds)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("tcp router %s: %w", name, err)
		}
		for _, ep := range slices.Sorted(maps.Keys(cfg.EntryPoints)) {
			if len(r.EntryPoints) > 0 && !slices.Contains(r.EntryPoints, ep) {
				continue
			}
			e := t.eps[ep]
			if e == nil {
				e = &EntryPoint{}
				t.eps[ep] = e
			}
			on := *rte
			on.metrics = o.Metrics.route(ep, name)
			on.log = log
			e.routes = append(e.routes, &on)
			e.tls = e.tls || r.TLS != nil
		}
	}
	for _, e := range t.eps {
		// Higher priority first; ties by name, which Build added in order.
		slices.SortStableFunc(e.routes, func(a, b *Route) int { return cmp.Compare(b.priority, a.priority) })
	}
	if o.Start {
		for _, c := range checks {
			c.run(ctx, &t.wg)
		}
	}
	return t, nil
}

func newRoute(name string, r *config.TCPRouter, buildService func(string) (service, error), mws map[string]middleware, kinds map[string]string) (*Route, error) {
	expr, err := rule.ParseTCP(r.Rule)
	if err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	match, err := compile(expr)
	if err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	if r.TLS == nil && needsTLS(expr) {
		return nil, fmt.Errorf("rule %q can match TLS connections only, and the router has no tls: add [tcp.routers.%s.tls], or match with HostSNI(`*`) and ClientIP", r.Rule, name)
	}
	if r.TLS != nil && r.TLS.Passthrough && (r.TLS.Options != "" || len(r.TLS.Domains) > 0) {
		return nil, fmt.Errorf("tls options and domains apply to TLS that tollgate terminates, not to passthrough: remove them, or passthrough")
	}
	svc, err := buildService(r.Service)
	if err != nil {
		return nil, err
	}
	rte := &Route{Name: name, TLS: r.TLS, priority: cmp.Or(r.Priority, len(r.Rule)), match: match, svc: svc}
	for _, m := range r.Middlewares {
		mw, ok := mws[m]
		if !ok {
			return nil, fmt.Errorf("tcp middleware %q is not defined", m)
		}
		rte.middlewares = append(rte.middlewares, mw)
		rte.mwKinds = append(rte.mwKinds, kinds[m])
	}
	return rte, nil
}

// Close stops the health checks and waits for them to return. The
// connections the table routed are left open.
func (t *Table) Close() {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}

// EntryPoint returns the TCP routers of an entry point, nil when it has
// none.
func (t *Table) EntryPoint(name string) *EntryPoint {
	if t == nil {
		return nil
	}
	return t.eps[name]
}

// HasTLS reports whether a router of e matches TLS connections: whether
// the connections of e must be read for a ClientHello before routing.
func (e *EntryPoint) HasTLS() bool { return e.tls }

// Match returns the first router of e that takes a connection, or nil.
func (e *EntryPoint) Match(h *Hello) *Route {
	for _, r := range e.routes {
		if (r.TLS != nil) == h.TLS && r.match(h) {
			return r
		}
	}
	return nil
}

// Serve runs conn through the router's middlewares and proxies it to a
// server of its service until both sides are done, and closes it. conn
// is what the service receives: the raw connection (its peeked bytes
// replayed) for passthrough, the TLS connection once tollgate terminated
// it. ctx bounds the connection to the server, not the proxying.
func (r *Route) Serve(ctx context.Context, conn net.Conn) {
	start := time.Now()
	client := addrPort(conn.RemoteAddr()).Addr()
	rm := r.metrics
	if rm != nil {
		rm.connections.Inc()
	}
	for i, m := range r.middlewares {
		release, ok := m.admit(client)
		if !ok {
			rm.refused(r.mwKinds[i])
			r.log.Debug("TCP connection refused", "router", r.Name, "middleware", r.mwKinds[i], "client", client)
			conn.Close()
			return
		}
		if release != nil {
			defer release()
		}
	}
	if rm != nil {
		rm.open.Inc()
		defer func() {
			rm.open.Dec()
			rm.duration.Observe(time.Since(start).Seconds())
		}()
	}
	server, tr, err := r.svc.dial(ctx, conn)
	if err != nil {
		r.log.Debug("TCP connection not proxied", "router", r.Name, "client", client, "error", err)
		conn.Close()
		return
	}
	if rm != nil {
		pipe(conn, server, tr, rm.bytesIn, rm.bytesOut)
		return
	}
	pipe(conn, server, tr, nil, nil)
}

// inherit takes over the health of the servers prev, the same service in
// the table replaced, had under the same address.
func (lb *loadBalancer) inherit(prev *loadBalancer) {
	if prev == nil {
		return
	}
	for _, s := range lb.servers {
		for _, o := range prev.servers {
			if o.address == s.address {
				s.healthy.Store(o.healthy.Load())
				break
			}
		}
	}
}

// ServerUp reports whether the server at address of the loadBalancer
// service is up: its health check, if any, passes.
func (t *Table) ServerUp(service, address string) bool {
	lb := t.lbs[service]
	if lb == nil {
		return false
	}
	for _, s := range lb.servers {
		if s.address == address {
			return s.healthy.Load()
		}
	}
	return false
}

// ServerStatus returns the state, "UP" or "DOWN", of each server of the
// loadBalancer service by address; nil when no router uses the service
// (it is not built, so nothing checks its servers).
func (t *Table) ServerStatus(service string) map[string]string {
	lb := t.lbs[service]
	if lb == nil {
		return nil
	}
	out := make(map[string]string, len(lb.servers))
	for _, s := range lb.servers {
		out[s.address] = "DOWN"
		if s.healthy.Load() {
			out[s.address] = "UP"
		}
	}
	return out
}

func (t *Table) inFlightNamed(name string) *inFlight {
	if t == nil {
		return nil
	}
	return t.inFlight[name]
}
