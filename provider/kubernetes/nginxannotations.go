package kubernetes

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes/nginx"
)

// nginxClass reports whether ing is of one of the ingress-nginx classes
// the settings serve (see config.KubernetesIngress.NginxIngressClasses).
func (t *translator) nginxClass(ing *netv1.Ingress, classes []*netv1.IngressClass) bool {
	names := t.settings.NginxClasses()
	if len(names) == 0 {
		return false
	}
	if n := ing.Spec.IngressClassName; n != nil {
		if !slices.Contains(names, *n) {
			return false
		}
		for _, c := range classes {
			if c.Name == *n {
				return c.Spec.Controller == config.NginxController || c.Spec.Controller == config.IngressController
			}
		}
		// The class may be gone with ingress-nginx: the name suffices.
		return true
	}
	if a, ok := ing.Annotations[annotationClass]; ok && a != "" {
		return slices.Contains(names, a)
	}
	for _, c := range classes {
		if slices.Contains(names, c.Name) && c.Spec.Controller == config.NginxController && c.Annotations[annotationDefaultClass] == "true" {
			return true
		}
	}
	return false
}

// nginxInput is what nginx.Translate needs of ing; index maps a rule and
// path index to the index in Paths.
func nginxInput(ing *netv1.Ingress) (nginx.Ingress, map[[2]int]int) {
	in := nginx.Ingress{Namespace: ing.Namespace, Name: ing.Name, Annotations: ing.Annotations, TLS: len(ing.Spec.TLS) > 0}
	index := map[[2]int]int{}
	for i, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for j, p := range r.HTTP.Paths {
			index[[2]int{i, j}] = len(in.Paths)
			in.Paths = append(in.Paths, nginx.Path{Host: strings.ToLower(r.Host), Path: cmp.Or(p.Path, "/"),
				Exact: p.PathType != nil && *p.PathType == netv1.PathTypeExact})
		}
	}
	return in, index
}

// nginxIngress is the translation of one opted-in Ingress.
type nginxIngress struct {
	res   *nginx.Result
	index map[[2]int]int
}

// canaryKey is where a canary applies: the namespace, host and path of a
// main Ingress's rule.
func canaryKey(ns, host, path string) string {
	return ns + " " + strings.ToLower(host) + " " + cmp.Or(path, "/")
}

// canaryOf is a canary Ingress's backend for one host and path.
type canaryOf struct {
	ing     *netv1.Ingress
	ngx     *nginxIngress
	backend netv1.IngressBackend
	at      string
	used    bool
}

// SecretData reads a Secret the informers hold: an Opaque one (auth
// Secrets) or a TLS one.
func (o *objects) SecretData(_ context.Context, namespace, name string) (map[string][]byte, error) {
	key := namespace + "/" + name
	if s := o.authSecrets[key]; s != nil {
		return s.Data, nil
	}
	if s := o.secrets[key]; s != nil {
		return s.Data, nil
	}
	return nil, fmt.Errorf("secret %s not found (tollgate reads Secrets of type %s or %s)", key, corev1.SecretTypeOpaque, corev1.SecretTypeTLS)
}

// nginxTranslate translates the nginx annotations of the opted-in
// Ingresses and gathers the canaries by where they apply.
func (t *translator) nginxTranslate(ctx context.Context, o *objects, secrets nginx.Secrets, ings []*netv1.Ingress, opted map[*netv1.Ingress]bool) (map[*netv1.Ingress]*nginxIngress, map[string]*canaryOf) {
	out := map[*netv1.Ingress]*nginxIngress{}
	canaries := map[string]*canaryOf{}
	for _, ing := range ings {
		if !opted[ing] {
			continue
		}
		n := t.cachedTranslate(ctx, o, secrets, ing)
		out[ing] = n
		if n.res.Canary == nil || len(n.res.Refused) > 0 {
			continue
		}
		if be := ing.Spec.DefaultBackend; be != nil {
			// Never paired: reported as a canary without a main.
			canaries[ing.Namespace+" \x00default "+ing.Name] = &canaryOf{ing: ing, ngx: n, backend: *be, at: "spec.defaultBackend"}
		}
		for i, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for j, p := range r.HTTP.Paths {
				key := canaryKey(ing.Namespace, r.Host, p.Path)
				if _, dup := canaries[key]; !dup {
					canaries[key] = &canaryOf{ing: ing, ngx: n, backend: p.Backend, at: fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)}
				}
			}
		}
	}
	return out, canaries
}

