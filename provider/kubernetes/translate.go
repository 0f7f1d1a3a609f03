package kubernetes

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes/nginx"
)

// ProviderName ends the names of the routers and services this provider
// makes: "default-web-0-0@kubernetes".
const ProviderName = "kubernetes"

// Annotations tollgate reads on an Ingress (see docs/kubernetes.md).
const (
	AnnotationEntryPoints = "tollgate.io/router.entrypoints"
	AnnotationMiddlewares = "tollgate.io/router.middlewares"
	AnnotationPriority    = "tollgate.io/router.priority"
	AnnotationTLS         = "tollgate.io/router.tls"
	AnnotationTLSOptions  = "tollgate.io/router.tls.options"

	annotationClass        = "kubernetes.io/ingress.class"
	annotationDefaultClass = "ingressclass.kubernetes.io/is-default-class"
	defaultClassAnnotation = "tollgate"
	labelServiceName       = "kubernetes.io/service-name"
)

// objects is what the informers hold at one moment.
type objects struct {
	ingresses []*netv1.Ingress
	classes   []*netv1.IngressClass
	services  map[string]*corev1.Service              // by namespace/name
	slices    map[string][]*discoveryv1.EndpointSlice // by namespace/service name
	secrets   map[string]*corev1.Secret               // by namespace/name
	// authSecrets are the Opaque Secrets, read only with nginx
	// annotations (auth-secret), by namespace/name.
	authSecrets map[string]*corev1.Secret
}

// translator turns objects into tollgate's configuration model.
type translator struct {
	settings *config.KubernetesIngress
	// acme says whether the configuration has [acme]: hosts without a
	// secret get their certificates from it; acmeWildcards whether it can
	// validate wildcards (DNS-01).
	acme, acmeWildcards bool
	// entryPoints are the configuration's entry points; tlsEntryPoints
	// those that serve TLS.
	entryPoints    []string
	tlsEntryPoints map[string]bool
	// checkPair is the router's rule for a provided certificate.
	checkPair func(config.KeyPair) error
	// checked caches checkPair's verdict by secret and resourceVersion:
	// a rebuild follows every endpoint change, and parsing every
	// certificate each time would cost more than the rest. Only the
	// rebuilding goroutine uses it.
	checked, seen map[string]checkedPair
	// ngxCache keeps the translation of an Ingress's nginx annotations by
	// its resourceVersion and that of its auth Secret, for the same
	// reason; ngxSeen the entries used by this rebuild.
	ngxCache, ngxSeen map[string]cachedNginx
}

type checkedPair struct {
	version string
	err     error
}

// check runs checkPair on the pair of secret s, once per version.
func (t *translator) check(s *corev1.Secret, kp config.KeyPair) error {
	if t.checkPair == nil {
		return nil
	}
	key := s.Namespace + "/" + s.Name
	if c, ok := t.checked[key]; ok && c.version == s.ResourceVersion && s.ResourceVersion != "" {
		t.seen[key] = c
		return c.err
	}
	c := checkedPair{version: s.ResourceVersion, err: t.checkPair(kp)}
	t.seen[key] = c
	return c.err
}

// result is one translation.
type result struct {
	provided *config.Provided
	// problems by object ("ingress default/web"): what is wrong with
	// it, each a sentence for an Event.
	problems map[objectRef][]string
	// served are the Ingresses served, for status.
	served []*netv1.Ingress
	// canaries maps the owner of a canary Ingress ("ingress ns/name") to
	// that of a main Ingress it is paired with: served when the main is.
	canaries map[string]string
}

// objectRef names an object problems are reported on.
type objectRef struct {
	kind, namespace, name string
}

func (r objectRef) String() string {
	return strings.ToLower(r.kind) + " " + r.namespace + "/" + r.name
}

