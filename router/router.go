// Package router serves HTTP(S) on the configured entry points: it matches
// requests against router rules, runs them through middlewares and
// forwards them to load-balanced services. Each configuration is built
// into an immutable generation off the request path and swapped in
// atomically, so requests in flight and open connections are unaffected by
// a reload.
//
// # TLS certificates
//
// A TLS handshake whose client offers the ACME TLS-ALPN-01 protocol gets
// the challenge certificate (ServersConfig.Challenges) and nothing else. Any other handshake gets the first certificate found, in this
// order:
//
//  1. the provided certificates: the configuration's ProvidedCertificates,
//     such as the TLS Secrets of Kubernetes Ingresses, as the newest Apply
//     indexed them; an explicit certificate wins for its names;
//  2. ServersConfig.Certs: certificates from ACME, obtained ahead or on
//     demand;
//  3. the configuration's certificate files (tls.certificates);
//  4. the default certificate: tls.stores.default.defaultCertificate, or
//     else a self-signed one made at start.
//
// Within 1 and 3 an exact name beats a wildcard, which covers one label
// (*.example.com covers a.example.com, not a.b.example.com); a handshake
// without a server name, or whose server name is an IP address, finds a
// certificate by the IP addresses of its subject alternative names (the
// address the client connected to, without a server name). TLS options
// with sniStrict refuse a handshake without a server name, or for a name
// 1 to 3 do not cover, instead of serving the default certificate. For a
// name two provided pairs cover alike the first pair in
// ProvidedCertificates wins; for a name two files cover alike, the later
// file. A provided pair that
// cannot be served (ParseKeyPair) is left out and logged, and the others
// are served. Apply swaps the provided certificates in with the routes:
// the next handshake sees them, connections already open keep the
// certificate they were made with.
package router

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
	"github.com/tollgate-proxy/tollgate/router/middleware"
	"github.com/tollgate-proxy/tollgate/router/tcp"
)

// Config configures a Router.
type Config struct {
	// Logger receives reload and backend events. Nil discards them.
	Logger *slog.Logger
	// Metrics, when set, counts requests and reloads.
	Metrics *Metrics
	// AccessLog, when set, receives one record per request.
	AccessLog *slog.Logger
	// Events, when set, is told of every configuration applied, with a
	// summary of what changed (for /api/events).
	Events EventRecorder
}

// Router holds the routing generation in force and builds new ones.
type Router struct {
	log     *slog.Logger
	metrics *Metrics
	access  *slog.Logger
	events  EventRecorder
	tr      transports
	auth    *middleware.AuthClients // of forwardAuth middlewares

	mu      sync.Mutex // serializes Apply and Close
	current atomic.Pointer[generation]
	closed  bool
	// parsed holds the provided key pairs of the last Apply, parsed, by
	// content (pairSum), and warned those of them logged as not served;
	// see indexProvided. Guarded by mu.
	parsed map[[sha256.Size]byte]*parsedPair
	warned map[warning]bool
	// pools are the connection pools of the serversTransports of the
	// generation in force, by key (see namedTransports). Guarded by mu.
	pools map[poolKey]transports
}

// generation is the routing state built from one configuration. It is
// never modified after it is built.
type generation struct {
	cfg    *config.Config
	tables map[string]*table // by entry point
	// services are the loadBalancer services, by name; handlers are the
	// services of every type, loadBalancers included.
	services map[string]*service
	handlers map[string]serviceHandler
	// mirrors owns the requests of mirroring services in flight.
	mirrors *mirrorGroup
	// tlsByHost names the TLS options of routers that set them, by entry
	// point and the exact hosts their rules require.
	tlsByHost map[string]map[string]string
	// trust says, by entry point, whose forwarded headers are kept.
	trust map[string]forwardTrust
	// provided indexes the configuration's ProvidedCertificates that can
	// be served.
	provided *certIndex
	cancel   context.CancelFunc
	wg       sync.WaitGroup // health checks

	// authClients are the clients its forwardAuth middlewares use.
	authClients []*middleware.ForwardAuthHandle
	// tcp routes the connections of [tcp]; stop closes it (its health
	// checks), and the connections it routed go on.
	tcp *tcp.Table
}

