package gateway

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// Fixtures.

func class(name string, controller gatewayv1.GatewayController) *gatewayv1.GatewayClass {
	return &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: gatewayv1.GatewayClassSpec{ControllerName: controller}}
}

func gateway(ns, name string, listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 2},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "tollgate", Listeners: listeners}}
}

func listener(name string, port int32, host string) gatewayv1.Listener {
	l := gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType}
	if host != "" {
		l.Hostname = new(gatewayv1.Hostname(host))
	}
	return l
}

func route(ns, name string, hosts []string, parents []gatewayv1.ParentReference, rules ...gatewayv1.HTTPRouteRule) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 3},
		Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents}, Rules: rules}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return r
}

func parent(name string) gatewayv1.ParentReference {
	return gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)}
}

func backendRef(ns, name string, port int32, weight *int32) gatewayv1.HTTPBackendRef {
	ref := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{Weight: weight,
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(gatewayv1.PortNumber(port))}}}
	if ns != "" {
		ref.Namespace = new(gatewayv1.Namespace(ns))
	}
	return ref
}

func prefix(p string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new(p)}}
}

func service(ns, name string, port int32, addrs ...string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: port}}}}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{labelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}}}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return svc, es
}

func tlsSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
}

func base() *Objects {
	svc, es := service("shop", "app", 80, "10.0.0.2", "10.0.0.1")
	return &Objects{
		GatewayClasses: []*gatewayv1.GatewayClass{class("tollgate", ControllerName), class("other", "example.net/other")},
		Gateways:       []*gatewayv1.Gateway{gateway("shop", "web", listener("http", 80, ""))},
		Services:       []*corev1.Service{svc},
		EndpointSlices: []*discoveryv1.EndpointSlice{es},
	}
}

var settings = Settings{EntryPoints: map[int32]string{80: "web", 443: "websecure"}}

