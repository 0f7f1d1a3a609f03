package e2e

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// gwEnv is a kubeEnv whose replicas follow the Gateway API objects.
type gwEnv struct {
	*kubeEnv
	gw gatewayclient.Interface
}

const gwController = "tollgate-proxy.io/gateway-controller"

// newGatewayEnv starts the API server with the Gateway API CRDs and two
// replicas with [providers.kubernetesGateway], under the shipped
// ClusterRole; listener port 80 is the entry point web, 443 websecure.
func newGatewayEnv(t *testing.T) *gwEnv {
	t.Helper()
	needPodNet(t)
	e := &gwEnv{kubeEnv: &kubeEnv{t: t, pods: map[string]*pod{}}}
	e.kube = testserver.StartKube(t)
	e.kube.InstallGatewayAPI(t)
	e.admin = e.kube.Client(t)
	gw, err := gatewayclient.NewForConfig(e.kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	for ns, labels := range map[string]map[string]string{"gw": nil, "apps": nil, "shop": {"team": "shop"}, "elsewhere": {"team": "other"}} {
		e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}})
	}
	token := e.kube.ServiceAccountTokenFile(t, "tollgate", "tollgate")
	e.bindShippedRole("tollgate", "tollgate")
	e.proxy = testserver.NewProxy(t, strings.TrimPrefix(e.kube.URL, "https://"))
	e.c = newCluster(t, "etcd://"+etcdAddr(t), "gateway", 2)
	e.c.extra = fmt.Sprintf(`
[providers.kubernetesGateway]
endpoint = "https://%s"
tokenFile = %q
caFile = %q
entryPoints = { "80" = "web", "443" = "websecure" }
  [providers.kubernetesGateway.statusAddress]
  ip = "192.0.2.20"
`, e.proxy.Addr(), token, e.kube.CAFile)
	e.c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", nil)
	return e
}

// echo starts a pod that answers "NAME HOST URI X-ADDED" after delay, with
// the header X-Pod: NAME.
func (e *gwEnv) echo(name, ip string, delay time.Duration) *pod {
	e.t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(podPort)))
	if err != nil {
		e.t.Fatalf("pod %s: %v", name, err)
	}
	p := &pod{name: name, ip: ip}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("X-Pod", name)
		fmt.Fprintf(w, "%s %s %s %s", name, r.Host, r.URL.RequestURI(), r.Header.Get("X-Added"))
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	e.t.Cleanup(func() { _ = p.srv.Close() })
	e.mu.Lock()
	e.pods[ip] = p
	e.mu.Unlock()
	return p
}

// apply creates Gateway API objects as the admin.
func (e *gwEnv) apply(objs ...any) {
	e.t.Helper()
	ctx, c := e.ctx(), e.gw
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *gatewayv1.GatewayClass:
			_, err = c.GatewayV1().GatewayClasses().Create(ctx, o, metav1.CreateOptions{})
		case *gatewayv1.Gateway:
			_, err = c.GatewayV1().Gateways(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *gatewayv1.HTTPRoute:
			_, err = c.GatewayV1().HTTPRoutes(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *gatewayv1beta1.ReferenceGrant:
			_, err = c.GatewayV1beta1().ReferenceGrants(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			e.create(obj)
			continue
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			e.t.Fatalf("create %T: %v", obj, err)
		}
	}
}

func gwListener(name string, port int32, proto gatewayv1.ProtocolType, host string, from gatewayv1.FromNamespaces) gatewayv1.Listener {
	l := gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: gatewayv1.PortNumber(port), Protocol: proto,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptrTo(from)}}}
	if host != "" {
		l.Hostname = ptrTo(gatewayv1.Hostname(host))
	}
	return l
}

// httpRoute is a route in ns attached to the listener section of the
// Gateway gw/main.
func httpRoute(ns, name, section string, hosts []string, rules ...gatewayv1.HTTPRouteRule) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Namespace: ptrTo(gatewayv1.Namespace("gw")), Name: "main", SectionName: ptrTo(gatewayv1.SectionName(section))}}}, Rules: rules}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return r
}