// cachedNginx is a translation, with the versions it was made from.
type cachedNginx struct {
	version, secretVersion string
	n                      *nginxIngress
}

// cachedTranslate translates the nginx annotations of ing, or returns
// the translation of the same versions of the Ingress and of its auth
// Secret made by the previous rebuild.
func (t *translator) cachedTranslate(ctx context.Context, o *objects, secrets nginx.Secrets, ing *netv1.Ingress) *nginxIngress {
	key := ing.Namespace + "/" + ing.Name
	secretVersion := ""
	if name := strings.TrimSpace(ing.Annotations[nginx.Prefix+"auth-secret"]); name != "" {
		ns := ing.Namespace
		if a, b, cut := strings.Cut(name, "/"); cut {
			ns, name = a, b
		}
		if s := o.authSecrets[ns+"/"+name]; s != nil {
			secretVersion = "opaque " + s.ResourceVersion
		} else if s := o.secrets[ns+"/"+name]; s != nil {
			secretVersion = "tls " + s.ResourceVersion
		}
	}
	c, ok := t.ngxCache[key]
	if !ok || ing.ResourceVersion == "" || c.version != ing.ResourceVersion || c.secretVersion != secretVersion || t.ngxSeen == nil {
		in, index := nginxInput(ing)
		res := nginx.Translate(ctx, in, secrets)
		if res.Canary != nil {
			canaryReport(res)
		}
		c = cachedNginx{version: ing.ResourceVersion, secretVersion: secretVersion, n: &nginxIngress{res: res, index: index}}
	}
	if t.ngxSeen != nil {
		t.ngxSeen[key] = c
	}
	return c.n
}

// canaryReport marks as unsupported the annotations of a canary that
// its routes do not use: they are its main Ingress's routers, with their
// middlewares and matchers (as in ingress-nginx); only what concerns the
// canary's own servers applies.
func canaryReport(r *nginx.Result) {
	own := func(a string) bool {
		a = strings.TrimPrefix(a, nginx.Prefix)
		return strings.HasPrefix(a, "canary") || strings.HasPrefix(a, "affinity") || strings.HasPrefix(a, "session-cookie-") ||
			a == "backend-protocol" || a == "proxy-connect-timeout" || a == "proxy-read-timeout"
	}
	report := slices.Clone(r.Report)
	for i, e := range report {
		if e.Status != nginx.Unsupported && !own(e.Annotation) {
			report[i] = nginx.Entry{Annotation: e.Annotation, Status: nginx.Unsupported,
				Note: "not applied to a canary, whose requests go through the main Ingress's routers and middlewares (as in ingress-nginx); set it on the main Ingress"}
		}
	}
	r.Report = report
}

// reportNginx turns the report's entries that are not supported into
// problems; false means the Ingress is refused.
func (b *ingressBuild) reportNginx() bool {
	for _, e := range b.ngx.res.Report {
		if e.Status != nginx.Supported {
			b.problem("annotation %s: %s: %s", e.Annotation, e.Status, e.Note)
		}
	}
	return len(b.ngx.res.Refused) == 0
}

// nginxName is the part's name of an nginx middleware or transport.
func nginxName(n string) string {
	return objectName([]string{n}, "") + "@" + ProviderName
}

// nginxSetup adds the middlewares and transport of the translation to
// the part, and the default redirect to https of an Ingress with TLS.
func (b *ingressBuild) nginxSetup(tlsHosts hostSet) {
	r := b.ngx.res
	if len(r.Middlewares) > 0 {
		b.part.Middlewares = map[string]*config.Middleware{}
	}
	for n, m := range r.Middlewares {
		b.part.Middlewares[nginxName(n)] = m
	}
	for _, n := range r.RouterMiddlewares {
		b.ngxRouter = append(b.ngxRouter, nginxName(n))
	}
	for _, n := range r.PlainMiddlewares {
		b.ngxPlain = append(b.ngxPlain, nginxName(n))
	}
	if r.ServersTransport != nil {
		b.part.ServersTransports = map[string]*config.ServersTransport{nginxName(r.ServersTransportName): r.ServersTransport}
	}
	// ingress-nginx redirects to https the hosts with TLS unless
	// ssl-redirect says otherwise.
	_, ssl := b.ing.Annotations[nginx.Prefix+"ssl-redirect"]
	_, force := b.ing.Annotations[nginx.Prefix+"force-ssl-redirect"]
	if !ssl && !force && len(tlsHosts) > 0 && b.tlsEP {
		n := nginxName(b.ing.Namespace + "_" + b.ing.Name + "_nginx-default-ssl-redirect")
		if b.part.Middlewares == nil {
			b.part.Middlewares = map[string]*config.Middleware{}
		}
		b.part.Middlewares[n] = &config.Middleware{RedirectScheme: &config.RedirectScheme{Scheme: "https", Permanent: true}}
		b.defaultRedirect = n
		b.tlsHosts = tlsHosts
	}
}

