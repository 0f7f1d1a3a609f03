package router

import (
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// tcpServerStatus is how the API learns the state of the servers of TCP
// services: a generation that routes TCP connections implements it, and
// /api/tcp/services shows what it reports as serverStatus. A generation
// without it shows none (no state is made up).
type tcpServerStatus interface {
	// tcpServerStatus returns the state, "UP" or "DOWN", of each server
	// of the TCP service called name (its configuration name), by
	// address; nil when it has none to tell.
	tcpServerStatus(name string) map[string]string
}

// apiTCPRouter is one TCP router, in the shape of Traefik v3's.
type apiTCPRouter struct {
	apiItem
	Rule        string           `json:"rule"`
	Priority    int              `json:"priority"`
	EntryPoints []string         `json:"entryPoints,omitempty"`
	Using       []string         `json:"using,omitempty"`
	Service     string           `json:"service"`
	Middlewares []string         `json:"middlewares,omitempty"`
	TLS         *apiTCPRouterTLS `json:"tls,omitempty"`
}

type apiTCPRouterTLS struct {
	Passthrough bool        `json:"passthrough"`
	Options     string      `json:"options,omitempty"`
	Domains     []apiDomain `json:"domains,omitempty"`
}

// apiTCPService is one TCP service: the settings of its type, and its
// servers' state when the TCP routing reports it.
type apiTCPService struct {
	apiItem
	configName   string
	Type         string            `json:"type"`
	LoadBalancer map[string]any    `json:"loadBalancer,omitempty"`
	Weighted     map[string]any    `json:"weighted,omitempty"`
	ServerStatus map[string]string `json:"serverStatus,omitempty"`
	UsedBy       []string          `json:"usedBy,omitempty"`
	settings     func() map[string]any
}

// buildTCP lists the TCP routers, services and middlewares of t.
func (v *apiView) buildTCP(t *config.TCP) {
	if t == nil {
		t = &config.TCP{}
	}
	eps := v.g.cfg.EntryPoints
	allEntryPoints := slices.Sorted(maps.Keys(eps))
	services := map[string][]string{}    // by service: the routers that use it
	middlewares := map[string][]string{} // by middleware: the routers that use it
	for _, name := range slices.Sorted(maps.Keys(t.Routers)) {
		r := t.Routers[name]
		out := apiTCPRouter{
			apiItem: v.item(name), Rule: r.Rule, Priority: r.Priority,
			EntryPoints: r.EntryPoints, Service: r.Service, Middlewares: r.Middlewares,
		}
		if len(out.EntryPoints) == 0 {
			out.EntryPoints = allEntryPoints
		}
		for _, ep := range out.EntryPoints {
			if why := v.notServed(ep); why == "" {
				out.Using = append(out.Using, ep)
			} else if len(r.EntryPoints) > 0 {
				// As for HTTP routers, only the entry points a router
				// names warn.
				out.problem(statusWarning, "%s", why)
			}
		}
		if out.Priority == 0 {
			out.Priority = len(r.Rule) // as TCP routers order by default
		}
		if _, err := rule.ParseTCP(r.Rule); err != nil {
			out.problem(statusDisabled, "rule: %v", err)
		}
		if len(out.Using) == 0 && out.Status != statusDisabled {
			out.problem(statusDisabled, "no entry point serves it")
		}
		if r.TLS != nil {
			out.TLS = &apiTCPRouterTLS{Passthrough: r.TLS.Passthrough, Options: r.TLS.Options}
			for _, d := range r.TLS.Domains {
				out.TLS.Domains = append(out.TLS.Domains, apiDomain{Main: d.Main, SANs: d.SANs})
			}
		}
		v.tcpRouters = append(v.tcpRouters, out)
		// A router uses its service and every service that one sends
		// connections to.
		seen := map[string]bool{}
		var use func(svc string)
		use = func(svc string) {
			if seen[svc] {
				return
			}
			seen[svc] = true
			services[svc] = append(services[svc], out.Name)
			if s := t.Services[svc]; s != nil && s.Weighted != nil {
				for _, c := range s.Weighted.Services {
					use(c.Name)
				}
			}
		}
		use(r.Service)
		for _, m := range slices.Compact(slices.Sorted(slices.Values(r.Middlewares))) {
			middlewares[m] = append(middlewares[m], out.Name)
		}
	}
	slices.SortFunc(v.tcpRouters, func(a, b apiTCPRouter) int { return strings.Compare(a.Name, b.Name) })

	for _, name := range slices.Sorted(maps.Keys(t.Services)) {
		s := t.Services[name]
		out := apiTCPService{apiItem: v.item(name), configName: name, UsedBy: sortedCopy(services[name])}
		switch {
		case s.LoadBalancer != nil:
			out.Type = "loadbalancer"
			out.settings = sync.OnceValue(func() map[string]any { return tcpLoadBalancerSettings(s.LoadBalancer) })
		case s.Weighted != nil:
			out.Type = "weighted"
			out.settings = sync.OnceValue(func() map[string]any { return tcpWeightedSettings(s.Weighted) })
		default:
			continue
		}
		v.tcpServices = append(v.tcpServices, out)
	}
	slices.SortFunc(v.tcpServices, func(a, b apiTCPService) int { return strings.Compare(a.Name, b.Name) })

	for _, name := range slices.Sorted(maps.Keys(t.Middlewares)) {
		m := t.Middlewares[name]
		key := oneOfKey(reflect.ValueOf(m))
		out := apiMiddleware{apiItem: v.item(name), Type: strings.ToLower(key), UsedBy: sortedCopy(middlewares[name])}
		out.settings = func() (map[string]any, error) {
			s, _ := settings(reflect.ValueOf(m)).(map[string]any)
			return s, nil
		}
		v.tcpMiddlewares = append(v.tcpMiddlewares, out)
	}
	slices.SortFunc(v.tcpMiddlewares, func(a, b apiMiddleware) int { return strings.Compare(a.Name, b.Name) })
}

func sortedCopy(list []string) []string {
	if list == nil {
		return nil
	}
	return slices.Sorted(slices.Values(list))
}

// tcpLoadBalancerSettings shows lb with its servers' effective weights.
func tcpLoadBalancerSettings(lb *config.TCPLoadBalancer) map[string]any {
	out, ok := settings(reflect.ValueOf(lb)).(map[string]any)
	if !ok {
		out = map[string]any{}
	}
	servers := []any{}
	for _, s := range lb.Servers {
		weight := 1
		if s.Weight != nil {
			weight = *s.Weight
		}
		server := map[string]any{"address": s.Address, "weight": weight}
		if s.TLS {
			server["tls"] = true
		}
		servers = append(servers, server)
	}
	out["servers"] = servers
	return out
}

// tcpWeightedSettings shows w with its children's effective weights.
func tcpWeightedSettings(w *config.TCPWeighted) map[string]any {
	children := []any{}
	for _, c := range w.Services {
		weight := 1
		if c.Weight != nil {
			weight = *c.Weight
		}
		children = append(children, map[string]any{"name": c.Name, "weight": weight})
	}
	return map[string]any{"services": children}
}

// renderTCP returns s with its settings, and its servers' state now if
// the generation reports it.
func (v *apiView) renderTCP(s apiTCPService) apiTCPService {
	switch s.Type {
	case "loadbalancer":
		s.LoadBalancer = s.settings()
	case "weighted":
		s.Weighted = s.settings()
	}
	if st, ok := any(v.g).(tcpServerStatus); ok && s.Type == "loadbalancer" {
		s.ServerStatus = st.tcpServerStatus(s.configName)
	}
	return s
}

// oneOfKey returns the configuration key of the one pointer field a
// one-of struct (a middleware, a service) sets: "ipAllowList".
func oneOfKey(v reflect.Value) string {
	v = v.Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			return name
		}
	}
	return ""
}