func condition(conds []metav1.Condition, typ string) metav1.Condition {
	for _, c := range conds {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{Type: typ, Status: "missing"}
}

func wantCond(t *testing.T, what string, conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := condition(conds, typ)
	if c.Status != status || c.Reason != reason {
		t.Errorf("%s %s: got %s/%s (%s), want %s/%s", what, typ, c.Status, c.Reason, c.Message, status, reason)
	}
}

// routers returns every router of the result, checking that its rule
// parses and its service is in its part.
func routers(t *testing.T, res *Result) map[string]*config.Router {
	t.Helper()
	out := map[string]*config.Router{}
	for _, p := range res.Provided.Parts {
		for name, r := range p.Routers {
			if _, err := rule.Parse(r.Rule); err != nil {
				t.Errorf("router %s: rule %s: %v", name, r.Rule, err)
			}
			if p.Services[r.Service] == nil {
				t.Errorf("router %s: service %s not in part %s", name, r.Service, p.Owner)
			}
			if !strings.HasSuffix(name, "@"+ProviderName) {
				t.Errorf("router %s: name lacks @%s", name, ProviderName)
			}
			out[name] = r
		}
	}
	return out
}

func service1(res *Result, name string) *config.Service {
	for _, p := range res.Provided.Parts {
		if s := p.Services[name]; s != nil {
			return s
		}
	}
	return nil
}

func TestTranslateBasic(t *testing.T) {
	o := base()
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", []string{"shop.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/api/")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)

	if len(res.GatewayClasses) != 1 {
		t.Fatalf("served classes %v, want tollgate only", res.GatewayClasses)
	}
	wantCond(t, "class", res.GatewayClasses["tollgate"], "Accepted", metav1.ConditionTrue, "Accepted")
	gs := res.Gateways["shop/web"]
	if gs == nil {
		t.Fatal("no status for gateway shop/web")
	}
	wantCond(t, "gateway", gs.Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "gateway", gs.Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
	l := gs.Listeners[0]
	for _, typ := range []string{"Accepted", "ResolvedRefs", "Programmed"} {
		wantCond(t, "listener", l.Conditions, typ, metav1.ConditionTrue, typ)
	}
	wantCond(t, "listener", l.Conditions, "Conflicted", metav1.ConditionFalse, "NoConflicts")
	if l.AttachedRoutes != 1 {
		t.Errorf("attachedRoutes %d, want 1", l.AttachedRoutes)
	}
	rs := res.HTTPRoutes["shop/app"]
	if rs == nil || len(rs.Parents) != 1 {
		t.Fatalf("route status %+v, want one parent", rs)
	}
	if rs.Parents[0].ControllerName != ControllerName || condition(rs.Parents[0].Conditions, "Accepted").ObservedGeneration != 3 {
		t.Errorf("route parent status %+v", rs.Parents[0])
	}
	wantCond(t, "route", rs.Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "route", rs.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")

	rt := routers(t, res)
	r := rt["shop_app_shop_web_http_0_0_0@kubernetes-gateway"]
	if r == nil {
		t.Fatalf("routers %v", rt)
	}
	if want := "Host(`shop.example.com`) && (Path(`/api`) || PathPrefix(`/api/`))"; r.Rule != want {
		t.Errorf("rule %s, want %s", r.Rule, want)
	}
	if !slices.Equal(r.EntryPoints, []string{"web"}) || r.TLS != nil || r.Service != "shop_app_80@kubernetes-gateway" {
		t.Errorf("router %+v", r)
	}
	lb := service1(res, r.Service).LoadBalancer
	if lb == nil || len(lb.Servers) != 2 || lb.Servers[0].URL != "http://10.0.0.1:8080" || lb.Servers[1].URL != "http://10.0.0.2:8080" {
		t.Errorf("service %+v", lb)
	}
	if res.Provided.Parts[0].Owner != "httproute shop/app" {
		t.Errorf("owner %q", res.Provided.Parts[0].Owner)
	}
	// Deterministic: a second translation gives the same names and rules.
	again := routers(t, Translate(settings, o))
	for name, r := range rt {
		if again[name] == nil || again[name].Rule != r.Rule || again[name].Priority != r.Priority {
			t.Errorf("router %s differs between translations", name)
		}
	}
}

func TestTranslateMatches(t *testing.T) {
	o := base()
	exact := gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchExact), Value: new("/api")}}
	regex := gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchRegularExpression), Value: new("/v[0-9]+/.*")}}
	full := prefix("/api")
	full.Method = new(gatewayv1.HTTPMethodPost)
	full.Headers = []gatewayv1.HTTPHeaderMatch{{Name: "X-Env", Value: "canary"}, {Type: new(gatewayv1.HeaderMatchRegularExpression), Name: "X-Id", Value: "[a-f]+"}}
	full.QueryParams = []gatewayv1.HTTPQueryParamMatch{{Name: "debug", Value: "1"}, {Type: new(gatewayv1.QueryParamMatchRegularExpression), Name: "v", Value: "2|3"}}
	short := prefix("/a")
	root := gatewayv1.HTTPRouteMatch{}
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{exact, regex, full, short, prefix("/api"), root}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)
	rt := routers(t, res)
	name := func(m int) string { return "shop_app_shop_web_http_0_" + string(rune('0'+m)) + "_0@kubernetes-gateway" }
	want := map[int]string{
		0: "Path(`/api`)",
		1: "PathRegexp(`^(?:/v[0-9]+/.*)$`)",
		2: "(Path(`/api`) || PathPrefix(`/api/`)) && Method(`POST`) && Header(`X-Env`, `canary`) && HeaderRegexp(`X-Id`, `^(?:[a-f]+)$`) && Query(`debug`, `1`) && QueryRegexp(`v`, `^(?:2|3)$`)",
		3: "(Path(`/a`) || PathPrefix(`/a/`))",
		4: "(Path(`/api`) || PathPrefix(`/api/`))",
		5: "PathPrefix(`/`)",
	}
	for m, rule := range want {
		if r := rt[name(m)]; r == nil || r.Rule != rule {
			t.Errorf("match %d: router %+v, want rule %s", m, r, rule)
		}
	}
	// The spec's precedence: Exact, then the longest prefix, then method,
	// headers and query parameters; a regular expression below prefixes.
	order := []int{0, 2, 4, 3, 5}
	for i := 1; i < len(order); i++ {
		hi, lo := rt[name(order[i-1])], rt[name(order[i])]
		if hi == nil || lo == nil || hi.Priority <= lo.Priority {
			t.Errorf("match %d should outrank match %d", order[i-1], order[i])
		}
	}
	if rt[name(1)].Priority >= rt[name(5)].Priority {
		t.Errorf("a regular expression path ranks below every prefix")
	}
	wantCond(t, "route", res.HTTPRoutes["shop/app"].Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
}

