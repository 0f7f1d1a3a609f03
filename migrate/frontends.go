package migrate

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// backend is a converted [backends.NAME].
type backend struct {
	src    []string
	v1name string
	lb     config.LoadBalancer // without passHostHeader, which frontends set
	mws    []string            // for every router sending to it
	dead   string              // why it was not converted
	// services are the tollgate services made of it, by passHostHeader:
	// Traefik 1.x set passHostHeader per frontend, tollgate per service.
	services map[bool]string
	uses     map[bool]bool
	// eps are the entry points (source names) of the frontends sending
	// to it: Traefik 1.x asked a backend for error pages only there.
	eps []string
}

// frontend is a [frontends.NAME] on its way to routers.
type frontend struct {
	n        *node
	backend  *backend
	passHost bool
}

// routerInfo remembers where a router came from, for reports.
type routerInfo struct {
	src []string
}

// fileProvider converts [file], [backends], [frontends] and [[tls]].
func (c *converter) fileProvider(root *node) {
	fn, hasFile := root.table("file")
	if hasFile {
		for _, k := range []string{"filename", "directory"} {
			if s, ok := fn.str(k); ok && s != "" {
				c.add(fn.where(k), Action, fmt.Sprintf("the frontends and backends in %s are not read by this conversion", s),
					"add its [frontends], [backends] and [[tls]] to this file and convert again")
			}
		}
		if b, ok := fn.boolean("watch"); ok {
			c.add(fn.where("watch"), Converted, fmt.Sprintf("watch = %v: tollgate always follows its file, or the store", b), "")
		}
		for _, k := range []string{"debugLogGeneratedTemplate", "constraints", "traceTemplate"} {
			if fn.has(k) {
				c.add(fn.where(k), Unsupported, "file."+k+" has no equivalent; not converted", "")
				fn.skip(k)
			}
		}
		c.add(fn.path, Converted, "[file]: the frontends and backends of this file", "")
	} else if root.has("frontends") || root.has("backends") {
		c.add(root.where("frontends"), Changed, "[frontends] and [backends] are converted although Traefik 1.x reads them only with [file]", "remove what was not meant to be served")
	}
	backends := map[string]*backend{}
	if bn, ok := root.table("backends"); ok {
		for _, n := range bn.named() {
			backends[n.name()] = c.backend(n)
		}
	}
	c.backends = backends
	var fronts []*frontend
	if fn, ok := root.table("frontends"); ok {
		for _, n := range fn.named() {
			if f := c.frontendBackend(n, backends); f != nil {
				fronts = append(fronts, f)
			}
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range backends {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		c.services(backends[name])
	}
	for _, f := range fronts {
		c.frontend(f)
	}
	c.trailingSlash(root)
	c.transportReport()
	if len(c.catchAll) > 0 && len(c.priorityOne) > 0 {
		c.add(c.catchAll[0], Changed, fmt.Sprintf("priority 1 ties with frontends of priority 1 (%s): Traefik 1.x tried those first, tollgate breaks ties by router name", quoteList(c.priorityOne)),
			"give those frontends priority 2 or more, or this one routes")
	}
	if tn, ok := root.tables("tls"); ok {
		for _, t := range tn {
			if eps, ok := t.strs("entryPoints"); ok && len(eps) > 0 {
				c.add(t.where("entryPoints"), Changed, "tollgate serves every certificate on every TLS entry point", "")
			}
			if cn, ok := t.table("certificate"); ok {
				c.certificate(cn, "")
			}
		}
	}
}

// trailingSlash reports, once, that the Path and PathStrip rules no
// longer match the path with a trailing slash added or removed: Traefik
// 1.x's router answered that with a redirection to the path as written,
// unless keepTrailingSlash = true.
func (c *converter) trailingSlash(root *node) {
	keep, set := root.boolean("keepTrailingSlash")
	at := root.where("keepTrailingSlash")
	switch {
	case keep:
		c.add(at, Converted, "keepTrailingSlash = true: tollgate does not redirect to add or remove a trailing slash either", "")
	case len(c.exactPaths) > 0:
		if !set {
			at = c.exactPathAt
		}
		which := "frontends"
		if len(c.exactPaths) == 1 {
			which = "frontend"
		}
		c.add(at, Changed, fmt.Sprintf("Path and PathStrip rules (%s %s) match the path exactly: Traefik 1.x redirected /foo/ to /foo (and /foo to /foo/ for a rule written /foo/) unless keepTrailingSlash = true, tollgate answers it with another router or 404", which, quoteList(c.exactPaths)),
			"if clients use the other form, list both in the rule (Path:/foo,/foo/) and convert again, or add a redirectRegex middleware")
	case set:
		c.add(at, Converted, "keepTrailingSlash = false: no converted frontend has a Path or PathStrip rule, which it concerned", "")
	}
}

// frontendBackend reads which backend a frontend uses, and with which
// passHostHeader; nil when the frontend cannot be converted.
func (c *converter) frontendBackend(n *node, backends map[string]*backend) *frontend {
	name, ok := n.str("backend")
	if !ok || name == "" {
		c.add(n.path, Unsupported, "a frontend without a backend; Traefik 1.x did not serve it either; not converted", "")
		n.skipAll()
		return nil
	}
	be, ok := backends[name]
	if !ok {
		c.add(n.where("backend"), Unsupported, fmt.Sprintf("backend %q is not defined; Traefik 1.x did not serve this frontend either; not converted", name), "")
		n.skipAll()
		return nil
	}
	if be.dead != "" {
		c.add(n.where("backend"), Unsupported, fmt.Sprintf("backend %q was not converted (%s); neither is this frontend", name, be.dead), "")
		n.skipAll()
		return nil
	}
	pass, _ := n.boolean("passHostHeader")
	if be.uses == nil {
		be.uses = map[bool]bool{}
	}
	be.uses[pass] = true
	for _, ep := range c.frontendEPs(n) {
		if !slices.Contains(be.eps, ep) {
			be.eps = append(be.eps, ep)
		}
	}
	return &frontend{n: n, backend: be, passHost: pass}
}

// backend converts one [backends.NAME].
func (c *converter) backend(n *node) *backend {
	be := &backend{src: n.path, v1name: n.name()}
	if sn, ok := n.table("servers"); ok {
		for _, s := range sn.named() {
			u, ok := s.str("url")
			if !ok || u == "" {
				c.add(s.path, Unsupported, "a server without url; not converted", "")
				s.skipAll()
				continue
			}
			srv := config.Server{URL: c.serverURL(s.where("url"), u)}
			if w, ok := s.integer("weight"); ok {
				switch {
				case w == 0 && c.allowZeroWeight:
					srv.Weight = intPtr(0)
				case w == 0 || w == 1:
				default:
					srv.Weight = intPtr(int(min(w, 1<<31-1)))
				}
			}
			be.lb.Servers = append(be.lb.Servers, srv)
		}
	}
	if len(be.lb.Servers) == 0 {
		be.dead = "it has no servers"
		c.add(n.path, Unsupported, "a backend without servers; not converted", "add [backends."+n.name()+".servers.NAME] with url, or remove the frontends using it")
		n.skipAll()
		return be
	}
	if ln, ok := n.table("loadBalancer"); ok {
		c.loadBalancer(ln, &be.lb)
	}
	if hn, ok := n.table("healthCheck"); ok {
		be.lb.HealthCheck = c.healthCheck(hn)
	}
	if rn, ok := n.table("responseForwarding"); ok {
		if d, ok := rn.duration("flushInterval"); ok && d > 0 {
			be.lb.ResponseForwarding = &config.ResponseForwarding{FlushInterval: config.Duration(d)}
			c.add(rn.path, Converted, "responseForwarding.flushInterval", "")
		}
	}
	if cn, ok := n.table("circuitBreaker"); ok {
		if e, ok := cn.str("expression"); ok && e != "" {
			mw := c.addMiddleware(sanitizeName(n.name())+"-circuit-breaker", cn.path, &config.Middleware{CircuitBreaker: &config.CircuitBreaker{Expression: e}})
			be.mws = append(be.mws, mw)
			c.add(cn.path, Converted, fmt.Sprintf("middleware %q (circuitBreaker) on every router sending to this backend", mw), "")
		}
	}
	for _, k := range []string{"maxConn", "buffering"} {
		if !n.has(k) {
			continue
		}
		advice := "limit the request rate with a rateLimit middleware, or bound concurrency in the backend"
		if k == "buffering" {
			advice = "tollgate streams requests and responses; limit body sizes in the backend"
		}
		c.add(n.where(k), Unsupported, k+" has no equivalent; not converted", advice)
		n.skip(k)
	}
	return be
}

// serverURL returns a server's URL without its path and query, which
// Traefik 1.x ignored (it sent the request's path as is), where tollgate
// would join them onto every request's.
func (c *converter) serverURL(path []string, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path == "" || u.Path == "/") && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return raw // tollgate's validation reports what is wrong
	}
	dropped := u.Path
	if u.RawQuery != "" || u.ForceQuery {
		dropped += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		dropped += "#" + u.Fragment
	}
	out := (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}).String()
	c.add(path, Changed, fmt.Sprintf("%q is dropped from the URL: Traefik 1.x ignored a server's path and query and sent the request's path as is, where tollgate would put it in front of every request's path", dropped),
		"to add a prefix to every request's path, add an addPrefix middleware")
	return out
}