func newTranslator(s *config.KubernetesIngress, base *config.Config, checkPair func(config.KeyPair) error) *translator {
	t := &translator{settings: s, checkPair: checkPair, tlsEntryPoints: map[string]bool{}}
	if a := base.ACME; a != nil {
		t.acme, t.acmeWildcards = true, a.DNSChallenge != nil
	}
	for name, ep := range base.EntryPoints {
		t.entryPoints = append(t.entryPoints, name)
		if ep.HTTP != nil && ep.HTTP.TLS != nil {
			t.tlsEntryPoints[name] = true
		}
	}
	slices.Sort(t.entryPoints)
	return t
}

// served reports whether ing belongs to this controller's class, or to
// an ingress-nginx class it serves, and whether its nginx annotations are
// read.
func (t *translator) served(ing *netv1.Ingress, classes []*netv1.IngressClass) (served, nginxOn bool) {
	if t.nginxClass(ing, classes) {
		return true, true
	}
	return t.ours(ing, classes), t.settings.NginxAnnotations == config.NginxAll
}

// ours reports whether ing belongs to this controller's class.
func (t *translator) ours(ing *netv1.Ingress, classes []*netv1.IngressClass) bool {
	want := t.settings.IngressClass
	ours := func(c *netv1.IngressClass) bool {
		return c.Spec.Controller == config.IngressController && (want == "" || c.Name == want)
	}
	if n := ing.Spec.IngressClassName; n != nil {
		for _, c := range classes {
			if c.Name == *n {
				return ours(c)
			}
		}
		return false
	}
	if a, ok := ing.Annotations[annotationClass]; ok && a != "" {
		return a == cmp.Or(want, defaultClassAnnotation)
	}
	for _, c := range classes {
		if ours(c) && c.Annotations[annotationDefaultClass] == "true" {
			return true
		}
	}
	return false
}

