package gateway

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
)

// ProviderName ends the names of the routers and services this package
// makes.
const ProviderName = "kubernetes-gateway"

// ControllerName is the GatewayClass controllerName tollgate serves unless
// Settings says otherwise.
const ControllerName gatewayv1.GatewayController = config.GatewayController

const labelServiceName = "kubernetes.io/service-name"

// Settings configure a translation.
type Settings struct {
	// ControllerName selects the GatewayClasses served. Empty means
	// ControllerName.
	ControllerName gatewayv1.GatewayController
	// EntryPoints maps a listener port to the entry point that serves it.
	// A listener whose port is missing is not Programmed.
	EntryPoints map[int32]string
	// ACME says the configuration has [acme]: an HTTPS listener with the
	// ACMEOption and a hostname gets its certificate from it.
	ACME bool
	// ACMEWildcards says [acme] can obtain wildcard certificates (it has
	// a DNS challenge), which a listener hostname "*.example.com" needs.
	ACMEWildcards bool
	// CheckPair is the router's check of a certificate. With it, a
	// listener whose certificateRef Secret is malformed (no PEM
	// certificate and matching key) is not resolved (reason
	// InvalidCertificateRef), whether routes attach to it or not; a
	// well-formed one CheckPair refuses (one naming no host, say) leaves
	// the listener resolved, is not served and is reported in
	// GatewayProblems. Nil accepts every Secret of type kubernetes.io/tls.
	CheckPair func(config.KeyPair) error
}

// ACMEOption is the listener tls.options key that asks for a certificate
// from tollgate's [acme] for the listener's hostname, in place of
// certificateRefs. Its value must be "true".
const ACMEOption gatewayv1.AnnotationKey = "tollgate-proxy.io/acme"

// Objects are the API objects a translation reads.
type Objects struct {
	GatewayClasses  []*gatewayv1.GatewayClass
	Gateways        []*gatewayv1.Gateway
	HTTPRoutes      []*gatewayv1.HTTPRoute
	GRPCRoutes      []*gatewayv1.GRPCRoute
	ReferenceGrants []*gatewayv1beta1.ReferenceGrant
	// Namespaces are needed for allowedRoutes selectors only.
	Namespaces     []*corev1.Namespace
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret
}

// Result is one translation: the configuration and the status each served
// object should get (computed, not written; conditions carry no
// LastTransitionTime, which the writer sets).
type Result struct {
	Provided *config.Provided
	// GatewayClasses are the conditions of the served classes, by name.
	GatewayClasses map[string][]metav1.Condition
	// Gateways are the statuses of the served Gateways, by
	// "namespace/name".
	Gateways map[string]*gatewayv1.GatewayStatus
	// HTTPRoutes are the statuses of the HTTPRoutes whose parentRefs name
	// a served Gateway, by "namespace/name": one entry per such parentRef.
	HTTPRoutes map[string]*gatewayv1.HTTPRouteStatus
	// GRPCRoutes are the statuses of the GRPCRoutes, as HTTPRoutes.
	GRPCRoutes map[string]*gatewayv1.GRPCRouteStatus
	// Notes are what a served HTTPRoute asks for that is served only
	// approximately, by "namespace/name", each a sentence for an Event.
	Notes map[string][]string
	// GatewayProblems are problems of served Gateways that their status
	// does not show, by "namespace/name", each a sentence for an Event.
	GatewayProblems map[string][]string
	// GRPCNotes are the notes of the GRPCRoutes, as Notes.
	GRPCNotes map[string][]string
}

// Translate turns objects into configuration and statuses.
func Translate(s Settings, o *Objects) *Result {
	t := newTranslation(s, o)
	t.classes()
	t.gateways()
	t.routes()
	return t.res
}

type translation struct {
	s   Settings
	o   *Objects
	res *Result

	ours     map[string]bool                         // served class names
	services map[string]*corev1.Service              // namespace/name
	slices   map[string][]*discoveryv1.EndpointSlice // namespace/service
	secrets  map[string]*corev1.Secret
	nsLabels map[string]labels.Set
	gws      []*gatewayState
	ranked   []*config.Router // in the order breakTies ranks them
}

func newTranslation(s Settings, o *Objects) *translation {
	if s.ControllerName == "" {
		s.ControllerName = ControllerName
	}
	t := &translation{
		s: s, o: o,
		res: &Result{
			Provided:        &config.Provided{Provider: ProviderName},
			GatewayClasses:  map[string][]metav1.Condition{},
			Gateways:        map[string]*gatewayv1.GatewayStatus{},
			HTTPRoutes:      map[string]*gatewayv1.HTTPRouteStatus{},
			GRPCRoutes:      map[string]*gatewayv1.GRPCRouteStatus{},
			Notes:           map[string][]string{},
			GRPCNotes:       map[string][]string{},
			GatewayProblems: map[string][]string{},
		},
		ours: map[string]bool{}, services: map[string]*corev1.Service{},
		slices: map[string][]*discoveryv1.EndpointSlice{}, secrets: map[string]*corev1.Secret{},
		nsLabels: map[string]labels.Set{},
	}
	for _, v := range o.Services {
		t.services[v.Namespace+"/"+v.Name] = v
	}
	for _, v := range o.EndpointSlices {
		if svc := v.Labels[labelServiceName]; svc != "" {
			t.slices[v.Namespace+"/"+svc] = append(t.slices[v.Namespace+"/"+svc], v)
		}
	}
	for _, v := range o.Secrets {
		t.secrets[v.Namespace+"/"+v.Name] = v
	}
	for _, v := range o.Namespaces {
		t.nsLabels[v.Name] = labels.Set(v.Labels)
	}
	return t
}