// loadBalancer converts method, sticky and stickiness.
func (c *converter) loadBalancer(ln *node, lb *config.LoadBalancer) {
	if meth, ok := ln.str("method"); ok {
		switch strings.ToLower(meth) {
		case "wrr", "":
			c.add(ln.where("method"), Converted, "weighted round robin", "")
		case "drr":
			c.add(ln.where("method"), Changed, "dynamic round robin became weighted round robin", "passiveHealthCheck takes failing servers out of the rotation")
		default:
			c.add(ln.where("method"), Changed, fmt.Sprintf("load balancer method %q is unknown: weighted round robin, which Traefik 1.x fell back to", meth),
				"write method = \"wrr\" or remove it")
		}
	}
	sticky, _ := ln.boolean("sticky")
	cookie := ""
	if sn, ok := ln.table("stickiness"); ok {
		sticky = true
		cookie, _ = sn.str("cookieName")
	}
	if sticky {
		lb.Sticky = &config.Sticky{Cookie: &config.Cookie{Name: cookie}}
		c.add(ln.path, Changed, "sticky sessions by cookie; tollgate's cookie names servers by a hash, so clients pinned by Traefik are pinned afresh once", "")
	}
}

// healthCheck converts a backend's healthCheck.
func (c *converter) healthCheck(hn *node) *config.HealthCheck {
	path, _ := hn.str("path")
	if path == "" {
		c.add(hn.path, Unsupported, "a health check without path; Traefik 1.x did not check either; not converted", "")
		hn.skipAll()
		return nil
	}
	hc := &config.HealthCheck{Path: path}
	hc.Scheme, _ = hn.str("scheme")
	hc.Hostname, _ = hn.str("hostname")
	if p, ok := hn.integer("port"); ok {
		hc.Port = int(p)
	}
	interval := c.healthInterval
	if d, ok := hn.duration("interval"); ok && d > 0 {
		interval = d
	}
	timeout, setTimeout := 5*time.Second, false
	if d, ok := hn.duration("timeout"); ok && d > 0 {
		timeout, setTimeout = d, true
	}
	if timeout >= interval {
		timeout, setTimeout = interval/2, true
		c.add(hn.path, Changed, fmt.Sprintf("timeout lowered to %s: tollgate needs it shorter than the interval", timeout), "")
	}
	if interval != 30*time.Second {
		hc.Interval = config.Duration(interval)
	}
	if setTimeout {
		hc.Timeout = config.Duration(timeout)
	}
	hc.Headers = c.stringMap(hn, "headers")
	c.add(hn.path, Converted, fmt.Sprintf("health check of %s every %s", path, interval), "")
	return hc
}

