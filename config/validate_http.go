package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

func (v *validator) http() {
	h := v.cfg.HTTP
	if h == nil {
		return
	}
	v.names(p("http", "routers"), sorted(h.Routers))
	v.names(p("http", "services"), sorted(h.Services))
	v.names(p("http", "middlewares"), sorted(h.Middlewares))
	for _, name := range sorted(h.Routers) {
		v.router(p("http", "routers", name), h.Routers[name])
	}
	for _, name := range sorted(h.Services) {
		v.service(p("http", "services", name), h.Services[name])
	}
	for _, name := range sorted(h.Middlewares) {
		v.middleware(p("http", "middlewares", name), name, h.Middlewares[name])
	}
	v.chainCycles()
	v.serviceCycles()
	v.tlsOptionsByHost()
}

// tlsOptionsByHost reports routers that serve one host on one TLS entry
// point with different TLS options: a handshake, which knows only the
// server name, can use only one. A router without options uses the entry
// point's, which is a choice too.
func (v *validator) tlsOptionsByHost() {
	routers := v.cfg.HTTP.Routers
	hosts := map[string][]string{} // by TLS router: the hosts it requires
	for name, r := range routers {
		if r.TLS == nil {
			continue
		}
		if e, err := rule.Parse(r.Rule); err == nil { // else reported by router
			hosts[name] = rule.RequiredHosts(e)
		}
	}
	reported := map[string]bool{}
	for _, ep := range v.tlsEntryPoints() {
		options, by := map[string]string{}, map[string]string{} // by host
		for _, name := range sorted(routers) {
			r := routers[name]
			if r.TLS == nil || len(r.EntryPoints) > 0 && !slices.Contains(r.EntryPoints, ep) {
				continue
			}
			for _, host := range hosts[name] {
				prev, seen := options[host]
				if !seen {
					options[host], by[host] = r.TLS.Options, name
					continue
				}
				if prev != r.TLS.Options && !reported[name] {
					reported[name] = true
					v.add(p("http", "routers", name, "tls", "options"), "routers %s and %s both serve %s on entry point %s with different TLS options (%s and %s): a handshake can use only one; give them the same options",
						by[host], name, host, ep, optionsName(prev), optionsName(r.TLS.Options))
				}
			}
		}
	}
}

// optionsName names a router's TLS options in messages.
func optionsName(o string) string {
	if o == "" {
		return "the entry point's"
	}
	return strconv.Quote(o)
}

func (v *validator) router(path []string, r *Router) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if r.Rule == "" {
		v.add(at("rule"), "rule is required, such as \"Host(`example.com`)\"")
	} else if _, err := rule.Parse(r.Rule); err != nil {
		v.add(at("rule"), "invalid rule: %v", err)
	}
	eps := v.entryPointNames
	for i, ep := range r.EntryPoints {
		v.ref(at("entryPoints", fmt.Sprint(i)), "entry point", ep, eps)
	}
	mws := v.middlewareNames
	for i, mw := range r.Middlewares {
		v.ref(at("middlewares", fmt.Sprint(i)), "middleware", mw, mws)
	}
	if r.Service == "" {
		v.add(at("service"), "service is required: the name of a service under [http.services]")
	} else {
		v.ref(at("service"), "service", r.Service, v.serviceNames)
	}
	if r.Priority < 0 {
		v.add(at("priority"), "priority %d is negative; use 0 (the rule's length) or more", r.Priority)
	}
	if r.TLS == nil {
		return
	}
	v.tlsOptionsRef(at("tls", "options"), r.TLS.Options)
	for i, d := range r.TLS.Domains {
		v.domain(at("tls", "domains", fmt.Sprint(i)), d)
	}
	tlsEPs := v.tlsEntryPoints()
	listens := r.EntryPoints
	if len(listens) == 0 {
		listens = eps
	}
	if !slices.ContainsFunc(listens, func(ep string) bool { return slices.Contains(tlsEPs, ep) }) {
		v.add(at("tls"), "the router has TLS but none of its entry points (%s) serves TLS; add [entryPoints.NAME.http.tls] or list a TLS entry point", strings.Join(listens, ", "))
	}
}

