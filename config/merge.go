package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Provided is what one provider supplies: routes grouped by the object
// that asks for them, and certificates.
type Provided struct {
	// Provider is the provider's name, such as "kubernetes". Every router
	// and service name of its parts ends in "@" and this name, which no
	// name in a file or the store may contain, so the two never collide.
	Provider string
	// Parts are merged in order: when two parts conflict (the same router
	// name, one service name with two definitions, one host with two TLS
	// options), the earlier one wins and the later one is refused.
	Parts []*Part
}

// Part is what one object of a provider asks for, such as one Kubernetes
// Ingress: routers and the services they use. It is merged whole or
// refused whole, so that a bad object never breaks the others. Its
// routers may name middlewares, entry points and TLS options of the base
// configuration by their plain names, and services of their own part.
// A part is only read: a provider may hand the same part to Merge again.
type Part struct {
	// Owner names the object, such as "ingress default/web".
	Owner string
	// Routers by name.
	Routers map[string]*Router
	// Services by name. Unlike in a file, a service may have no servers
	// (it answers 503).
	Services map[string]*Service
	// Middlewares by name, which the part's routers may name besides
	// the base configuration's. A chain is not allowed here: a part's
	// middlewares are what its object asks for, in full.
	Middlewares map[string]*Middleware
	// ServersTransports by name, which the part's loadBalancers may name
	// besides the base configuration's. They may not name files (rootCAs,
	// certificates): a provider's transport carries settings only.
	ServersTransports map[string]*ServersTransport
	// Certificates are served with the part: an earlier part's pair wins
	// a name two parts' pairs claim.
	Certificates []KeyPair
}

// Refusal is a part Merge left out, and why.
type Refusal struct {
	Provider string
	Owner    string
	Err      error
}

// Merge returns base with the parts of every provider added, and the parts
// it refused. base must be valid; it is not modified, and neither are the
// parts: the result shares their routers, services and middlewares.
// Providers supply HTTP routes only: the result shares base's [tcp].
func Merge(base *Config, provided ...*Provided) (*Config, []Refusal) {
	out := *base
	h := &HTTP{Routers: map[string]*Router{}, Services: map[string]*Service{}, Middlewares: map[string]*Middleware{}}
	if base.HTTP != nil {
		for k, v := range base.HTTP.Routers {
			h.Routers[k] = v
		}
		for k, v := range base.HTTP.Services {
			h.Services[k] = v
		}
		for k, v := range base.HTTP.Middlewares {
			h.Middlewares[k] = v
		}
		h.ServersTransports = base.HTTP.ServersTransports
	}
	out.HTTP = h
	out.ProvidedCertificates = slices.Clone(base.ProvidedCertificates)
	m := &merger{
		base:            base,
		out:             &out,
		entryPointNames: sorted(base.EntryPoints),
		middlewareNames: sorted(h.Middlewares),
		tlsHosts:        map[string]map[string]hostOptions{},
	}
	m.tlsEntryPoints = (&validator{cfg: base, entryPointNames: m.entryPointNames}).tlsEntryPoints()
	for _, name := range sorted(h.Routers) {
		m.claimTLSHosts(name, h.Routers[name], true)
	}
	var refused []Refusal
	for _, pr := range provided {
		if pr == nil {
			continue
		}
		for _, part := range pr.Parts {
			if err := m.add(pr.Provider, part); err != nil {
				refused = append(refused, Refusal{Provider: pr.Provider, Owner: part.Owner, Err: err})
				continue
			}
			out.ProvidedCertificates = append(out.ProvidedCertificates, part.Certificates...)
		}
	}
	return &out, refused
}

type merger struct {
	base, out       *Config
	entryPointNames []string
	middlewareNames []string
	tlsEntryPoints  []string
	// tlsHosts holds, by TLS entry point and host, the TLS options of the
	// router that serves the host there first.
	tlsHosts map[string]map[string]hostOptions
	// ownTransports is set once out's serversTransports are a copy of
	// the base's, which parts may add to.
	ownTransports bool
}

type hostOptions struct{ options, router string }

