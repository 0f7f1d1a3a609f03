package config

import "slices"

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
		for _, name := range sorted(h.Middlewares) {
			m := h.Middlewares[name]
			if m == nil {
				continue
			}
			at := func(typ string) []string { return append(slices.Clip(p("http", "middlewares", name)), typ) }
			switch {
			case m.ForwardAuth != nil:
				v.pending(at("forwardAuth"), "forwardAuth middlewares")
			case m.Errors != nil:
				v.pending(at("errors"), "errors middlewares")
			}
		}
	}
	if t := v.cfg.TLS; t != nil {
		for _, name := range sorted(t.Stores) {
			v.pending(p("tls", "stores", name), "TLS stores")
		}
	}
}