func (v *validator) service(path []string, s *Service) {
	if _, ok := oneType(v, path, s, "service", ", such as [http.services.NAME.loadBalancer] with at least one server", ""); !ok {
		return
	}
	switch {
	case s.LoadBalancer != nil:
		v.loadBalancer(path, s.LoadBalancer)
	case s.Weighted != nil:
		v.weighted(path, s.Weighted)
	case s.Mirroring != nil:
		v.mirroring(path, s.Mirroring)
	case s.Failover != nil:
		v.failover(path, s.Failover)
	}
}

func (v *validator) loadBalancer(path []string, lb *LoadBalancer) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if len(lb.Servers) == 0 && !v.provided {
		v.add(at("loadBalancer", "servers"), "at least one server is required: [[http.services.NAME.loadBalancer.servers]] with url = \"http://host:port\"")
	}
	for i, srv := range lb.Servers {
		sp := at("loadBalancer", "servers", fmt.Sprint(i))
		if srv.URL == "" {
			v.add(append(sp, "url"), "url is required, such as \"http://10.0.0.7:8080\"")
		} else {
			v.check(append(slices.Clip(sp), "url"), checkURL(srv.URL, "http", "https", "h2c"))
		}
		if srv.Weight != nil && (*srv.Weight < 0 || *srv.Weight > 1_000_000) {
			v.add(append(sp, "weight"), "weight %d is out of range 0 to 1000000", *srv.Weight)
		}
	}
	if hc := lb.HealthCheck; hc != nil {
		v.healthCheck(at("loadBalancer", "healthCheck"), hc)
	}
	if ph := lb.PassiveHealthCheck; ph != nil {
		if ph.MaxFailedAttempts < 0 {
			v.add(at("loadBalancer", "passiveHealthCheck", "maxFailedAttempts"), "maxFailedAttempts must be 0 (meaning 1) or more")
		}
		v.nonNegative(at("loadBalancer", "passiveHealthCheck", "failureWindow"), ph.FailureWindow)
	}
	if st := lb.Sticky; st != nil {
		v.sticky(at("loadBalancer", "sticky"), st)
	}
	if rf := lb.ResponseForwarding; rf != nil {
		v.nonNegative(at("loadBalancer", "responseForwarding", "flushInterval"), rf.FlushInterval)
	}
	if lb.ServersTransport != "" {
		v.ref(at("loadBalancer", "serversTransport"), "serversTransport", lb.ServersTransport, v.transportNames)
	}
}

func (v *validator) healthCheck(path []string, hc *HealthCheck) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if !strings.HasPrefix(hc.Path, "/") {
		v.add(at("path"), "path %q must start with \"/\", such as \"/healthz\"", hc.Path)
	}
	if hc.Scheme != "" && hc.Scheme != "http" && hc.Scheme != "https" {
		v.add(at("scheme"), "scheme %q: use http or https", hc.Scheme)
	}
	if hc.Port < 0 || hc.Port > 65535 {
		v.add(at("port"), "port %d is out of range 1 to 65535", hc.Port)
	}
	if hc.Status != 0 && (hc.Status < 100 || hc.Status > 599) {
		v.add(at("status"), "status %d is not an HTTP status code", hc.Status)
	}
	v.nonNegative(at("interval"), hc.Interval)
	v.nonNegative(at("timeout"), hc.Timeout)
	interval, timeout := effective(hc.Interval, 30*time.Second), effective(hc.Timeout, 5*time.Second)
	if hc.Interval >= 0 && hc.Timeout >= 0 && timeout >= interval {
		v.add(at("timeout"), "timeout (%s) must be shorter than interval (%s), or checks overlap", timeout, interval)
	}
	v.headerMap(at("headers"), hc.Headers)
}

