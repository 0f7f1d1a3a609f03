package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// validator checks the meaning of a decoded configuration and collects
// every problem; it never stops at the first.
type validator struct {
	cfg *Config
	ps  problems

	// Defined names, sorted, computed once.
	entryPointNames, serviceNames, middlewareNames []string
	// transportNames are the defined serversTransports.
	transportNames []string
	// provided is set when checking a provider's part: its services may
	// have no servers (a Kubernetes Service without ready endpoints, which
	// answers 503 until it has some).
	provided bool
}

// validate returns every semantic problem of cfg.
func validate(cfg *Config) problems {
	if ps := nilEntries(cfg); len(ps) > 0 {
		return ps
	}
	v := &validator{cfg: cfg, entryPointNames: sorted(cfg.EntryPoints)}
	if cfg.HTTP != nil {
		v.serviceNames, v.middlewareNames = sorted(cfg.HTTP.Services), sorted(cfg.HTTP.Middlewares)
		v.transportNames = sorted(cfg.HTTP.ServersTransports)
	}
	v.entryPoints()
	v.http3()
	v.store()
	v.acme()
	v.operations()
	v.http()
	v.tls()
	v.serversTransports()
	v.proxyProtocols()
	v.tlsStores()
	v.providers()
	v.fileNames()
	v.notServedYet()
	return v.ps
}

// validateDecoded returns the problems of decoding, then the semantic
// problems of cfg, so that one pass reports both a value of the wrong type
// and a missing service elsewhere. A value that did not decode was left at
// its zero, which validation would report again, wrongly ("is required"),
// so semantic problems at, above or below a key with a decoding problem are
// left out, as are those of a key an unknown key likely meant.
func validateDecoded(cfg *Config, d *decoder) problems {
	decoded := d.probs
	// at holds the paths of decoding problems, within every path above
	// one of them; a lookup per prefix of a path keeps this linear.
	at, within := map[string]bool{}, map[string]bool{}
	for _, dp := range decoded {
		at[pathKey(dp.path)] = true
		for n := 1; n < len(dp.path); n++ {
			within[pathKey(dp.path[:n])] = true
		}
	}
	for _, path := range d.meant {
		at[pathKey(path)] = true
	}
	out := slices.Clip(decoded)
	for _, sp := range validate(cfg) {
		skip := len(sp.path) > 0 && within[pathKey(sp.path)]
		for n := 1; n <= len(sp.path) && !skip; n++ {
			skip = at[pathKey(sp.path[:n])]
		}
		if !skip {
			out = append(out, sp)
		}
	}
	return out
}

// nilEntries reports named objects that are nil, which decoding never
// produces but a Config built in code may hold; the other checks assume
// there are none.
func nilEntries(cfg *Config) problems {
	var ps problems
	report := func(path []string, names []string, isNil func(string) bool) {
		for _, n := range names {
			if isNil(n) {
				ps.add(append(slices.Clip(path), n), "is nil; define it or remove it")
			}
		}
	}
	report(p("entryPoints"), sorted(cfg.EntryPoints), func(n string) bool { return cfg.EntryPoints[n] == nil })
	if h := cfg.HTTP; h != nil {
		report(p("http", "routers"), sorted(h.Routers), func(n string) bool { return h.Routers[n] == nil })
		report(p("http", "services"), sorted(h.Services), func(n string) bool { return h.Services[n] == nil })
		report(p("http", "middlewares"), sorted(h.Middlewares), func(n string) bool { return h.Middlewares[n] == nil })
		report(p("http", "serversTransports"), sorted(h.ServersTransports), func(n string) bool { return h.ServersTransports[n] == nil })
	}
	if t := cfg.TLS; t != nil {
		report(p("tls", "options"), sorted(t.Options), func(n string) bool { return t.Options[n] == nil })
		report(p("tls", "stores"), sorted(t.Stores), func(n string) bool { return t.Stores[n] == nil })
	}
	return ps
}

func (v *validator) add(path []string, format string, args ...any) {
	v.ps.add(path, format, args...)
}

func (v *validator) check(path []string, err error) {
	if err != nil {
		v.ps.add(path, "%v", err)
	}
}

// p builds a path.
func p(segs ...string) []string { return segs }

// sorted returns the keys of a named-object map in order.
func sorted[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}