func cond(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen}
}

func (t *translation) classes() {
	for _, c := range t.o.GatewayClasses {
		if c.Spec.ControllerName != t.s.ControllerName {
			continue
		}
		t.ours[c.Name] = true
		t.res.GatewayClasses[c.Name] = []metav1.Condition{cond(string(gatewayv1.GatewayClassConditionStatusAccepted), true,
			string(gatewayv1.GatewayClassReasonAccepted), "served by "+string(t.s.ControllerName), c.Generation)}
	}
}

// permitted reports whether a ReferenceGrant in toNS lets objects of kind
// fromKind in fromNS refer to the object toKind/toName (group "" is core).
func (t *translation) permitted(fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	if fromNS == toNS {
		return true
	}
	for _, g := range t.o.ReferenceGrants {
		if g.Namespace != toNS {
			continue
		}
		from := slices.ContainsFunc(g.Spec.From, func(f gatewayv1beta1.ReferenceGrantFrom) bool {
			return string(f.Group) == gatewayv1.GroupName && string(f.Kind) == fromKind && string(f.Namespace) == fromNS
		})
		to := slices.ContainsFunc(g.Spec.To, func(r gatewayv1beta1.ReferenceGrantTo) bool {
			return string(r.Group) == toGroup && string(r.Kind) == toKind && (r.Name == nil || *r.Name == "" || string(*r.Name) == toName)
		})
		if from && to {
			return true
		}
	}
	return false
}

// objectName makes a router or service name (before "@") from parts
// joined by "_"; a name longer than 64 bytes is cut and ends in a hash.
func objectName(parts ...string) string {
	s := strings.Join(parts, "_")
	if len(s) > 64 {
		sum := sha256.Sum256([]byte(s))
		s = strings.TrimRight(s[:64-17], "-_.") + "-" + hex.EncodeToString(sum[:8])
	}
	return s + "@" + ProviderName
}

// ---- Gateways and listeners ----

type gatewayState struct {
	gw        *gatewayv1.Gateway
	status    *gatewayv1.GatewayStatus
	listeners []*listenerState
}

type listenerState struct {
	l          gatewayv1.Listener
	entryPoint string
	ok         bool // Accepted, ResolvedRefs, Programmed and not Conflicted
	kinds      []gatewayv1.Kind
	certs      []config.KeyPair
	acme       string // the name ordered from ACME for the listener, if any
	status     *gatewayv1.ListenerStatus
}

func (t *translation) gateways() {
	gws := slices.Clone(t.o.Gateways)
	slices.SortFunc(gws, func(a, b *gatewayv1.Gateway) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, gw := range gws {
		if !t.ours[string(gw.Spec.GatewayClassName)] {
			continue
		}
		gs := &gatewayState{gw: gw, status: &gatewayv1.GatewayStatus{}}
		t.gws = append(t.gws, gs)
		t.res.Gateways[gw.Namespace+"/"+gw.Name] = gs.status
		conflicts := listenerConflicts(gw.Spec.Listeners)
		programmed := 0
		for _, l := range gw.Spec.Listeners {
			ls := t.listener(gw, l, conflicts[string(l.Name)])
			gs.listeners = append(gs.listeners, ls)
			gs.status.Listeners = append(gs.status.Listeners, *ls.status)
			if ls.ok {
				programmed++
			}
		}
		gen := gw.Generation
		gs.status.Conditions = []metav1.Condition{
			cond(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted), "", gen),
		}
		if programmed > 0 {
			gs.status.Conditions = append(gs.status.Conditions, cond(string(gatewayv1.GatewayConditionProgrammed), true, string(gatewayv1.GatewayReasonProgrammed), "", gen))
		} else {
			gs.status.Conditions = append(gs.status.Conditions, cond(string(gatewayv1.GatewayConditionProgrammed), false, string(gatewayv1.GatewayReasonInvalid), "no listener is programmed", gen))
		}
	}
}

// listenerConflicts finds listeners sharing a port: with another protocol
// (ProtocolConflict) or the same hostname (HostnameConflict).
func listenerConflicts(ls []gatewayv1.Listener) map[string]gatewayv1.ListenerConditionReason {
	out := map[string]gatewayv1.ListenerConditionReason{}
	for i, a := range ls {
		for j, b := range ls {
			if i == j || a.Port != b.Port {
				continue
			}
			if a.Protocol != b.Protocol {
				out[string(a.Name)] = gatewayv1.ListenerReasonProtocolConflict
			} else if ptrOr(a.Hostname, "") == ptrOr(b.Hostname, "") && out[string(a.Name)] == "" {
				out[string(a.Name)] = gatewayv1.ListenerReasonHostnameConflict
			}
		}
	}
	return out
}

