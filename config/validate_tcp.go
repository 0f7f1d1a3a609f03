package config

// notServedYet refuses the sections whose serving is being built: a
// setting that is accepted must do something.
func (v *validator) notServedYet() {
	if v.cfg.TCP != nil {
		v.add(p("tcp"), "[tcp] is not supported (yet): tollgate proxies HTTP only; remove it")
	}
}