func TestTranslateHostnames(t *testing.T) {
	for _, tc := range []struct {
		listener string
		route    []string
		want     []string // host matchers; nil: not attached
	}{
		{"", nil, []string{""}},
		{"*.example.com", nil, []string{"Host(`**.example.com`)"}},
		{"*.example.com", []string{"a.example.com", "other.org", "*.b.example.com"}, []string{"Host(`**.b.example.com`)", "Host(`a.example.com`)"}},
		{"a.example.com", []string{"*.example.com"}, []string{"Host(`a.example.com`)"}},
		{"example.com", []string{"*.example.com"}, nil},
		{"*.example.com", []string{"example.com"}, nil},
		{"", []string{"x.org"}, []string{"Host(`x.org`)"}},
	} {
		o := base()
		o.Gateways = []*gatewayv1.Gateway{gateway("shop", "web", listener("http", 80, tc.listener))}
		o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", tc.route, []gatewayv1.ParentReference{parent("web")},
			gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
		res := Translate(settings, o)
		var got []string
		for _, r := range routers(t, res) {
			h, _, _ := strings.Cut(r.Rule, " && ")
			if strings.HasPrefix(h, "Host") {
				got = append(got, h)
			} else {
				got = append(got, "")
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("listener %q route %v: hosts %q, want %q", tc.listener, tc.route, got, tc.want)
		}
		conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
		if tc.want == nil {
			wantCond(t, "route", conds, "Accepted", metav1.ConditionFalse, "NoMatchingListenerHostname")
		} else {
			wantCond(t, "route", conds, "Accepted", metav1.ConditionTrue, "Accepted")
		}
	}
	// An exact host outranks a wildcard one.
	if hostRank("a.example.com") <= hostRank("*.example.com") || hostRank("*.b.example.com") <= hostRank("*.example.com") || hostRank("*.x.y") <= hostRank("") {
		t.Error("host ranks out of order")
	}
}

func TestTranslateListeners(t *testing.T) {
	o := base()
	https := listener("https", 443, "secure.example.com")
	https.Protocol = gatewayv1.HTTPSProtocolType
	https.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}}
	missing := listener("missing", 443, "missing.example.com")
	missing.Protocol = gatewayv1.HTTPSProtocolType
	missing.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "nope"}}}
	cross := listener("cross", 443, "cross.example.com")
	cross.Protocol = gatewayv1.HTTPSProtocolType
	cross.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert", Namespace: new(gatewayv1.Namespace("certs"))}}}
	tcp := listener("tcp", 80, "tcp.example.com")
	tcp.Protocol = gatewayv1.TCPProtocolType
	o.Gateways = []*gatewayv1.Gateway{gateway("shop", "web",
		listener("http", 80, ""), listener("noport", 8081, ""), https, missing, cross, listener("dup1", 80, "dup.example.com"), listener("dup2", 80, "dup.example.com"))}
	o.Gateways = append(o.Gateways, gateway("shop", "tcp", tcp))
	o.Secrets = []*corev1.Secret{tlsSecret("shop", "cert"), tlsSecret("certs", "cert")}
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)
	ls := map[string]gatewayv1.ListenerStatus{}
	for _, l := range res.Gateways["shop/web"].Listeners {
		ls[string(l.Name)] = l
	}
	wantCond(t, "noport", ls["noport"].Conditions, "Accepted", metav1.ConditionFalse, "PortUnavailable")
	wantCond(t, "noport", ls["noport"].Conditions, "Programmed", metav1.ConditionFalse, "Invalid")
	wantCond(t, "https", ls["https"].Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
	wantCond(t, "missing", ls["missing"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef")
	wantCond(t, "cross", ls["cross"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "RefNotPermitted")
	wantCond(t, "dup1", ls["dup1"].Conditions, "Conflicted", metav1.ConditionTrue, "HostnameConflict")
	wantCond(t, "dup2", ls["dup2"].Conditions, "Programmed", metav1.ConditionFalse, "Invalid")
	wantCond(t, "tcp", res.Gateways["shop/tcp"].Listeners[0].Conditions, "Accepted", metav1.ConditionFalse, "UnsupportedProtocol")
	wantCond(t, "tcp gateway", res.Gateways["shop/tcp"].Conditions, "Programmed", metav1.ConditionFalse, "Invalid")
	// The route counts on every listener it attaches to, as the Gateway
	// API asks, programmed or not, but is served on http and https only.
	for name, l := range ls {
		if l.AttachedRoutes != 1 {
			t.Errorf("listener %s: attachedRoutes %d, want 1", name, l.AttachedRoutes)
		}
	}
	for name := range routers(t, res) {
		if !strings.Contains(name, "_web_http_") && !strings.Contains(name, "_web_https_") {
			t.Errorf("router %s on a listener that is not programmed", name)
		}
	}
	if l := res.Gateways["shop/tcp"].Listeners[0]; l.AttachedRoutes != 0 || l.SupportedKinds == nil {
		t.Errorf("tcp listener: %+v, want no route and an empty (not nil) supportedKinds", l)
	}
	rt := routers(t, res)
	r := rt["shop_app_shop_web_https_0_0_0@kubernetes-gateway"]
	if r == nil || r.TLS == nil || !r.TLS.CertificateProvided || r.EntryPoints[0] != "websecure" || !strings.HasPrefix(r.Rule, "Host(`secure.example.com`)") {
		t.Fatalf("https router %+v", r)
	}
	if c := res.Provided.Parts[0].Certificates; len(c) != 1 || c[0].Source != "secret shop/cert" {
		t.Errorf("certificates %+v", c)
	}

	// A ReferenceGrant in the Secret's namespace lets the Gateway use it.
	o.ReferenceGrants = []*gatewayv1beta1.ReferenceGrant{{ObjectMeta: metav1.ObjectMeta{Namespace: "certs", Name: "gw"},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "Gateway", Namespace: "shop"}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Group: "", Kind: "Secret"}},
		}}}
	res = Translate(settings, o)
	wantCond(t, "cross granted", res.Gateways["shop/web"].Listeners[4].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")

	// A Secret the router cannot use: the listener is not resolved, even
	// without a route attached.
	o.HTTPRoutes = nil
	leaf := testcert.SelfSigned(t, testcert.Spec{Names: []string{"secure.example.com"}})
	o.Secrets[0].Data = map[string][]byte{corev1.TLSCertKey: leaf.CertPEM(), corev1.TLSPrivateKeyKey: leaf.KeyPEM(t)}
	checked := settings
	checked.CheckPair = func(kp config.KeyPair) error {
		if kp.Source == "secret certs/cert" {
			return errors.New("no PEM certificate")
		}
		return nil
	}
	res = Translate(checked, o)
	wantCond(t, "unusable", res.Gateways["shop/web"].Listeners[4].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef")
	wantCond(t, "unusable", res.Gateways["shop/web"].Listeners[4].Conditions, "Programmed", metav1.ConditionFalse, "Invalid")
	wantCond(t, "usable", res.Gateways["shop/web"].Listeners[2].Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
}

func TestTranslateAllowedRoutes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		from   gatewayv1.FromNamespaces
		kinds  []gatewayv1.RouteGroupKind
		reason string
	}{
		{"same", gatewayv1.NamespacesFromSame, nil, "NotAllowedByListeners"},
		{"all", gatewayv1.NamespacesFromAll, nil, "Accepted"},
		{"selector", gatewayv1.NamespacesFromSelector, nil, "Accepted"},
		{"kinds", gatewayv1.NamespacesFromAll, []gatewayv1.RouteGroupKind{{Kind: "GRPCRoute"}}, "NotAllowedByListeners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			l := listener("http", 80, "")
			l.AllowedRoutes = &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: new(tc.from),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}}, Kinds: tc.kinds}
			o.Gateways = []*gatewayv1.Gateway{gateway("infra", "web", l)}
			o.Namespaces = []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "blue"}}}}
			p := parent("web")
			p.Namespace = new(gatewayv1.Namespace("infra"))
			o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{p},
				gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
			res := Translate(settings, o)
			ok := tc.reason == "Accepted"
			st := map[bool]metav1.ConditionStatus{true: metav1.ConditionTrue, false: metav1.ConditionFalse}[ok]
			wantCond(t, "route", res.HTTPRoutes["shop/app"].Parents[0].Conditions, "Accepted", st, tc.reason)
			if got := len(routers(t, res)); (got > 0) != ok {
				t.Errorf("%d routers", got)
			}
		})
	}
}

