package config

// http3 checks the http3 settings of the entry points. Two entry points
// serving HTTP/3 on one UDP port are refused by the address check of
// entryPoints: HTTP/3 listens on the entry point's own port, so such
// entry points share their TCP port too.
func (v *validator) http3() {
	for _, name := range v.entryPointNames {
		ep := v.cfg.EntryPoints[name]
		if ep == nil || ep.HTTP3 == nil {
			continue
		}
		path := p("entryPoints", name, "http3")
		if ep.HTTP == nil || ep.HTTP.TLS == nil {
			v.add(path, "HTTP/3 is always encrypted, and entry point %q serves no TLS: add [entryPoints.%s.http.tls], or remove http3", name, name)
		}
		if port := ep.HTTP3.AdvertisedPort; port < 0 || port > 65535 {
			v.add(append(path, "advertisedPort"), "advertisedPort %d is out of range: use 0 (the entry point's port) up to 65535", port)
		}
	}
}
