package gateway

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/tollgate-proxy/tollgate/config"
)

func grpcRoute(ns, name string, hosts []string, parents []gatewayv1.ParentReference, rules ...gatewayv1.GRPCRouteRule) *gatewayv1.GRPCRoute {
	r := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 4},
		Spec: gatewayv1.GRPCRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents}, Rules: rules}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return r
}

// grpcBase is base with an HTTPS listener "https", which takes GRPCRoutes
// (the HTTP one does not).
func grpcBase() *Objects {
	o := base()
	l := listener("https", 443, "")
	l.Protocol = gatewayv1.HTTPSProtocolType
	l.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}}
	o.Gateways[0].Spec.Listeners = append(o.Gateways[0].Spec.Listeners, l)
	o.Secrets = append(o.Secrets, tlsSecret("shop", "cert"))
	return o
}

func grpcBackend(ns, name string, port int32, weight *int32) gatewayv1.GRPCBackendRef {
	return gatewayv1.GRPCBackendRef{BackendRef: backendRef(ns, name, port, weight).BackendRef}
}

func method(typ gatewayv1.GRPCMethodMatchType, service, meth string) gatewayv1.GRPCRouteMatch {
	m := &gatewayv1.GRPCMethodMatch{Type: new(typ)}
	if service != "" {
		m.Service = new(service)
	}
	if meth != "" {
		m.Method = new(meth)
	}
	return gatewayv1.GRPCRouteMatch{Method: m}
}