func TestTranslateBackends(t *testing.T) {
	o := base()
	svc, es := service("other", "api", 80, "10.0.1.1")
	o.Services = append(o.Services, svc)
	o.EndpointSlices = append(o.EndpointSlices, es)
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{
		route("shop", "weighted", []string{"w.example.com"}, []gatewayv1.ParentReference{parent("web")},
			gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, new(int32(3))), backendRef("", "app", 81, new(int32(0))), backendRef("", "gone", 80, new(int32(1)))}}),
		route("shop", "cross", []string{"c.example.com"}, []gatewayv1.ParentReference{parent("web")},
			gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("other", "api", 80, nil)}}),
		route("shop", "filtered", []string{"f.example.com"}, []gatewayv1.ParentReference{parent("web")},
			gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/old")}, Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{StatusCode: new(301)}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}},
			gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}}),
	}
	kind := backendRef("", "bucket", 80, nil)
	kind.Kind = new(gatewayv1.Kind("Bucket"))
	kind.Group = new(gatewayv1.Group("storage.example.com"))
	o.HTTPRoutes = append(o.HTTPRoutes, route("shop", "kind", []string{"k.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{kind}}))
	res := Translate(settings, o)
	rt := routers(t, res)

	w := res.HTTPRoutes["shop/weighted"].Parents[0].Conditions
	wantCond(t, "weighted", w, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "weighted", w, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound")
	ws := service1(res, "shop_weighted_0_weighted@kubernetes-gateway")
	if ws == nil || ws.Weighted == nil || len(ws.Weighted.Services) != 3 {
		t.Fatalf("weighted service %+v", ws)
	}
	for i, want := range []int{3, 0, 1} {
		if got := *ws.Weighted.Services[i].Weight; got != want {
			t.Errorf("weight %d: %d, want %d", i, got, want)
		}
	}
	// The missing Service and the missing port get no servers, and
	// answer 500 as the Gateway API asks.
	for _, name := range []string{"shop_gone_80@kubernetes-gateway", "shop_app_81@kubernetes-gateway"} {
		if s := service1(res, name); s == nil || s.LoadBalancer == nil || len(s.LoadBalancer.Servers) != 0 || s.LoadBalancer.UnavailableStatus != 500 {
			t.Errorf("service %s: %+v, want an empty loadBalancer answering 500", name, s)
		}
	}
	if s := service1(res, "shop_app_80@kubernetes-gateway"); s == nil || s.LoadBalancer.UnavailableStatus != 0 {
		t.Errorf("a resolved backend must answer 503 when it has no ready endpoint: %+v", s)
	}

	c := res.HTTPRoutes["shop/cross"].Parents[0].Conditions
	wantCond(t, "cross", c, "ResolvedRefs", metav1.ConditionFalse, "RefNotPermitted")
	if r := rt["shop_cross_shop_web_http_0_0_0@kubernetes-gateway"]; r == nil || len(service1(res, r.Service).LoadBalancer.Servers) != 0 || service1(res, r.Service).LoadBalancer.UnavailableStatus != 500 {
		t.Errorf("a refused backend must have no servers and answer 500: %+v", r)
	}
	wantCond(t, "kind", res.HTTPRoutes["shop/kind"].Parents[0].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidKind")

	f := res.HTTPRoutes["shop/filtered"].Parents[0].Conditions
	wantCond(t, "filtered", f, "Accepted", metav1.ConditionFalse, "UnsupportedValue")
	if !strings.Contains(condition(f, "Accepted").Message, "RequestRedirect") {
		t.Errorf("message %q does not name the filter", condition(f, "Accepted").Message)
	}
	if rt["shop_filtered_shop_web_http_0_0_0@kubernetes-gateway"] != nil || rt["shop_filtered_shop_web_http_1_0_0@kubernetes-gateway"] == nil {
		t.Error("the rule with a filter must be left out, the other served")
	}

	// A ReferenceGrant in the Service's namespace admits the backend.
	o.ReferenceGrants = []*gatewayv1beta1.ReferenceGrant{{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "routes"},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "HTTPRoute", Namespace: "shop"}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service", Name: new(gatewayv1.ObjectName("api"))}},
		}}}
	res = Translate(settings, o)
	wantCond(t, "cross granted", res.HTTPRoutes["shop/cross"].Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	if s := service1(res, "other_api_80@kubernetes-gateway"); s == nil || len(s.LoadBalancer.Servers) != 1 || s.LoadBalancer.Servers[0].URL != "http://10.0.1.1:8080" {
		t.Errorf("granted service %+v", s)
	}
}

func TestTranslateForeignObjects(t *testing.T) {
	o := base()
	other := gateway("shop", "theirs", listener("http", 80, ""))
	other.Spec.GatewayClassName = "other"
	o.Gateways = append(o.Gateways, other)
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("theirs")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)
	if res.Gateways["shop/theirs"] != nil || res.HTTPRoutes["shop/app"] != nil || len(res.Provided.Parts) != 0 {
		t.Errorf("objects of another controller got status or configuration: %+v", res)
	}
	// A sectionName that names no listener.
	p := parent("web")
	p.SectionName = new(gatewayv1.SectionName("nope"))
	o.HTTPRoutes[0].Spec.ParentRefs = []gatewayv1.ParentReference{p}
	res = Translate(settings, o)
	wantCond(t, "route", res.HTTPRoutes["shop/app"].Parents[0].Conditions, "Accepted", metav1.ConditionFalse, "NoMatchingParent")
}

func TestTranslateFilters(t *testing.T) {
	hdr := func(m *gatewayv1.HTTPHeaderFilter) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: m}
	}
	for _, tc := range []struct {
		name    string
		filters []gatewayv1.HTTPRouteFilter
		bad     string            // in the Accepted message; "" when served
		headers map[string]string // the first middleware's request headers
		note    string
	}{
		{"set and remove", []gatewayv1.HTTPRouteFilter{hdr(&gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "1"}}, Remove: []string{"X-B"}})}, "", map[string]string{"X-A": "1", "X-B": ""}, ""},
		{"add", []gatewayv1.HTTPRouteFilter{hdr(&gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "1"}}})}, "", map[string]string{}, ""},
		{"add host", []gatewayv1.HTTPRouteFilter{hdr(&gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "host", Value: "x"}}})}, "add Host is not supported", nil, ""},
		{"add and remove", []gatewayv1.HTTPRouteFilter{hdr(&gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "1"}}, Remove: []string{"X-A"}})}, "both changed and removed", nil, ""},
		{"empty set", []gatewayv1.HTTPRouteFilter{hdr(&gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-A"}}})}, "empty value", nil, ""},
		{"prefix rewrite", []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
			Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/v2")}}}}, "exactly one match, of type PathPrefix", nil, ""},
		{"redirect 307", []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{
			Hostname: new(gatewayv1.PreciseHostname("x.example.com")), StatusCode: new(307)}}}, "status code 307", nil, ""},
		{"mirror fraction", []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: "app", Port: new(gatewayv1.PortNumber(80))}, Fraction: &gatewayv1.Fraction{Numerator: 1, Denominator: new(int32(3))}}}}, "whole percentage", nil, ""},
		{"cors", []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS}}, "CORS is not supported", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
				gatewayv1.HTTPRouteRule{Filters: tc.filters, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
			res := Translate(settings, o)
			conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
			rt := routers(t, res)
			if tc.bad != "" {
				wantCond(t, "route", conds, "Accepted", metav1.ConditionFalse, "UnsupportedValue")
				if msg := condition(conds, "Accepted").Message; !strings.Contains(msg, tc.bad) {
					t.Errorf("message %q lacks %q", msg, tc.bad)
				}
				if len(rt) != 0 || len(res.Provided.Parts) != 0 {
					t.Errorf("a rule with a filter it cannot serve was served: %v", rt)
				}
				return
			}
			wantCond(t, "route", conds, "Accepted", metav1.ConditionTrue, "Accepted")
			r := rt["shop_app_shop_web_http_0_0_0@kubernetes-gateway"]
			if r == nil || len(r.Middlewares) != 1 {
				t.Fatalf("router %+v", r)
			}
			mw := res.Provided.Parts[0].Middlewares[r.Middlewares[0]]
			if mw == nil || mw.Headers == nil || !maps.Equal(mw.Headers.CustomRequestHeaders, tc.headers) {
				t.Errorf("middleware %+v, want request headers %v", mw, tc.headers)
			}
			if tc.name == "add" && !maps.Equal(mw.Headers.AppendRequestHeaders, map[string]string{"X-A": "1"}) {
				t.Errorf("headers added %v, want X-A: 1", mw.Headers.AppendRequestHeaders)
			}
			notes := strings.Join(res.Notes["shop/app"], "; ")
			if (tc.note == "") != (notes == "") || !strings.Contains(notes, tc.note) {
				t.Errorf("notes %q, want %q", notes, tc.note)
			}
			merged, refused := config.Merge(&config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":80"}}}, res.Provided)
			if len(refused) > 0 || merged.HTTP.Middlewares[r.Middlewares[0]] == nil {
				t.Errorf("merge refused %v", refused)
			}
		})
	}
}