// New returns a Router with no routes: every request gets 404 until
// Apply.
func New(cfg Config) *Router {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt := &Router{log: log, metrics: cfg.Metrics, access: cfg.AccessLog, events: cfg.Events, tr: newTransports(), auth: middleware.NewAuthClients()}
	cfg.Metrics.watch(rt)
	return rt
}

func newTransports() transports {
	std := http.DefaultTransport.(*http.Transport).Clone()
	std.MaxIdleConnsPerHost = 256
	std.ResponseHeaderTimeout = 0
	h2c := http.DefaultTransport.(*http.Transport).Clone()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return transports{std: std, h2c: h2c, buffers: newBufferPool()}
}

// Apply builds a generation from cfg and swaps it in: new requests and
// new TLS handshakes see it at once. On error the generation in force
// stays. A provided certificate (cfg.ProvidedCertificates) that cannot be
// served is no error: it is left out and logged (see ParseKeyPair), and
// the others are served. Apply parses only the pairs whose content the
// last Apply did not have, so an unchanged pair costs a hash.
func (rt *Router) Apply(cfg *config.Config) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return errors.New("router closed")
	}
	named, pools, err := rt.namedTransports(httpOf(cfg))
	if err != nil {
		rt.metrics.Reloaded(false)
		return err
	}
	g, err := rt.build(cfg, named)
	rt.metrics.Reloaded(err == nil)
	if err != nil {
		rt.dropNewPools(pools)
		return err
	}
	g.provided = rt.indexProvided(cfg.ProvidedCertificates)
	old := rt.current.Swap(g)
	rt.auth.Keep(g.authClients)
	var oldCfg *config.Config
	if old != nil {
		old.stop()
		oldCfg = old.cfg
	}
	// After the old health checks have stopped, so that none of them
	// returns a connection to a dropped pool once it is closed.
	rt.keepPools(pools)
	summary := reloadSummary(oldCfg, cfg)
	if old != nil {
		rt.log.Info("configuration applied", summary...)
	}
	if rt.events != nil {
		rt.events.Record(EventConfigApplied, summaryText(summary))
	}
	return nil
}

// maxLoggedNames caps the names the reload line lists for each kind of
// change; the rest are counted.
const maxLoggedNames = 10

// reloadSummary describes what a reload changed: for routers, services,
// middlewares and servers transports, HTTP and TCP, how many were added,
// removed and changed, and which (names only, never their content; at
// most maxLoggedNames of each, then "+N more").
func reloadSummary(old, cfg *config.Config) []any {
	oh, nh := httpOf(old), httpOf(cfg)
	out := []any{
		diffGroup("routers", oh.Routers, nh.Routers),
		diffGroup("services", oh.Services, nh.Services),
		diffGroup("middlewares", oh.Middlewares, nh.Middlewares),
	}
	// Servers transports, which few configurations have, only when some
	// are defined before or after.
	if len(oh.ServersTransports)+len(nh.ServersTransports) > 0 {
		out = append(out, diffGroup("serversTransports", oh.ServersTransports, nh.ServersTransports))
	}
	// TCP routing, only when some is configured before or after, as the
	// HTTP groups: routers, services and middlewares, and servers
	// transports when some are defined.
	ot, nt := tcpOf(old), tcpOf(cfg)
	if len(ot.Routers)+len(nt.Routers)+len(ot.Services)+len(nt.Services)+len(ot.Middlewares)+len(nt.Middlewares)+
		len(ot.ServersTransports)+len(nt.ServersTransports) > 0 {
		out = append(out, diffGroup("tcp_routers", ot.Routers, nt.Routers), diffGroup("tcp_services", ot.Services, nt.Services),
			diffGroup("tcp_middlewares", ot.Middlewares, nt.Middlewares))
	}
	if len(ot.ServersTransports)+len(nt.ServersTransports) > 0 {
		out = append(out, diffGroup("tcp_serversTransports", ot.ServersTransports, nt.ServersTransports))
	}
	return out
}

