package router

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// The status words of routers, services and middlewares, as in Traefik:
// a disabled item serves nothing and says why in its error list; a
// warning item serves, but not everything it asks for.
const (
	statusEnabled  = "enabled"
	statusWarning  = "warning"
	statusDisabled = "disabled"
)

// apiView is what the API shows of one generation, worked out once: the
// routers, services, middlewares and entry points sorted by their API
// names, and the overview. Only the servers' health is read at each
// request.
type apiView struct {
	g           *generation
	base        string
	listening   map[string]*config.EntryPoint
	routers     []apiRouter
	services    []apiService
	middlewares []apiMiddleware
	entryPoints []apiEntryPoint
	overview    apiOverview
	// The TCP routers, services and middlewares.
	tcpRouters     []apiTCPRouter
	tcpServices    []apiTCPService
	tcpMiddlewares []apiMiddleware
}

// apiItem is what every router, service and middleware shows first.
type apiItem struct {
	// Name is the name with "@provider" added when the configuration
	// leaves it out, as Traefik names items: "web@file".
	Name     string   `json:"name"`
	Provider string   `json:"provider"`
	Status   string   `json:"status"`
	Error    []string `json:"error,omitempty"`
}

func (it *apiItem) problem(status, format string, args ...any) {
	it.Error = append(it.Error, fmt.Sprintf(format, args...))
	if it.Status != statusDisabled {
		it.Status = status
	}
}

type apiRouter struct {
	apiItem
	// configName is the router's name in the configuration.
	configName  string
	Rule        string        `json:"rule"`
	Priority    int           `json:"priority"`
	EntryPoints []string      `json:"entryPoints,omitempty"`
	Using       []string      `json:"using,omitempty"`
	Service     string        `json:"service"`
	Middlewares []string      `json:"middlewares,omitempty"`
	TLS         *apiRouterTLS `json:"tls,omitempty"`
}

type apiRouterTLS struct {
	Options string      `json:"options,omitempty"`
	Domains []apiDomain `json:"domains,omitempty"`
}

type apiDomain struct {
	Main string   `json:"main"`
	SANs []string `json:"sans,omitempty"`
}

type apiService struct {
	apiItem
	configName   string
	Type         string         `json:"type"`
	LoadBalancer map[string]any `json:"loadBalancer,omitempty"`
	Weighted     map[string]any `json:"weighted,omitempty"`
	Mirroring    map[string]any `json:"mirroring,omitempty"`
	Failover     map[string]any `json:"failover,omitempty"`
	// ServerStatus is, for a loadBalancer, each server's state by URL;
	// for a weighted, mirroring or failover service with healthCheck,
	// each child service's state by API name.
	ServerStatus map[string]string `json:"serverStatus,omitempty"`
	// MirrorsDropped is tollgate's own: the copies a mirroring service
	// did not send because too many were in flight.
	MirrorsDropped int64 `json:"mirrorsDropped,omitempty"`
	// ServerDetails is tollgate's own: each server's weight, health and
	// passive ejection.
	ServerDetails []apiServerDetail `json:"serverDetails,omitempty"`
	UsedBy        []string          `json:"usedBy,omitempty"`
	// settings returns the settings of the service's type, secrets
	// hidden; worked out when first shown.
	settings func() (map[string]any, error)
}

// apiServerDetail is one server of a service.
type apiServerDetail struct {
	URL string `json:"url"`
	// ID names the server in logs and sticky cookies.
	ID     string `json:"id"`
	Weight int    `json:"weight"`
	// Status is "UP" when the server gets requests, "DOWN" when active
	// health checks failed it or passive ones ejected it.
	Status  string `json:"status"`
	Healthy bool   `json:"healthy"`
	Ejected bool   `json:"ejected"`
}

// apiMiddleware is one middleware: its item fields, its type and its
// settings under the type's configuration key ("basicAuth": {…}).
type apiMiddleware struct {
	apiItem
	Type   string
	UsedBy []string
	// settings returns {"basicAuth": {…}}, secrets hidden; worked out
	// when first shown.
	settings func() (map[string]any, error)
}

