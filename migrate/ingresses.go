package migrate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// The Ingress annotations tollgate reads.
const (
	annClass       = "kubernetes.io/ingress.class"
	annEntryPoints = "tollgate.io/router.entrypoints"
	annMiddlewares = "tollgate.io/router.middlewares"
	annPriority    = "tollgate.io/router.priority"
	annTLS         = "tollgate.io/router.tls"
)

// v1Prefix is the prefix of Traefik 1.x's Ingress annotations; Traefik
// read each with "traefik." in front as well.
const v1Prefix = "ingress.kubernetes.io/"

// v1Compat are the labels of Traefik's other providers that its
// Kubernetes provider read as annotations, when the annotation itself
// was absent.
var v1Compat = map[string]string{
	"traefik.frontend.passHostHeader": v1Prefix + "preserve-host",
	"traefik.frontend.passTLSCert":    v1Prefix + "pass-tls-cert",
	"traefik.frontend.entryPoints":    v1Prefix + "frontend-entry-points",
	"traefik.frontend.priority":       v1Prefix + "priority",
	"traefik.frontend.rule.type":      v1Prefix + "rule-type",
}

// annotations are an object's Traefik 1.x annotations under the names
// Traefik read them by. Reading one through get marks it reported; those
// left are reported as unknown at the end, as node does for keys.
type annotations struct {
	o    *k8sObject
	vals map[string]string // by canonical name
	keys map[string]string // canonical name → the key written
	used map[string]bool
}

// v1Annotations collects the annotations Traefik 1.x read from o, and
// reports those it ignored because another spelling of the same one
// was set.
func (c *converter) v1Annotations(o *k8sObject) *annotations {
	a := &annotations{o: o, vals: map[string]string{}, keys: map[string]string{}, used: map[string]bool{}}
	// Traefik looked for "ingress.kubernetes.io/X", then
	// "traefik.ingress.kubernetes.io/X", then the compatible label.
	rank := func(key string) int {
		switch {
		case strings.HasPrefix(key, v1Prefix), key == annClass:
			return 0
		case strings.HasPrefix(key, "traefik."+v1Prefix), key == "traefik."+annClass:
			return 1
		}
		return 2
	}
	for _, key := range slices.SortedFunc(maps.Keys(o.meta.Annotations), func(x, y string) int {
		return cmp.Or(cmp.Compare(rank(x), rank(y)), strings.Compare(x, y))
	}) {
		name := canonicalAnnotation(key)
		if name == "" {
			continue
		}
		if first, dup := a.keys[name]; dup {
			c.annItem(o, key, Converted, fmt.Sprintf("ignored, as by Traefik 1.x: %s is set too and takes precedence", first), "remove it")
			continue
		}
		a.vals[name], a.keys[name] = o.meta.Annotations[key], key
	}
	return a
}

// canonicalAnnotation is the name Traefik 1.x read key by, or "" for
// annotations that are not Traefik's.
func canonicalAnnotation(key string) string {
	switch {
	case key == annClass || key == "traefik."+annClass:
		return annClass
	case strings.HasPrefix(key, v1Prefix):
		return key
	case strings.HasPrefix(key, "traefik."+v1Prefix):
		return strings.TrimPrefix(key, "traefik.")
	case v1Compat[key] != "":
		return v1Compat[key]
	case strings.HasPrefix(key, "traefik."):
		return key
	}
	return ""
}

// get returns the annotation name, marking it reported.
func (a *annotations) get(name string) (string, bool) {
	v, ok := a.vals[name]
	if ok {
		a.used[name] = true
	}
	return v, ok
}

func (a *annotations) has(name string) bool {
	_, ok := a.vals[name]
	return ok
}

// bool reads a boolean annotation as Traefik did: anything but a boolean
// is the default.
func (a *annotations) bool(name string, def bool) bool {
	v, _ := a.get(name)
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "t":
		return true
	case "false", "0", "f":
		return false
	}
	return def
}