func tcpOf(cfg *config.Config) *config.TCP {
	if cfg == nil || cfg.TCP == nil {
		return &config.TCP{}
	}
	return cfg.TCP
}

func httpOf(cfg *config.Config) *config.HTTP {
	if cfg == nil || cfg.HTTP == nil {
		return &config.HTTP{}
	}
	return cfg.HTTP
}

// diffGroup compares two sets of named items: counts always, names of
// the non-empty kinds.
func diffGroup[T any](key string, old, cur map[string]*T) slog.Attr {
	var added, removed, changed []string
	for name, c := range cur {
		o, ok := old[name]
		switch {
		case !ok:
			added = append(added, name)
		case !reflect.DeepEqual(o, c):
			changed = append(changed, name)
		}
	}
	for name := range old {
		if _, ok := cur[name]; !ok {
			removed = append(removed, name)
		}
	}
	attrs := []any{"added", len(added), "removed", len(removed), "changed", len(changed)}
	for _, k := range []struct {
		key   string
		names []string
	}{{"added_names", added}, {"removed_names", removed}, {"changed_names", changed}} {
		if len(k.names) > 0 {
			attrs = append(attrs, k.key, cappedNames(k.names))
		}
	}
	return slog.Group(key, attrs...)
}

// cappedNames sorts names and keeps maxLoggedNames of them, then "+N more".
func cappedNames(names []string) []string {
	slices.Sort(names)
	if len(names) <= maxLoggedNames {
		return names
	}
	return append(names[:maxLoggedNames:maxLoggedNames], fmt.Sprintf("+%d more", len(names)-maxLoggedNames))
}

// Close stops the health checks of the generation in force.
func (rt *Router) Close() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.closed = true
	rt.parsed, rt.warned = nil, nil
	if g := rt.current.Swap(nil); g != nil {
		g.stop()
	}
	rt.auth.Close()
	rt.tr.closeIdle()
	rt.keepPools(nil)
}

func (g *generation) stop() {
	g.cancel()
	g.mirrors.close()
	g.wg.Wait()
	g.tcp.Close()
}

// buildServices builds the services of every type into g, children before
// their parents, and returns the active health checks to start.
func (rt *Router) buildServices(g *generation, defs map[string]*config.Service, named map[string]transports) ([]*healthCheck, error) {
	var checks []*healthCheck
	building := map[string]bool{}
	var build func(name string) error
	build = func(name string) error {
		if g.handlers[name] != nil {
			return nil
		}
		sc := defs[name]
		if sc == nil {
			return fmt.Errorf("service %q is not defined", name)
		}
		if building[name] {
			return fmt.Errorf("service %s: services send requests to each other", name)
		}
		building[name] = true
		for _, c := range serviceChildren(sc) {
			if err := build(c); err != nil {
				return fmt.Errorf("service %s: %w", name, err)
			}
		}
		switch {
		case sc.LoadBalancer != nil:
			tr := rt.tr
			if ref := sc.LoadBalancer.ServersTransport; ref != "" && named != nil {
				var ok bool
				if tr, ok = named[ref]; !ok {
					return fmt.Errorf("service %s: serversTransport %q is not defined", name, ref)
				}
			}
			s, err := newService(name, sc, tr, rt.log)
			if err != nil {
				return err
			}
			if prev := rt.current.Load(); prev != nil {
				s.inherit(prev.services[name], sc.LoadBalancer.HealthCheck != nil)
			}
			if hc := sc.LoadBalancer.HealthCheck; hc != nil {
				checks = append(checks, newHealthCheck(s, hc, routeTransport{tr}))
			}
			g.services[name] = s
			g.handlers[name] = s
		case sc.Weighted != nil:
			g.handlers[name] = newWeighted(name, sc.Weighted, g.handlers)
		case sc.Mirroring != nil:
			g.handlers[name] = newMirroring(name, sc.Mirroring, g.handlers, g.mirrors, rt.log)
		case sc.Failover != nil:
			f := sc.Failover
			g.handlers[name] = &failover{name: name, main: g.handlers[f.Service], fallback: g.handlers[f.Fallback], check: f.HealthCheck != nil}
		default:
			return fmt.Errorf("service %s: no service type is set", name)
		}
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		if err := build(name); err != nil {
			return nil, err
		}
	}
	return checks, nil
}