func toService(ns, name string, weight int32) gatewayv1.HTTPBackendRef {
	ref := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{Weight: ptrTo(weight),
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptrTo(gatewayv1.PortNumber(80))}}}
	if ns != "" {
		ref.Namespace = ptrTo(gatewayv1.Namespace(ns))
	}
	return ref
}

func pathMatch(typ gatewayv1.PathMatchType, v string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: ptrTo(typ), Value: ptrTo(v)}}
}

func rule(to string, matches ...gatewayv1.HTTPRouteMatch) gatewayv1.HTTPRouteRule {
	return gatewayv1.HTTPRouteRule{Matches: matches, BackendRefs: []gatewayv1.HTTPBackendRef{toService("", to, 1)}}
}

func withFilter(r gatewayv1.HTTPRouteRule, f gatewayv1.HTTPRouteFilter) gatewayv1.HTTPRouteRule {
	r.Filters = append(r.Filters, f)
	return r
}

// gwRequest is one request through a replica's entry point web (or
// websecure with tls).
type gwRequest struct {
	method, host, path string
	header             http.Header
	tls                *x509.CertPool
}

type gwAnswer struct {
	code   int
	body   string
	header http.Header
}

var gwHTTP = &http.Client{Timeout: 10 * time.Second,
	Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (r *replica) do(q gwRequest) (gwAnswer, error) {
	scheme, port, client := "http", r.http, gwHTTP
	if q.tls != nil {
		scheme, port = "https", r.https
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: q.host, RootCAs: q.tls},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
			}}}
		defer client.CloseIdleConnections()
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, q.path)
	if q.tls != nil {
		url = fmt.Sprintf("https://%s%s", q.host, q.path)
	}
	req, err := http.NewRequest(cmp.Or(q.method, http.MethodGet), url, nil)
	if err != nil {
		return gwAnswer{}, err
	}
	req.Host = q.host
	for k, v := range q.header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return gwAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return gwAnswer{resp.StatusCode, string(b), resp.Header}, err
}

// expect waits until every running replica answers q with code and a
// body that starts with body, and returns the last answer.
func (e *gwEnv) expect(t *testing.T, q gwRequest, code int, body string) gwAnswer {
	t.Helper()
	var last gwAnswer
	for _, r := range e.c.replicas {
		if r.cmd == nil {
			continue
		}
		var err error
		waitFor(t, 30*time.Second, fmt.Sprintf("%d %q from replica %s for %s %s%s", code, body, r.id, q.method, q.host, q.path), func() bool {
			last, err = r.do(q)
			return err == nil && last.code == code && strings.HasPrefix(last.body, body)
		}, func() string {
			return fmt.Sprintf("last: %d %q %v\n%s", last.code, last.body, err, tail(r.log.String(), 20))
		})
	}
	return last
}

// routeConds returns the conditions of our parents entry of a route.
func (e *gwEnv) routeConds(ns, name string) ([]metav1.Condition, string) {
	r, err := e.gw.GatewayV1().HTTPRoutes(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err.Error()
	}
	for _, ps := range r.Status.Parents {
		if ps.ControllerName == gwController {
			return ps.Conditions, fmt.Sprintf("%+v", ps.Conditions)
		}
	}
	return nil, fmt.Sprintf("no parents entry of ours: %+v", r.Status.Parents)
}

func hasCond(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string) bool {
	return slices.ContainsFunc(conds, func(c metav1.Condition) bool {
		return c.Type == typ && c.Status == status && (reason == "" || c.Reason == reason)
	})
}

// waitRoute waits until our parents entry of route ns/name has the
// condition typ with status and reason.
func (e *gwEnv) waitRoute(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	var last string
	waitFor(t, 30*time.Second, fmt.Sprintf("HTTPRoute %s/%s %s=%s (%s)", ns, name, typ, status, reason), func() bool {
		var conds []metav1.Condition
		conds, last = e.routeConds(ns, name)
		return hasCond(conds, typ, status, reason)
	}, func() string { return last })
}