// ref checks that name refers to a defined object of kind.
// defined must be sorted.
func (v *validator) ref(path []string, kind, name string, defined []string) {
	if _, found := slices.BinarySearch(defined, name); found {
		return
	}
	msg := fmt.Sprintf("%s %q is not defined", kind, name)
	suggestion := ""
	if len(defined) <= 1000 { // bounded work per reference, whatever the input
		suggestion = Closest(name, defined)
	}
	base, provider, qualified := strings.Cut(name, "@")
	if _, found := slices.BinarySearch(defined, base); qualified && found {
		v.add(path, "%s %q is not defined: names here have no @provider suffix (the API shows %s@%s for %s); write %q", kind, name, base, provider, base, base)
		return
	}
	switch s := suggestion; {
	case s != "":
		msg += fmt.Sprintf("; did you mean %q?", s)
	case len(defined) == 0:
		msg += fmt.Sprintf("; no %ss are defined", kind)
	case len(defined) > 10:
		msg += fmt.Sprintf(" (defined: %s and %d more)", strings.Join(defined[:10], ", "), len(defined)-10)
	default:
		msg += fmt.Sprintf(" (defined: %s)", strings.Join(defined, ", "))
	}
	v.add(path, "%s", msg)
}

func (v *validator) names(path []string, names []string) {
	for _, n := range names {
		v.check(append(slices.Clip(path), n), checkName(n))
	}
}

func (v *validator) nonNegative(path []string, d Duration) {
	if d < 0 {
		v.add(path, "negative duration %s; durations are 0 or more", d)
	}
}

func effective(d Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.Std()
}

func (v *validator) entryPoints() {
	eps := v.cfg.EntryPoints
	if len(eps) == 0 {
		v.add(p("entryPoints"), "no entry points are defined; add one, such as [entryPoints.web] with address = \":80\"")
		return
	}
	v.names(p("entryPoints"), sorted(eps))
	type listener struct {
		name, host string
	}
	byPort := map[int][]listener{}
	for _, name := range sorted(eps) {
		ep := eps[name]
		path := p("entryPoints", name)
		if ep.Address == "" {
			v.add(append(path, "address"), "address is required, such as \":443\"")
		} else if host, port, err := checkListen(ep.Address); err != nil {
			v.check(append(path, "address"), err)
		} else if port != 0 {
			for _, other := range byPort[port] {
				if other.host == host || wildcardHost(other.host) || wildcardHost(host) {
					v.add(append(path, "address"), "address %q conflicts with entry point %q, which listens on the same port; give each entry point its own address", ep.Address, other.name)
				}
			}
			byPort[port] = append(byPort[port], listener{name, host})
		}
		v.entryPoint(path, name, ep)
	}
}

func wildcardHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

func (v *validator) entryPoint(path []string, name string, ep *EntryPoint) {
	if ep.HTTP != nil && ep.HTTP.Redirections != nil && ep.HTTP.Redirections.EntryPoint != nil {
		r := ep.HTTP.Redirections.EntryPoint
		rp := append(slices.Clip(path), "http", "redirections", "entryPoint")
		switch {
		case r.To == "":
			v.add(append(rp, "to"), "to is required: the entry point to redirect to, such as \"websecure\"")
		case r.To == name:
			v.add(append(rp, "to"), "entry point %q redirects to itself; name another entry point", name)
		default:
			v.ref(append(rp, "to"), "entry point", r.To, v.entryPointNames)
		}
		if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
			v.add(append(rp, "scheme"), "scheme %q: use \"https\" or \"http\"", r.Scheme)
		}
	}
	if ep.HTTP != nil && ep.HTTP.TLS != nil {
		v.tlsOptionsRef(append(slices.Clip(path), "http", "tls", "options"), ep.HTTP.TLS.Options)
	}
	if fh := ep.ForwardedHeaders; fh != nil {
		for i, ip := range fh.TrustedIPs {
			v.check(append(slices.Clip(path), "forwardedHeaders", "trustedIPs", fmt.Sprint(i)), checkIPOrCIDR(ip))
		}
		if fh.Insecure && len(fh.TrustedIPs) > 0 {
			v.add(append(slices.Clip(path), "forwardedHeaders", "insecure"), "insecure trusts every client, which makes trustedIPs pointless; set one or the other")
		}
	}
	if tr := ep.Transport; tr != nil {
		tp := append(slices.Clip(path), "transport")
		if tr.MaxHeaderBytes < 0 || tr.MaxHeaderBytes > 64<<20 {
			v.add(append(tp, "maxHeaderBytes"), "maxHeaderBytes %d is out of range: use 0 (1 MiB) up to 67108864", tr.MaxHeaderBytes)
		}
		if rt := tr.RespondingTimeouts; rt != nil {
			v.timeouts(append(tp, "respondingTimeouts"), rt)
		}
	}
}