// translate builds the provided configuration from objects.
func (t *translator) translate(o *objects) *result {
	res := &result{
		provided: &config.Provided{Provider: ProviderName},
		problems: map[objectRef][]string{},
	}
	ings := slices.Clone(o.ingresses)
	slices.SortFunc(ings, func(a, b *netv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	// Keep the verdicts of the secrets still referenced.
	t.seen = map[string]checkedPair{}
	t.ngxSeen = map[string]cachedNginx{}
	defer func() { t.checked, t.seen, t.ngxCache, t.ngxSeen = t.seen, nil, t.ngxSeen, nil }()
	services := map[string]builtService{} // shared between Ingresses
	claims := map[string]string{}         // host and path: the Ingress that routes it
	var servedIngs []*netv1.Ingress
	opted := map[*netv1.Ingress]bool{}
	for _, ing := range ings {
		served, nginxOn := t.served(ing, o.classes)
		if !served {
			continue
		}
		servedIngs = append(servedIngs, ing)
		opted[ing] = nginxOn
	}
	ngx, canaries := t.nginxTranslate(context.Background(), o, o, servedIngs, opted)
	for _, ing := range servedIngs {
		res.served = append(res.served, ing)
		b := &ingressBuild{t: t, o: o, ing: ing, services: services, res: res, claims: claims, ngx: ngx[ing], canaries: canaries,
			ref:  objectRef{"Ingress", ing.Namespace, ing.Name},
			part: &config.Part{Owner: "ingress " + ing.Namespace + "/" + ing.Name, Routers: map[string]*config.Router{}, Services: map[string]*config.Service{}}}
		b.build()
		if len(b.part.Routers) > 0 {
			res.provided.Parts = append(res.provided.Parts, b.part)
		}
	}
	for _, c := range canaries {
		if !c.used {
			ref := objectRef{"Ingress", c.ing.Namespace, c.ing.Name}
			res.problems[ref] = append(res.problems[ref], fmt.Sprintf("annotation %scanary: %s: no Ingress of namespace %s that is not a canary routes its host and path; the canary is not served there", nginx.Prefix, c.at, c.ing.Namespace))
		}
	}
	// A canary's backend is built for its main's plain and TLS routers:
	// say its problems once.
	for ref, msgs := range res.problems {
		var once []string
		for _, m := range msgs {
			if !slices.Contains(once, m) {
				once = append(once, m)
			}
		}
		res.problems[ref] = once
	}
	return res
}

// ingressBuild translates one Ingress.
type ingressBuild struct {
	t        *translator
	o        *objects
	ing      *netv1.Ingress
	ref      objectRef
	part     *config.Part
	services map[string]builtService
	claims   map[string]string
	res      *result

	entryPoints []string
	plainEP     bool // the entry points include plain-text ones
	tlsEP       bool // the entry points include TLS ones
	middlewares []string
	priority    int
	tlsOptions  string

	// ngx is the translation of the nginx annotations, nil when they are
	// not read; canaries the canary Ingresses by canaryKey.
	ngx             *nginxIngress
	canaries        map[string]*canaryOf
	ngxRouter       []string // middlewares of every router
	ngxPlain        []string // and before them, of the plain routers
	defaultRedirect string   // the default redirect to https
	tlsHosts        hostSet
}

func (b *ingressBuild) problem(format string, args ...any) {
	b.res.problems[b.ref] = append(b.res.problems[b.ref], fmt.Sprintf(format, args...))
}

func (b *ingressBuild) build() {
	if !b.annotations() {
		return
	}
	if b.ngx != nil && (!b.reportNginx() || b.ngx.res.Canary != nil) {
		// Refused, or a canary: its routes are those of its main
		// Ingress.
		return
	}
	tlsHosts := b.tls()
	if b.ngx != nil {
		b.nginxSetup(tlsHosts)
	}
	allTLS := strings.EqualFold(strings.TrimSpace(b.ing.Annotations[AnnotationTLS]), "true")
	if (len(tlsHosts) > 0 || allTLS) && !b.tlsEP {
		b.problem("the Ingress asks for TLS but none of its entry points (%s) serves TLS; its hosts are served over plain HTTP only", strings.Join(b.entryPoints, ", "))
	}
	for i, r := range b.ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		host := strings.ToLower(r.Host)
		if msg := checkHost(host); msg != "" {
			b.problem("spec.rules[%d].host: %s; the rule is not served", i, msg)
			continue
		}
		for j, path := range r.HTTP.Paths {
			at := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			match, prio, ok := pathMatch(path)
			route, routed := b.nginxRoute(i, j)
			if routed && route.Match != "" {
				match = route.Match
			}
			if routed && route.Priority != 0 {
				prio = route.Priority
			}
			ruleText := match
			if host != "" {
				ruleText = "Host(`" + host + "`) && " + match
			}
			if ok {
				if _, err := rule.Parse(ruleText); err != nil {
					ok = false
				}
			}
			if !ok {
				b.problem("%s.path %q: not a path tollgate can match (a path starts with \"/\"; no backquotes, no {name:regexp}); the path is not served", at, path.Path)
				continue
			}
			if !b.claim(host+" "+match, fmt.Sprintf("%s: host %q path %q", at, host, path.Path)) {
				continue
			}
			svc := b.nginxService(at+".backend", path.Backend, b.ing.Name, b.ngx)
			if svc == "" {
				continue
			}
			prio += hostClass(host) * 10000
			name := []string{b.ing.Namespace, b.ing.Name, strconv.Itoa(i), strconv.Itoa(j)}
			b.routes(name, host, path.Path, ruleText, match, prio, svc, nil, route, at)
			acme, covered := tlsHosts.covers(host)
			if !(covered || allTLS) || !b.tlsEP {
				continue
			}
			rt := &config.RouterTLS{Options: b.tlsOptions}
			switch {
			case covered && !acme:
				rt.CertificateProvided = true
			case !b.t.acme || host == "":
			case strings.HasPrefix(host, "*.") && !b.t.acmeWildcards:
				b.problem("%s: the wildcard host %q needs a secret, or [acme.dnsChallenge] for a certificate from ACME; the default certificate is served", at, host)
			default:
				rt.Domains = []config.Domain{{Main: host}}
			}
			b.routes(name, host, path.Path, ruleText, match, prio, svc, rt, route, at)
		}
	}
	if db := b.ing.Spec.DefaultBackend; db != nil && b.claim("default backend", "spec.defaultBackend") {
		if svc := b.nginxService("spec.defaultBackend", *db, b.ing.Name, b.ngx); svc != "" {
			name := []string{b.ing.Namespace, b.ing.Name, "default"}
			b.defaultRouter(name, "", svc, nil)
			if b.tlsEP {
				b.defaultRouter(name, "-tls", svc, &config.RouterTLS{Options: b.tlsOptions})
			}
		}
	}
}

// routes adds the router of one path, plain (tls nil) or TLS; with nginx
// annotations, its middlewares, the routers of its canary and those of
// its twin host (from-to-www-redirect).
func (b *ingressBuild) routes(name []string, host, rawPath, ruleText, match string, prio int, svc string, tls *config.RouterTLS, route nginx.Route, at string) {
	suffix := ""
	if tls != nil {
		suffix = "-tls"
	}
	if b.ngx == nil {
		b.router(name, suffix, ruleText, prio, svc, tls)
		return
	}
	if c := b.canaries[canaryKey(b.ing.Namespace, host, rawPath)]; c != nil {
		c.used = true
		if b.res.canaries == nil {
			b.res.canaries = map[string]string{}
		}
		b.res.canaries["ingress "+c.ing.Namespace+"/"+c.ing.Name] = b.part.Owner
		svc = b.canary(c, name, ruleText, prio, svc, tls, host, route)
	}
	b.routerWith(name, suffix, ruleText, prio, svc, tls, b.nginxMiddlewares(host, tls != nil, route))
	if alias := b.aliasOf(host); alias != "" {
		aliasRule := "Host(`" + alias + "`) && " + match
		if tls != nil || b.claim(alias+" "+match, fmt.Sprintf("%s: host %q (from-to-www-redirect)", at, alias)) {
			var atls *config.RouterTLS
			if tls != nil {
				c := *tls
				if len(c.Domains) > 0 {
					c.Domains = []config.Domain{{Main: alias}}
				}
				atls = &c
			}
			b.routerWith(name, "-www"+suffix, aliasRule, prio, svc, atls, b.nginxMiddlewares(host, tls != nil, route))
		}
	}
}

// defaultRouter adds a router of the default backend; with nginx
// annotations, with their middlewares (any host: no default redirect to
// https, which covers the hosts of spec.tls only).
func (b *ingressBuild) defaultRouter(name []string, suffix, svc string, tls *config.RouterTLS) {
	if b.ngx == nil {
		b.router(name, suffix, "PathPrefix(`/`)", 1, svc, tls)
		return
	}
	b.routerWith(name, suffix, "PathPrefix(`/`)", 1, svc, tls, b.nginxMiddlewares("", tls != nil, nginx.Route{}))
}

// claim records that this Ingress routes key (a host and path, or the
// default backend); false, with a problem, when an older Ingress does.
func (b *ingressBuild) claim(key, what string) bool {
	me := b.ing.Namespace + "/" + b.ing.Name
	if owner, taken := b.claims[key]; taken && owner != me {
		b.problem("%s is routed by the older Ingress %s already; not served here", what, owner)
		return false
	}
	b.claims[key] = me
	return true
}

// annotations reads the tollgate.io annotations; false means they are
// wrong and the Ingress is not served.
func (b *ingressBuild) annotations() bool {
	a := b.ing.Annotations
	ok := true
	b.entryPoints = nginx.SplitList(a[AnnotationEntryPoints])
	if allowed := b.t.settings.EntryPoints; len(allowed) > 0 {
		for _, ep := range b.entryPoints {
			if !slices.Contains(allowed, ep) {
				b.problem("annotation %s: entry point %q is not one of providers.kubernetesIngress.entryPoints (%s); the Ingress is not served", AnnotationEntryPoints, ep, strings.Join(allowed, ", "))
				ok = false
			}
		}
	}
	if len(b.entryPoints) == 0 {
		b.entryPoints = b.t.settings.EntryPoints
	}
	eps := b.entryPoints
	if len(eps) == 0 {
		eps = b.t.entryPoints
	}
	for _, ep := range eps {
		if b.t.tlsEntryPoints[ep] {
			b.tlsEP = true
		} else {
			b.plainEP = true
		}
	}
	b.middlewares = nginx.SplitList(a[AnnotationMiddlewares])
	if s, set := a[AnnotationPriority]; set {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			b.problem("annotation %s: %q is not a priority (an integer, 0 or more); the Ingress is not served", AnnotationPriority, s)
			ok = false
		}
		b.priority = n
	}
	if s, set := a[AnnotationTLS]; set {
		if v := strings.ToLower(strings.TrimSpace(s)); v != "true" && v != "false" {
			b.problem("annotation %s: %q is neither true nor false; the Ingress is not served", AnnotationTLS, s)
			ok = false
		}
	}
	b.tlsOptions = strings.TrimSpace(a[AnnotationTLSOptions])
	return ok
}