func (t *translation) listener(gw *gatewayv1.Gateway, l gatewayv1.Listener, conflict gatewayv1.ListenerConditionReason) *listenerState {
	gen := gw.Generation
	// supportedKinds is required, even empty.
	ls := &listenerState{l: l, status: &gatewayv1.ListenerStatus{Name: l.Name, SupportedKinds: []gatewayv1.RouteGroupKind{}}}
	accepted, acceptedReason, acceptedMsg := true, string(gatewayv1.ListenerReasonAccepted), ""
	resolved, resolvedReason, resolvedMsg := true, string(gatewayv1.ListenerReasonResolvedRefs), ""
	switch l.Protocol {
	case gatewayv1.HTTPProtocolType, gatewayv1.HTTPSProtocolType:
	default:
		accepted, acceptedReason, acceptedMsg = false, string(gatewayv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %s is not supported; use HTTP or HTTPS", l.Protocol)
	}
	ep, hasEP := t.s.EntryPoints[int32(l.Port)]
	if accepted && !hasEP {
		accepted, acceptedReason, acceptedMsg = false, string(gatewayv1.ListenerReasonPortUnavailable), fmt.Sprintf("no entry point serves port %d", l.Port)
	}
	ls.entryPoint = ep
	if accepted && l.Protocol == gatewayv1.HTTPSProtocolType {
		if msg := t.listenerOptions(l); msg != "" {
			accepted, acceptedReason, acceptedMsg = false, "UnsupportedValue", msg
		}
	}
	// Route kinds. GRPCRoutes need HTTP/2 without an upgrade, which the
	// entry points serve over TLS (ALPN) only, not in clear text (h2c):
	// HTTPS listeners take them, HTTP ones do not.
	supported := []gatewayv1.Kind{kindHTTPRoute}
	if l.Protocol == gatewayv1.HTTPSProtocolType {
		supported = append(supported, kindGRPCRoute)
	}
	kinds := supported
	if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
		kinds = nil
		var bad []string
		for _, k := range l.AllowedRoutes.Kinds {
			if ptrOr(k.Group, gatewayv1.GroupName) == gatewayv1.GroupName && slices.Contains(supported, k.Kind) {
				if !slices.Contains(kinds, k.Kind) {
					kinds = append(kinds, k.Kind)
				}
			} else {
				bad = append(bad, string(k.Kind))
			}
		}
		if len(bad) > 0 {
			msg := "route kinds not supported: " + strings.Join(bad, ", ")
			if l.Protocol == gatewayv1.HTTPProtocolType && slices.Contains(bad, string(kindGRPCRoute)) {
				msg += " (GRPCRoute needs an HTTPS listener: the entry points serve HTTP/2 over TLS only, not h2c)"
			}
			resolved, resolvedReason, resolvedMsg = false, string(gatewayv1.ListenerReasonInvalidRouteKinds), msg
		}
	}
	ls.kinds = kinds
	for _, k := range kinds {
		ls.status.SupportedKinds = append(ls.status.SupportedKinds, gatewayv1.RouteGroupKind{Group: new(gatewayv1.Group(gatewayv1.GroupName)), Kind: k})
	}
	if l.Protocol == gatewayv1.HTTPSProtocolType && accepted {
		if ok, reason, msg := t.listenerTLS(gw, l, ls); !ok {
			resolved, resolvedReason, resolvedMsg = false, reason, msg
		}
	}
	ls.status.Conditions = []metav1.Condition{
		cond(string(gatewayv1.ListenerConditionAccepted), accepted, acceptedReason, acceptedMsg, gen),
		cond(string(gatewayv1.ListenerConditionResolvedRefs), resolved, resolvedReason, resolvedMsg, gen),
	}
	if conflict != "" {
		ls.status.Conditions = append(ls.status.Conditions, cond(string(gatewayv1.ListenerConditionConflicted), true, string(conflict), "another listener on the same port conflicts with this one", gen))
	} else {
		ls.status.Conditions = append(ls.status.Conditions, cond(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), "", gen))
	}
	ls.ok = accepted && resolved && conflict == ""
	msg := cmp.Or(acceptedMsg, resolvedMsg)
	if msg == "" && conflict != "" {
		msg = "another listener on the same port conflicts with this one"
	}
	if ls.ok {
		ls.status.Conditions = append(ls.status.Conditions, cond(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), "", gen))
	} else {
		ls.status.Conditions = append(ls.status.Conditions, cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), msg, gen))
	}
	return ls
}

