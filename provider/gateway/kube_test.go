package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/router"
)

// backend is an httptest server that answers its name, and an
// EndpointSlice of Service shop/name that points to it. A real API server
// refuses loopback endpoint addresses, so the slices are fixtures; every
// other object comes from the API server.
func backend(t *testing.T, name string, seen chan<- string) *discoveryv1.EndpointSlice {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			select {
			case seen <- r.URL.Path:
			default:
			}
		}
		_, _ = io.WriteString(w, name+" "+r.Host+r.URL.Path+" "+r.Header.Get("X-Added"))
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name + "-1", Labels: map[string]string{labelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(port))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{u.Hostname()}}},
	}
}

// TestAPIServer creates Gateway API objects in a real API server with the
// typed clientset, lists them back, translates them, and sends requests
// through a router built from the result.
func TestAPIServer(t *testing.T) {
	kube := testserver.StartKube(t)
	kube.InstallGatewayAPI(t)
	// A guard against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	core := kube.Client(t)
	gw, err := gatewayclient.NewForConfig(kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}))
	for _, name := range []string{"api", "web", "shadow"} {
		svc, _ := service("shop", name, 80)
		must(core.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}))
	}
	must(gw.GatewayV1().GatewayClasses().Create(ctx, class("tollgate", ControllerName), metav1.CreateOptions{}))
	must(gw.GatewayV1().Gateways("shop").Create(ctx, gateway("shop", "web", listener("http", 80, "*.example.com")), metav1.CreateOptions{}))
	exact := gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchExact), Value: new("/api/exact")},
		Headers: []gatewayv1.HTTPHeaderMatch{{Name: "X-Env", Value: "canary"}}}
	must(gw.GatewayV1().HTTPRoutes("shop").Create(ctx, route("shop", "app", []string{"shop.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/api")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "api", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{exact}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "web", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/old")}, Filters: []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{Scheme: new("https"), StatusCode: new(301)},
		}}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/rewrite")}, Filters: []gatewayv1.HTTPRouteFilter{
			{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Added", Value: "yes"}}}},
			{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Answer", Value: "rewritten"}}}},
			{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: new(gatewayv1.PreciseHostname("internal.example")), Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: new("/new")}}},
		}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "api", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/mirrored")}, Filters: []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "shadow", Port: new(gatewayv1.PortNumber(80))}},
		}}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "api", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/prefix/")}, Filters: []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/v2")}},
		}}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "api", 80, nil)}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/moved")}, Filters: []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{Hostname: new(gatewayv1.PreciseHostname("new.example.com")),
				Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/here")}},
		}}},
		// No matches: the API server defaults them to PathPrefix /.
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "web", 80, nil)}},
	), metav1.CreateOptions{}))

	mirrored := make(chan string, 10)
	o := &Objects{EndpointSlices: []*discoveryv1.EndpointSlice{backend(t, "api", nil), backend(t, "web", nil), backend(t, "shadow", mirrored)}}
	classes, err := gw.GatewayV1().GatewayClasses().List(ctx, metav1.ListOptions{})
	must(classes, err)
	for i := range classes.Items {
		o.GatewayClasses = append(o.GatewayClasses, &classes.Items[i])
	}
	gws, err := gw.GatewayV1().Gateways("").List(ctx, metav1.ListOptions{})
	must(gws, err)
	for i := range gws.Items {
		o.Gateways = append(o.Gateways, &gws.Items[i])
	}
	routes, err := gw.GatewayV1().HTTPRoutes("").List(ctx, metav1.ListOptions{})
	must(routes, err)
	for i := range routes.Items {
		o.HTTPRoutes = append(o.HTTPRoutes, &routes.Items[i])
	}
	svcs, err := core.CoreV1().Services("shop").List(ctx, metav1.ListOptions{})
	must(svcs, err)
	for i := range svcs.Items {
		o.Services = append(o.Services, &svcs.Items[i])
	}

	res := Translate(Settings{EntryPoints: map[int32]string{80: "web"}}, o)
	conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
	wantCond(t, "route", conds, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "route", conds, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	if n := res.Gateways["shop/web"].Listeners[0].AttachedRoutes; n != 1 {
		t.Errorf("attachedRoutes %d, want 1", n)
	}

	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}}}
	merged, refused := config.Merge(base, res.Provided)
	if len(refused) > 0 {
		t.Fatalf("refused parts: %v", refused)
	}
	rt := router.New(router.Config{})
	defer rt.Close()
	if err := rt.Apply(merged); err != nil {
		t.Fatalf("the router refuses the translated configuration: %v", err)
	}
	for _, tc := range []struct {
		host, path string
		header     string
		code       int
		body       string
		want       http.Header
	}{
		{"shop.example.com", "/api/items", "", 200, "api shop.example.com/api/items ", nil},
		{"shop.example.com", "/api", "", 200, "api shop.example.com/api ", nil},
		{"shop.example.com", "/apix", "", 200, "web shop.example.com/apix ", nil}, // element-wise prefix
		{"shop.example.com", "/api/exact", "canary", 200, "web shop.example.com/api/exact ", nil},
		{"shop.example.com", "/api/exact", "", 200, "api shop.example.com/api/exact ", nil},
		{"other.example.com", "/api", "", 404, "", nil},
		{"shop.example.com", "/old/page", "", 301, "", http.Header{"Location": {"https://shop.example.com/old/page"}}},
		{"shop.example.com", "/rewrite/x", "", 200, "api internal.example/new yes", http.Header{"X-Answer": {"rewritten"}}},
		{"shop.example.com", "/mirrored", "", 200, "api shop.example.com/mirrored ", nil},
		{"shop.example.com", "/prefix", "", 200, "api shop.example.com/v2 ", nil},
		{"shop.example.com", "/moved/x?a=1", "", 302, "", http.Header{"Location": {"http://new.example.com/here/x?a=1"}}},
		{"shop.example.com", "/prefix/a/b", "", 200, "api shop.example.com/v2/a/b ", nil},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		if tc.header != "" {
			req.Header.Set("X-Env", tc.header)
		}
		rec := httptest.NewRecorder()
		rt.Handler("web").ServeHTTP(rec, req)
		if rec.Code != tc.code || (tc.body != "" && rec.Body.String() != tc.body) {
			t.Errorf("%s%s (X-Env %q): %d %q, want %d %q", tc.host, tc.path, tc.header, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
		for k, v := range tc.want {
			if got := rec.Header().Values(k); !slices.Equal(got, v) {
				t.Errorf("%s%s: header %s %q, want %q", tc.host, tc.path, k, got, v)
			}
		}
	}
	// The mirror gets its copy in the background.
	select {
	case p := <-mirrored:
		if p != "/mirrored" {
			t.Errorf("the mirror got %s, want /mirrored", p)
		}
	case <-ctx.Done():
		t.Error("the mirror got no copy of /mirrored")
	}
}