// serviceChildren returns the services sc sends requests to.
func serviceChildren(sc *config.Service) []string {
	var out []string
	switch {
	case sc.Weighted != nil:
		for _, c := range sc.Weighted.Services {
			out = append(out, c.Name)
		}
	case sc.Mirroring != nil:
		out = append(out, sc.Mirroring.Service)
		for _, m := range sc.Mirroring.Mirrors {
			out = append(out, m.Name)
		}
	case sc.Failover != nil:
		out = append(out, sc.Failover.Service, sc.Failover.Fallback)
	}
	return out
}

// Check returns the error Apply would return for cfg. Validation refuses
// everything the router would refuse (two routers asking for different TLS
// options for one host included); Check is the proof of that on a built
// router, and the guard for configurations that skip validation. It
// serves nothing, starts no health check and sends nothing.
//
// Check resolves the names of TLS options too, which Listen uses, but
// reads no file: certificates, client CAs and the files of
// serversTransports are read where the replica runs.
func Check(cfg *config.Config) error {
	rt := New(Config{})
	defer rt.Close()
	g, err := rt.build(cfg, nil)
	if err != nil {
		return err
	}
	g.stop()
	if cfg.TLS == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.TLS.Options)) {
		if o := cfg.TLS.Options[name]; o != nil {
			if err := applyTLSNames(&tls.Config{}, o); err != nil {
				return fmt.Errorf("TLS options %s: %w", name, err)
			}
		}
	}
	return nil
}

// build makes a generation: services, middlewares, and one route table per
// entry point. named holds the pools of the serversTransports by name
// (namedTransports); nil, for Check, means that the services reach their
// servers through the default pools and that no health check starts.
// Health checks start only once everything is built.
func (rt *Router) build(cfg *config.Config, named map[string]transports) (*generation, error) {
	startChecks := named != nil
	ctx, cancel := context.WithCancel(context.Background())
	g := &generation{
		cfg: cfg, tables: map[string]*table{}, services: map[string]*service{}, handlers: map[string]serviceHandler{},
		mirrors:   &mirrorGroup{ctx: ctx},
		tlsByHost: map[string]map[string]string{}, trust: map[string]forwardTrust{}, cancel: cancel,
	}
	h := cfg.HTTP
	if h == nil {
		h = &config.HTTP{}
	}
	checks, err := rt.buildServices(g, h.Services, named)
	if err != nil {
		cancel()
		return nil, err
	}
	// Routers and middlewares reach the services of every type by name.
	handlers := make(map[string]http.Handler, len(g.handlers))
	for name, s := range g.handlers {
		handlers[name] = s
	}
	mws := newMiddlewareBuilder(h.Middlewares, handlers)
	mws.forward = forwardAuthBuilder{clients: rt.auth, log: rt.log, readFiles: startChecks}
	for epName, ep := range cfg.EntryPoints {
		trust, err := newForwardTrust(ep.ForwardedHeaders)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("entry point %s: trusted IPs: %w", epName, err)
		}
		g.trust[epName] = trust
		byHost := map[string]string{}
		routes, err := rt.routes(epName, ep, h, handlers, mws, byHost)
		if err != nil {
			cancel()
			return nil, err
		}
		g.tables[epName] = newTable(routes)
		g.tlsByHost[epName] = byHost
	}
	g.authClients = mws.forward.handles
	var prevTCP *tcp.Table
	if prev := rt.current.Load(); prev != nil {
		prevTCP = prev.tcp
	}
	g.tcp, err = tcp.Build(cfg, tcp.Options{Logger: rt.log, Metrics: rt.metrics.tcpMetrics(), Start: startChecks, Previous: prevTCP})
	if err != nil {
		cancel()
		return nil, err
	}
	if startChecks {
		for _, c := range checks {
			g.wg.Go(func() { c.run(ctx) })
		}
	}
	return g, nil
}