// listenerTLS resolves an HTTPS listener's certificates.
func (t *translation) listenerTLS(gw *gatewayv1.Gateway, l gatewayv1.Listener, ls *listenerState) (bool, string, string) {
	invalid := string(gatewayv1.ListenerReasonInvalidCertificateRef)
	if l.TLS != nil && l.TLS.Options[ACMEOption] != "" {
		ls.acme = string(*l.Hostname) // listenerOptions checked it
		return true, "", ""
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return false, invalid, "an HTTPS listener needs tls.certificateRefs, or the option " + string(ACMEOption) + ": \"true\" and a hostname for a certificate from ACME"
	}
	if ptrOr(l.TLS.Mode, gatewayv1.TLSModeTerminate) != gatewayv1.TLSModeTerminate {
		return false, invalid, "tls.mode Passthrough is not supported on an HTTPS listener"
	}
	for _, ref := range l.TLS.CertificateRefs {
		ns := string(ptrOr(ref.Namespace, gatewayv1.Namespace(gw.Namespace)))
		if ptrOr(ref.Group, "") != "" || ptrOr(ref.Kind, "Secret") != "Secret" {
			return false, invalid, fmt.Sprintf("certificateRef %s: only core Secrets are supported", ref.Name)
		}
		if !t.permitted("Gateway", gw.Namespace, "", "Secret", ns, string(ref.Name)) {
			return false, string(gatewayv1.ListenerReasonRefNotPermitted), fmt.Sprintf("certificateRef %s/%s: no ReferenceGrant in namespace %s allows it", ns, ref.Name, ns)
		}
		sec := t.secrets[ns+"/"+string(ref.Name)]
		if sec == nil {
			return false, invalid, fmt.Sprintf("certificateRef %s/%s: secret not found", ns, ref.Name)
		}
		if sec.Type != corev1.SecretTypeTLS || len(sec.Data[corev1.TLSCertKey]) == 0 || len(sec.Data[corev1.TLSPrivateKeyKey]) == 0 {
			return false, invalid, fmt.Sprintf("certificateRef %s/%s: not a TLS secret with tls.crt and tls.key", ns, ref.Name)
		}
		kp := config.KeyPair{Source: "secret " + ns + "/" + string(ref.Name), Cert: sec.Data[corev1.TLSCertKey], Key: sec.Data[corev1.TLSPrivateKeyKey]}
		if t.s.CheckPair != nil {
			if _, err := tls.X509KeyPair(kp.Cert, kp.Key); err != nil {
				return false, invalid, fmt.Sprintf("certificateRef %s/%s: malformed: %v", ns, ref.Name, err)
			}
			if err := t.s.CheckPair(kp); err != nil {
				key := gw.Namespace + "/" + gw.Name
				t.res.GatewayProblems[key] = append(t.res.GatewayProblems[key], fmt.Sprintf("listener %s: certificateRef %s/%s is not served: %v", l.Name, ns, ref.Name, err))
				continue
			}
		}
		ls.certs = append(ls.certs, kp)
	}
	return true, "", ""
}

// listenerOptions checks an HTTPS listener's tls.options: the ACMEOption
// is the only one known. It returns what is wrong, or "".
func (t *translation) listenerOptions(l gatewayv1.Listener) string {
	if l.TLS == nil || len(l.TLS.Options) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(l.TLS.Options))
	for _, k := range keys {
		if k != ACMEOption {
			return fmt.Sprintf("tls.options %.100q is not supported; the only option is %s", string(k), ACMEOption)
		}
	}
	v := l.TLS.Options[ACMEOption]
	host := string(ptrOr(l.Hostname, ""))
	switch {
	case v != "true":
		return fmt.Sprintf("tls.options %s must be \"true\", not %.100q", ACMEOption, string(v))
	case len(l.TLS.CertificateRefs) > 0:
		return fmt.Sprintf("set tls.certificateRefs or the option %s, not both", ACMEOption)
	case !t.s.ACME:
		return fmt.Sprintf("the option %s needs an [acme] section in tollgate's configuration", ACMEOption)
	case host == "":
		return fmt.Sprintf("the option %s needs the listener's hostname: the name of the certificate to order", ACMEOption)
	case strings.HasPrefix(host, "*.") && !t.s.ACMEWildcards:
		return fmt.Sprintf("the wildcard hostname %s needs [acme.dnsChallenge] for a certificate from ACME", host)
	}
	return ""
}

// allows reports whether listener ls admits a route of kind in namespace
// ns.
func (t *translation) allows(gw *gatewayv1.Gateway, ls *listenerState, kind gatewayv1.Kind, ns string) bool {
	if p := ls.l.Protocol; p != gatewayv1.HTTPProtocolType && p != gatewayv1.HTTPSProtocolType || !slices.Contains(ls.kinds, kind) {
		return false
	}
	from := gatewayv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if a := ls.l.AllowedRoutes; a != nil && a.Namespaces != nil {
		from = ptrOr(a.Namespaces.From, gatewayv1.NamespacesFromSame)
		sel = a.Namespaces.Selector
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(t.nsLabels[ns])
	default:
		return ns == gw.Namespace
	}
}