// services creates the tollgate services of a backend: one per
// passHostHeader value its frontends use.
func (c *converter) services(be *backend) {
	if be.dead != "" {
		return
	}
	be.services = map[bool]string{}
	variants := []bool{false}
	switch {
	case be.uses[true] && be.uses[false]:
		variants = []bool{true, false}
		c.add(be.src, Changed, fmt.Sprintf("two services: its frontends disagree on passHostHeader, which tollgate sets per service (%q passes the Host header)", sanitizeName(be.v1name)), "")
	case be.uses[true]:
		variants = []bool{true}
	}
	for i, pass := range variants {
		want := be.v1name
		if i > 0 {
			want += "-no-host"
		}
		name := c.unique("service", want)
		if i == 0 {
			c.renamed(be.src, "backend", be.v1name, name)
		}
		lb := be.lb
		if !pass {
			lb.PassHostHeader = boolPtr(false)
		}
		c.useTransport(&lb)
		if c.cfg.HTTP == nil {
			c.cfg.HTTP = &config.HTTP{}
		}
		if c.cfg.HTTP.Services == nil {
			c.cfg.HTTP.Services = map[string]*config.Service{}
		}
		c.cfg.HTTP.Services[name] = &config.Service{LoadBalancer: &lb}
		be.services[pass] = name
		key := "http.services." + dn(name)
		c.origin(key, be.src)
		where, _ := c.location(be.src)
		c.comment(key, fmt.Sprintf("backend %q (%s)", be.v1name, where))
	}
	if !be.uses[true] {
		c.add(be.src, Changed, "passHostHeader = false: Traefik 1.x's file provider did not pass the client's Host header unless a frontend set passHostHeader = true",
			"remove passHostHeader = false if the backend should see the client's Host (tollgate's default)")
	}
	c.add(be.src, Converted, fmt.Sprintf("service with %d server(s)", len(be.lb.Servers)), "")
}

