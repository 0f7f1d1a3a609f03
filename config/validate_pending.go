package config

// pending refuses a setting that decodes but that replicas do not apply
// yet: accepting it would promise what does not happen.
func (v *validator) pending(path []string, what string) {
	v.add(path, "%s are not implemented yet; remove it", what)
}

// pendingSettings refuses the parts of the configuration the replicas do
// not apply yet.
func (v *validator) pendingSettings() {
	if h := v.cfg.HTTP; h != nil {
		for _, name := range sorted(h.ServersTransports) {
			v.pending(p("http", "serversTransports", name), "serversTransports")
		}
		for _, name := range sorted(h.Services) {
			if s := h.Services[name]; s != nil && s.LoadBalancer != nil && s.LoadBalancer.ServersTransport != "" {
				v.pending(p("http", "services", name, "loadBalancer", "serversTransport"), "serversTransports")
			}
		}
	}
	if t := v.cfg.TLS; t != nil {
		for _, name := range sorted(t.Stores) {
			v.pending(p("tls", "stores", name), "TLS stores")
		}
	}
}