// intersect returns the hostnames a route serves on a listener: nil with
// ok when any host matches, else the hosts; !ok when none intersect.
func intersect(listener *gatewayv1.Hostname, route []gatewayv1.Hostname) (hosts []string, ok bool) {
	l := string(ptrOr(listener, ""))
	if len(route) == 0 {
		if l == "" {
			return nil, true
		}
		return []string{l}, true
	}
	if l == "" {
		for _, h := range route {
			hosts = append(hosts, string(h))
		}
		return hosts, true
	}
	for _, rh := range route {
		h := string(rh)
		switch {
		case h == l:
			hosts = append(hosts, h)
		case covers(l, h):
			hosts = append(hosts, h)
		case covers(h, l):
			hosts = append(hosts, l)
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	return hosts, len(hosts) > 0
}

// covers reports whether wildcard pattern w ("*.example.com") matches host
// h, itself possibly a narrower wildcard: one or more labels stand for "*".
func covers(w, h string) bool {
	suffix, ok := strings.CutPrefix(w, "*")
	if !ok {
		return false
	}
	h = strings.TrimPrefix(h, "*")
	return strings.HasSuffix(h, suffix) && len(h) > len(suffix) && h != suffix
}

// ---- routes ----

func (t *translation) routes() {
	routes := slices.Clone(t.o.HTTPRoutes)
	slices.SortFunc(routes, func(a, b *gatewayv1.HTTPRoute) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	built := map[string]builtService{}
	for _, r := range routes {
		b := &routeBuild{t: t, r: r, kind: kindHTTPRoute, services: built, notes: t.res.Notes,
			part: &config.Part{Owner: "httproute " + r.Namespace + "/" + r.Name, Routers: map[string]*config.Router{}, Services: map[string]*config.Service{}, Middlewares: map[string]*config.Middleware{}}}
		if st := b.build(); st != nil {
			t.res.HTTPRoutes[r.Namespace+"/"+r.Name] = &gatewayv1.HTTPRouteStatus{RouteStatus: *st}
		}
	}
	grpcRoutes := slices.Clone(t.o.GRPCRoutes)
	slices.SortFunc(grpcRoutes, func(a, b *gatewayv1.GRPCRoute) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, g := range grpcRoutes {
		r, matches := fromGRPC(g)
		b := &routeBuild{t: t, r: r, kind: kindGRPCRoute, grpc: matches, services: built, notes: t.res.GRPCNotes,
			part: &config.Part{Owner: "grpcroute " + r.Namespace + "/" + r.Name, Routers: map[string]*config.Router{}, Services: map[string]*config.Service{}, Middlewares: map[string]*config.Middleware{}}}
		if st := b.build(); st != nil {
			t.res.GRPCRoutes[r.Namespace+"/"+r.Name] = &gatewayv1.GRPCRouteStatus{RouteStatus: *st}
		}
	}
	t.breakTies()
}

const (
	kindHTTPRoute gatewayv1.Kind = "HTTPRoute"
	kindGRPCRoute gatewayv1.Kind = "GRPCRoute"
)

type routeBuild struct {
	t *translation
	// r is the route; a GRPCRoute is built as the HTTPRoute fromGRPC
	// makes of it, with kind GRPCRoute and the matches of its rules in
	// grpc.
	r        *gatewayv1.HTTPRoute
	kind     gatewayv1.Kind
	grpc     [][]grpcMatch
	part     *config.Part
	services map[string]builtService
	notes    map[string][]string
	// rule is the rule being built, and mirrors its RequestMirror
	// filters.
	rule    gatewayv1.HTTPRouteRule
	mirrors []*gatewayv1.HTTPRequestMirrorFilter
	// transport is the serversTransport of the rule's timeouts, "" for
	// none.
	transport string
}

// builtService is a backend service made once for every route using it,
// with why it has no servers ("" when it has some).
type builtService struct {
	svc *config.Service
	why string
}

// attachment is a listener a parentRef attached the route to, with the
// hosts it serves there.
type attachment struct {
	gw    *gatewayState
	ls    *listenerState
	index int
	hosts []string
}

// name makes the name of one of the route's routers, services or
// middlewares: a GRPCRoute's have "grpc" after the route's name, so they
// never meet an HTTPRoute's (whose parts there are numbers, or words
// other than "grpc").
func (b *routeBuild) name(parts ...string) string {
	head := []string{b.r.Namespace, b.r.Name}
	if b.kind == kindGRPCRoute {
		head = append(head, "grpc")
	}
	return objectName(append(head, parts...)...)
}

// build adds the route's part and returns its status, nil when no
// parentRef names a served Gateway.
func (b *routeBuild) build() *gatewayv1.RouteStatus {
	r := b.r
	gen := r.Generation
	status := &gatewayv1.RouteStatus{}
	var atts []attachment
	for _, pr := range r.Spec.ParentRefs {
		if ptrOr(pr.Group, gatewayv1.GroupName) != gatewayv1.GroupName || ptrOr(pr.Kind, "Gateway") != "Gateway" {
			continue
		}
		ns := string(ptrOr(pr.Namespace, gatewayv1.Namespace(r.Namespace)))
		var gs *gatewayState
		for _, g := range b.t.gws {
			if g.gw.Namespace == ns && g.gw.Name == string(pr.Name) {
				gs = g
			}
		}
		if gs == nil {
			continue // not a Gateway of ours: its controller reports
		}
		a, reason, msg := b.attach(gs, pr)
		ps := gatewayv1.RouteParentStatus{ParentRef: pr, ControllerName: b.t.s.ControllerName}
		ps.Conditions = []metav1.Condition{cond(string(gatewayv1.RouteConditionAccepted), reason == "", cmp.Or(reason, string(gatewayv1.RouteReasonAccepted)), msg, gen)}
		atts = append(atts, a...)
		status.Parents = append(status.Parents, ps)
	}
	if len(status.Parents) == 0 {
		return nil
	}
	// Rules: the same for every parent.
	resolved, resolvedReason, resolvedMsg := true, string(gatewayv1.RouteReasonResolvedRefs), ""
	var unsupported []string
	for ri, rule := range r.Spec.Rules {
		transport, note, bad := b.timeouts(rule.Timeouts)
		if bad != "" {
			unsupported = append(unsupported, fmt.Sprintf("rule %d: %s; the rule is not served", ri, bad))
			continue
		}
		if note != "" {
			b.note("rule %d: %s", ri, note)
		}
		b.transport = transport
		service, why, reason := b.backends(ri, rule)
		if why != "" && resolved {
			resolved, resolvedReason, resolvedMsg = false, reason, why
		}
		b.rule = rule
		mws, bad, notes := b.filters(ri, rule.Filters)
		for _, n := range notes {
			b.note("rule %d: %s", ri, n)
		}
		if bad != "" {
			unsupported = append(unsupported, fmt.Sprintf("rule %d: %s; the rule is not served", ri, bad))
			continue
		}
		if bad := badBackendFilters(rule); bad != "" {
			unsupported = append(unsupported, fmt.Sprintf("rule %d: %s; the rule is not served", ri, bad))
			continue
		}
		service, why, reason = b.mirror(ri, service)
		if why != "" && resolved {
			resolved, resolvedReason, resolvedMsg = false, reason, why
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			match, prio, err := matchRule(m)
			if b.grpc != nil {
				prio, err = b.grpcMatch(ri, mi, err)
			}
			if err != "" {
				unsupported = append(unsupported, fmt.Sprintf("rule %d match %d: %s; the match is not served", ri, mi, err))
				continue
			}
			for _, a := range atts {
				b.routers(a, ri, mi, match, prio, service, mws)
			}
		}
	}
	for i := range status.Parents {
		ps := &status.Parents[i]
		ps.Conditions = append(ps.Conditions, cond(string(gatewayv1.RouteConditionResolvedRefs), resolved, resolvedReason, resolvedMsg, gen))
		if len(unsupported) > 0 && ps.Conditions[0].Status == metav1.ConditionTrue {
			ps.Conditions[0] = cond(string(gatewayv1.RouteConditionAccepted), false, string(gatewayv1.RouteReasonUnsupportedValue), strings.Join(unsupported, "; "), gen)
		}
	}
	if len(b.part.Routers) > 0 {
		b.t.res.Provided.Parts = append(b.t.res.Provided.Parts, b.part)
	}
	return status
}

// attach finds the listeners of gs that parentRef pr selects and admit
// the route; a reason says why none does. The route counts in the
// attachedRoutes of every such listener, as the Gateway API asks, but is
// served only on those that are programmed.
func (b *routeBuild) attach(gs *gatewayState, pr gatewayv1.ParentReference) ([]attachment, string, string) {
	var out []attachment
	selected, allowed, attached := 0, 0, 0
	for i, ls := range gs.listeners {
		if pr.SectionName != nil && *pr.SectionName != ls.l.Name {
			continue
		}
		if pr.Port != nil && *pr.Port != ls.l.Port {
			continue
		}
		selected++
		if !b.t.allows(gs.gw, ls, b.kind, b.r.Namespace) {
			continue
		}
		allowed++
		hosts, ok := intersect(ls.l.Hostname, b.r.Spec.Hostnames)
		if !ok {
			continue
		}
		attached++
		gs.status.Listeners[i].AttachedRoutes++
		if ls.ok {
			out = append(out, attachment{gw: gs, ls: ls, index: i, hosts: hosts})
		}
	}
	switch {
	case selected == 0:
		return nil, string(gatewayv1.RouteReasonNoMatchingParent), "no listener of the gateway matches sectionName and port"
	case allowed == 0:
		return nil, string(gatewayv1.RouteReasonNotAllowedByListeners), "no listener admits routes of this kind from this namespace"
	case attached == 0:
		return nil, string(gatewayv1.RouteReasonNoMatchingListenerHostname), "no listener hostname intersects the route's hostnames"
	}
	return out, "", ""
}

// routers adds one router per host of attachment a.
func (b *routeBuild) routers(a attachment, ri, mi int, match string, prio int, service string, mws []string) {
	hosts := a.hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for hi, h := range hosts {
		ruleText := match
		if h != "" {
			ruleText = hostRule(h) + " && " + match
		}
		r := &config.Router{
			Rule:        ruleText,
			EntryPoints: []string{a.ls.entryPoint},
			Service:     service,
			Middlewares: mws,
			Priority:    hostRank(h)<<hostShift | prio,
		}
		if a.ls.l.Protocol == gatewayv1.HTTPSProtocolType {
			r.TLS = &config.RouterTLS{CertificateProvided: true}
			if a.ls.acme != "" {
				r.TLS = &config.RouterTLS{Domains: []config.Domain{{Main: a.ls.acme}}}
			}
		}
		name := b.name(a.gw.gw.Namespace, a.gw.gw.Name, string(a.ls.l.Name), strconv.Itoa(ri), strconv.Itoa(mi), strconv.Itoa(hi))
		b.part.Routers[name] = r
		b.t.ranked = append(b.t.ranked, r)
	}
	for _, kp := range a.ls.certs {
		if !slices.ContainsFunc(b.part.Certificates, func(c config.KeyPair) bool { return c.Source == kp.Source }) {
			b.part.Certificates = append(b.part.Certificates, kp)
		}
	}
}

// hostRule matches host h; a wildcard stands for one or more labels, as
// the Gateway API says.
func hostRule(h string) string {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return matcher("Host", "**."+rest)
	}
	return matcher("Host", h)
}

// Priority layout, most significant first: host rank (10 bits), path
// class and length (2 + 11 bits), method (1), header count (5), query
// count (5); then, below all of them, tieBits that order equal priorities
// (see breakTies).
const (
	hostShift   = 24
	pathShift   = 11
	methodShift = 10
	headerShift = 5
	tieBits     = 20
)

// breakTies orders the routers of equal priority on one entry point as
// the Gateway API asks: the oldest route first, then by namespace and
// name, then the route's rules (and matches, and hostnames) in list
// order. routes() makes the routers in exactly that order, so the n-th
// router of a priority gets the n-th highest tie rank. A router tied with
// none keeps its place; a route added or removed changes only the
// priorities of the routers tied with its own.
func (t *translation) breakTies() {
	seen := map[string]int{} // entry point and priority: routers ranked
	for _, r := range t.ranked {
		key := r.EntryPoints[0] + " " + strconv.Itoa(r.Priority)
		n := seen[key]
		seen[key] = n + 1
		r.Priority = r.Priority<<tieBits | (1<<tieBits - 1 - min(n, 1<<tieBits-1))
	}
}

// hostRank: an exact host beats a wildcard, a longer one a shorter one;
// no host ranks lowest.
func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*"):
		return 1 + min(len(h), 511)
	default:
		return 512 + min(len(h), 511)
	}
}

// matchRule turns a match into a rule and its priority below the host
// rank, or says why it cannot.
func matchRule(m gatewayv1.HTTPRouteMatch) (string, int, string) {
	var parts []string
	pathClass, pathLen := 2, 1 // PathPrefix / by default
	path := "PathPrefix(`/`)"
	if p := m.Path; p != nil {
		v := ptrOr(p.Value, "/")
		if strings.ContainsRune(v, 0) {
			return "", 0, fmt.Sprintf("path %.100q contains NUL", v)
		}
		switch ptrOr(p.Type, gatewayv1.PathMatchPathPrefix) {
		case gatewayv1.PathMatchExact:
			path, pathClass, pathLen = matcher("Path", v), 3, len(v)
		case gatewayv1.PathMatchPathPrefix:
			trimmed := strings.TrimRight(v, "/")
			if trimmed == "" {
				path, pathLen = "PathPrefix(`/`)", 1
			} else {
				// Element-wise: /foo matches /foo and /foo/bar, not /foobar.
				path, pathLen = "("+matcher("Path", trimmed)+" || "+matcher("PathPrefix", trimmed+"/")+")", len(trimmed)
			}
		case gatewayv1.PathMatchRegularExpression:
			if _, err := regexp.Compile(v); err != nil {
				return "", 0, fmt.Sprintf("path regular expression %q: %v", v, err)
			}
			path, pathClass, pathLen = matcher("PathRegexp", anchor(v)), 1, len(v)
		default:
			return "", 0, fmt.Sprintf("path match type %s is not supported", *p.Type)
		}
	}
	parts = append(parts, path)
	prio := (pathClass<<11 | min(pathLen, 2047)) << pathShift
	if m.Method != nil {
		parts = append(parts, matcher("Method", string(*m.Method)))
		prio |= 1 << methodShift
	}
	for _, h := range m.Headers {
		if strings.ContainsAny(h.Value, "\r\n\x00") {
			return "", 0, fmt.Sprintf("header %.100q: the value contains a line break or NUL, which no request header has", string(h.Name))
		}
		switch ptrOr(h.Type, gatewayv1.HeaderMatchExact) {
		case gatewayv1.HeaderMatchExact:
			parts = append(parts, matcher("Header", string(h.Name), h.Value))
		case gatewayv1.HeaderMatchRegularExpression:
			if _, err := regexp.Compile(h.Value); err != nil {
				return "", 0, fmt.Sprintf("header %s regular expression: %v", h.Name, err)
			}
			parts = append(parts, matcher("HeaderRegexp", string(h.Name), anchor(h.Value)))
		default:
			return "", 0, fmt.Sprintf("header match type %s is not supported", *h.Type)
		}
	}
	prio |= min(len(m.Headers), 31) << headerShift
	for _, q := range m.QueryParams {
		if strings.ContainsRune(q.Value, 0) || strings.ContainsRune(string(q.Name), 0) {
			return "", 0, fmt.Sprintf("query parameter %.100q contains NUL", string(q.Name))
		}
		switch ptrOr(q.Type, gatewayv1.QueryParamMatchExact) {
		case gatewayv1.QueryParamMatchExact:
			parts = append(parts, matcher("Query", string(q.Name), q.Value))
		case gatewayv1.QueryParamMatchRegularExpression:
			if _, err := regexp.Compile(q.Value); err != nil {
				return "", 0, fmt.Sprintf("query parameter %s regular expression: %v", q.Name, err)
			}
			parts = append(parts, matcher("QueryRegexp", string(q.Name), anchor(q.Value)))
		default:
			return "", 0, fmt.Sprintf("query parameter match type %s is not supported", *q.Type)
		}
	}
	prio |= min(len(m.QueryParams), 31)
	text := strings.Join(parts, " && ")
	// What the router's rule parser refuses is refused here, with its
	// reason, rather than the whole route by the router.
	if _, err := rule.Parse(text); err != nil {
		return "", 0, fmt.Sprintf("the router cannot match this: %v", err)
	}
	return text, prio, ""
}

// matcher writes one matcher of a rule, each argument quoted so that the
// rule parser reads back exactly the value given (in backquotes, or as a
// double-quoted string with escapes when the value has a backquote or an
// unprintable character).
func matcher(name string, args ...string) string {
	return (&rule.Matcher{Name: name, Args: args}).String()
}

// anchor makes a regular expression match the whole value, as the
// Gateway API's RegularExpression matches do.
func anchor(re string) string {
	return "^(?:" + re + ")$"
}

// badBackendFilters says why a rule's backendRef filters cannot be served.
func badBackendFilters(rule gatewayv1.HTTPRouteRule) string {
	for _, be := range rule.BackendRefs {
		if len(be.Filters) > 0 {
			return "backendRef filters are not supported yet"
		}
	}
	return ""
}

// backends builds the service of a rule: one backend's loadBalancer, or a
// weighted service over several. why and reason say what could not be
// resolved (its share answers 503).
func (b *routeBuild) backends(ri int, rule gatewayv1.HTTPRouteRule) (service, why, reason string) {
	type child struct {
		name   string
		weight int
	}
	var children []child
	for _, be := range rule.BackendRefs {
		name, w, r := b.backend(be)
		if w != "" && why == "" {
			why, reason = w, r
		}
		children = append(children, child{name, int(ptrOr(be.Weight, 1))})
	}
	if len(children) == 1 && children[0].weight > 0 {
		return children[0].name, why, reason
	}
	ws := &config.Weighted{}
	for _, c := range children {
		ws.Services = append(ws.Services, config.WeightedService{Name: c.name, Weight: new(c.weight)})
	}
	if len(children) == 0 || !slices.ContainsFunc(children, func(c child) bool { return c.weight > 0 }) {
		// No backend, or all weighted 0: every request fails.
		empty := b.name(strconv.Itoa(ri), "none")
		b.part.Services[empty] = &config.Service{LoadBalancer: &config.LoadBalancer{}}
		return empty, why, reason
	}
	name := b.name(strconv.Itoa(ri), "weighted")
	b.part.Services[name] = &config.Service{Weighted: ws}
	return name, why, reason
}

// backend builds the loadBalancer of one backendRef.
func (b *routeBuild) backend(be gatewayv1.HTTPBackendRef) (name, why, reason string) {
	ref := be.BackendObjectReference
	ns := string(ptrOr(ref.Namespace, gatewayv1.Namespace(b.r.Namespace)))
	port := int32(ptrOr(ref.Port, 0))
	name = objectName(ns, string(ref.Name), strconv.Itoa(int(port)))
	if b.transport != "" {
		name = objectName(ns, string(ref.Name), strconv.Itoa(int(port)), strings.TrimSuffix(b.transport, "@"+ProviderName))
	}
	if b.kind == kindGRPCRoute {
		name = objectName(ns, string(ref.Name), strconv.Itoa(int(port)), "grpc")
	}
	bs, ok := b.services[name]
	switch {
	case ptrOr(ref.Group, "") != "" || ptrOr(ref.Kind, "Service") != "Service":
		bs = builtService{why: fmt.Sprintf("backendRef %s: kind %s/%s is not supported; use a Service", ref.Name, ptrOr(ref.Group, ""), ptrOr(ref.Kind, "Service"))}
		reason = string(gatewayv1.RouteReasonInvalidKind)
		name = b.name("invalid", string(ref.Name))
	case !b.t.permitted(string(b.kind), b.r.Namespace, "", "Service", ns, string(ref.Name)):
		bs = builtService{why: fmt.Sprintf("backendRef %s/%s: no ReferenceGrant in namespace %s allows it", ns, ref.Name, ns)}
		reason = string(gatewayv1.RouteReasonRefNotPermitted)
		name = b.name("refused", ns, string(ref.Name))
	case !ok:
		servers, w := b.t.servers(ns, string(ref.Name), port)
		if b.kind == kindGRPCRoute {
			servers = grpcServers(servers)
		}
		lb := &config.LoadBalancer{Servers: servers, ServersTransport: b.transport}
		if w != "" {
			lb.UnavailableStatus = http.StatusInternalServerError
		}
		bs = builtService{svc: &config.Service{LoadBalancer: lb}, why: w}
		b.services[name] = bs
		reason = string(gatewayv1.RouteReasonBackendNotFound)
	default:
		reason = string(gatewayv1.RouteReasonBackendNotFound)
	}
	if bs.svc == nil {
		// The Gateway API answers 500 for a backend that cannot be
		// resolved.
		bs.svc = &config.Service{LoadBalancer: &config.LoadBalancer{UnavailableStatus: http.StatusInternalServerError}}
	}
	b.part.Services[name] = bs.svc
	return name, bs.why, reason
}

// servers lists the ready endpoints of a Service port, or says why the
// backend is not found. A Service without ready endpoints is found: it
// answers 503 without a problem.
func (t *translation) servers(ns, name string, port int32) ([]config.Server, string) {
	svc := t.services[ns+"/"+name]
	if svc == nil {
		return nil, fmt.Sprintf("backendRef %s/%s: service not found", ns, name)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Sprintf("backendRef %s/%s: the service has no port %d", ns, name, port)
	}
	return kubernetes.ReadyServers(sp, t.slices[ns+"/"+name]), ""
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