func TestTranslateGRPCRoute(t *testing.T) {
	o := grpcBase()
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "app", []string{"grpc.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{Matches: []gatewayv1.GRPCRouteMatch{method(gatewayv1.GRPCMethodMatchExact, "grpc.health.v1.Health", "Check")},
			BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
	// An HTTPRoute of the same name: their names never meet.
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", []string{"grpc.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res := Translate(settings, o)

	for i, want := range [][]string{{"HTTPRoute"}, {"HTTPRoute", "GRPCRoute"}} {
		l := res.Gateways["shop/web"].Listeners[i]
		if l.AttachedRoutes != int32(len(want)) {
			t.Errorf("listener %s: attachedRoutes %d, want %d", l.Name, l.AttachedRoutes, len(want))
		}
		var kinds []string
		for _, k := range l.SupportedKinds {
			kinds = append(kinds, string(k.Kind))
		}
		if !slices.Equal(kinds, want) {
			t.Errorf("listener %s: supportedKinds %v, want %v", l.Name, kinds, want)
		}
	}
	rs := res.GRPCRoutes["shop/app"]
	if rs == nil || len(rs.Parents) != 1 {
		t.Fatalf("grpcroute status %+v, want one parent", rs)
	}
	wantCond(t, "grpcroute", rs.Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "grpcroute", rs.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	if c := condition(rs.Parents[0].Conditions, "Accepted"); c.ObservedGeneration != 4 {
		t.Errorf("observedGeneration %d, want the GRPCRoute's 4", c.ObservedGeneration)
	}
	if res.HTTPRoutes["shop/app"] == nil {
		t.Error("the HTTPRoute of the same name has no status")
	}

	rt := routers(t, res)
	r := rt["shop_app_grpc_shop_web_https_0_0_0@kubernetes-gateway"]
	if r == nil {
		t.Fatalf("routers %v", slices.Collect(func(yield func(string) bool) {
			for n := range rt {
				yield(n)
			}
		}))
	}
	if want := "Host(`grpc.example.com`) && Path(`/grpc.health.v1.Health/Check`)"; r.Rule != want {
		t.Errorf("rule %s, want %s", r.Rule, want)
	}
	if r.Service != "shop_app_80_grpc@kubernetes-gateway" {
		t.Errorf("service %s", r.Service)
	}
	lb := service1(res, r.Service).LoadBalancer
	if lb == nil || len(lb.Servers) != 2 || lb.Servers[0].URL != "h2c://10.0.0.1:8080" {
		t.Errorf("gRPC backend %+v, want h2c servers", lb)
	}
	if r.TLS == nil || !r.TLS.CertificateProvided {
		t.Errorf("router TLS %+v, want the listener's certificate", r.TLS)
	}
	if h := rt["shop_app_shop_web_http_0_0_0@kubernetes-gateway"]; h == nil || service1(res, h.Service).LoadBalancer.Servers[0].URL != "http://10.0.0.1:8080" {
		t.Errorf("the HTTPRoute's router %+v, want its own http service", h)
	}
	owners := map[string]bool{}
	for _, p := range res.Provided.Parts {
		owners[p.Owner] = true
	}
	if !owners["grpcroute shop/app"] || !owners["httproute shop/app"] {
		t.Errorf("owners %v", owners)
	}
}

// TestTranslateGRPCMatches: each method match becomes the path gRPC
// requests have; headers match as an HTTPRoute's; what cannot be served
// says why.
func TestTranslateGRPCMatches(t *testing.T) {
	exact, regex := gatewayv1.GRPCMethodMatchExact, gatewayv1.GRPCMethodMatchRegularExpression
	withHeader := method(exact, "pkg.Svc", "")
	withHeader.Headers = []gatewayv1.GRPCHeaderMatch{{Name: "x-tenant", Value: "blue"}, {Type: new(gatewayv1.GRPCHeaderMatchRegularExpression), Name: "x-zone", Value: "eu-.*"}}
	badHeader := gatewayv1.GRPCRouteMatch{Headers: []gatewayv1.GRPCHeaderMatch{{Name: "x-q", Value: "a`b"}}}
	for _, tc := range []struct {
		name  string
		match *gatewayv1.GRPCRouteMatch // nil: a rule without matches
		rule  string
		bad   string
	}{
		{"none", nil, "PathPrefix(`/`)", ""},
		{"service and method", new(method(exact, "pkg.Svc", "Get")), "Path(`/pkg.Svc/Get`)", ""},
		{"service", new(method(exact, "pkg.Svc", "")), "PathRegexp(`^(?:/pkg\\.Svc/[^/]+)$`)", ""},
		{"method", new(method(exact, "", "Get")), "PathRegexp(`^(?:/[^/]+/Get)$`)", ""},
		{"regex both", new(method(regex, "pkg\\.(A|B)", "Get.*")), "PathRegexp(`^(?:/(?:pkg\\.(A|B))/(?:Get.*))$`)", ""},
		{"regex service", new(method(regex, "pkg\\..*", "")), "PathRegexp(`^(?:/(?:pkg\\..*)/(?:[^/]+))$`)", ""},
		{"headers", &withHeader, "PathRegexp(`^(?:/pkg\\.Svc/[^/]+)$`) && Header(`x-tenant`, `blue`) && HeaderRegexp(`x-zone`, `^(?:eu-.*)$`)", ""},
		{"bad regex", new(method(regex, "pkg.(", "")), "", "method match service regular expression"},
		{"backquote", new(method(exact, "pkg`x", "")), "PathRegexp(\"^(?:/pkg`x/[^/]+)$\")", ""},
		{"NUL", new(method(exact, "pkg\x00", "")), "", "contains NUL"},
		{"slash", new(method(exact, "pkg/x", "Get")), "", "has no /"},
		{"empty", new(method(exact, "", "")), "", "needs a service or a method"},
		{"header backquote", &badHeader, "PathPrefix(`/`) && Header(`x-q`, \"a`b\")", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := grpcBase()
			rule := gatewayv1.GRPCRouteRule{BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}}
			if tc.match != nil {
				rule.Matches = []gatewayv1.GRPCRouteMatch{*tc.match}
			}
			o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")}, rule)}
			res := Translate(settings, o)
			rt := routers(t, res)
			conds := res.GRPCRoutes["shop/g"].Parents[0].Conditions
			if tc.bad != "" {
				wantCond(t, tc.name, conds, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
				if c := condition(conds, "Accepted"); !strings.Contains(c.Message, tc.bad) {
					t.Errorf("message %q, want %q", c.Message, tc.bad)
				}
				if len(rt) != 0 {
					t.Errorf("routers %v, want none", rt)
				}
				return
			}
			wantCond(t, tc.name, conds, "Accepted", metav1.ConditionTrue, "Accepted")
			r := rt["shop_g_grpc_shop_web_https_0_0_0@kubernetes-gateway"]
			if r == nil || r.Rule != tc.rule {
				t.Errorf("router %+v, want rule %s", r, tc.rule)
			}
		})
	}
}

// TestTranslateGRPCPrecedence: the longer service wins, then the longer
// method, then the more header matches; the host ranks first.
func TestTranslateGRPCPrecedence(t *testing.T) {
	exact := gatewayv1.GRPCMethodMatchExact
	oneHeader := method(exact, "pkg.Svc", "Get")
	oneHeader.Headers = []gatewayv1.GRPCHeaderMatch{{Name: "x-a", Value: "1"}}
	// From the lowest to the highest priority.
	matches := []gatewayv1.GRPCRouteMatch{
		{},
		method(exact, "", "Get"),
		method(exact, "", "GetLonger"),
		method(exact, "pkg.Svc", ""),
		method(exact, "pkg.Svc", "Get"),
		oneHeader,
		method(exact, "pkg.Service", ""),
	}
	o := grpcBase()
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{Matches: matches, BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
	rt := routers(t, Translate(settings, o))
	last := -1
	for mi := range matches {
		r := rt[objectName("shop", "g", "grpc", "shop", "web", "https", "0", strconv.Itoa(mi), "0")]
		if r == nil {
			t.Fatalf("match %d has no router", mi)
		}
		if r.Priority <= last {
			t.Errorf("match %d: priority %d not above the previous %d", mi, r.Priority, last)
		}
		last = r.Priority
	}
}

// TestTranslateGRPCBesideHTTPRoute: on a hostname an HTTPRoute and a
// GRPCRoute share, a method match outranks the HTTPRoute's PathPrefix
// rules, whatever the length of the service; an Exact path as long as
// the service or longer outranks it.
func TestTranslateGRPCBesideHTTPRoute(t *testing.T) {
	o := grpcBase()
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "web", []string{"a.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/a-long-prefix-longer-than-the-service/")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchExact), Value: new("/a/long/exact/path")}}}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", []string{"a.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{Matches: []gatewayv1.GRPCRouteMatch{method(gatewayv1.GRPCMethodMatchExact, "a.S", "Get")}, BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
	rt := routers(t, Translate(settings, o))
	g, p, e := rt["shop_g_grpc_shop_web_https_0_0_0@kubernetes-gateway"], rt["shop_web_shop_web_https_0_0_0@kubernetes-gateway"], rt["shop_web_shop_web_https_1_0_0@kubernetes-gateway"]
	if g == nil || p == nil || e == nil {
		t.Fatalf("routers %v", rt)
	}
	if g.Priority <= p.Priority {
		t.Errorf("method match priority %d, PathPrefix %d: want the method match above", g.Priority, p.Priority)
	}
	if e.Priority <= g.Priority {
		t.Errorf("Exact path priority %d, method match %d: want the longer Exact path above", e.Priority, g.Priority)
	}
}