func TestTranslateMirror(t *testing.T) {
	o := base()
	svc, es := service("shop", "shadow", 80, "10.0.0.9")
	o.Services = append(o.Services, svc)
	o.EndpointSlices = append(o.EndpointSlices, es)
	mirror := func(name string, f *gatewayv1.Fraction) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(gatewayv1.PortNumber(80))}, Fraction: f}}
	}
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Filters: []gatewayv1.HTTPRouteFilter{mirror("shadow", &gatewayv1.Fraction{Numerator: 1, Denominator: new(int32(4))}), mirror("gone", nil)},
			BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)
	conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
	wantCond(t, "route", conds, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "route", conds, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound")
	r := routers(t, res)["shop_app_shop_web_http_0_0_0@kubernetes-gateway"]
	if r == nil || r.Service != "shop_app_0_mirror@kubernetes-gateway" {
		t.Fatalf("router %+v", r)
	}
	m := service1(res, r.Service).Mirroring
	want := []config.Mirror{{Name: "shop_shadow_80@kubernetes-gateway", Percent: 25}, {Name: "shop_gone_80@kubernetes-gateway", Percent: 100}}
	if m == nil || m.Service != "shop_app_80@kubernetes-gateway" || !slices.Equal(m.Mirrors, want) {
		t.Errorf("mirroring %+v, want %v", m, want)
	}
	if _, refused := config.Merge(&config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":80"}}}, res.Provided); len(refused) > 0 {
		t.Errorf("merge refused %v", refused)
	}
}

func TestReplacePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, repl string
		in, want     []string
	}{
		{"/foo", "/bar", []string{"/foo", "/foo/", "/foo/x/y"}, []string{"/bar", "/bar/", "/bar/x/y"}},
		{"/foo/", "/bar/", []string{"/foo", "/foo/x"}, []string{"/bar", "/bar/x"}},
		{"/foo", "/", []string{"/foo", "/foo/", "/foo/x"}, []string{"/", "/", "/x"}},
		{"/", "/v2", []string{"/", "/x"}, []string{"/v2/", "/v2/x"}},
		{"/a.b", "/c", []string{"/a.b/x"}, []string{"/c/x"}},
	} {
		mw, why := replacePrefix(tc.prefix, tc.repl)
		if why != "" || mw == nil {
			t.Fatalf("%s → %s: %q", tc.prefix, tc.repl, why)
		}
		re := regexp.MustCompile(mw.ReplacePathRegex.Regex)
		for i, in := range tc.in {
			if !re.MatchString(in) {
				t.Errorf("%s → %s: %s does not match %s", tc.prefix, tc.repl, mw.ReplacePathRegex.Regex, in)
				continue
			}
			if got := re.ReplaceAllString(in, mw.ReplacePathRegex.Replacement); got != tc.want[i] {
				t.Errorf("%s → %s: %s becomes %s, want %s", tc.prefix, tc.repl, in, got, tc.want[i])
			}
		}
	}
	if mw, _ := replacePrefix("/same/", "/same"); mw != nil {
		t.Errorf("a replacement equal to the prefix must change nothing: %+v", mw)
	}
}

