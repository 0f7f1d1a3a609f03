package config

import (
	"fmt"
	"slices"
	"strings"
)

// A service's health, as a parent weighted or failover service sees it:
// a loadBalancer is down while none of its servers is available (its
// active health check fails them, or passive health checking ejected
// them); a weighted service with healthCheck while none of its children
// with a weight is up; a mirroring service with healthCheck while its
// service is; a failover service with healthCheck while both its service
// and its fallback are down. A loadBalancer without an active or passive
// health check, and a weighted, mirroring or failover service without
// healthCheck, never report down: they cannot serve as the child of a
// service that needs health (reportsHealth).

// weighted checks a weighted service.
func (v *validator) weighted(path []string, w *Weighted) {
	at := func(seg ...string) []string {
		return append(slices.Clip(path), append([]string{"weighted"}, seg...)...)
	}
	if len(w.Services) == 0 {
		v.add(at("services"), "at least one service is required: [[http.services.NAME.weighted.services]] with name = \"a service\"")
	}
	for i, c := range w.Services {
		cp := at("services", fmt.Sprint(i))
		v.serviceRef(append(cp, "name"), "name", c.Name)
		if c.Weight != nil && (*c.Weight < 0 || *c.Weight > 1_000_000) {
			v.add(append(slices.Clip(cp), "weight"), "weight %d is out of range 0 to 1000000", *c.Weight)
		}
		if w.HealthCheck != nil {
			v.reportsHealth(append(slices.Clip(cp), "name"), c.Name)
		}
	}
	if w.Sticky != nil {
		v.sticky(at("sticky"), w.Sticky)
	}
}

// mirroring checks a mirroring service.
func (v *validator) mirroring(path []string, m *Mirroring) {
	at := func(seg ...string) []string {
		return append(slices.Clip(path), append([]string{"mirroring"}, seg...)...)
	}
	v.serviceRef(at("service"), "service", m.Service)
	if m.HealthCheck != nil {
		v.reportsHealth(at("service"), m.Service)
	}
	for i, mr := range m.Mirrors {
		mp := at("mirrors", fmt.Sprint(i))
		v.serviceRef(append(mp, "name"), "name", mr.Name)
		if mr.Percent < 0 || mr.Percent > 100 {
			v.add(append(slices.Clip(mp), "percent"), "percent %d is out of range 0 to 100", mr.Percent)
		}
	}
	if m.MaxBodySize != nil && *m.MaxBodySize < -1 {
		v.add(at("maxBodySize"), "maxBodySize %d: use a size in bytes, or -1 for no limit", *m.MaxBodySize)
	}
}

// failover checks a failover service. Its service must report health,
// or the fallback would take requests only when a connection is refused.
func (v *validator) failover(path []string, f *Failover) {
	at := func(seg ...string) []string {
		return append(slices.Clip(path), append([]string{"failover"}, seg...)...)
	}
	v.serviceRef(at("service"), "service", f.Service)
	v.serviceRef(at("fallback"), "fallback", f.Fallback)
	if f.Service != "" && f.Service == f.Fallback {
		v.add(at("fallback"), "fallback %q is the service itself; name another service", f.Fallback)
	}
	v.reportsHealth(at("service"), f.Service)
	if f.HealthCheck != nil {
		v.reportsHealth(at("fallback"), f.Fallback)
	}
}

// serviceRef checks a required reference to a service.
func (v *validator) serviceRef(path []string, key, name string) {
	if name == "" {
		v.add(path, "%s is required: the name of a service under [http.services]", key)
		return
	}
	v.ref(path, "service", name, v.serviceNames)
}

// reportsHealth checks that the service called name, where a parent needs
// its health, can report being down (see above). An undefined name is
// reported by serviceRef.
func (v *validator) reportsHealth(path []string, name string) {
	s := v.cfg.HTTP.Services[name]
	if s == nil {
		return
	}
	switch {
	case s.LoadBalancer != nil:
		if s.LoadBalancer.HealthCheck == nil && s.LoadBalancer.PassiveHealthCheck == nil {
			v.add(path, "service %q has no health check, so it is never seen down: add [http.services.%s.loadBalancer.healthCheck] or passiveHealthCheck", name, name)
		}
	case s.Weighted != nil && s.Weighted.HealthCheck == nil,
		s.Mirroring != nil && s.Mirroring.HealthCheck == nil,
		s.Failover != nil && s.Failover.HealthCheck == nil:
		typ, _ := typesOf(s)
		v.add(path, "service %q does not report its health: add [http.services.%s.%s.healthCheck]", name, name, strings.Join(typ, ""))
	}
}

// children returns the services a service sends requests to.
func children(s *Service) []string {
	switch {
	case s == nil:
		return nil
	case s.Weighted != nil:
		out := make([]string, 0, len(s.Weighted.Services))
		for _, c := range s.Weighted.Services {
			out = append(out, c.Name)
		}
		return out
	case s.Mirroring != nil:
		out := []string{s.Mirroring.Service}
		for _, m := range s.Mirroring.Mirrors {
			out = append(out, m.Name)
		}
		return out
	case s.Failover != nil:
		return []string{s.Failover.Service, s.Failover.Fallback}
	}
	return nil
}

// serviceCycles reports every group of services that send requests to
// each other, once per group, at its first service by name, with the
// shortest cycle through it: such a service would never reach a server.
func (v *validator) serviceCycles() {
	svcs := v.cfg.HTTP.Services
	next := func(name string) []string { return children(svcs[name]) }
	exists := func(name string) bool { return svcs[name] != nil }
	for _, c := range cycles(v.serviceNames, exists, next) {
		first := c.group[0]
		typ, _ := typesOf(svcs[first])
		path := p("http", "services", first, strings.Join(typ, ""))
		if len(c.group) == 1 {
			v.add(path, "service %q sends requests to itself; name other services", first)
			continue
		}
		v.add(path, "services %s send requests to each other: %s; break the cycle", strings.Join(c.group, ", "), strings.Join(c.path, " → "))
	}
}

// cycle is a group of nodes that reach each other, sorted, and the
// shortest path from its first node back to it.
type cycle struct {
	group, path []string
}

// cycles returns the groups of nodes of a graph that reach each other
// (a node that reaches itself is a group of one), in order of their first
// node, each with the shortest cycle through its first node.
func cycles(nodes []string, exists func(string) bool, next func(string) []string) []cycle {
	var out []cycle
	for _, group := range stronglyConnected(nodes, exists, next) {
		first := group[0]
		if len(group) == 1 && !slices.Contains(next(first), first) {
			continue
		}
		in := map[string]bool{}
		for _, n := range group {
			in[n] = true
		}
		path := shortestCycle(first, func(n string) []string {
			return slices.DeleteFunc(slices.Clone(next(n)), func(m string) bool { return !in[m] })
		})
		out = append(out, cycle{group: group, path: path})
	}
	return out
}
