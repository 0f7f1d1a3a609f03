package config

// notServedYet refuses the sections whose serving is being built: a
// setting that is accepted must do something.
func (v *validator) notServedYet() {
	if v.cfg.HTTP != nil {
		for _, name := range sorted(v.cfg.HTTP.ServersTransports) {
			if st := v.cfg.HTTP.ServersTransports[name]; st != nil && st.ProxyProtocol != nil {
				v.add(p("http", "serversTransports", name, "proxyProtocol"), "the PROXY protocol is not supported (yet); remove it")
			}
		}
	}
	for _, name := range v.entryPointNames {
		ep := v.cfg.EntryPoints[name]
		if ep == nil {
			continue
		}
		if ep.ProxyProtocol != nil {
			v.add(p("entryPoints", name, "proxyProtocol"), "the PROXY protocol is not supported (yet); remove it")
		}
		if ep.HTTP3 != nil {
			v.add(p("entryPoints", name, "http3"), "HTTP/3 is not supported (yet); remove it")
		}
	}
}