func TestRedirect(t *testing.T) {
	type rr = gatewayv1.HTTPRequestRedirectFilter
	host := new(gatewayv1.PreciseHostname("new.example.com"))
	for _, tc := range []struct {
		name   string
		r      rr
		prefix string
		in     map[string]string // URL → redirect target
	}{
		{"hostname", rr{Hostname: host}, "/", map[string]string{
			"http://a.example.com/x?q=1": "http://new.example.com/x?q=1",
			"http://a.example.com:8080/": "http://new.example.com:8080/",
			"https://[::1]:8443/p":       "https://new.example.com:8443/p",
			"http://a.example.com":       "http://new.example.com",
		}},
		{"scheme and hostname", rr{Scheme: new("https"), Hostname: host}, "/", map[string]string{
			"http://a.example.com:8080/x": "https://new.example.com/x",
		}},
		{"port", rr{Hostname: host, Port: new(gatewayv1.PortNumber(8443)), Scheme: new("https")}, "/", map[string]string{
			"http://a.example.com/x": "https://new.example.com:8443/x",
		}},
		{"port only", rr{Port: new(gatewayv1.PortNumber(8083))}, "/", map[string]string{
			"http://a.example.com/port?q": "http://a.example.com:8083/port?q",
			"http://a.example.com:80/p":   "http://a.example.com:8083/p",
		}},
		{"well-known port", rr{Hostname: host, Port: new(gatewayv1.PortNumber(443)), Scheme: new("https")}, "/", map[string]string{
			"http://a.example.com:80/x": "https://new.example.com/x",
		}},
		{"full path", rr{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: new("/moved")}}, "/", map[string]string{
			"http://a.example.com/x/y?q": "http://a.example.com/moved?q",
		}},
		{"prefix", rr{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/new")}}, "/old/", map[string]string{
			"http://a.example.com/old":     "http://a.example.com/new",
			"http://a.example.com/old/x?q": "http://a.example.com/new/x?q",
		}},
		{"prefix to root", rr{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/")}}, "/old", map[string]string{
			"http://a.example.com/old":   "http://a.example.com/",
			"http://a.example.com/old/x": "http://a.example.com/x",
		}},
	} {
		mw, why := redirect(&tc.r, tc.prefix, true)
		if why != "" || mw == nil || mw.RedirectRegex == nil {
			t.Errorf("%s: %+v %q", tc.name, mw, why)
			continue
		}
		re := regexp.MustCompile(mw.RedirectRegex.Regex)
		for in, want := range tc.in {
			if !re.MatchString(in) {
				t.Errorf("%s: %s does not match %s", tc.name, mw.RedirectRegex.Regex, in)
				continue
			}
			if got := re.ReplaceAllString(in, mw.RedirectRegex.Replacement); got != want {
				t.Errorf("%s: %s redirects to %s, want %s", tc.name, in, got, want)
			}
		}
	}
	if _, why := redirect(&rr{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/n")}}, "", false); why == "" {
		t.Error("a prefix redirect without a PathPrefix match must be refused")
	}
	if _, why := redirect(&rr{Scheme: new("https"), StatusCode: new(307)}, "/", true); why == "" {
		t.Error("status 307 must be refused")
	}
}

// TestTranslateNamesApart: the weighted service of rule 1 of HTTPRoute
// shop/app and Service shop/app's port 1 get different names.
func TestTranslateNamesApart(t *testing.T) {
	o := base()
	svc, es := service("shop", "app", 1, "10.0.0.5")
	o.Services, o.EndpointSlices = []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{es}
	one := gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/a")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 1, nil)}}
	two := gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/b")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 1, nil), backendRef("", "app", 1, nil)}}
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")}, one, two)}
	res := Translate(settings, o)
	if lb := service1(res, "shop_app_1@kubernetes-gateway"); lb == nil || lb.LoadBalancer == nil {
		t.Errorf("service shop_app_1 is %+v, want Service shop/app's port 1", lb)
	}
	if _, refused := config.Merge(&config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":80"}}}, res.Provided); len(refused) > 0 {
		t.Errorf("merge refused %v", refused)
	}
}