// frontend converts one frontend into one router per group of its entry
// points that need the same TLS setting and middlewares.
func (c *converter) frontend(f *frontend) {
	n := f.n
	base := sanitizeName(n.name())
	service := f.backend.services[f.passHost]
	rl, lengths, hostSets, ok := c.routes(n)
	if !ok {
		c.add(n.path, Unsupported, fmt.Sprintf("frontend %q is not converted: see its route", n.name()), "")
		n.skipAll()
		return
	}
	groups, defined := c.frontendGroups(n)
	switch {
	case defined == 0:
		c.add(n.where("entryPoints"), Unsupported, "none of the frontend's entry points is defined: Traefik 1.x did not serve it either; not converted",
			"list defined entry points in its entryPoints, or in defaultEntryPoints (Traefik 1.x's default is [\"http\"]), and convert again")
		n.skipAll()
		return
	case len(groups) == 0:
		c.add(n.path, Unsupported, "the frontend listens on no entry point that tollgate routes; not converted", "")
		n.skipAll()
		return
	}
	expr := rule.Expr(m("PathPrefix", "/"))
	if len(rl.exprs) > 0 {
		expr = andAll(rl.exprs)
	}
	text := expr.String()
	if _, err := rule.Parse(text); err != nil {
		c.add(n.where("routes"), Unsupported, fmt.Sprintf("the rule cannot be written in tollgate (%s): %v; the frontend was not converted", text, err), "fix the rule in Traefik's syntax and convert again")
		c.add(n.path, Unsupported, fmt.Sprintf("frontend %q is not converted: see its routes", n.name()), "")
		n.skipAll()
		return
	}
	mws, reason := c.frontendMiddlewares(f, base, rl)
	if reason != "" {
		n.skipAll()
		return
	}
	// Traefik 1.x ordered a frontend by its priority when above 0, else by
	// the sum of the lengths of its routes' rules; a frontend without
	// routes had 0 and came after every other. tollgate reads 0 as "the
	// length of the rule", so every router gets its priority written, and
	// a frontend without routes gets 1, which no rule's length is below.
	priority, note := lengths, "priority: Traefik 1.x's default, the sum of the lengths of the frontend's rules"
	if p, ok := n.integer("priority"); ok && p > 0 {
		priority, note = int(min(p, 1<<31-1)), "priority: the frontend's, as in Traefik 1.x"
		if p == 1 {
			c.priorityOne = append(c.priorityOne, n.name())
		}
	} else if lengths == 0 {
		priority, note = 1, "priority 1: a frontend without routes came after every other in Traefik 1.x"
		c.catchAll = append(c.catchAll, n.path)
	}
	var names []string
	for i, g := range groups {
		want := base
		if i > 0 {
			want = base + "-" + g.eps[0].name
		}
		name := c.unique("router", want)
		names = append(names, name)
		r := &config.Router{Rule: text, Service: service, Priority: priority}
		for _, ep := range g.eps {
			r.EntryPoints = append(r.EntryPoints, ep.name)
		}
		r.Middlewares = c.routerMiddlewares(f, g, mws)
		if g.tls {
			// No tls.options: the TLS options of an entry point apply to
			// every router on it ([entryPoints.NAME.http.tls] options),
			// as Traefik 1.x set TLS per entry point only. Options named
			// by a router would replace the entry point's for its hosts,
			// and so could let one entry point's settings (a client
			// certificate requirement) be replaced by another's.
			r.TLS = &config.RouterTLS{}
			if c.acme != nil && c.acme.onHostRule {
				r.TLS.Domains = certDomains(hostSets)
			}
		}
		c.addRouter(name, n.path, r, note)
	}
	if rl.exact {
		c.exactPaths = append(c.exactPaths, n.name())
		if c.exactPathAt == nil {
			c.exactPathAt = n.where("routes")
		}
	}
	c.renamed(n.path, "frontend", n.name(), names[0])
	what := fmt.Sprintf("router %q", names[0])
	if len(names) > 1 {
		what = "routers " + quoteList(names)
	}
	c.add(n.path, Converted, fmt.Sprintf("%s: %s", what, text), "")
}

// routerMiddlewares lists the middlewares of a frontend's router on the
// entry points g, in the order Traefik 1.x applied them: the entry
// point's (before routing), the path modifiers of the rule (around the
// whole chain), the error pages (first of the frontend's, so that they
// replace the answers of all the others), the allow list, the redirect, the frontend's headers
// (the HTTPS redirection first: Traefik's custom and security response
// headers were not added to the redirection), the authentication and
// client certificate headers, then around the load balancer the circuit
// breaker, the retry and the rate limit.
func (c *converter) routerMiddlewares(f *frontend, g epGroup, mws feMiddlewares) []string {
	var out []string
	out = append(out, g.eps[0].mws...)
	out = append(out, mws.path...)
	out = append(out, mws.errors...)
	out = append(out, mws.allow...)
	if mws.redirectTo == nil || !slices.Contains(g.eps, mws.redirectTo) {
		out = append(out, mws.redirect...)
	}
	if !g.tls {
		out = append(out, mws.https...)
	}
	out = append(out, mws.headers...)
	out = append(out, mws.auth...)
	out = append(out, f.backend.mws...)
	out = append(out, c.retryMiddleware(f.backend)...)
	out = append(out, mws.rateLimit...)
	return out
}

