package config

import (
	"fmt"
	"slices"
)

// proxyProtocols checks the PROXY protocol settings of entry points
// ([entryPoints.NAME.proxyProtocol]) and of HTTP servers transports
// ([http.serversTransports.NAME.proxyProtocol]).
func (v *validator) proxyProtocols() {
	for _, name := range v.entryPointNames {
		if ep := v.cfg.EntryPoints[name]; ep != nil && ep.ProxyProtocol != nil {
			v.proxyProtocolIn(p("entryPoints", name, "proxyProtocol"), ep.ProxyProtocol)
		}
	}
	if h := v.cfg.HTTP; h != nil {
		for _, name := range v.transportNames {
			if st := h.ServersTransports[name]; st != nil && st.ProxyProtocol != nil {
				v.check(p("http", "serversTransports", name, "proxyProtocol", "version"), checkProxyProtocolVersion(st.ProxyProtocol.Version))
			}
		}
	}
}

func (v *validator) proxyProtocolIn(path []string, pp *ProxyProtocolIn) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	for i, ip := range pp.TrustedIPs {
		v.check(at("trustedIPs", fmt.Sprint(i)), checkIPOrCIDR(ip))
	}
	switch {
	case pp.Insecure && len(pp.TrustedIPs) > 0:
		v.add(at("insecure"), "insecure reads a PROXY header from every client, which contradicts trustedIPs; keep trustedIPs (the load balancers' addresses) or, only when nothing else can reach the entry point, insecure")
	case !pp.Insecure && len(pp.TrustedIPs) == 0:
		v.add(path, "trustedIPs is required: list the IPs or CIDR ranges of the load balancers that send PROXY headers, such as [\"10.0.0.0/8\"] (or set insecure = true when nothing else can reach the entry point)")
	}
}

// checkProxyProtocolVersion checks the version of a PROXY protocol header
// sent to servers (ProxyProtocolOut.Version): 0 (meaning 2), 1 or 2.
func checkProxyProtocolVersion(version int) error {
	if version < 0 || version > 2 {
		return fmt.Errorf("version %d: use 1 (text), 2 (binary) or leave it out (2)", version)
	}
	return nil
}