// waitEvent waits for an Event of type typ on HTTPRoute apps/name whose
// message contains want.
func (e *gwEnv) waitEvent(t *testing.T, name, typ, want string) {
	t.Helper()
	var seen []string
	waitFor(t, 30*time.Second, "a "+typ+" Event on HTTPRoute apps/"+name+" saying "+want, func() bool {
		evs, err := e.admin.CoreV1().Events("apps").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false
		}
		seen = seen[:0]
		for _, ev := range evs.Items {
			seen = append(seen, ev.InvolvedObject.Kind+" "+ev.Type+": "+ev.Message)
			if ev.InvolvedObject.Kind == "HTTPRoute" && ev.Type == typ && strings.Contains(ev.Message, want) {
				return true
			}
		}
		return false
	}, func() string { return strings.Join(seen, "\n") })
}

// statusWriters returns the managers of the status of an object's
// managedFields.
func statusWriters(mfs []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, mf := range mfs {
		if mf.Subresource == "status" {
			out = append(out, mf.Manager)
		}
	}
	return out
}

// TestGateway: two replicas serve the Gateway API objects of a real API
// server through the shipped RBAC role, with pods behind EndpointSlices,
// and the leader writes their status.
func TestGateway(t *testing.T) {
	start := time.Now()
	e := newGatewayEnv(t)
	// Pods and Services.
	for i, name := range []string{"m-exact", "m-prefix", "m-regex", "m-header", "m-query", "m-method", "m-default", "f-echo", "f-mirror", "w-a", "w-b", "x-shop", "s-echo"} {
		e.service("apps", name, e.echo(name, fmt.Sprintf("10.77.100.%d", i+1), 0))
	}
	e.service("apps", "slow", e.echo("slow", "10.77.101.1", time.Second))
	e.service("shop", "x-shop", e.echo("x-shop-pod", "10.77.102.1", 0))
	e.service("shop", "sel", e.echo("sel", "10.77.102.2", 0))
	e.service("elsewhere", "sel", e.echo("sel-elsewhere", "10.77.103.1", 0))
	e.service("gw", "same", e.echo("same", "10.77.104.1", 0))
	cert, key, _ := selfSignedPEM(t, "secure.gw.test")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}})

	// The class and the Gateways.
	https := gwListener("https", 443, gatewayv1.HTTPSProtocolType, "secure.gw.test", gatewayv1.NamespacesFromAll)
	https.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "secure-tls"}}}
	selected := gwListener("selected", 80, gatewayv1.HTTPProtocolType, "*.sel.gw.test", gatewayv1.NamespacesFromSelector)
	selected.AllowedRoutes.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}}
	// The API server refuses two listeners with the same port, protocol
	// and hostname: b conflicts by its protocol.
	clashing := gwListener("b", 80, gatewayv1.HTTPSProtocolType, "clash.gw.test", gatewayv1.NamespacesFromAll)
	clashing.TLS = https.TLS
	// A listener whose certificate comes from the cluster's ACME.
	byACME := gwListener("acme", 443, gatewayv1.HTTPSProtocolType, "acme.gw.test", gatewayv1.NamespacesFromAll)
	byACME.TLS = &gatewayv1.ListenerTLSConfig{Options: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{"tollgate-proxy.io/acme": "true"}}
	e.apply(
		&gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "tollgate"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: gwController}},
		&gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		&gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "main"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "tollgate", Listeners: []gatewayv1.Listener{
			gwListener("http", 80, gatewayv1.HTTPProtocolType, "", gatewayv1.NamespacesFromAll), https, selected,
			gwListener("same", 80, gatewayv1.HTTPProtocolType, "same.gw.test", gatewayv1.NamespacesFromSame), byACME,
		}}},
		&gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "clash"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "tollgate", Listeners: []gatewayv1.Listener{
			gwListener("a", 80, gatewayv1.HTTPProtocolType, "clash.gw.test", gatewayv1.NamespacesFromAll),
			clashing,
			gwListener("c", 8081, gatewayv1.HTTPProtocolType, "", gatewayv1.NamespacesFromAll),
		}}},
		&gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "theirs"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "other", Listeners: []gatewayv1.Listener{
			gwListener("http", 80, gatewayv1.HTTPProtocolType, "", gatewayv1.NamespacesFromAll)}}},
	)
	// The routes.
	header := gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "X-Env", Value: "canary"}}}
	query := gatewayv1.HTTPRouteMatch{QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: "v", Value: "2"}}}
	method := gatewayv1.HTTPRouteMatch{Method: ptrTo(gatewayv1.HTTPMethodPost)}
	weighted := gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{toService("", "w-a", 3), toService("", "w-b", 1)}}
	bounded := rule("slow", pathMatch(gatewayv1.PathMatchPathPrefix, "/bounded"))
	bounded.Timeouts = &gatewayv1.HTTPRouteTimeouts{BackendRequest: ptrTo(gatewayv1.Duration("300ms"))}
	e.apply(
		httpRoute("apps", "matches", "http", []string{"match.gw.test"},
			rule("m-exact", pathMatch(gatewayv1.PathMatchExact, "/exact")),
			rule("m-prefix", pathMatch(gatewayv1.PathMatchPathPrefix, "/prefix")),
			rule("m-header", header), rule("m-query", query), rule("m-method", method),
			rule("m-default")),
		// A RegularExpression path ranks below every PathPrefix one, so
		// the catch-all rule of "matches" would take its requests.
		httpRoute("apps", "regex", "http", []string{"regex.gw.test"}, rule("m-regex", pathMatch(gatewayv1.PathMatchRegularExpression, "/re/[0-9]+"))),
		httpRoute("apps", "filters", "http", []string{"filters.gw.test"},
			withFilter(rule("f-echo", pathMatch(gatewayv1.PathMatchPathPrefix, "/reqhdr")), gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
				RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Added", Value: "yes"}}}}),
			withFilter(rule("f-echo", pathMatch(gatewayv1.PathMatchPathPrefix, "/resphdr")), gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
				ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Answer", Value: "done"}}, Remove: []string{"X-Pod"}}}),
			gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{pathMatch(gatewayv1.PathMatchPathPrefix, "/redirect")}, Filters: []gatewayv1.HTTPRouteFilter{{
				Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{Scheme: ptrTo("https"), StatusCode: ptrTo(301)}}}},
			withFilter(rule("f-echo", pathMatch(gatewayv1.PathMatchPathPrefix, "/rewrite")), gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite,
				URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: ptrTo(gatewayv1.PreciseHostname("internal.gw.test")),
					Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptrTo("/new")}}}),
			withFilter(rule("f-echo", pathMatch(gatewayv1.PathMatchPathPrefix, "/mirror")), gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror,
				RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "f-mirror", Port: ptrTo(gatewayv1.PortNumber(80))}}}),
		),
		httpRoute("apps", "weights", "http", []string{"weights.gw.test"}, weighted),
		httpRoute("apps", "timeouts", "http", []string{"slow.gw.test"}, bounded, rule("slow", pathMatch(gatewayv1.PathMatchPathPrefix, "/free"))),
		httpRoute("apps", "secure", "https", []string{"secure.gw.test"}, rule("s-echo")),
		// Two routes on the ACME listener: still one order.
		httpRoute("apps", "acme-a", "acme", nil, rule("s-echo", pathMatch(gatewayv1.PathMatchPathPrefix, "/a"))),
		httpRoute("apps", "acme-b", "acme", nil, rule("m-default", pathMatch(gatewayv1.PathMatchPathPrefix, "/b"))),
		httpRoute("shop", "selected", "selected", []string{"a.sel.gw.test"}, rule("sel")),
		httpRoute("elsewhere", "selected", "selected", []string{"b.sel.gw.test"}, rule("sel")),
		httpRoute("apps", "same", "same", nil, rule("m-default")),
		httpRoute("gw", "same", "same", nil, rule("same")),
		httpRoute("apps", "cross", "http", []string{"cross.gw.test"}, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{toService("shop", "x-shop", 1)}}),
		httpRoute("apps", "unknown", "http", []string{"unknown.gw.test"}, rule("nope")),
	)
	e.c.start()
	t.Logf("environment ready after %s", time.Since(start).Round(time.Millisecond))

	t.Run("matches", func(t *testing.T) {
		for _, tc := range []struct {
			q    gwRequest
			code int
			pod  string
		}{
			{gwRequest{host: "match.gw.test", path: "/exact"}, 200, "m-exact "},
			{gwRequest{host: "match.gw.test", path: "/exact/x"}, 200, "m-default "},
			{gwRequest{host: "match.gw.test", path: "/prefix/x"}, 200, "m-prefix "},
			{gwRequest{host: "match.gw.test", path: "/prefix"}, 200, "m-prefix "},
			{gwRequest{host: "match.gw.test", path: "/prefixx"}, 200, "m-default "},
			{gwRequest{host: "regex.gw.test", path: "/re/123"}, 200, "m-regex "},
			{gwRequest{host: "regex.gw.test", path: "/re/123/x"}, 404, ""},
			{gwRequest{host: "regex.gw.test", path: "/re/abc"}, 404, ""},
			{gwRequest{host: "match.gw.test", path: "/", header: http.Header{"X-Env": {"canary"}}}, 200, "m-header "},
			{gwRequest{host: "match.gw.test", path: "/?v=2"}, 200, "m-query "},
			{gwRequest{method: http.MethodPost, host: "match.gw.test", path: "/"}, 200, "m-method "},
			{gwRequest{host: "match.gw.test", path: "/"}, 200, "m-default "},
			{gwRequest{host: "other.gw.test", path: "/"}, 404, ""},
		} {
			e.expect(t, tc.q, tc.code, tc.pod)
		}
	})

	t.Run("filters", func(t *testing.T) {
		e.expect(t, gwRequest{host: "filters.gw.test", path: "/reqhdr"}, 200, "f-echo filters.gw.test /reqhdr yes")
		a := e.expect(t, gwRequest{host: "filters.gw.test", path: "/resphdr"}, 200, "f-echo ")
		if a.header.Get("X-Answer") != "done" || a.header.Get("X-Pod") != "" {
			t.Errorf("response headers %v, want X-Answer: done and no X-Pod", a.header)
		}
		a = e.expect(t, gwRequest{host: "filters.gw.test", path: "/redirect/x?a=1"}, 301, "")
		if loc := a.header.Get("Location"); loc != "https://filters.gw.test/redirect/x?a=1" {
			t.Errorf("Location %q, want https://filters.gw.test/redirect/x?a=1", loc)
		}
		e.expect(t, gwRequest{host: "filters.gw.test", path: "/rewrite/x"}, 200, "f-echo internal.gw.test /new/x ")
		mirror := e.pods["10.77.100.9"]
		before := mirror.served.Load()
		e.expect(t, gwRequest{host: "filters.gw.test", path: "/mirror"}, 200, "f-echo filters.gw.test /mirror")
		waitFor(t, 10*time.Second, "a copy of /mirror at the mirror", func() bool { return mirror.served.Load() > before })
	})

	t.Run("weights", func(t *testing.T) {
		e.expect(t, gwRequest{host: "weights.gw.test", path: "/"}, 200, "w-")
		a, b := e.pods["10.77.100.10"], e.pods["10.77.100.11"]
		a0, b0 := a.served.Load(), b.served.Load()
		const n = 400
		for i := range n {
			r := e.c.replicas[i%len(e.c.replicas)]
			if ans, err := r.do(gwRequest{host: "weights.gw.test", path: "/"}); err != nil || ans.code != 200 {
				t.Fatalf("request %d: %d %v", i, ans.code, err)
			}
		}
		na, nb := a.served.Load()-a0, b.served.Load()-b0
		ratio := float64(na) / float64(na+nb)
		t.Logf("weights 3:1 over %d requests: w-a %d, w-b %d, share of w-a %.3f (want 0.750)", n, na, nb, ratio)
		if na+nb != n || ratio < 0.70 || ratio > 0.80 {
			t.Errorf("w-a got %d and w-b %d of %d requests: share %.3f, want 0.75 ± 0.05", na, nb, n, ratio)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		e.expect(t, gwRequest{host: "slow.gw.test", path: "/bounded"}, http.StatusGatewayTimeout, "")
		e.expect(t, gwRequest{host: "slow.gw.test", path: "/free"}, 200, "slow ")
	})

	t.Run("HTTPS listener with a certificateRef", func(t *testing.T) {
		e.expect(t, gwRequest{host: "secure.gw.test", path: "/x", tls: roots}, 200, "s-echo secure.gw.test /x")
		// The route is attached to the HTTPS listener only.
		e.expect(t, gwRequest{host: "secure.gw.test", path: "/x"}, 404, "")
	})

	t.Run("GRPCRoute", func(t *testing.T) { e.testGRPCRoute(t) })

	t.Run("HTTPS listener with a certificate from ACME: one order", func(t *testing.T) {
		name := "acme.gw.test"
		got := e.c.waitCerts([]string{name}, 2*time.Minute, nil)
		e.c.checkServed(got, []string{name})
		pebbleRoots := e.c.pebble.IssuerRoots(t)
		e.expect(t, gwRequest{host: name, path: "/a", tls: pebbleRoots}, 200, "s-echo "+name+" /a")
		e.expect(t, gwRequest{host: name, path: "/b", tls: pebbleRoots}, 200, "m-default "+name+" /b")
		time.Sleep(2 * time.Second) // no second order follows
		if n := e.c.pebble.Orders()[name]; n != 1 {
			t.Fatalf("%d orders for %s, want 1 (orders: %v)", n, name, e.c.pebble.Orders())
		}
	})

	t.Run("allowedRoutes", func(t *testing.T) {
		e.expect(t, gwRequest{host: "a.sel.gw.test", path: "/"}, 200, "sel ")
		e.expect(t, gwRequest{host: "b.sel.gw.test", path: "/"}, 404, "")
		e.expect(t, gwRequest{host: "same.gw.test", path: "/"}, 200, "same ")
		e.waitRoute(t, "shop", "selected", "Accepted", metav1.ConditionTrue, "Accepted")
		e.waitRoute(t, "elsewhere", "selected", "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonNotAllowedByListeners))
		e.waitRoute(t, "apps", "same", "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonNotAllowedByListeners))
		e.waitRoute(t, "gw", "same", "Accepted", metav1.ConditionTrue, "Accepted")
	})

	t.Run("cross-namespace backend and ReferenceGrant", func(t *testing.T) {
		e.waitRoute(t, "apps", "cross", "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.RouteReasonRefNotPermitted))
		// A backend that cannot be resolved answers 500, as the Gateway
		// API asks, whether refused or missing.
		e.expect(t, gwRequest{host: "cross.gw.test", path: "/"}, http.StatusInternalServerError, "")
		e.expect(t, gwRequest{host: "unknown.gw.test", path: "/"}, http.StatusInternalServerError, "")
		e.apply(&gatewayv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "from-apps"}, Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "HTTPRoute", Namespace: "apps"}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service", Name: ptrTo(gatewayv1beta1.ObjectName("x-shop"))}},
		}})
		e.expect(t, gwRequest{host: "cross.gw.test", path: "/"}, 200, "x-shop-pod ")
		e.waitRoute(t, "apps", "cross", "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	})

	t.Run("statuses", func(t *testing.T) {
		e.waitRoute(t, "apps", "unknown", "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound))
		e.waitRoute(t, "apps", "matches", "Accepted", metav1.ConditionTrue, "Accepted")
		e.waitRoute(t, "apps", "matches", "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
		ctx := e.ctx()
		var last string
		waitFor(t, 30*time.Second, "GatewayClass tollgate Accepted", func() bool {
			c, err := e.gw.GatewayV1().GatewayClasses().Get(ctx, "tollgate", metav1.GetOptions{})
			if err != nil {
				return false
			}
			last = fmt.Sprintf("%+v", c.Status.Conditions)
			return hasCond(c.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
		}, func() string { return last })
		other, err := e.gw.GatewayV1().GatewayClasses().Get(ctx, "other", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if hasCond(other.Status.Conditions, "Accepted", metav1.ConditionTrue, "") {
			t.Errorf("another controller's class was accepted: %+v", other.Status.Conditions)
		}
		attached := map[string]int32{"https": 1, "selected": 1, "same": 1, "acme": 2}
		waitFor(t, 30*time.Second, "Gateway gw/main Accepted and Programmed, its listeners programmed with their routes", func() bool {
			g, err := e.gw.GatewayV1().Gateways("gw").Get(ctx, "main", metav1.GetOptions{})
			if err != nil {
				return false
			}
			last = fmt.Sprintf("%+v", g.Status)
			if !hasCond(g.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted") || !hasCond(g.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed") ||
				len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "192.0.2.20" || len(g.Status.Listeners) != 5 {
				return false
			}
			for _, l := range g.Status.Listeners {
				if !hasCond(l.Conditions, "Programmed", metav1.ConditionTrue, "Programmed") || !hasCond(l.Conditions, "ResolvedRefs", metav1.ConditionTrue, "") {
					return false
				}
				if want, ok := attached[string(l.Name)]; ok && l.AttachedRoutes != want {
					return false
				}
				if l.Name == "http" && l.AttachedRoutes < 6 {
					return false
				}
			}
			return true
		}, func() string { return last })
		waitFor(t, 30*time.Second, "Gateway gw/clash with conflicted listeners and a port without entry point", func() bool {
			g, err := e.gw.GatewayV1().Gateways("gw").Get(ctx, "clash", metav1.GetOptions{})
			if err != nil || len(g.Status.Listeners) != 3 {
				return false
			}
			last = fmt.Sprintf("%+v", g.Status)
			ls := g.Status.Listeners
			return hasCond(ls[0].Conditions, "Conflicted", metav1.ConditionTrue, string(gatewayv1.ListenerReasonProtocolConflict)) &&
				hasCond(ls[1].Conditions, "Conflicted", metav1.ConditionTrue, string(gatewayv1.ListenerReasonProtocolConflict)) &&
				hasCond(ls[2].Conditions, "Accepted", metav1.ConditionFalse, string(gatewayv1.ListenerReasonPortUnavailable)) &&
				hasCond(g.Status.Conditions, "Programmed", metav1.ConditionFalse, "")
		}, func() string { return last })
		theirs, err := e.gw.GatewayV1().Gateways("gw").Get(ctx, "theirs", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if hasCond(theirs.Status.Conditions, "Programmed", metav1.ConditionTrue, "") {
			t.Errorf("another controller's Gateway got a status: %+v", theirs.Status)
		}
		e.waitEvent(t, "unknown", corev1.EventTypeWarning, "service not found")
		e.waitEvent(t, "timeouts", corev1.EventTypeNormal, "response headers")
	})

	t.Run("status by the leader only, then by the next leader", func(t *testing.T) {
		ctx := e.ctx()
		lead := e.c.leader()
		var last string
		waitFor(t, 30*time.Second, "the route's status written by the leader only", func() bool {
			r, err := e.gw.GatewayV1().HTTPRoutes("apps").Get(ctx, "matches", metav1.GetOptions{})
			if err != nil {
				return false
			}
			last = fmt.Sprint(statusWriters(r.ManagedFields))
			return slices.Equal(statusWriters(r.ManagedFields), []string{"tollgate-" + lead.id})
		}, func() string { return last })
		e.c.stop(lead, syscall.SIGKILL)
		next := e.c.leader()
		e.apply(httpRoute("apps", "after-kill", "http", []string{"after-kill.gw.test"}, rule("m-default")))
		e.expect(t, gwRequest{host: "after-kill.gw.test", path: "/"}, 200, "m-default ")
		waitFor(t, time.Minute, "the new route's status written by the next leader", func() bool {
			r, err := e.gw.GatewayV1().HTTPRoutes("apps").Get(ctx, "after-kill", metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _ := e.routeConds("apps", "after-kill")
			last = fmt.Sprintf("%v %+v", statusWriters(r.ManagedFields), conds)
			return slices.Equal(statusWriters(r.ManagedFields), []string{"tollgate-" + next.id}) && hasCond(conds, "Accepted", metav1.ConditionTrue, "Accepted")
		}, func() string { return last })
	})
	t.Logf("TestGateway took %s", time.Since(start).Round(time.Millisecond))
}
