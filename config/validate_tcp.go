package config

// notServedYet refuses the sections whose serving is being built: a
// setting that is accepted must do something.
func (v *validator) notServedYet() {
	if v.cfg.TCP != nil {
		v.add(p("tcp"), "[tcp] is not supported (yet): tollgate proxies HTTP only; remove it")
	}
	for _, name := range v.entryPointNames {
		ep := v.cfg.EntryPoints[name]
		if ep == nil {
			continue
		}
		if ep.HTTP3 != nil {
			v.add(p("entryPoints", name, "http3"), "HTTP/3 is not supported (yet); remove it")
		}
	}
}