func TestTranslateACMEListener(t *testing.T) {
	acmeListener := func(name, host string, opts map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue, refs ...string) gatewayv1.Listener {
		l := listener(name, 443, host)
		l.Protocol = gatewayv1.HTTPSProtocolType
		l.TLS = &gatewayv1.ListenerTLSConfig{Options: opts}
		for _, r := range refs {
			l.TLS.CertificateRefs = append(l.TLS.CertificateRefs, gatewayv1.SecretObjectReference{Name: gatewayv1.ObjectName(r)})
		}
		return l
	}
	on := map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{ACMEOption: "true"}
	withACME := settings
	withACME.ACME = true
	withDNS := withACME
	withDNS.ACMEWildcards = true
	for _, tc := range []struct {
		name     string
		s        Settings
		l        gatewayv1.Listener
		reason   string // of Accepted False; "" when programmed
		contains string
		domain   string
	}{
		{name: "acme", s: withACME, l: acmeListener("a", "app.example.com", on), domain: "app.example.com"},
		{name: "wildcard with dns", s: withDNS, l: acmeListener("a", "*.example.com", on), domain: "*.example.com"},
		{name: "wildcard without dns", s: withACME, l: acmeListener("a", "*.example.com", on), reason: "UnsupportedValue", contains: "acme.dnsChallenge"},
		{name: "no acme section", s: settings, l: acmeListener("a", "app.example.com", on), reason: "UnsupportedValue", contains: "needs an [acme] section"},
		{name: "no hostname", s: withACME, l: acmeListener("a", "", on), reason: "UnsupportedValue", contains: "hostname"},
		{name: "false", s: withACME, l: acmeListener("a", "app.example.com", map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{ACMEOption: "yes"}), reason: "UnsupportedValue", contains: `must be "true"`},
		{name: "both", s: withACME, l: acmeListener("a", "app.example.com", on, "cert"), reason: "UnsupportedValue", contains: "not both"},
		{name: "unknown option", s: withACME, l: acmeListener("a", "app.example.com", map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{"example.com/min-version": "1.3"}, "cert"), reason: "UnsupportedValue", contains: "example.com/min-version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			o.Gateways = []*gatewayv1.Gateway{gateway("shop", "web", tc.l)}
			o.Secrets = []*corev1.Secret{tlsSecret("shop", "cert")}
			o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", []string{"app.example.com"}, []gatewayv1.ParentReference{parent("web")},
				gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
			res := Translate(tc.s, o)
			conds := res.Gateways["shop/web"].Listeners[0].Conditions
			if tc.reason != "" {
				wantCond(t, tc.name, conds, "Accepted", metav1.ConditionFalse, tc.reason)
				wantCond(t, tc.name, conds, "Programmed", metav1.ConditionFalse, "Invalid")
				if msg := condition(conds, "Accepted").Message; !strings.Contains(msg, tc.contains) {
					t.Errorf("message %q, want it to contain %q", msg, tc.contains)
				}
				if len(res.Provided.Parts) > 0 && len(res.Provided.Parts[0].Routers) > 0 {
					t.Errorf("routers on a refused listener: %v", res.Provided.Parts[0].Routers)
				}
				return
			}
			wantCond(t, tc.name, conds, "Programmed", metav1.ConditionTrue, "Programmed")
			r := routers(t, res)["shop_app_shop_web_a_0_0_0@kubernetes-gateway"]
			if r == nil || r.TLS == nil || r.TLS.CertificateProvided || len(r.TLS.Domains) != 1 || r.TLS.Domains[0].Main != tc.domain {
				t.Fatalf("router %+v", r)
			}
			if c := res.Provided.Parts[0].Certificates; len(c) != 0 {
				t.Errorf("certificates %+v", c)
			}
		})
	}
}

func TestTranslateTies(t *testing.T) {
	o := base()
	hdr := func(name, value string) gatewayv1.HTTPRouteMatch {
		return gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
	}
	rule := func(m gatewayv1.HTTPRouteMatch) gatewayv1.HTTPRouteRule {
		return gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{m}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}}
	}
	// Rules 1 and 3 tie: a request with both headers goes to rule 1.
	older := route("shop", "zz-older", []string{"t.example.com"}, []gatewayv1.ParentReference{parent("web")},
		rule(hdr("version", "one")), rule(hdr("version", "two")), rule(hdr("color", "red")), rule(hdr("color", "blue")))
	older.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
	// A newer route with the same match, first by name: the older wins.
	newer := route("shop", "aa-newer", []string{"t.example.com"}, []gatewayv1.ParentReference{parent("web")}, rule(hdr("version", "two")))
	newer.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{newer, older}
	res := Translate(settings, o)
	rt := routers(t, res)
	prio := func(route string, rule int) int {
		t.Helper()
		r := rt[fmt.Sprintf("shop_%s_shop_web_http_%d_0_0@kubernetes-gateway", route, rule)]
		if r == nil {
			t.Fatalf("no router for rule %d of %s", rule, route)
		}
		return r.Priority
	}
	if !(prio("zz-older", 0) > prio("zz-older", 1) && prio("zz-older", 1) > prio("zz-older", 2) && prio("zz-older", 2) > prio("zz-older", 3)) {
		t.Errorf("equal matches must rank in rule order: %d %d %d %d", prio("zz-older", 0), prio("zz-older", 1), prio("zz-older", 2), prio("zz-older", 3))
	}
	if prio("zz-older", 3) <= prio("aa-newer", 0) {
		t.Errorf("the older route must rank first: %d <= %d", prio("zz-older", 3), prio("aa-newer", 0))
	}
	// A more specific match still wins over any tie rank.
	o.HTTPRoutes = append(o.HTTPRoutes, route("shop", "two-headers", []string{"t.example.com"}, []gatewayv1.ParentReference{parent("web")},
		rule(gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}})))
	again := routers(t, Translate(settings, o))
	if again["shop_two-headers_shop_web_http_0_0_0@kubernetes-gateway"].Priority <= again["shop_zz-older_shop_web_http_0_0_0@kubernetes-gateway"].Priority {
		t.Error("two header matches must rank above one, whatever the ties")
	}
	// A route that ties with none changed no other router's priority.
	for name, r := range rt {
		if again[name].Priority != r.Priority {
			t.Errorf("%s: priority %d became %d", name, r.Priority, again[name].Priority)
		}
	}
}