// router adds a router named after parts and suffix to the part.
func (b *ingressBuild) router(parts []string, suffix, ruleText string, prio int, service string, tls *config.RouterTLS) {
	r := &config.Router{
		Rule:        ruleText,
		EntryPoints: b.entryPoints,
		Middlewares: b.middlewares,
		Service:     service,
		Priority:    cmp.Or(b.priority, prio),
		TLS:         tls,
	}
	b.part.Routers[objectName(parts, suffix)+"@"+ProviderName] = r
}

// hostSet holds the hosts of spec.tls, true for those whose certificate
// comes from ACME (no secretName); "" stands for every host (an entry
// without hosts).
type hostSet map[string]bool

// covers reports whether host is served over TLS, and whether its
// certificate comes from ACME rather than a secret.
func (s hostSet) covers(host string) (acme, covered bool) {
	for _, h := range []string{host, wildcardOf(host), ""} {
		if byACME, ok := s[h]; ok {
			return byACME, true
		}
	}
	return false, false
}

func wildcardOf(host string) string {
	if _, rest, ok := strings.Cut(host, "."); ok && !strings.HasPrefix(host, "*.") {
		return "*." + rest
	}
	return "\x00" // matches nothing
}

// tls reads spec.tls: the hosts served over TLS. Secrets that load are
// added to the provided certificates.
func (b *ingressBuild) tls() hostSet {
	tlsHosts := hostSet{}
	for i, te := range b.ing.Spec.TLS {
		hosts := te.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		byACME := te.SecretName == ""
		if !byACME {
			// A secret that does not load is reported; its hosts are
			// served over TLS all the same, with the default certificate.
			names := te.Hosts
			if len(names) == 0 {
				names = b.hosts()
			}
			b.secret(fmt.Sprintf("spec.tls[%d]", i), te.SecretName, names)
		}
		if byACME && !b.t.acme {
			b.problem("spec.tls[%d] has no secretName and the configuration has no [acme] to obtain a certificate; the default certificate is served", i)
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			if prev, seen := tlsHosts[h]; !seen || prev {
				tlsHosts[h] = byACME // a secret beats ACME
			}
		}
	}
	return tlsHosts
}