func (m apiMiddleware) MarshalJSON() ([]byte, error) {
	settings, err := m.settings()
	if err != nil {
		m.Error = slices.Clone(m.Error) // shared with the view
		m.problem(statusWarning, "its settings cannot be shown: %v", err)
	}
	out := map[string]any{}
	maps.Copy(out, settings) // the one key of the middleware's type
	out["name"], out["provider"], out["status"], out["type"] = m.Name, m.Provider, m.Status, m.Type
	if len(m.Error) > 0 {
		out["error"] = m.Error
	}
	if len(m.UsedBy) > 0 {
		out["usedBy"] = m.UsedBy
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err = enc.Encode(out)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

type apiEntryPoint struct {
	Name             string               `json:"name"`
	Address          string               `json:"address"`
	Transport        apiTransport         `json:"transport"`
	ForwardedHeaders *apiForwardedHeaders `json:"forwardedHeaders,omitempty"`
	HTTP             apiEntryPointHTTP    `json:"http"`
	HTTP3            *apiHTTP3            `json:"http3,omitempty"`
}

// apiHTTP3 is shown for an entry point serving HTTP/3; advertisedPort
// only when it is set.
type apiHTTP3 struct {
	AdvertisedPort int `json:"advertisedPort,omitempty"`
}

// apiTransport holds the effective limits of an entry point.
type apiTransport struct {
	RespondingTimeouts apiTimeouts `json:"respondingTimeouts"`
}

type apiTimeouts struct {
	ReadHeaderTimeout string `json:"readHeaderTimeout"`
	ReadTimeout       string `json:"readTimeout"`
	WriteTimeout      string `json:"writeTimeout"`
	IdleTimeout       string `json:"idleTimeout"`
}

type apiForwardedHeaders struct {
	Insecure   bool     `json:"insecure,omitempty"`
	TrustedIPs []string `json:"trustedIPs,omitempty"`
}

type apiEntryPointHTTP struct {
	Redirections   *apiRedirections `json:"redirections,omitempty"`
	TLS            *apiEntryTLS     `json:"tls,omitempty"`
	MaxHeaderBytes int              `json:"maxHeaderBytes"`
}

type apiRedirections struct {
	EntryPoint apiRedirectEntryPoint `json:"entryPoint"`
}

type apiRedirectEntryPoint struct {
	To        string `json:"to"`
	Scheme    string `json:"scheme"`
	Permanent bool   `json:"permanent"`
}

type apiEntryTLS struct {
	Options string `json:"options"`
}

type apiOverview struct {
	HTTP      apiHTTPCounts `json:"http"`
	TCP       apiHTTPCounts `json:"tcp"`
	Features  apiFeatures   `json:"features"`
	Providers []string      `json:"providers"`
}

type apiHTTPCounts struct {
	Routers     apiCounts `json:"routers"`
	Services    apiCounts `json:"services"`
	Middlewares apiCounts `json:"middlewares"`
}

type apiCounts struct {
	Total    int `json:"total"`
	Warnings int `json:"warnings"`
	Errors   int `json:"errors"`
}

type apiFeatures struct {
	Tracing   string `json:"tracing"`
	Metrics   string `json:"metrics"`
	AccessLog bool   `json:"accessLog"`
}

func countOf(items []apiItem) apiCounts {
	c := apiCounts{Total: len(items)}
	for _, it := range items {
		switch it.Status {
		case statusWarning:
			c.Warnings++
		case statusDisabled:
			c.Errors++
		}
	}
	return c
}

// newAPIView works out the view of g; base is the provider of the names
// without "@provider"; listening, when not nil, are the entry points as
// their listeners were started (see APIOptions.EntryPoints).
func newAPIView(g *generation, base string, listening map[string]*config.EntryPoint) *apiView {
	v := &apiView{g: g, base: base, listening: listening}
	h := g.cfg.HTTP
	if h == nil {
		h = &config.HTTP{}
	}
	v.buildRouters(h)
	u := v.usersOf(h)
	v.buildServices(h, u)
	v.buildMiddlewares(h, u)
	v.buildEntryPoints()
	v.buildTCP(g.cfg.TCP)
	middlewareItem := func(m apiMiddleware) apiItem { return m.apiItem }
	v.overview = apiOverview{
		HTTP: apiHTTPCounts{
			Routers:     countOf(items(v.routers, func(r apiRouter) apiItem { return r.apiItem })),
			Services:    countOf(items(v.services, func(s apiService) apiItem { return s.apiItem })),
			Middlewares: countOf(items(v.middlewares, middlewareItem)),
		},
		TCP: apiHTTPCounts{
			Routers:     countOf(items(v.tcpRouters, func(r apiTCPRouter) apiItem { return r.apiItem })),
			Services:    countOf(items(v.tcpServices, func(s apiTCPService) apiItem { return s.apiItem })),
			Middlewares: countOf(items(v.tcpMiddlewares, middlewareItem)),
		},
		Providers: []string{providerTitle(base)},
	}
	if p := g.cfg.Providers; p != nil && p.KubernetesIngress != nil {
		v.overview.Providers = append(v.overview.Providers, "KubernetesIngress")
	}
	if p := g.cfg.Providers; p != nil && p.KubernetesGateway != nil {
		v.overview.Providers = append(v.overview.Providers, "KubernetesGateway")
	}
	if m := g.cfg.Metrics; m != nil && m.Prometheus != nil {
		v.overview.Features.Metrics = "Prometheus"
	}
	v.overview.Features.AccessLog = g.cfg.AccessLog != nil
	return v
}

func items[T any](list []T, f func(T) apiItem) []apiItem {
	out := make([]apiItem, len(list))
	for i, x := range list {
		out[i] = f(x)
	}
	return out
}

// providerTitle names a provider as Traefik's overview does: "File".
func providerTitle(p string) string {
	if p == "" {
		return p
	}
	return strings.ToUpper(p[:1]) + p[1:]
}

// apiName returns the API name of a configuration name: with "@base"
// added when it has no provider, and its provider.
func (v *apiView) apiName(name string) (string, string) {
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		return name, name[i+1:]
	}
	return name + "@" + v.base, v.base
}

// configName returns the configuration name an API path names: the name
// itself, or a base name given with "@base" as Traefik users write it.
func (v *apiView) configName(name string) string {
	if local, ok := strings.CutSuffix(name, "@"+v.base); ok && !strings.Contains(local, "@") {
		return local
	}
	return name
}

func (v *apiView) item(name string) apiItem {
	n, p := v.apiName(name)
	return apiItem{Name: n, Provider: p, Status: statusEnabled}
}

// buildRouters lists the routers with the entry points that serve them,
// read from the route tables, and their effective priority.
func (v *apiView) buildRouters(h *config.HTTP) {
	using := map[string][]string{}
	routes := map[string]*route{}
	for _, ep := range slices.Sorted(maps.Keys(v.g.tables)) {
		if v.notServed(ep) != "" {
			continue
		}
		seen := map[string]bool{}
		t := v.g.tables[ep]
		for _, rs := range t.byHost {
			for _, r := range rs {
				seen[r.name], routes[r.name] = true, r
			}
		}
		for _, r := range t.hostless {
			seen[r.name], routes[r.name] = true, r
		}
		for _, name := range slices.Sorted(maps.Keys(seen)) {
			using[name] = append(using[name], ep)
		}
	}
	allEntryPoints := slices.Sorted(maps.Keys(v.g.cfg.EntryPoints))
	for _, name := range slices.Sorted(maps.Keys(h.Routers)) {
		r := h.Routers[name]
		out := apiRouter{
			apiItem: v.item(name), configName: name,
			Rule: r.Rule, Priority: r.Priority, Service: r.Service,
			EntryPoints: r.EntryPoints,
			Middlewares: r.Middlewares, Using: using[name],
		}
		if len(out.EntryPoints) == 0 {
			out.EntryPoints = allEntryPoints
		}
		if r.TLS != nil {
			out.TLS = &apiRouterTLS{Options: r.TLS.Options}
			for _, d := range r.TLS.Domains {
				out.TLS.Domains = append(out.TLS.Domains, apiDomain{Main: d.Main, SANs: d.SANs})
			}
		}
		if rte := routes[name]; rte != nil {
			out.Priority = rte.priority // what lookup orders by
		} else if expr, err := rule.Parse(r.Rule); err != nil {
			out.problem(statusDisabled, "rule: %v", err)
		} else {
			if out.Priority == 0 {
				out.Priority = defaultPriority(r.Rule, expr)
			}
			if hosts := rule.RequiredHosts(expr); hosts != nil && len(hosts) == 0 {
				out.problem(statusDisabled, "its rule can match no host: it requires two different hosts at once")
			}
		}
		for _, ep := range r.EntryPoints {
			if slices.Contains(out.Using, ep) {
				continue
			}
			def := v.g.cfg.EntryPoints[ep]
			if why := v.notServed(ep); why != "" {
				out.problem(statusWarning, "%s", why)
				continue
			}
			switch {
			case def.HTTP != nil && def.HTTP.TLS != nil && r.TLS == nil:
				out.problem(statusWarning, "entry point %q serves TLS and the router has no tls section: it is not served there", ep)
			case (def.HTTP == nil || def.HTTP.TLS == nil) && r.TLS != nil:
				out.problem(statusWarning, "entry point %q serves plain HTTP and the router has a tls section: it is not served there", ep)
			}
		}
		if len(out.Using) == 0 && out.Status != statusDisabled {
			out.problem(statusDisabled, "no entry point serves it: a router with a tls section is served on the entry points with TLS, one without on the others")
		}
		v.routers = append(v.routers, out)
	}
	slices.SortFunc(v.routers, func(a, b apiRouter) int { return strings.Compare(a.Name, b.Name) })
}

// notServed says why entry point ep serves no router, "" when it serves
// them: it must be in the configuration in force and, when the entry
// points the listeners were started with are known, one of them (an entry
// point added in a reload listens only after a restart). HTTP and TCP
// routers alike are served only on the entry points it passes.
func (v *apiView) notServed(ep string) string {
	switch {
	case v.g.cfg.EntryPoints[ep] == nil:
		return fmt.Sprintf("entry point %q does not exist", ep)
	case v.listening != nil && v.listening[ep] == nil:
		return fmt.Sprintf("entry point %q is not listening: an entry point added in a reload listens after a restart", ep)
	}
	return ""
}

// users indexes, by the name of a service and of a middleware, the API
// names of the routers (and chains) that use it, sorted.
type users struct {
	services, middlewares map[string][]string
}

func (v *apiView) usersOf(h *config.HTTP) users {
	u := users{services: map[string][]string{}, middlewares: map[string][]string{}}
	for _, name := range slices.Sorted(maps.Keys(h.Routers)) {
		r := h.Routers[name]
		n, _ := v.apiName(name)
		// A router uses its service and every service that one sends
		// requests to.
		seen := map[string]bool{}
		var use func(svc string)
		use = func(svc string) {
			if seen[svc] {
				return
			}
			seen[svc] = true
			u.services[svc] = append(u.services[svc], n)
			if sc := h.Services[svc]; sc != nil {
				for _, c := range serviceChildren(sc) {
					use(c)
				}
			}
		}
		use(r.Service)
		for _, m := range slices.Compact(slices.Sorted(slices.Values(r.Middlewares))) {
			u.middlewares[m] = append(u.middlewares[m], n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Middlewares)) {
		if c := h.Middlewares[name].Chain; c != nil {
			n, _ := v.apiName(name)
			for _, m := range slices.Compact(slices.Sorted(slices.Values(c.Middlewares))) {
				u.middlewares[m] = append(u.middlewares[m], n)
			}
		}
		if e := h.Middlewares[name].Errors; e != nil {
			n, _ := v.apiName(name)
			u.services[e.Service] = append(u.services[e.Service], n)
		}
	}
	for _, list := range u.services {
		slices.Sort(list)
	}
	for _, list := range u.middlewares {
		slices.Sort(list)
	}
	return u
}

func (v *apiView) buildServices(h *config.HTTP, u users) {
	for _, name := range slices.Sorted(maps.Keys(h.Services)) {
		sc := h.Services[name]
		out := apiService{apiItem: v.item(name), configName: name}
		out.UsedBy = u.services[name]
		switch {
		case sc.LoadBalancer != nil:
			out.Type = "loadbalancer"
			out.settings = sync.OnceValues(func() (map[string]any, error) { return loadBalancerSettings(sc.LoadBalancer) })
			if len(sc.LoadBalancer.Servers) == 0 {
				out.problem(statusWarning, "it has no servers: it answers 503")
			}
		case sc.Weighted != nil:
			out.Type = "weighted"
			out.settings = sync.OnceValues(func() (map[string]any, error) { return weightedSettings(sc.Weighted) })
		case sc.Mirroring != nil:
			out.Type = "mirroring"
			out.settings = sync.OnceValues(func() (map[string]any, error) { return mirroringSettings(sc.Mirroring) })
		case sc.Failover != nil:
			out.Type = "failover"
			out.settings = sync.OnceValues(func() (map[string]any, error) { return redactedSettings(&config.Service{Failover: sc.Failover}) })
		default:
			continue
		}
		v.services = append(v.services, out)
	}
	slices.SortFunc(v.services, func(a, b apiService) int { return strings.Compare(a.Name, b.Name) })
}

// redactedSettings shows the settings of the one type sc sets, secrets
// hidden.
func redactedSettings(sc *config.Service) (map[string]any, error) {
	shown, err := config.Redacted(&config.Config{HTTP: &config.HTTP{Services: map[string]*config.Service{"s": sc}}})
	if err != nil {
		return nil, err
	}
	all, _ := settings(reflect.ValueOf(shown.HTTP.Services["s"])).(map[string]any)
	for _, x := range all {
		if m, ok := x.(map[string]any); ok {
			return m, nil
		}
	}
	return map[string]any{}, nil
}

// weightedSettings shows w with its children's effective weights.
func weightedSettings(w *config.Weighted) (map[string]any, error) {
	out, err := redactedSettings(&config.Service{Weighted: w})
	if err != nil {
		return nil, err
	}
	children := []any{}
	for _, c := range w.Services {
		weight := 1
		if c.Weight != nil {
			weight = *c.Weight
		}
		children = append(children, map[string]any{"name": c.Name, "weight": weight})
	}
	out["services"] = children
	return out, nil
}

// mirroringSettings shows m with its effective mirrorBody and
// maxBodySize.
func mirroringSettings(m *config.Mirroring) (map[string]any, error) {
	out, err := redactedSettings(&config.Service{Mirroring: m})
	if err != nil {
		return nil, err
	}
	out["mirrorBody"] = m.MirrorBody == nil || *m.MirrorBody
	out["maxBodySize"] = int64(-1)
	if m.MaxBodySize != nil {
		out["maxBodySize"] = *m.MaxBodySize
	}
	mirrors := []any{}
	for _, mr := range m.Mirrors {
		mirrors = append(mirrors, map[string]any{"name": mr.Name, "percent": mr.Percent})
	}
	out["mirrors"] = mirrors
	return out, nil
}

// loadBalancerSettings shows lb, secrets hidden, with the effective
// passHostHeader and servers' weights, and the servers' URLs without user
// information.
func loadBalancerSettings(lb *config.LoadBalancer) (map[string]any, error) {
	out := map[string]any{}
	shown, err := config.Redacted(&config.Config{HTTP: &config.HTTP{Services: map[string]*config.Service{"s": {LoadBalancer: lb}}}})
	if err != nil {
		return nil, err
	}
	if m, ok := settings(reflect.ValueOf(shown.HTTP.Services["s"].LoadBalancer)).(map[string]any); ok {
		out = m
	}
	out["passHostHeader"] = lb.PassHostHeader == nil || *lb.PassHostHeader
	servers := []any{}
	for _, s := range lb.Servers {
		weight := 1
		if s.Weight != nil {
			weight = *s.Weight
		}
		servers = append(servers, map[string]any{"url": shownURL(s.URL), "weight": weight})
	}
	out["servers"] = servers
	return out, nil
}

// shownURL is a server URL without its user information, which may hold
// a password.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// render returns s with its settings, and its servers' or children's
// state now.
func (v *apiView) render(s apiService) apiService {
	shown, err := s.settings()
	if err != nil {
		shown = map[string]any{}
		s.Error = slices.Clone(s.Error) // shared with the view
		s.problem(statusWarning, "its settings cannot be shown: %v", err)
	}
	switch s.Type {
	case "loadbalancer":
		s.LoadBalancer = shown
	case "weighted":
		s.Weighted = shown
	case "mirroring":
		s.Mirroring = shown
	case "failover":
		s.Failover = shown
	}
	switch h := v.g.handlers[s.configName].(type) {
	case *service:
		v.renderServers(&s, h)
	case *weighted:
		if h.check {
			s.ServerStatus = map[string]string{}
			for _, c := range h.children {
				v.childStatus(&s, c.name, c.h)
			}
		}
	case *mirroring:
		s.MirrorsDropped = h.dropped.Load()
		if h.check {
			s.ServerStatus = map[string]string{}
			v.childStatus(&s, v.g.cfg.HTTP.Services[s.configName].Mirroring.Service, h.main)
		}
	case *failover:
		s.ServerStatus = map[string]string{}
		f := v.g.cfg.HTTP.Services[s.configName].Failover
		v.childStatus(&s, f.Service, h.main)
		if h.check {
			v.childStatus(&s, f.Fallback, h.fallback)
		}
	}
	return s
}

// childStatus records in s the state of its child service name.
func (v *apiView) childStatus(s *apiService, name string, h serviceHandler) {
	n, _ := v.apiName(name)
	s.ServerStatus[n] = "DOWN"
	if h.up() {
		s.ServerStatus[n] = "UP"
	}
}

// renderServers records in s the state of svc's servers.
func (v *apiView) renderServers(s *apiService, svc *service) {
	now := time.Now().UnixNano()
	s.ServerStatus = map[string]string{}
	s.ServerDetails = make([]apiServerDetail, 0, len(svc.lb.backends))
	for _, b := range svc.lb.backends {
		u := *b.target.url
		u.User = nil
		if b.target.h2c {
			u.Scheme = "h2c"
		}
		d := apiServerDetail{
			URL: u.String(), ID: b.target.id, Weight: b.weight,
			Healthy: b.healthy.Load(), Ejected: now < b.ejectedUntil.Load(), Status: "UP",
		}
		if !d.Healthy || d.Ejected {
			d.Status = "DOWN"
		}
		s.ServerStatus[d.URL] = d.Status
		s.ServerDetails = append(s.ServerDetails, d)
	}
}

func (v *apiView) buildMiddlewares(h *config.HTTP, u users) {
	for _, name := range slices.Sorted(maps.Keys(h.Middlewares)) {
		out := apiMiddleware{apiItem: v.item(name)}
		out.UsedBy = u.middlewares[name]
		m := h.Middlewares[name]
		out.Type = strings.ToLower(middlewareKey(m))
		out.settings = sync.OnceValues(func() (map[string]any, error) {
			shown, err := config.Redacted(&config.Config{HTTP: &config.HTTP{Middlewares: map[string]*config.Middleware{"m": m}}})
			if err != nil {
				return nil, err
			}
			s, _ := settings(reflect.ValueOf(shown.HTTP.Middlewares["m"])).(map[string]any)
			return s, nil
		})
		v.middlewares = append(v.middlewares, out)
	}
	slices.SortFunc(v.middlewares, func(a, b apiMiddleware) int { return strings.Compare(a.Name, b.Name) })
}

// middlewareKey returns the configuration key of the one type m sets:
// "basicAuth".
func middlewareKey(m *config.Middleware) string { return oneOfKey(reflect.ValueOf(m)) }

func (v *apiView) buildEntryPoints() {
	eps := v.g.cfg.EntryPoints
	if v.listening != nil {
		eps = v.listening
	}
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		ep := eps[name]
		srv := newServer(ep, nil, slog.New(slog.DiscardHandler))
		out := apiEntryPoint{
			Name: name, Address: ep.Address,
			Transport: apiTransport{RespondingTimeouts: apiTimeouts{
				ReadHeaderTimeout: srv.ReadHeaderTimeout.String(),
				ReadTimeout:       srv.ReadTimeout.String(),
				WriteTimeout:      srv.WriteTimeout.String(),
				IdleTimeout:       srv.IdleTimeout.String(),
			}},
			HTTP: apiEntryPointHTTP{MaxHeaderBytes: srv.MaxHeaderBytes},
		}
		if f := ep.ForwardedHeaders; f != nil {
			out.ForwardedHeaders = &apiForwardedHeaders{Insecure: f.Insecure, TrustedIPs: f.TrustedIPs}
		}
		if h3 := ep.HTTP3; h3 != nil {
			out.HTTP3 = &apiHTTP3{AdvertisedPort: h3.AdvertisedPort}
		}
		if eh := ep.HTTP; eh != nil {
			if eh.TLS != nil {
				out.HTTP.TLS = &apiEntryTLS{Options: cmp.Or(eh.TLS.Options, "default")}
			}
			if rd := eh.Redirections; rd != nil && rd.EntryPoint != nil {
				out.HTTP.Redirections = &apiRedirections{EntryPoint: apiRedirectEntryPoint{
					To: rd.EntryPoint.To, Scheme: cmp.Or(rd.EntryPoint.Scheme, "https"),
					Permanent: rd.EntryPoint.Permanent == nil || *rd.EntryPoint.Permanent,
				}}
			}
		}
		v.entryPoints = append(v.entryPoints, out)
	}
}

// collections are the lists of the view the API serves by path.
func (v *apiView) collections() []collection {
	routers := collection{
		path: "/api/http/routers", kind: "router", len: len(v.routers),
		name:   func(i int) string { return v.routers[i].Name },
		status: func(i int) string { return v.routers[i].Status },
		search: func(i int) string { return v.routers[i].Rule },
		keep:   v.keepRouter,
		item:   func(i int) any { return v.routers[i] },
	}
	services := collection{
		path: "/api/http/services", kind: "service", len: len(v.services),
		name:   func(i int) string { return v.services[i].Name },
		status: func(i int) string { return v.services[i].Status },
		item:   func(i int) any { return v.render(v.services[i]) },
	}
	middlewares := collection{
		path: "/api/http/middlewares", kind: "middleware", len: len(v.middlewares),
		name:   func(i int) string { return v.middlewares[i].Name },
		status: func(i int) string { return v.middlewares[i].Status },
		item:   func(i int) any { return v.middlewares[i] },
	}
	entryPoints := collection{
		path: "/api/entrypoints", kind: "entry point", len: len(v.entryPoints),
		name:   func(i int) string { return v.entryPoints[i].Name },
		status: func(int) string { return statusEnabled },
		item:   func(i int) any { return v.entryPoints[i] },
	}
	out := append([]collection{routers, services, middlewares}, v.tcpCollections()...)
	for i := range out {
		out[i].resolve = func(name string) string {
			n, _ := v.apiName(v.configName(name))
			return n
		}
	}
	out = append(out, entryPoints)
	for i := range out {
		out[i].statuses = []string{statusEnabled, statusWarning, statusDisabled}
	}
	return out
}

// keepRouter applies the routers' own filters, Traefik's: serviceName
// keeps the routers of that service, middlewareName those that use that
// middleware. Both take a name with or without "@provider".
func (v *apiView) keepRouter(q url.Values, i int) bool {
	return v.keepByRefs(q, v.routers[i].Service, v.routers[i].Middlewares)
}

// keepByRefs applies serviceName and middlewareName to a router of
// service with middlewares.
func (v *apiView) keepByRefs(q url.Values, service string, middlewares []string) bool {
	same := func(configured, asked string) bool {
		a, _ := v.apiName(configured)
		b, _ := v.apiName(v.configName(asked))
		return a == b
	}
	if s := q.Get("serviceName"); s != "" && !same(service, s) {
		return false
	}
	if m := q.Get("middlewareName"); m != "" && !slices.ContainsFunc(middlewares, func(x string) bool { return same(x, m) }) {
		return false
	}
	return true
}

// settings turns configuration v into JSON values by the names of its
// TOML keys, which are Traefik's: structs become objects, durations
// strings such as "10s". Zero values, nil pointers and empty lists and
// maps are left out; a pointer to a struct without keys set is an empty
// object, as the configuration had the section.
func settings(v reflect.Value) any {
	x, _ := settingsOf(v, true)
	return x
}

var durationType = reflect.TypeFor[config.Duration]()

// settingsOf returns v's JSON value and whether it is kept: always with
// keep, else only when v is not zero.
func settingsOf(v reflect.Value, keep bool) (any, bool) {
	if v.Type() == durationType {
		return config.Duration(v.Int()).String(), keep || v.Int() != 0
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, false
		}
		return settingsOf(v.Elem(), true)
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if x, ok := settingsOf(v.Field(i), false); ok {
				out[name] = x
			}
		}
		return out, keep || len(out) > 0
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			x, _ := settingsOf(v.MapIndex(k), true)
			out[k.String()] = x
		}
		return out, len(out) > 0
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i], _ = settingsOf(v.Index(i), true)
		}
		return out, len(out) > 0
	case reflect.String:
		return v.String(), keep || v.String() != ""
	case reflect.Bool:
		return v.Bool(), keep || v.Bool()
	case reflect.Int, reflect.Int64:
		return v.Int(), keep || v.Int() != 0
	case reflect.Float64:
		return v.Float(), keep || v.Float() != 0
	}
	return fmt.Sprint(v.Interface()), keep
}