// addRouter adds a router with its comment.
func (c *converter) addRouter(name string, src []string, r *config.Router, note string) {
	if c.cfg.HTTP == nil {
		c.cfg.HTTP = &config.HTTP{}
	}
	if c.cfg.HTTP.Routers == nil {
		c.cfg.HTTP.Routers = map[string]*config.Router{}
	}
	if c.routers == nil {
		c.routers = map[string]*routerInfo{}
	}
	c.cfg.HTTP.Routers[name] = r
	c.routers[name] = &routerInfo{src: src}
	key := "http.routers." + dn(name)
	c.origin(key, src)
	where, _ := c.location(src)
	c.comment(key, fmt.Sprintf("frontend %q (%s)", src[len(src)-1], where))
	if note != "" {
		c.comment(key, note)
	}
}

// certDomains lists the certificates Traefik 1.x ordered for a
// frontend's hosts with onHostRule: one per route, the first host main and
// the others alternative names. It returns nil when each route has one
// host, which tollgate's onHostRule orders alike.
func certDomains(hostSets [][]string) []config.Domain {
	var out []config.Domain
	multi := false
	for _, hs := range hostSets {
		var valid []string
		for _, h := range hs {
			if config.CheckHostname(h) == nil && !slices.Contains(valid, h) {
				valid = append(valid, h)
			}
		}
		if len(valid) == 0 {
			continue
		}
		multi = multi || len(valid) > 1
		out = append(out, config.Domain{Main: valid[0], SANs: valid[1:]})
	}
	if !multi {
		return nil
	}
	return out
}

// routes converts the routes of a frontend: their rules all must match.
// lengths is the sum of the lengths of the rules, Traefik 1.x's default
// priority; 0 when the frontend has no routes. ok is false when the
// frontend must not be converted (reported).
func (c *converter) routes(n *node) (rl *v1Rule, lengths int, hostSets [][]string, ok bool) {
	rl = &v1Rule{}
	rn, has := n.table("routes")
	var routes []*node
	if has {
		routes = rn.named()
	}
	if len(routes) == 0 {
		c.add(n.where("routes"), Changed, "a frontend without routes matched every request in Traefik 1.x, after every other frontend: its rule is PathPrefix(`/`) with priority 1", "")
		return rl, 0, nil, true
	}
	fail := func() (*v1Rule, int, [][]string, bool) {
		for _, r := range routes {
			r.skipAll()
		}
		return nil, 0, nil, false
	}
	for _, r := range routes {
		s, has := r.str("rule")
		if !has {
			found := "it is empty"
			if keys := slices.Sorted(maps.Keys(r.m)); len(keys) > 0 {
				found = "it has " + quoteList(keys)
			}
			c.add(r.path, Unsupported, fmt.Sprintf("route %q has no rule (%s); the frontend was not converted: Traefik 1.x refused a route without rule and did not serve the frontend", r.name(), found),
				"name the key rule, as in rule = \"Host:example.com\", in the source and convert again")
			return fail()
		}
		one, err := parseV1Rule(s)
		if err != nil {
			msg := fmt.Sprintf("rule %q: %v; the frontend was not converted", truncate(s, 120), err)
			advice := "Traefik 1.x did not serve this frontend either"
			if strings.Contains(err.Error(), errNoEquivalent.Error()) {
				advice = "to remove what the template matches, write PathPrefixStripRegex in the source and convert again"
			}
			c.add(r.where("rule"), Unsupported, msg, advice)
			return fail()
		}
		if len(one.literalStars) > 0 {
			const advice = "to match subdomains, write HostRegexp:{sub:[a-z0-9-]+}.example.com in the source and convert again"
			stars := quoteList(one.literalStars)
			if one.never {
				c.add(r.where("rule"), Action, fmt.Sprintf("rule %q matched no request: Traefik 1.x compared Host literally, so %s was not a wildcard; the frontend was not converted, as tollgate would read it as one", truncate(s, 120), stars),
					advice+"; else remove the frontend")
				return fail()
			}
			c.add(r.where("rule"), Action, fmt.Sprintf("%s left out of the rule: Traefik 1.x compared Host literally, so it matched no request, where tollgate would read it as a wildcard", stars), advice)
		}
		lengths += len(s)
		rl.exprs = append(rl.exprs, one.exprs...)
		for _, p := range one.strip {
			if !slices.Contains(rl.strip, p) {
				rl.strip = append(rl.strip, p)
			}
		}
		for _, re := range one.stripRegex {
			if !slices.Contains(rl.stripRegex, re) {
				rl.stripRegex = append(rl.stripRegex, re)
			}
		}
		if one.addPrefix != "" {
			rl.addPrefix = one.addPrefix
		}
		if one.replacePath != "" {
			rl.replacePath = one.replacePath
		}
		if one.replaceRegex != "" {
			rl.replaceRegex, rl.replaceWith = one.replaceRegex, one.replaceWith
		}
		for _, why := range one.ignored {
			c.add(r.where("rule"), Changed, why+"; it is left out", "separate the regular expression and a non-empty replacement by one space in the source if it should apply, and convert again")
		}
		rl.exact = rl.exact || one.exact
		if len(one.hosts) > 0 {
			hostSets = append(hostSets, one.hosts)
		}
	}
	return rl, lengths, hostSets, true
}