// TestTranslateGRPCKinds: a listener that admits HTTPRoutes only does not
// take GRPCRoutes; one that names GRPCRoute does, and lists it; an HTTP
// listener cannot (no h2c), and says why.
func TestTranslateGRPCKinds(t *testing.T) {
	o := grpcBase()
	o.Gateways[0].Spec.Listeners[0].AllowedRoutes = &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "HTTPRoute"}, {Kind: "GRPCRoute"}}}
	res := Translate(settings, o)
	conds := res.Gateways["shop/web"].Listeners[0].Conditions
	wantCond(t, "HTTP listener naming GRPCRoute", conds, "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.ListenerReasonInvalidRouteKinds))
	if c := condition(conds, "ResolvedRefs"); !strings.Contains(c.Message, "needs an HTTPS listener") {
		t.Errorf("message %q, want why", c.Message)
	}

	for _, tc := range []struct {
		kinds    []gatewayv1.Kind
		accepted metav1.ConditionStatus
		reason   string
	}{
		{[]gatewayv1.Kind{"HTTPRoute"}, metav1.ConditionFalse, string(gatewayv1.RouteReasonNotAllowedByListeners)},
		{[]gatewayv1.Kind{"GRPCRoute"}, metav1.ConditionTrue, "Accepted"},
	} {
		o := grpcBase()
		l := &o.Gateways[0].Spec.Listeners[1]
		l.AllowedRoutes = &gatewayv1.AllowedRoutes{}
		for _, k := range tc.kinds {
			l.AllowedRoutes.Kinds = append(l.AllowedRoutes.Kinds, gatewayv1.RouteGroupKind{Kind: k})
		}
		o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")},
			gatewayv1.GRPCRouteRule{BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
		res := Translate(settings, o)
		wantCond(t, string(tc.kinds[0]), res.GRPCRoutes["shop/g"].Parents[0].Conditions, "Accepted", tc.accepted, tc.reason)
		ls := res.Gateways["shop/web"].Listeners[1]
		if len(ls.SupportedKinds) != 1 || ls.SupportedKinds[0].Kind != tc.kinds[0] {
			t.Errorf("supportedKinds %+v, want %v", ls.SupportedKinds, tc.kinds)
		}
		wantCond(t, "listener", ls.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	}
}

// TestTranslateGRPCBackendsAndFilters: weights, header filters, mirrors
// and ReferenceGrants from GRPCRoutes work as an HTTPRoute's.
func TestTranslateGRPCBackendsAndFilters(t *testing.T) {
	o := grpcBase()
	svc, es := service("other", "mirror", 9000, "10.0.1.1")
	https, hes := service("shop", "secure", 443, "10.0.2.1")
	o.Services = append(o.Services, svc, https)
	o.EndpointSlices = append(o.EndpointSlices, es, hes)
	mirrorRef := backendRef("other", "mirror", 9000, nil).BackendObjectReference
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{
			Filters: []gatewayv1.GRPCRouteFilter{
				{Type: gatewayv1.GRPCRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "x-via", Value: "tollgate"}}}},
				{Type: gatewayv1.GRPCRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Remove: []string{"x-internal"}}},
				{Type: gatewayv1.GRPCRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: mirrorRef}},
			},
			BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, new(int32(3))), grpcBackend("", "secure", 443, new(int32(1)))},
		})}
	res := Translate(settings, o)
	conds := res.GRPCRoutes["shop/g"].Parents[0].Conditions
	wantCond(t, "no grant", conds, "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.RouteReasonRefNotPermitted))

	// A grant from HTTPRoutes does not admit a GRPCRoute; one from
	// GRPCRoutes does.
	grant := func(kind gatewayv1.Kind) *gatewayv1beta1.ReferenceGrant {
		return &gatewayv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "g"}, Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: kind, Namespace: "shop"}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Kind: "Service"}}}}
	}
	o.ReferenceGrants = []*gatewayv1beta1.ReferenceGrant{grant("HTTPRoute")}
	res = Translate(settings, o)
	wantCond(t, "HTTPRoute grant", res.GRPCRoutes["shop/g"].Parents[0].Conditions, "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.RouteReasonRefNotPermitted))
	o.ReferenceGrants = []*gatewayv1beta1.ReferenceGrant{grant("GRPCRoute")}
	res = Translate(settings, o)
	wantCond(t, "GRPCRoute grant", res.GRPCRoutes["shop/g"].Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")

	rt := routers(t, res)
	r := rt["shop_g_grpc_shop_web_https_0_0_0@kubernetes-gateway"]
	if r == nil {
		t.Fatal("no router")
	}
	if len(r.Middlewares) != 2 {
		t.Fatalf("middlewares %v, want the two header filters", r.Middlewares)
	}
	part := res.Provided.Parts[0]
	if h := part.Middlewares[r.Middlewares[0]].Headers; h == nil || h.CustomRequestHeaders["x-via"] != "tollgate" {
		t.Errorf("request headers %+v", h)
	}
	if h := part.Middlewares[r.Middlewares[1]].Headers; h == nil || h.CustomResponseHeaders["x-internal"] != "" {
		t.Errorf("response headers %+v", h)
	}
	mr := part.Services[r.Service].Mirroring
	if mr == nil || len(mr.Mirrors) != 1 || mr.Mirrors[0].Name != "other_mirror_9000_grpc@kubernetes-gateway" {
		t.Fatalf("mirroring %+v", mr)
	}
	if u := part.Services[mr.Mirrors[0].Name].LoadBalancer.Servers[0].URL; u != "h2c://10.0.1.1:8080" {
		t.Errorf("mirror server %s, want h2c", u)
	}
	ws := part.Services[mr.Service].Weighted
	if ws == nil || len(ws.Services) != 2 || *ws.Services[0].Weight != 3 || *ws.Services[1].Weight != 1 {
		t.Fatalf("weighted %+v", ws)
	}
	if u := part.Services[ws.Services[1].Name].LoadBalancer.Servers[0].URL; u != "https://10.0.2.1:8080" {
		t.Errorf("backend on port 443: %s, want https (the port says TLS)", u)
	}
}

// TestRefusedGRPCRouteStatus: a GRPCRoute the sink refused says so, and
// its problems name the GRPCRoute.
func TestRefusedGRPCRouteStatus(t *testing.T) {
	o := grpcBase()
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
	res := Translate(settings, o)
	refuse(res, []config.Refusal{{Provider: ProviderName, Owner: "grpcroute shop/g", Err: errors.New("router clash")}})
	wantCond(t, "refused", res.GRPCRoutes["shop/g"].Parents[0].Conditions, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
	if p := problemsOf(res)["GRPCRoute shop/g"]; len(p) != 1 || p[0] != "not served: router clash" {
		t.Errorf("problems %q", p)
	}
}

// TestGRPCRouteHeaderAdd: a GRPCRoute's header add appends, as an
// HTTPRoute's does, with nothing noted.
func TestGRPCRouteHeaderAdd(t *testing.T) {
	o := grpcBase()
	o.GRPCRoutes = []*gatewayv1.GRPCRoute{grpcRoute("shop", "g", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{Filters: []gatewayv1.GRPCRouteFilter{{Type: gatewayv1.GRPCRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "x-a", Value: "1"}}}}},
			BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "app", 80, nil)}})}
	res := Translate(settings, o)
	if len(res.GRPCNotes) != 0 || len(res.Notes) != 0 {
		t.Errorf("grpc notes %q, notes %q: want none", res.GRPCNotes, res.Notes)
	}
	var added map[string]string
	for _, part := range res.Provided.Parts {
		for _, m := range part.Middlewares {
			if m.Headers != nil {
				added = m.Headers.AppendRequestHeaders
			}
		}
	}
	if added["x-a"] != "1" {
		t.Errorf("headers added %v, want x-a: 1", added)
	}
}