func (v *validator) sticky(path []string, st *Sticky) {
	if st.Cookie == nil {
		v.add(path, "sticky needs [.cookie]; add [http.services.NAME.%s.sticky.cookie]", path[len(path)-2])
		return
	}
	c := st.Cookie
	cp := append(slices.Clip(path), "cookie")
	if c.Name != "" {
		v.check(append(slices.Clip(cp), "name"), checkToken("cookie name", c.Name))
	}
	if c.SameSite != "" && !slices.Contains([]string{"none", "lax", "strict"}, c.SameSite) {
		v.add(append(slices.Clip(cp), "sameSite"), "sameSite %q: use none, lax or strict", c.SameSite)
	}
	if c.SameSite == "none" && !c.Secure {
		v.add(append(slices.Clip(cp), "secure"), "browsers drop SameSite=None cookies that are not Secure; set secure = true")
	}
	if c.MaxAge < 0 {
		v.add(append(slices.Clip(cp), "maxAge"), "maxAge %d is negative", c.MaxAge)
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		v.add(append(slices.Clip(cp), "path"), "path %q must start with \"/\"", c.Path)
	}
}

// headerMap checks header names and that values have no line breaks.
func (v *validator) headerMap(path []string, m map[string]string) {
	for _, k := range sorted(m) {
		kp := append(slices.Clip(path), k)
		if err := checkToken("header name", k); err != nil {
			v.check(kp, err)
		} else {
			v.check(kp, checkMapKey("header name", k))
		}
		if strings.ContainsAny(m[k], "\r\n\x00") {
			v.add(kp, "the value of header %q contains a line break or NUL", k)
		}
	}
}

func (v *validator) regexp(path []string, what, re string) {
	if re == "" {
		v.add(path, "%s is required", what)
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		v.add(path, "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

func (v *validator) tls() {
	t := v.cfg.TLS
	if t == nil {
		return
	}
	v.names(p("tls", "options"), sorted(t.Options))
	for _, name := range sorted(t.Options) {
		v.tlsOptions(p("tls", "options", name), t.Options[name])
	}
	for i, c := range t.Certificates {
		if c.CertFile == "" {
			v.add(p("tls", "certificates", fmt.Sprint(i), "certFile"), "certFile is required: a PEM certificate chain")
		}
		if c.KeyFile == "" {
			v.add(p("tls", "certificates", fmt.Sprint(i), "keyFile"), "keyFile is required: the PEM private key of certFile")
		}
	}
}

// tlsOptionsRef checks a reference to TLS options; "default" always
// exists.
func (v *validator) tlsOptionsRef(path []string, name string) {
	if name == "" || name == "default" {
		return
	}
	var defined []string
	if v.cfg.TLS != nil {
		defined = sorted(v.cfg.TLS.Options)
	}
	defined = append(defined, "default")
	slices.Sort(defined)
	v.ref(path, "TLS options", name, defined)
}

func (v *validator) tlsOptions(path []string, o *TLSOptions) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	var minV, maxV uint16
	for _, f := range []struct {
		key string
		val string
		out *uint16
	}{{"minVersion", o.MinVersion, &minV}, {"maxVersion", o.MaxVersion, &maxV}} {
		if f.val == "" {
			continue
		}
		n, err := TLSVersion(f.val)
		if err != nil {
			v.add(at(f.key), "%s %v", f.key, err)
		}
		*f.out = n
	}
	if minV != 0 && maxV != 0 && minV > maxV {
		v.add(at("minVersion"), "minVersion is above maxVersion")
	}
	for i, cs := range o.CipherSuites {
		if _, err := CipherSuite(cs); err != nil {
			v.check(at("cipherSuites", fmt.Sprint(i)), err)
		}
	}
	for i, c := range o.CurvePreferences {
		if _, err := Curve(c); err != nil {
			v.check(at("curvePreferences", fmt.Sprint(i)), err)
		}
	}
	if ca := o.ClientAuth; ca != nil {
		t, err := ClientAuthType(ca.ClientAuthType)
		if err != nil {
			v.check(at("clientAuth", "clientAuthType"), err)
		} else if needsClientCAs(t) && len(ca.CAFiles) == 0 {
			v.add(at("clientAuth", "caFiles"), "%s needs caFiles: the CAs that client certificates must chain to", ca.ClientAuthType)
		}
	}
}