// add merges part, or returns why it cannot be.
func (m *merger) add(provider string, part *Part) error {
	suffix := "@" + provider
	var errs []error
	checkNames := func(kind string, names []string) {
		for _, n := range names {
			local, ok := strings.CutSuffix(n, suffix)
			if !ok {
				errs = append(errs, fmt.Errorf("%s %q: a provider's names end in %q", kind, n, suffix))
			} else if err := checkName(local); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", kind, n, err))
			}
		}
	}
	routerNames, serviceNames, middlewareNames := sorted(part.Routers), sorted(part.Services), sorted(part.Middlewares)
	transportNames := sorted(part.ServersTransports)
	checkNames("router", routerNames)
	checkNames("service", serviceNames)
	checkNames("middleware", middlewareNames)
	checkNames("serversTransport", transportNames)
	for _, n := range transportNames {
		st := part.ServersTransports[n]
		switch {
		case st == nil:
			errs = append(errs, fmt.Errorf("serversTransport %q is empty", n))
		case len(st.RootCAs) > 0 || len(st.Certificates) > 0:
			errs = append(errs, fmt.Errorf("serversTransport %q: a provider's transport cannot name files", n))
		}
		if prev, dup := m.out.HTTP.ServersTransports[n]; dup && prev != st && !reflect.DeepEqual(prev, st) {
			errs = append(errs, fmt.Errorf("serversTransport %q is already defined differently by another object", n))
		}
	}
	for _, n := range routerNames {
		if _, dup := m.out.HTTP.Routers[n]; dup {
			errs = append(errs, fmt.Errorf("router %q is already defined by another object", n))
		}
	}
	for _, n := range serviceNames {
		if prev, dup := m.out.HTTP.Services[n]; dup && prev != part.Services[n] && !reflect.DeepEqual(prev, part.Services[n]) {
			errs = append(errs, fmt.Errorf("service %q is already defined differently by another object", n))
		}
	}
	for _, n := range middlewareNames {
		if prev, dup := m.out.HTTP.Middlewares[n]; dup && prev != part.Middlewares[n] && !reflect.DeepEqual(prev, part.Middlewares[n]) {
			errs = append(errs, fmt.Errorf("middleware %q is already defined differently by another object", n))
		}
		if part.Middlewares[n] == nil {
			errs = append(errs, fmt.Errorf("middleware %q is empty", n))
		} else if part.Middlewares[n].Chain != nil {
			errs = append(errs, fmt.Errorf("middleware %q: a provider's middleware cannot be a chain", n))
		}
	}
	v := &validator{
		cfg:             &Config{EntryPoints: m.base.EntryPoints, TLS: m.base.TLS, ACME: m.base.ACME, HTTP: &HTTP{Routers: part.Routers, Services: part.Services, Middlewares: part.Middlewares}},
		entryPointNames: m.entryPointNames,
		serviceNames:    serviceNames,
		middlewareNames: m.middlewareNames,
		provided:        true,
	}
	if len(middlewareNames) > 0 {
		v.middlewareNames = slices.Sorted(slices.Values(append(slices.Clone(m.middlewareNames), middlewareNames...)))
	}
	if m.base.HTTP != nil {
		v.transportNames = sorted(m.base.HTTP.ServersTransports)
	}
	if len(transportNames) > 0 {
		v.transportNames = slices.Sorted(slices.Values(append(slices.Clone(v.transportNames), transportNames...)))
	}
	for _, n := range routerNames {
		v.router(p("http", "routers", n), part.Routers[n])
	}
	for _, n := range serviceNames {
		v.service(p("http", "services", n), part.Services[n])
	}
	for _, n := range middlewareNames {
		if mw := part.Middlewares[n]; mw != nil && mw.Chain == nil {
			v.middleware(p("http", "middlewares", n), n, mw)
		}
	}
	for _, n := range transportNames {
		if st := part.ServersTransports[n]; st != nil {
			v.serversTransport(p("http", "serversTransports", n), st)
		}
	}
	for _, pr := range v.ps {
		errs = append(errs, fmt.Errorf("%s: %s", strings.Join(pr.path, "."), pr.msg))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// TLS options by host: checked against what is merged so far, then
	// claimed, so that a refused part claims nothing.
	for _, n := range routerNames {
		if err := m.claimTLSHosts(n, part.Routers[n], false); err != nil {
			return err
		}
	}
	for _, n := range routerNames {
		m.claimTLSHosts(n, part.Routers[n], true)
		m.out.HTTP.Routers[n] = part.Routers[n]
	}
	for _, n := range serviceNames {
		if _, dup := m.out.HTTP.Services[n]; !dup {
			m.out.HTTP.Services[n] = part.Services[n]
		}
	}
	for _, n := range middlewareNames {
		if _, dup := m.out.HTTP.Middlewares[n]; !dup {
			m.out.HTTP.Middlewares[n] = part.Middlewares[n]
		}
	}
	for _, n := range transportNames {
		if _, dup := m.out.HTTP.ServersTransports[n]; !dup {
			if !m.ownTransports {
				// The base's map is shared until a part adds to it.
				m.out.HTTP.ServersTransports = maps.Clone(m.out.HTTP.ServersTransports)
				if m.out.HTTP.ServersTransports == nil {
					m.out.HTTP.ServersTransports = map[string]*ServersTransport{}
				}
				m.ownTransports = true
			}
			m.out.HTTP.ServersTransports[n] = part.ServersTransports[n]
		}
	}
	return nil
}

// claimTLSHosts checks that router r (named name) serves each host it
// requires with the same TLS options as the router that serves it first
// on each TLS entry point, and with claim records r as that router where
// there is none yet.
func (m *merger) claimTLSHosts(name string, r *Router, claim bool) error {
	if r.TLS == nil {
		return nil
	}
	e, err := rule.Parse(r.Rule)
	if err != nil {
		return nil // reported by validation
	}
	for _, ep := range m.tlsEntryPoints {
		if len(r.EntryPoints) > 0 && !slices.Contains(r.EntryPoints, ep) {
			continue
		}
		hosts := m.tlsHosts[ep]
		if hosts == nil {
			hosts = map[string]hostOptions{}
			m.tlsHosts[ep] = hosts
		}
		for _, host := range rule.RequiredHosts(e) {
			prev, seen := hosts[host]
			switch {
			case !seen && claim:
				hosts[host] = hostOptions{options: r.TLS.Options, router: name}
			case seen && prev.options != r.TLS.Options && !claim:
				return fmt.Errorf("router %s serves %s on entry point %s with TLS options %s, but router %s already serves it there with %s: a handshake can use only one",
					name, host, ep, optionsName(r.TLS.Options), prev.router, optionsName(prev.options))
			}
		}
	}
	return nil
}