// nginxMiddlewares are the middlewares of a router for host, plain or TLS,
// with route's rewrite last.
func (b *ingressBuild) nginxMiddlewares(host string, tls bool, route nginx.Route) []string {
	var out []string
	if !tls {
		out = append(out, b.ngxPlain...)
		if b.defaultRedirect != "" {
			if _, covered := b.tlsHosts.covers(host); covered {
				out = append(out, b.defaultRedirect)
			}
		}
	}
	out = append(out, b.ngxRouter...)
	out = append(out, b.middlewares...)
	if route.Middleware != "" {
		out = append(out, nginxName(route.Middleware))
	}
	return out
}

// nginxService returns the service for a backend of an Ingress with
// translation n: the shared one, or, when n changes the scheme, the
// transport or the stickiness, one of its own.
func (b *ingressBuild) nginxService(at string, be netv1.IngressBackend, ingName string, n *nginxIngress) string {
	svc := b.backend(at, be)
	if svc == "" || n == nil {
		return svc
	}
	r := n.res
	if r.Scheme == "" && r.ServersTransport == nil && r.Sticky == nil {
		return svc
	}
	shared := b.part.Services[svc]
	lb := *shared.LoadBalancer
	lb.Servers = nil
	for _, s := range shared.LoadBalancer.Servers {
		if r.Scheme != "" {
			if _, rest, ok := strings.Cut(s.URL, "://"); ok {
				s.URL = r.Scheme + "://" + rest
			}
		}
		lb.Servers = append(lb.Servers, s)
	}
	if r.ServersTransport != nil {
		lb.ServersTransport = nginxName(r.ServersTransportName)
		if b.part.ServersTransports == nil {
			b.part.ServersTransports = map[string]*config.ServersTransport{}
		}
		b.part.ServersTransports[lb.ServersTransport] = r.ServersTransport
	}
	lb.Sticky = r.Sticky
	local, _ := strings.CutSuffix(svc, "@"+ProviderName)
	name := objectName([]string{local, ingName}, "-nginx") + "@" + ProviderName
	b.part.Services[name] = &config.Service{LoadBalancer: &lb}
	return name
}

// canary adds the routers of the canary of a path, if there is one, and
// returns the service the main routers use (a weighted one when the
// canary has a weight).
func (b *ingressBuild) canary(c *canaryOf, name []string, ruleText string, prio int, mainSvc string, tls *config.RouterTLS, host string, route nginx.Route) string {
	cn := c.ngx.res.Canary
	canarySvc := b.nginxService(c.at+" of Ingress "+c.ing.Name, c.backend, c.ing.Name, c.ngx)
	if canarySvc == "" {
		return mainSvc
	}
	suffix := ""
	if tls != nil {
		suffix = "-tls"
	}
	mws := b.nginxMiddlewares(host, tls != nil, route)
	svc := mainSvc
	if cn.Weight != nil {
		local, _ := strings.CutSuffix(mainSvc, "@"+ProviderName)
		svc = objectName(append(slices.Clone(name), local), "-canary") + "@" + ProviderName
		b.part.Services[svc] = cn.WeightedService(mainSvc, canarySvc)
		if cn.NeverMatch != "" {
			b.canaryRouter(name, "-canary-never"+suffix, ruleText+" && "+cn.NeverMatch, prio, mainSvc, tls, mws)
		}
	}
	if cn.Match != "" {
		b.canaryRouter(name, "-canary"+suffix, ruleText+" && "+cn.Match, prio, canarySvc, tls, mws)
	}
	return svc
}

// canaryRouter adds a router one priority above the main router's
// (tollgate.io/router.priority included).
func (b *ingressBuild) canaryRouter(parts []string, suffix, ruleText string, prio int, service string, tls *config.RouterTLS, mws []string) {
	b.routerWith(parts, suffix, ruleText, prio, service, tls, mws)
	b.part.Routers[objectName(parts, suffix)+"@"+ProviderName].Priority = cmp.Or(b.priority, prio) + 1
}