// feMiddlewares are a frontend's middlewares, by where they go in a
// router's list (see routerMiddlewares).
type feMiddlewares struct {
	path     []string // strip and add prefixes, replace the path
	errors   []string // error pages
	allow    []string // ipAllowList
	redirect []string // the frontend's redirect, on routers not on redirectTo
	// redirectTo is the entry point the frontend redirects to, if any.
	redirectTo *entryPoint
	https      []string // sslRedirect, on plain-HTTP routers only
	headers    []string
	auth       []string // basicAuth, passTLSClientCert, auth
	rateLimit  []string
}

// frontendMiddlewares converts the frontend's middlewares. reason is set
// when the frontend must not be converted (an authentication tollgate
// cannot check).
func (c *converter) frontendMiddlewares(f *frontend, base string, rl *v1Rule) (mws feMiddlewares, reason string) {
	n := f.n
	// Authentication first: when it cannot be converted, nothing else is.
	var basic, auth string
	if users, ok := n.strs("basicAuth"); ok {
		mw, r := c.basicAuthUsers(n.where("basicAuth"), users, "", false, "", base+"-auth")
		if r != "" {
			return mws, r
		}
		basic = mw
	}
	if an, ok := n.table("auth"); ok {
		mw, r := c.auth(an, base+"-auth")
		if r != "" {
			return mws, r
		}
		auth = mw
	}
	mws.path = c.pathModifiers(n, base, rl)
	if rn, ok := n.table("redirect"); ok {
		var mw string
		mw, mws.redirectTo = c.frontendRedirect(rn, base)
		if mw != "" {
			mws.redirect = append(mws.redirect, mw)
		}
	}
	var ranges []string
	at := n.path
	if r, ok := n.strs("whitelistSourceRange"); ok {
		ranges, at = r, n.where("whitelistSourceRange")
	}
	if wl, ok := n.table("whiteList"); ok {
		if r, ok := wl.strs("sourceRange"); ok {
			ranges, at = r, wl.where("sourceRange")
		}
		c.useXForwardedFor(wl)
	}
	if len(ranges) > 0 {
		mw := c.addMiddleware(base+"-ipallowlist", at, &config.Middleware{IPAllowList: &config.IPAllowList{SourceRange: ranges}})
		mws.allow = append(mws.allow, mw)
		c.add(at, Converted, fmt.Sprintf("middleware %q (ipAllowList)", mw), "")
	}
	if hn, ok := n.table("headers"); ok {
		h, ssl := c.headers(hn, base)
		if ssl != "" {
			mws.https = append(mws.https, ssl)
		}
		if h != "" {
			mws.headers = append(mws.headers, h)
		}
	}
	if basic != "" {
		mws.auth = append(mws.auth, basic)
	}
	if mw := c.clientCert(n, base); mw != "" {
		mws.auth = append(mws.auth, mw)
	}
	if auth != "" {
		mws.auth = append(mws.auth, auth)
	}
	if rn, ok := n.table("rateLimit"); ok {
		mws.rateLimit = append(mws.rateLimit, c.rateLimit(rn, base)...)
	}
	if en, ok := n.table("errors"); ok {
		for _, e := range en.named() {
			if mw := c.errorPages(f, e, base); mw != "" {
				mws.errors = append(mws.errors, mw)
			}
		}
	}
	return mws, ""
}