// routes builds the routes of one entry point: the routers that listen on
// it and whose TLS setting matches the entry point's.
func (rt *Router) routes(epName string, ep *config.EntryPoint, h *config.HTTP, services map[string]http.Handler, mws *middlewareBuilder, tlsByHost map[string]string) ([]*route, error) {
	epTLS := ep.HTTP != nil && ep.HTTP.TLS != nil
	var routes []*route
	optionsBy := map[string]string{} // host → the router that named tlsByHost[host]
	for _, name := range slices.Sorted(maps.Keys(h.Routers)) {
		r := h.Routers[name]
		if len(r.EntryPoints) > 0 && !slices.Contains(r.EntryPoints, epName) {
			continue
		}
		if (r.TLS != nil) != epTLS {
			continue
		}
		svc, ok := services[r.Service]
		if !ok {
			return nil, fmt.Errorf("router %s: service %q is not defined", name, r.Service)
		}
		var handler http.Handler = svc
		for i := len(r.Middlewares) - 1; i >= 0; i-- {
			var err error
			if handler, err = mws.build(r.Middlewares[i], handler); err != nil {
				return nil, fmt.Errorf("router %s: %w", name, err)
			}
		}
		expr, err := rule.Parse(r.Rule)
		if err != nil {
			return nil, fmt.Errorf("router %s: rule: %w", name, err)
		}
		if r.TLS != nil {
			// A router without options uses the entry point's: that is
			// a choice too, which another router's options for the same
			// host would contradict.
			for _, host := range rule.RequiredHosts(expr) {
				if prev, ok := tlsByHost[host]; ok && prev != r.TLS.Options {
					return nil, fmt.Errorf("routers %s and %s both serve %s on entry point %s with different TLS options (%s and %s): a handshake can use only one; give them the same options", optionsBy[host], name, host, epName, optionsName(prev), optionsName(r.TLS.Options))
				}
				tlsByHost[host], optionsBy[host] = r.TLS.Options, name
			}
		}
		rte, err := newRoute(name, expr, r.Rule, r.Priority, handler)
		if err != nil {
			return nil, fmt.Errorf("router %s: %w", name, err)
		}
		routes = append(routes, rte)
	}
	return routes, nil
}

// optionsName names a router's TLS options in errors.
func optionsName(o string) string {
	if o == "" {
		return "the entry point's"
	}
	return strconv.Quote(o)
}

// tlsOptionsFor returns the TLS options a router on entryPoint names for
// the server name of a handshake, or "" when none does.
func (rt *Router) tlsOptionsFor(entryPoint, serverName string) string {
	g := rt.current.Load()
	if g == nil {
		return ""
	}
	return g.tlsByHost[entryPoint][normalizeHost(serverName)]
}

// Handler returns the handler of an entry point. It reads the generation
// in force at every request, so it serves the newest routes after a
// reload without being replaced.
func (rt *Router) Handler(entryPoint string) http.Handler {
	return observed(entryPoint, rt.route(entryPoint), rt.metrics, rt.access)
}

func (rt *Router) route(entryPoint string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := rt.current.Load()
		if g == nil {
			http.NotFound(w, r)
			return
		}
		ep := g.cfg.EntryPoints[entryPoint]
		if ep == nil {
			http.NotFound(w, r)
			return
		}
		prepare(r, g.trust[entryPoint])
		if redirectToEntryPoint(w, r, g.cfg, ep) {
			return
		}
		t := g.tables[entryPoint]
		if t == nil {
			http.NotFound(w, r)
			return
		}
		if rte := t.lookup(r); rte != nil {
			if info := infoOf(r); info != nil {
				info.router = rte.name
			}
			rte.handler.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}