// list reads a comma-separated annotation.
func (a *annotations) list(name string) []string {
	v, _ := a.get(name)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// annItem reports an annotation of o, at its line.
func (c *converter) annItem(o *k8sObject, key string, kind Kind, msg, advice string) {
	line := cmp.Or(o.annLines[key], o.line)
	c.manifestItem(o.src, o.file, line, o.id()+" "+key, kind, msg, advice)
}

// report reports the annotation name (canonical) of a's object.
func (c *converter) report(a *annotations, name string, kind Kind, msg, advice string) {
	c.annItem(a.o, a.keys[name], kind, msg, advice)
}

// objItem reports an object as a whole, at its first line.
func (c *converter) objItem(o *k8sObject, kind Kind, msg, advice string) {
	c.manifestItem(o.src, o.file, o.line, o.id(), kind, msg, advice)
}

// manifestItem adds an item located in a manifest.
func (c *converter) manifestItem(src int, file string, line int, key string, kind Kind, msg, advice string) {
	where := file
	if line > 0 {
		where = fmt.Sprintf("%s:%d", file, line)
	}
	c.seq++
	c.items = append(c.items, Item{Where: where, Key: key, Kind: kind, Message: msg, Advice: advice, src: src, line: line, seq: c.seq})
}

// addAt adds an item at the place of at.
func (c *converter) addAt(at Item, kind Kind, msg, advice string) {
	c.seq++
	at.Kind, at.Message, at.Advice, at.seq = kind, msg, advice, c.seq
	c.items = append(c.items, at)
}

// leftoverAnnotations reports the Traefik annotations no check read.
func (c *converter) leftoverAnnotations(a *annotations) {
	for _, name := range slices.Sorted(maps.Keys(a.vals)) {
		if a.used[name] {
			continue
		}
		key := a.keys[name]
		switch {
		case strings.HasPrefix(name, v1Prefix):
			c.annItem(a.o, key, Unknown, "not an annotation Traefik 1.7 reads here; it had no effect; not converted", "check its spelling, or remove it")
		default:
			c.annItem(a.o, key, Unknown, "Traefik 1.x's Kubernetes provider did not read it (it is a label of its Docker, Marathon or Consul Catalog providers); it had no effect; not converted", "remove it")
		}
	}
}

// manifests checks the Ingresses and Services of the manifests, adds the
// middlewares their annotations need to the configuration, and says for
// each Ingress how to annotate it.
func (c *converter) manifests(ms []Manifest) {
	var objs []*k8sObject
	for i, m := range ms {
		objs = append(objs, c.readManifest(i+1, m)...)
	}
	k := c.kube
	if k == nil {
		// Check as the converted configuration would serve them once the
		// provider is added with Traefik's default class.
		k = &kubeState{class: defaultV1IngressClass}
		for _, v1 := range c.defaultEPs {
			if ep, ok := c.eps[v1]; ok && ep.blocked == "" && !ep.internal {
				k.eps = append(k.eps, ep)
			}
		}
		c.manifestItem(1, ms[0].Name, 0, "", Action, "Traefik's configuration has no [kubernetes] section, so the converted one has no [providers.kubernetesIngress]; the Ingresses are checked as if it had one with ingressClass = \"traefik\"",
			"if Traefik got --kubernetes on its command line, convert again with --traefik-args; else add [providers.kubernetesIngress] to "+c.out)
	}
	classes := map[string]*ingressClassSpec{}
	var ingresses, services []*k8sObject
	for _, o := range objs {
		switch {
		case o.class != nil:
			classes[o.meta.Name] = o.class
		case o.ing != nil:
			ingresses = append(ingresses, o)
		case o.kind == "Service":
			services = append(services, o)
		}
	}
	if len(ingresses) == 0 {
		c.manifestItem(1, ms[0].Name, 0, "", Converted, "no Ingress in the manifests: nothing to check", "")
	}
	svcMWs := map[string][]string{}
	for _, o := range services {
		if mws := c.checkService(o); len(mws) > 0 {
			svcMWs[o.namespace()+"/"+o.meta.Name] = mws
		}
	}
	for _, o := range ingresses {
		c.checkIngress(o, k, classes, svcMWs)
	}
}

// served reports whether Traefik 1.x served an Ingress of class v (has:
// whether the annotation is set): with ingressClass set, those of that
// class; without, those of class "traefik", an empty one, or none.
func (k *kubeState) served(v string) bool {
	if k.v1Class == "" {
		return v == "" || v == defaultV1IngressClass
	}
	return v == k.v1Class
}

// ingressCheck is one Ingress on its way to its tollgate annotations.
type ingressCheck struct {
	c *converter
	o *k8sObject
	a *annotations
	k *kubeState
	// set are the annotations to write, in the order of the command.
	set [][2]string
	// eps are the entry points it listens on.
	eps []*entryPoint
	// Middlewares by where they run (see routerMiddlewares).
	epMWs, path, allow, redirect, https, headers, auth, svc, rateLimit []string
	// todo are changes to the Ingress besides annotations; unsafe says
	// why tollgate must not serve it yet.
	todo   []string
	unsafe []string
	// certDone is set when the Ingress says itself whether the client
	// certificate is passed (enablePassTLSCert is then no default).
	certDone bool
}

// checkIngress checks one Ingress.
func (c *converter) checkIngress(o *k8sObject, k *kubeState, classes map[string]*ingressClassSpec, svcMWs map[string][]string) {
	ic := &ingressCheck{c: c, o: o, a: c.v1Annotations(o), k: k}
	if !ic.class(classes) {
		return
	}
	ic.entryPoints()
	ic.priority()
	ic.paths()
	ic.redirects()
	ic.allowList()
	ic.headerAnnotations()
	ic.authentication()
	ic.clientCert()
	ic.hostHeader()
	ic.rateLimits()
	for _, name := range []string{"error-pages", "buffering", "service-weights", "protocol", "responseforwarding-flushinterval"} {
		if _, ok := ic.a.get(v1Prefix + name); ok {
			c.report(ic.a, v1Prefix+name, Unsupported, "has no equivalent in tollgate; not converted", unsupportedAnnotationAdvice[name])
		}
	}
	for _, name := range serviceAnnotations {
		if _, ok := ic.a.get(v1Prefix + name); ok {
			c.report(ic.a, v1Prefix+name, Unknown, "Traefik 1.x read it on Services only; on an Ingress it had no effect; not converted", "remove it")
		}
	}
	for _, svc := range o.ing.services {
		ic.svc = append(ic.svc, svcMWs[o.namespace()+"/"+svc]...)
	}
	c.leftoverAnnotations(ic.a)
	ic.finish()
}

// unsupportedAnnotationAdvice is what to do instead of the Ingress
// annotations tollgate has no equivalent for.
var unsupportedAnnotationAdvice = map[string]string{
	"error-pages":                      "add an errors middleware to the file, whose service is a loadBalancer of the file sending to the pages' server, and name it in the tollgate.io/router.middlewares annotation",
	"buffering":                        "tollgate streams requests and responses; limit body sizes in the backend",
	"service-weights":                  "a tollgate Ingress route sends each path to one Service port: route these hosts and paths with a router of the file instead, whose service is a weighted service over loadBalancers of the file sending to each Service, and remove them from the Ingress",
	"protocol":                         "tollgate speaks HTTP to Ingress backends unless the Service port says otherwise; check the backend's port",
	"responseforwarding-flushinterval": "tollgate flushes streamed responses as they come",
}

// serviceAnnotations are the annotations Traefik 1.x read on Services.
var serviceAnnotations = []string{"affinity", "session-cookie-name", "load-balancer-method", "circuit-breaker-expression", "max-conn-amount", "max-conn-extractor-func"}

// class checks that tollgate serves the Ingress as Traefik did, and
// reports whether Traefik served it at all.
func (ic *ingressCheck) class(classes map[string]*ingressClassSpec) bool {
	c, k, o := ic.c, ic.k, ic.o
	v, has := ic.a.get(annClass)
	if !k.served(v) {
		want := fmt.Sprintf("%q", k.v1Class)
		if k.v1Class == "" {
			want = "\"traefik\", empty or absent"
		}
		c.objItem(o, Converted, fmt.Sprintf("not checked: Traefik 1.x did not serve it (kubernetes.io/ingress.class %q, where it served %s), nor does tollgate", v, want), "")
		ic.a.markAll() // they had no effect
		return false
	}
	switch {
	case has && v == k.class:
		c.report(ic.a, annClass, Converted, fmt.Sprintf("%q is tollgate's ingressClass: tollgate serves it", v), "")
		return true
	case has:
		c.report(ic.a, annClass, Changed, "empty: Traefik 1.x served it, tollgate serves only Ingresses of its ingressClass", "the annotation below sets it to "+k.class+", which Traefik 1.x serves too")
		ic.setAnn(annClass, k.class)
		return true
	}
	name := o.ing.className
	if name != "" {
		cl := classes[name]
		switch {
		case cl != nil && cl.controller == config.IngressController && name == k.class:
			c.objItem(o, Converted, fmt.Sprintf("spec.ingressClassName %q names tollgate's IngressClass: tollgate serves it", name), "")
		default:
			c.objItem(o, Action, fmt.Sprintf("Traefik 1.x served it, ignoring spec.ingressClassName %q; tollgate serves it only if that IngressClass has spec.controller %s and is named %s, its ingressClass", name, config.IngressController, k.class),
				"the API server refuses kubernetes.io/ingress.class beside spec.ingressClassName: point spec.ingressClassName at such an IngressClass")
		}
		return true
	}
	for _, cn := range slices.Sorted(maps.Keys(classes)) {
		if cl := classes[cn]; cl.isDefault && cl.controller == config.IngressController && cn == k.class {
			c.objItem(o, Converted, fmt.Sprintf("no class: tollgate serves it through the default IngressClass %s", cn), "")
			return true
		}
	}
	c.objItem(o, Changed, "no class: Traefik 1.x served it; tollgate serves it only through a default IngressClass of its controller, or with the annotation",
		"the annotation below sets kubernetes.io/ingress.class: "+k.class+", which Traefik 1.x serves too")
	ic.setAnn(annClass, k.class)
	return true
}

// markAll marks every annotation reported.
func (a *annotations) markAll() {
	for name := range a.vals {
		a.used[name] = true
	}
}

func (ic *ingressCheck) setAnn(name, value string) {
	for i, kv := range ic.set {
		if kv[0] == name {
			ic.set[i][1] = value
			return
		}
	}
	ic.set = append(ic.set, [2]string{name, value})
}

// entryPoints converts frontend-entry-points (traefik.frontend.entryPoints).
func (ic *ingressCheck) entryPoints() {
	const name = v1Prefix + "frontend-entry-points"
	ic.eps = ic.k.eps
	if !ic.a.has(name) {
		ic.epMiddlewares()
		return
	}
	var eps []*entryPoint
	var names, notes []string
	for _, n := range ic.a.list(name) {
		ep, ok := ic.c.eps[n]
		switch {
		case !ok:
			notes = append(notes, fmt.Sprintf("%q is not defined, and Traefik 1.x did not listen there either", n))
		case ep.blocked != "":
			notes = append(notes, fmt.Sprintf("%q is left out: %s", ep.name, ep.blocked))
		case !slices.Contains(eps, ep):
			eps = append(eps, ep)
			names = append(names, ep.name)
		}
	}
	ic.eps = eps
	ic.epMiddlewares()
	note := ""
	if len(notes) > 0 {
		note = "; " + strings.Join(notes, "; ")
	}
	switch {
	case len(eps) == 0:
		ic.c.report(ic.a, name, Changed, "no entry point tollgate routes is listed"+note+"; the Ingress listens on the provider's entry points", "list defined entry points")
		ic.eps = ic.k.eps
	case sameEntryPoints(eps, ic.k.eps):
		ic.c.report(ic.a, name, Converted, "the provider's entryPoints already: no annotation needed"+note, "")
	default:
		ic.setAnn(annEntryPoints, strings.Join(names, ","))
		kind := Converted
		if note != "" {
			kind = Changed
		}
		ic.c.report(ic.a, name, kind, fmt.Sprintf("%s: %q%s", annEntryPoints, strings.Join(names, ","), note), "")
	}
}

func sameEntryPoints(a, b []*entryPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for _, e := range a {
		if !slices.Contains(b, e) {
			return false
		}
	}
	return true
}

// epMiddlewares collects the middlewares Traefik 1.x ran on the entry
// points the Ingress listens on (those that do not redirect every
// request); tollgate needs them named by the Ingress.
func (ic *ingressCheck) epMiddlewares() {
	ic.epMWs = nil
	for _, ep := range ic.eps {
		if ep.redirect != "" {
			continue
		}
		for _, mw := range ep.mws {
			if !slices.Contains(ic.epMWs, mw) {
				ic.epMWs = append(ic.epMWs, mw)
			}
		}
	}
	ic.c.keepAll(ic.epMWs)
}

// priority converts priority (traefik.frontend.priority).
func (ic *ingressCheck) priority() {
	const name = v1Prefix + "priority"
	v, ok := ic.a.get(name)
	if !ok {
		return
	}
	var p int
	if _, err := fmt.Sscan(strings.TrimSpace(v), &p); err != nil || fmt.Sprint(p) != strings.TrimSpace(v) {
		ic.c.report(ic.a, name, Converted, fmt.Sprintf("%q is not an integer: Traefik 1.x ignored it; so does tollgate", truncate(v, 40)), "remove it")
		return
	}
	if p <= 0 {
		ic.c.report(ic.a, name, Converted, "0 or less: Traefik 1.x ordered the Ingress by the length of its rule, as tollgate does", "")
		return
	}
	ic.setAnn(annPriority, fmt.Sprint(p))
	ic.c.report(ic.a, name, Converted, fmt.Sprintf("%s: %q", annPriority, fmt.Sprint(p)), "")
}

// ingressMiddleware adds a middleware made from an Ingress's (or a
// Service's) annotation, located at it, and keeps it although no router
// of the file uses it.
func (c *converter) ingressMiddleware(o *k8sObject, key, suffix string, m *config.Middleware) string {
	name := c.unique("middleware", o.namespace()+"-"+o.meta.Name+"-"+suffix)
	if c.cfg.HTTP == nil {
		c.cfg.HTTP = &config.HTTP{}
	}
	if c.cfg.HTTP.Middlewares == nil {
		c.cfg.HTTP.Middlewares = map[string]*config.Middleware{}
	}
	c.cfg.HTTP.Middlewares[name] = m
	line := cmp.Or(o.annLines[key], o.line)
	where := o.file
	if line > 0 {
		where = fmt.Sprintf("%s:%d", o.file, line)
	}
	if c.mwAt == nil {
		c.mwAt = map[string]Item{}
	}
	c.mwAt[name] = Item{Where: where, Key: o.id() + " " + key, src: o.src, line: line}
	c.comment("http.middlewares."+dn(name), fmt.Sprintf("for %s, from %s (%s)", o.id(), key, where))
	c.keepAll([]string{name})
	return name
}

// finish reports what to do for tollgate to serve the Ingress as
// Traefik 1.x did.
func (ic *ingressCheck) finish() {
	c, o, k := ic.c, ic.o, ic.k
	if k.passTLSCert && !ic.certDone {
		mw := c.ingressMiddleware(o, "enablePassTLSCert", "client-cert", &config.Middleware{PassTLSClientCert: &config.PassTLSClientCert{PEM: true}})
		ic.auth = append(ic.auth, mw)
	}
	if !o.ing.tls {
		for _, ep := range ic.eps {
			if ep.tls && ep.redirect == "" {
				ic.setAnn(annTLS, "true")
				c.objItem(o, Changed, fmt.Sprintf("no spec.tls: Traefik 1.x served it over TLS on entry point %q too; tollgate does with the annotation %s: \"true\"", ep.name, annTLS),
					"the annotation below sets it; its certificate comes from ACME, or from the certificates of the file")
				break
			}
		}
	}
	for _, why := range ic.unsafe {
		c.objItem(o, Action, "tollgate would serve it without "+why, "keep it away from tollgate (give it another class) until its backend checks that itself")
	}
	// The command is written once the configuration is validated: a
	// middleware tollgate refuses is left out of it (and reported).
	c.ingressDone = append(c.ingressDone, ic)
}

// ingressActions reports, for each Ingress checked, what to change for
// tollgate to serve it as Traefik 1.x did: the annotations, as one
// kubectl command, and anything else.
func (c *converter) ingressActions() {
	for _, ic := range c.ingressDone {
		o := ic.o
		var mws []string
		for _, l := range [][]string{ic.epMWs, ic.path, ic.allow, ic.redirect, ic.https, ic.headers, ic.auth, ic.svc, ic.rateLimit} {
			for _, mw := range l {
				if c.cfg.HTTP != nil && c.cfg.HTTP.Middlewares[mw] != nil && !slices.Contains(mws, mw) {
					mws = append(mws, mw)
				}
			}
		}
		if len(mws) > 0 {
			ic.setAnn(annMiddlewares, strings.Join(mws, ","))
		}
		if len(ic.set) == 0 && len(ic.todo) == 0 {
			c.objItem(o, Converted, "tollgate serves it as Traefik 1.x did: nothing to change", "")
			continue
		}
		var todo []string
		if len(ic.set) > 0 {
			cmd := fmt.Sprintf("kubectl annotate ingress -n %s %s --overwrite", shellQuote(o.namespace()), shellQuote(o.meta.Name))
			for _, kv := range ic.set {
				cmd += " " + shellQuote(kv[0]+"="+kv[1])
			}
			todo = append(todo, cmd)
		}
		todo = append(todo, ic.todo...)
		c.objItem(o, Action, "for tollgate to serve it as Traefik 1.x did, change it (Traefik 1.x ignores the tollgate.io annotations)", strings.Join(todo, "; "))
	}
}
