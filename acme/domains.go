package acme

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Want is one certificate the configuration asks for.
type Want struct {
	// Domains are the names, the main one first, normalized.
	Domains []string
	// Source says why: "domains", "router <name>", "tcp router <name>"
	// or "on-demand".
	Source string
}

// Main is the certificate's main name: its key in the store.
func (w Want) Main() string { return w.Domains[0] }

// Wanted lists the certificates cfg asks for: [[acme.domains]], the
// domains of routers with TLS, the hosts of their rules when onHostRule
// is on, then the same for TCP routers that terminate TLS (their HostSNI
// names), and the on-demand names requested. A name covered by an earlier
// certificate (exactly, or by its wildcard) is not asked for twice. Names
// no enabled challenge can validate are left out: IP addresses always,
// wildcards without DNS-01.
func Wanted(cfg *config.Config, onDemand []string) []Want {
	a := cfg.ACME
	if a == nil {
		return nil
	}
	var out []Want
	covered := map[string]bool{}
	wildcardOK := a.DNSChallenge != nil
	usable := func(name string) bool {
		if name == "" || strings.HasPrefix(name, "**") {
			return false
		}
		if _, err := netip.ParseAddr(name); err == nil {
			return false
		}
		return wildcardOK || !strings.HasPrefix(name, "*.")
	}
	isCovered := func(name string) bool {
		if covered[name] {
			return true
		}
		if _, rest, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "*.") {
			return covered["*."+rest]
		}
		return false
	}
	add := func(source string, names ...string) {
		var ds []string
		for _, n := range names {
			n = normalize(n)
			if usable(n) && !slices.Contains(ds, n) {
				ds = append(ds, n)
			}
		}
		if len(ds) == 0 || isCovered(ds[0]) {
			return
		}
		for _, n := range ds {
			covered[n] = true
		}
		out = append(out, Want{Domains: ds, Source: source})
	}
	for _, d := range a.Domains {
		add("domains", append([]string{d.Main}, d.SANs...)...)
	}
	// A router presenting tollgate's certificates asks for its
	// tls.domains, else, with onHostRule, for the hosts its rule names.
	router := func(source string, domains []config.Domain, hosts func() []string) {
		if len(domains) > 0 {
			for _, d := range domains {
				add(source, append([]string{d.Main}, d.SANs...)...)
			}
			return
		}
		if a.OnHostRule {
			for _, host := range hosts() {
				add(source, host)
			}
		}
	}
	if h := cfg.HTTP; h != nil {
		for _, name := range slices.Sorted(maps.Keys(h.Routers)) {
			r := h.Routers[name]
			if r.TLS == nil || r.TLS.CertificateProvided {
				continue
			}
			router("router "+name, r.TLS.Domains, func() []string {
				e, err := rule.Parse(r.Rule)
				if err != nil {
					return nil // validation reports it
				}
				return rule.Hosts(e)
			})
		}
	}
	if t := cfg.TCP; t != nil {
		// TCP routers that terminate TLS present tollgate's certificates
		// as HTTP routers do; with passthrough the service holds them.
		for _, name := range slices.Sorted(maps.Keys(t.Routers)) {
			r := t.Routers[name]
			if r == nil || r.TLS == nil || r.TLS.Passthrough {
				continue
			}
			router("tcp router "+name, r.TLS.Domains, func() []string {
				e, err := rule.ParseTCP(r.Rule)
				if err != nil {
					return nil // validation reports it
				}
				return rule.ServerNames(e)
			})
		}
	}
	for _, n := range onDemand {
		add("on-demand", n)
	}
	return out
}