// pathModifiers creates the middlewares of a frontend's path modifiers,
// in the order Traefik 1.x ran them: the stripping of regexps, of
// prefixes, the added prefix, then the path replaced by a regexp and,
// last, the path replaced.
func (c *converter) pathModifiers(n *node, base string, rl *v1Rule) []string {
	routes := n.where("routes")
	var out []string
	add := func(suffix, what string, m *config.Middleware) {
		mw := c.addMiddleware(base+suffix, routes, m)
		out = append(out, mw)
		c.add(routes, Converted, fmt.Sprintf("middleware %q (%s)", mw, what), "")
	}
	if len(rl.stripRegex) > 0 {
		add("-strip-prefix-regex", "stripPrefixRegex of "+strings.Join(rl.stripRegex, ", "), &config.Middleware{StripPrefixRegex: &config.StripPrefixRegex{Regex: rl.stripRegex}})
	}
	if len(rl.strip) > 0 {
		mw := c.addMiddleware(base+"-strip-prefix", routes, &config.Middleware{StripPrefix: &config.StripPrefix{Prefixes: rl.strip}})
		out = append(out, mw)
	}
	if rl.addPrefix != "" {
		mw := c.addMiddleware(base+"-add-prefix", routes, &config.Middleware{AddPrefix: &config.AddPrefix{Prefix: rl.addPrefix}})
		out = append(out, mw)
	}
	if rl.replaceRegex != "" {
		add("-replace-path-regex", "replacePathRegex", &config.Middleware{ReplacePathRegex: &config.ReplacePathRegex{Regex: rl.replaceRegex, Replacement: rl.replaceWith}})
	}
	if rl.replacePath != "" {
		add("-replace-path", "replacePath to "+rl.replacePath, &config.Middleware{ReplacePath: &config.ReplacePath{Path: rl.replacePath}})
	}
	return out
}

// frontendRedirect converts a frontend's [redirect].
func (c *converter) frontendRedirect(rn *node, base string) (string, *entryPoint) {
	permanent, _ := rn.boolean("permanent")
	if target, ok := rn.str("entryPoint"); ok && target != "" {
		to, ok := c.eps[target]
		if !ok {
			c.problem(rn.where("entryPoint"), "redirect to entry point %q, which is not defined", target)
			return "", nil
		}
		rs := &config.RedirectScheme{Scheme: "http", Permanent: permanent}
		if to.tls {
			rs.Scheme = "https"
		}
		if (to.tls && to.port != 443 || !to.tls && to.port != 80) && to.port != 0 {
			rs.Port = strconv.Itoa(to.port)
		}
		rn.skip("regex")
		rn.skip("replacement")
		mw := c.addMiddleware(base+"-redirect", rn.path, &config.Middleware{RedirectScheme: rs})
		c.add(rn.path, Converted, fmt.Sprintf("middleware %q (redirectScheme to %s) on the routers not on entry point %q", mw, rs.Scheme, to.name), "")
		return mw, to
	}
	regex, _ := rn.str("regex")
	repl, _ := rn.str("replacement")
	if regex == "" {
		c.problem(rn.path, "a redirect needs entryPoint, or regex and replacement")
		return "", nil
	}
	mw := c.addMiddleware(base+"-redirect", rn.path, &config.Middleware{RedirectRegex: &config.RedirectRegex{Regex: regex, Replacement: repl, Permanent: permanent}})
	c.add(rn.path, Converted, fmt.Sprintf("middleware %q (redirectRegex)", mw), "")
	return mw, nil
}

// epGroup is entry points one router can listen on together.
type epGroup struct {
	tls bool
	eps []*entryPoint
}