// tcpCollections are the TCP lists of the view the API serves by path.
func (v *apiView) tcpCollections() []collection {
	routers := collection{
		path: "/api/tcp/routers", kind: "TCP router", len: len(v.tcpRouters),
		name:   func(i int) string { return v.tcpRouters[i].Name },
		status: func(i int) string { return v.tcpRouters[i].Status },
		search: func(i int) string { return v.tcpRouters[i].Rule },
		keep: func(q url.Values, i int) bool {
			r := v.tcpRouters[i]
			return v.keepByRefs(q, r.Service, r.Middlewares)
		},
		item: func(i int) any { return v.tcpRouters[i] },
	}
	services := collection{
		path: "/api/tcp/services", kind: "TCP service", len: len(v.tcpServices),
		name:   func(i int) string { return v.tcpServices[i].Name },
		status: func(i int) string { return v.tcpServices[i].Status },
		item:   func(i int) any { return v.renderTCP(v.tcpServices[i]) },
	}
	middlewares := collection{
		path: "/api/tcp/middlewares", kind: "TCP middleware", len: len(v.tcpMiddlewares),
		name:   func(i int) string { return v.tcpMiddlewares[i].Name },
		status: func(i int) string { return v.tcpMiddlewares[i].Status },
		item:   func(i int) any { return v.tcpMiddlewares[i] },
	}
	return []collection{routers, services, middlewares}
}

// tcpServerStatus returns the state of the servers of the TCP
// loadBalancer service name, as its health checks see them.
func (g *generation) tcpServerStatus(name string) map[string]string {
	if g.tcp == nil {
		return nil
	}
	return g.tcp.ServerStatus(name)
}