// hosts lists the hosts of the Ingress's rules.
func (b *ingressBuild) hosts() []string {
	var out []string
	for _, r := range b.ing.Spec.Rules {
		if r.Host != "" && !slices.Contains(out, strings.ToLower(r.Host)) {
			out = append(out, strings.ToLower(r.Host))
		}
	}
	return out
}

// secret adds the TLS secret name of the Ingress's namespace to the part's
// certificates, served for names only (those the Ingress claims for it),
// or reports why it cannot.
func (b *ingressBuild) secret(at, name string, names []string) {
	key := b.ing.Namespace + "/" + name
	s := b.o.secrets[key]
	switch {
	case s == nil:
		b.problem("%s: secret %q not found in namespace %s (or not of type kubernetes.io/tls); the default certificate is served for its hosts until it exists", at, name, b.ing.Namespace)
		return
	case len(s.Data[corev1.TLSCertKey]) == 0 || len(s.Data[corev1.TLSPrivateKeyKey]) == 0:
		b.problem("%s: secret %s has no %s and %s; the default certificate is served for its hosts", at, key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
		return
	}
	kp := config.KeyPair{Source: "secret " + key, Cert: s.Data[corev1.TLSCertKey], Key: s.Data[corev1.TLSPrivateKeyKey], Names: names}
	if err := b.t.check(s, kp); err != nil {
		b.problem("%s: %v; the default certificate is served for its hosts", at, err)
		return
	}
	b.part.Certificates = append(b.part.Certificates, kp)
}

// backend returns the name of the service for a backend, adding it to the
// part; "" when the backend cannot be routed at all.
func (b *ingressBuild) backend(at string, be netv1.IngressBackend) string {
	if be.Resource != nil {
		b.problem("%s: resource backends are not supported; use a Service", at)
		return ""
	}
	sb := be.Service
	if sb == nil {
		b.problem("%s: no service", at)
		return ""
	}
	portKey := sb.Port.Name
	if portKey == "" {
		portKey = strconv.Itoa(int(sb.Port.Number))
	}
	name := objectName([]string{b.ing.Namespace, sb.Name, portKey}, "") + "@" + ProviderName
	bs, ok := b.services[name]
	if !ok {
		servers, why := b.servers(sb)
		bs = builtService{svc: &config.Service{LoadBalancer: &config.LoadBalancer{Servers: servers}}, why: why}
		b.services[name] = bs
	}
	if bs.why != "" {
		b.problem("%s: %s; it answers 503", at, bs.why)
	}
	b.part.Services[name] = bs.svc
	return name
}

// builtService is a service made once for every Ingress that uses it,
// with why it has no servers ("" when it has some).
type builtService struct {
	svc *config.Service
	why string
}

// servers lists the ready endpoints of a Service port, or says why there
// are none.
func (b *ingressBuild) servers(sb *netv1.IngressServiceBackend) ([]config.Server, string) {
	ns := b.ing.Namespace
	svc := b.o.services[ns+"/"+sb.Name]
	if svc == nil {
		return nil, fmt.Sprintf("service %q not found in namespace %s", sb.Name, ns)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (sb.Port.Name != "" && p.Name == sb.Port.Name) || (sb.Port.Name == "" && p.Port == sb.Port.Number) {
			sp = p
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if !b.t.settings.AllowExternalNameServices {
			return nil, fmt.Sprintf("service %s/%s is of type ExternalName, which allowExternalNameServices does not allow", ns, sb.Name)
		}
		port := sb.Port.Number
		if sp != nil {
			port = sp.Port
		}
		if port == 0 {
			return nil, fmt.Sprintf("service %s/%s has no port %q", ns, sb.Name, sb.Port.Name)
		}
		scheme := SchemeOf(sp, port)
		return []config.Server{{URL: scheme + "://" + net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))}}, ""
	}
	if sp == nil {
		want := sb.Port.Name
		if want == "" {
			want = strconv.Itoa(int(sb.Port.Number))
		}
		return nil, fmt.Sprintf("service %s/%s has no port %s", ns, sb.Name, want)
	}
	out := ReadyServers(sp, b.o.slices[ns+"/"+sb.Name])
	if len(out) == 0 {
		return nil, fmt.Sprintf("service %s/%s has no ready endpoints", ns, sb.Name)
	}
	return out, ""
}