// frontendEPs returns the names of the entry points a frontend listens on
// as written: its entryPoints, else defaultEntryPoints. A value of the
// wrong type is reported by frontendGroups, not here.
func (c *converter) frontendEPs(n *node) []string {
	var names []string
	if k, ok := n.find("entryPoints"); ok {
		arr, _ := n.m[k].([]any)
		for _, e := range arr {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	}
	if len(names) > 0 {
		return names
	}
	return c.defaultEPs
}

// frontendGroups resolves a frontend's entry points and groups those that
// need the same router: the same TLS and middlewares. A frontend without
// entryPoints listens on defaultEntryPoints, as in Traefik 1.x, which
// also dropped the names of entry points that are not defined; defined
// counts those that are.
func (c *converter) frontendGroups(n *node) (groups []epGroup, defined int) {
	names, ok := n.strs("entryPoints")
	undefined := "entry point %q is not defined; Traefik 1.x ignored it too"
	if !ok || len(names) == 0 {
		undefined = "entry point %q of defaultEntryPoints is not defined; Traefik 1.x ignored it too"
	}
	names = c.frontendEPs(n)
	keys := map[string]int{}
	for _, name := range names {
		ep, ok := c.eps[name]
		if ok {
			defined++
		}
		switch {
		case !ok:
			c.add(n.where("entryPoints"), Unsupported, fmt.Sprintf(undefined, name), "")
			continue
		case ep.redirect != "":
			c.add(n.where("entryPoints"), Converted, fmt.Sprintf("requests on entry point %q are redirected to %q by the entry point", name, ep.redirect), "")
			continue
		case ep.blocked != "":
			c.add(n.where("entryPoints"), Unsupported, fmt.Sprintf("no router on entry point %q: %s", name, ep.blocked), "")
			continue
		}
		// TLS options are not part of the key: routers name none, and
		// each entry point applies its own (see frontend).
		key := fmt.Sprint(ep.tls, "\x00", strings.Join(ep.mws, ","))
		i, seen := keys[key]
		if !seen {
			i = len(groups)
			keys[key] = i
			groups = append(groups, epGroup{tls: ep.tls})
		}
		if !slices.Contains(groups[i].eps, ep) {
			groups[i].eps = append(groups[i].eps, ep)
		}
	}
	for _, g := range groups {
		slices.SortFunc(g.eps, func(a, b *entryPoint) int { return strings.Compare(a.name, b.name) })
	}
	slices.SortStableFunc(groups, func(a, b epGroup) int {
		if a.tls != b.tls {
			if a.tls {
				return -1
			}
			return 1
		}
		return strings.Compare(a.eps[0].name, b.eps[0].name)
	})
	return groups, defined
}

// retryMiddleware returns the retry middleware for routers sending to be:
// [retry] attempts, or by default as many attempts as it has servers.
func (c *converter) retryMiddleware(be *backend) []string {
	if !c.retry {
		return nil
	}
	n := c.retryAttempts
	if n == 0 {
		n = int64(len(be.lb.Servers))
	}
	if c.retryMWs == nil {
		c.retryMWs = map[int64]string{}
	}
	if mw, ok := c.retryMWs[n]; ok {
		return []string{mw}
	}
	want := "retry"
	if c.retryAttempts == 0 {
		want = fmt.Sprintf("retry-%d", n)
	}
	mw := c.addMiddleware(want, []string{"retry"}, &config.Middleware{Retry: &config.Retry{Attempts: int(min(n, 1000))}})
	c.retryMWs[n] = mw
	return []string{mw}
}

// errorPages converts one [frontends.F.errors.NAME] (status, backend,
// query) into an errors middleware asking the service of that backend.
func (c *converter) errorPages(f *frontend, e *node, base string) string {
	status, _ := e.strs("status")
	name, _ := e.str("backend")
	query, _ := e.str("query")
	be, defined := c.backends[name]
	switch {
	case name == "":
		c.add(e.path, Unsupported, "error pages without backend: Traefik 1.x served none; not converted", "")
		return ""
	case !defined:
		c.add(e.where("backend"), Unsupported, fmt.Sprintf("backend %q is not defined: Traefik 1.x served these error pages from nowhere and answered the errors as they were; not converted", name), "")
		return ""
	case be == f.backend:
		c.add(e.where("backend"), Unsupported, fmt.Sprintf("backend %q is the frontend's own: Traefik 1.x refused these error pages (a loop) and answered the errors as they were; not converted", name), "use another backend for the pages")
		return ""
	case be.dead != "":
		c.add(e.where("backend"), Unsupported, fmt.Sprintf("backend %q was not converted (%s); neither are these error pages", name, be.dead), "")
		return ""
	case len(status) == 0:
		c.add(e.path, Unsupported, "error pages without status replace nothing; not converted", "")
		return ""
	}
	service, ok := be.services[false]
	if !ok {
		service = be.services[true]
	}
	if query != "" && !strings.HasPrefix(query, "/") {
		query = "/" + query // as Traefik 1.x did
	}
	mw := c.addMiddleware(base+"-errors-"+e.name(), e.path, &config.Middleware{Errors: &config.ErrorPages{Status: status, Service: service, Query: query}})
	c.add(e.path, Converted, fmt.Sprintf("middleware %q (errors): the pages of statuses %s come from service %q", mw, strings.Join(status, ", "), service), "")
	var missing []string
	for _, ep := range c.frontendEPs(f.n) {
		if !slices.Contains(be.eps, ep) && !slices.Contains(missing, ep) {
			missing = append(missing, ep)
		}
	}
	if len(missing) > 0 {
		c.add(e.where("backend"), Changed, fmt.Sprintf("on entry points %s no frontend sends requests to backend %q: there Traefik 1.x did not ask its servers for the pages (only a server of it named \"error\", if any), where tollgate asks service %q", quoteList(missing), name, service), "")
	}
	return mw
}

func intPtr(i int) *int    { return &i }
func boolPtr(b bool) *bool { return &b }

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