func (v *validator) timeouts(path []string, rt *RespondingTimeouts) {
	v.nonNegative(append(slices.Clip(path), "readHeaderTimeout"), rt.ReadHeaderTimeout)
	v.nonNegative(append(slices.Clip(path), "readTimeout"), rt.ReadTimeout)
	v.nonNegative(append(slices.Clip(path), "writeTimeout"), rt.WriteTimeout)
	v.nonNegative(append(slices.Clip(path), "idleTimeout"), rt.IdleTimeout)
	header := effective(rt.ReadHeaderTimeout, 10*time.Second)
	read := effective(rt.ReadTimeout, 60*time.Second)
	if rt.ReadHeaderTimeout >= 0 && rt.ReadTimeout >= 0 && header > read {
		v.add(append(slices.Clip(path), "readHeaderTimeout"), "readHeaderTimeout (%s) is longer than readTimeout (%s), which bounds the whole request; lower readHeaderTimeout or raise readTimeout", header, read)
	}
}

func (v *validator) store() {
	s := v.cfg.Store
	if s == nil {
		return
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || !slices.Contains([]string{"file", "consul", "etcd"}, u.Scheme) {
			v.add(p("store", "endpoint"), "endpoint must be a file://, consul:// or etcd:// URL (see docs/store.md)")
		}
	}
	if s.Prefix != "" {
		v.check(p("store", "prefix"), CheckPrefix(s.Prefix))
	}
}

// operations checks api, metrics, log, accessLog and lifecycle.
func (v *validator) operations() {
	eps := v.entryPointNames
	if a := v.cfg.API; a != nil {
		v.ref(p("api", "entryPoint"), "entry point", cmp.Or(a.EntryPoint, "api"), eps)
		if auth := a.Auth(); auth != nil {
			v.basicAuth(p("api"), auth)
		}
	}
	if m := v.cfg.Metrics; m != nil && m.Prometheus != nil {
		pr := m.Prometheus
		ep := cmp.Or(pr.EntryPoint, "api")
		if pr.EntryPoint == "" && v.cfg.API != nil {
			ep = cmp.Or(v.cfg.API.EntryPoint, "api")
		}
		v.ref(p("metrics", "prometheus", "entryPoint"), "entry point", ep, eps)
		for i, b := range pr.Buckets {
			if b <= 0 || (i > 0 && b <= pr.Buckets[i-1]) {
				v.add(p("metrics", "prometheus", "buckets", fmt.Sprint(i)), "buckets must be positive and increasing; %v is not", b)
				break
			}
		}
	}
	if l := v.cfg.Log; l != nil {
		if l.Level != "" && !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(l.Level)) {
			v.add(p("log", "level"), "level %q: use debug, info, warn or error", l.Level)
		}
		if l.Format != "" && l.Format != "text" && l.Format != "json" {
			v.add(p("log", "format"), "format %q: use text or json", l.Format)
		}
	}
	if l := v.cfg.AccessLog; l != nil && l.Format != "" && l.Format != "text" && l.Format != "json" {
		v.add(p("accessLog", "format"), "format %q: use json or text", l.Format)
	}
	if l := v.cfg.Lifecycle; l != nil {
		v.nonNegative(p("lifecycle", "drainDelay"), l.DrainDelay)
		v.nonNegative(p("lifecycle", "graceTimeout"), l.GraceTimeout)
	}
}

// tlsEntryPoints lists the entry points that serve TLS.
func (v *validator) tlsEntryPoints() []string {
	var out []string
	for _, name := range v.entryPointNames {
		if ep := v.cfg.EntryPoints[name]; ep.HTTP != nil && ep.HTTP.TLS != nil {
			out = append(out, name)
		}
	}
	return out
}