// routerWith adds a router with the given middlewares.
func (b *ingressBuild) routerWith(parts []string, suffix, ruleText string, prio int, service string, tls *config.RouterTLS, mws []string) {
	b.router(parts, suffix, ruleText, prio, service, tls)
	b.part.Routers[objectName(parts, suffix)+"@"+ProviderName].Middlewares = mws
}

// nginxRoute returns the route the translation gives path i, j.
func (b *ingressBuild) nginxRoute(i, j int) (nginx.Route, bool) {
	if b.ngx == nil {
		return nginx.Route{}, false
	}
	r, ok := b.ngx.res.Routes[b.ngx.index[[2]int{i, j}]]
	return r, ok
}

// aliasOf returns the twin host of host that from-to-www-redirect adds,
// or "".
func (b *ingressBuild) aliasOf(host string) string {
	if b.ngx == nil || host == "" {
		return ""
	}
	for a, h := range b.ngx.res.AliasHosts {
		if h == host {
			return a
		}
	}
	return ""
}

// NginxReport is what becomes of the nginx annotations of one Ingress.
type NginxReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Entries has one entry per nginx annotation, sorted.
	Entries []nginx.Entry `json:"annotations"`
	// Refused, when not empty, says why the Ingress would not be served.
	Refused []string `json:"refused,omitempty"`
	// Problems are the provider's findings beyond the annotations: a
	// canary without its main Ingress.
	Problems []string `json:"problems,omitempty"`
	// Notes are what tollgate does for the Ingress without an annotation
	// asking, as ingress-nginx does.
	Notes []string `json:"notes,omitempty"`
}

// ReportNginx translates the nginx annotations of the Ingresses of m that
// settings opt in (nginxAnnotations "classes" or "all"), as the provider
// would, and reports on each: what every annotation becomes, whether the
// Ingress would be refused, and canaries without a main Ingress. secrets
// reads auth-secret; nil reads the Secrets of m.
func ReportNginx(ctx context.Context, settings *config.KubernetesIngress, m *Manifests, secrets nginx.Secrets) []NginxReport {
	t := newTranslator(settings, &config.Config{}, nil)
	o := &objects{classes: m.IngressClasses, secrets: map[string]*corev1.Secret{}, authSecrets: map[string]*corev1.Secret{}}
	for _, s := range m.Secrets {
		key := cmp.Or(s.Namespace, "default") + "/" + s.Name
		if s.Type == corev1.SecretTypeTLS {
			o.secrets[key] = s
		} else {
			o.authSecrets[key] = s
		}
	}
	var ings []*netv1.Ingress
	opted := map[*netv1.Ingress]bool{}
	for _, ing := range m.Ingresses {
		if served, on := t.served(ing, o.classes); served && on {
			c := ing.DeepCopy()
			c.Namespace = cmp.Or(c.Namespace, "default")
			ings = append(ings, c)
			opted[c] = true
		}
	}
	var sec nginx.Secrets = o
	if secrets != nil {
		sec = secrets
	}
	out := make([]NginxReport, 0, len(ings))
	translated, canaries := t.nginxTranslate(ctx, o, sec, ings, opted)
	for _, ing := range ings {
		if n := translated[ing]; n.res.Canary != nil || len(n.res.Refused) > 0 {
			continue
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if c := canaries[canaryKey(ing.Namespace, r.Host, p.Path)]; c != nil {
					c.used = true
				}
			}
		}
	}
	for _, ing := range ings {
		n := translated[ing]
		rep := NginxReport{Namespace: ing.Namespace, Name: ing.Name, Entries: n.res.Report, Refused: n.res.Refused}
		if rep.Entries == nil {
			rep.Entries = []nginx.Entry{}
		}
		for _, c := range canaries {
			if c.ing == ing && !c.used {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: a canary without an Ingress of namespace %s that is not a canary and routes its host and path; not served there", c.at, ing.Namespace))
			}
		}
		slices.Sort(rep.Problems)
		_, ssl := ing.Annotations[nginx.Prefix+"ssl-redirect"]
		_, force := ing.Annotations[nginx.Prefix+"force-ssl-redirect"]
		if len(ing.Spec.TLS) > 0 && !ssl && !force && n.res.Canary == nil && len(n.res.Refused) == 0 {
			rep.Notes = append(rep.Notes, "plain HTTP to the hosts of spec.tls is redirected to https (301 for GET, 308 for other methods), as ingress-nginx does by default; ssl-redirect: \"false\" turns it off")
		}
		out = append(out, rep)
	}
	slices.SortFunc(out, func(a, b NginxReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