// ReadyServers lists the servers of Service port sp from its
// EndpointSlices, sorted: the first address of each ready endpoint, at
// the slice's port of the same name, with the port's scheme (see
// SchemeOf). Endpoints that are not ready or are terminating are left
// out, so they are drained.
func ReadyServers(sp *corev1.ServicePort, eps []*discoveryv1.EndpointSlice) []config.Server {
	scheme := SchemeOf(sp, sp.Port)
	seen := map[string]bool{}
	var out []config.Server
	for _, es := range eps {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port int32
		for _, p := range es.Ports {
			if p.Port != nil && ptrOr(p.Name, "") == sp.Name && ptrOr(p.Protocol, corev1.ProtocolTCP) == corev1.ProtocolTCP {
				port = *p.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			if !ptrOr(ep.Conditions.Ready, true) || len(ep.Addresses) == 0 {
				continue
			}
			u := scheme + "://" + net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port)))
			if !seen[u] {
				seen[u] = true
				out = append(out, config.Server{URL: u})
			}
		}
	}
	slices.SortFunc(out, func(a, b config.Server) int { return cmp.Compare(a.URL, b.URL) })
	return out
}

// SchemeOf picks the scheme for a Service port: its appProtocol, else
// https for a port named https or numbered 443.
func SchemeOf(sp *corev1.ServicePort, port int32) string {
	if sp != nil && sp.AppProtocol != nil {
		switch strings.ToLower(*sp.AppProtocol) {
		case "https":
			return "https"
		case "kubernetes.io/h2c", "h2c":
			return "h2c"
		case "http":
			return "http"
		}
	}
	if (sp != nil && strings.HasPrefix(sp.Name, "https")) || port == 443 {
		return "https"
	}
	return "http"
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// pathMatch turns an Ingress path into a rule and a priority: longer
// paths win, and an Exact path beats a Prefix of the same length.
func pathMatch(p netv1.HTTPIngressPath) (match string, prio int, ok bool) {
	path := cmp.Or(p.Path, "/")
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "`\x00") {
		return "", 0, false
	}
	n := min(len(path), 4000)
	typ := netv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		typ = *p.PathType
	}
	switch typ {
	case netv1.PathTypeExact:
		return "Path(`" + path + "`)", 2*n + 1, true
	case netv1.PathTypePrefix:
		// Element-wise: /foo matches /foo, /foo/ and /foo/bar, not /foobar.
		trimmed := strings.TrimRight(path, "/")
		if trimmed == "" {
			return "PathPrefix(`/`)", 2, true
		}
		return "(Path(`" + trimmed + "`) || PathPrefix(`" + trimmed + "/`))", 2 * min(len(trimmed), 4000), true
	default:
		return "PathPrefix(`" + path + "`)", 2 * n, true
	}
}

// hostClass ranks hosts: an exact host beats a wildcard, which beats
// none.
func hostClass(host string) int {
	switch {
	case host == "":
		return 1
	case strings.HasPrefix(host, "*."):
		return 2
	default:
		return 3
	}
}

// checkHost says what is wrong with an Ingress rule's host for tollgate,
// beyond what the API server already checks.
func checkHost(h string) string {
	if h == "" {
		return ""
	}
	if strings.ContainsAny(h, "`\x00 ") || strings.Contains(h, "..") || strings.HasSuffix(h, ".") {
		return fmt.Sprintf("%q is not a host name", h)
	}
	return ""
}

// objectName makes a router or service name (before "@kubernetes") from
// parts, joined by "_", which no Kubernetes name contains, so that two
// objects never get the same name; then suffix. A name longer than 64
// bytes is cut and ends in a 64-bit hash of the whole, then suffix.
func objectName(parts []string, suffix string) string {
	s := strings.Join(parts, "_")
	if len(s)+len(suffix) <= 64 {
		return s + suffix
	}
	sum := sha256.Sum256([]byte(s))
	keep := 64 - len(suffix) - 17
	return strings.TrimRight(s[:keep], "-_.") + "-" + hex.EncodeToString(sum[:8]) + suffix
}
