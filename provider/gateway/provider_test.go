package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	kvbackend "github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/leader"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
	"github.com/tollgate-proxy/tollgate/router"
)

// apiWithGateway starts an API server with the Gateway API CRDs, the
// namespace shop with the Service web, the GatewayClass tollgate of our
// controller and the Gateway shop/web (listener http on port 80).
func apiWithGateway(t *testing.T) (*testserver.Kube, gatewayclient.Interface) {
	t.Helper()
	kube := testserver.StartKube(t)
	kube.InstallGatewayAPI(t)
	ctx := t.Context()
	core := kube.Client(t)
	gw, err := gatewayclient.NewForConfig(kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := service("shop", "web", 80)
	for _, err := range []error{
		func() error {
			_, err := core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := core.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := gw.GatewayV1().GatewayClasses().Create(ctx, class("tollgate", ControllerName), metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := gw.GatewayV1().Gateways("shop").Create(ctx, gateway("shop", "web", listener("http", 80, "")), metav1.CreateOptions{})
			return err
		}(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return kube, gw
}

// runProvider runs a provider with settings s (its connection filled in),
// writing status as manager under l when l is not nil, and a real router,
// until the test ends.
func runProvider(t *testing.T, kube *testserver.Kube, manager string, s config.KubernetesGateway, l kubernetes.Leadership) *Provider {
	t.Helper()
	s.Endpoint, s.TokenFile, s.CAFile = kube.URL, kube.AdminTokenFile(), kube.CAFile
	s.EntryPoints = map[string]string{"80": "web"}
	rt := router.New(router.Config{})
	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}}}
	sources := config.NewSources(base, rt.Apply)
	p, err := New(Config{Settings: &s, Sink: sources, Base: base, FieldManager: manager})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- p.Run(ctx) }()
	go func() {
		if l == nil {
			done <- nil
			return
		}
		done <- p.RunLeader(ctx, l)
	}()
	t.Cleanup(func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		rt.Close()
	})
	return p
}

// always is a leadership this replica holds for good.
type always struct{}

func (always) Await(context.Context) (kubernetes.Fence, error) { return always{}, nil }
func (always) Done() <-chan struct{}                           { return nil }
func (always) Check(context.Context) error                     { return nil }

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatusWritten: the leader writes the class's, the Gateway's and the
// route's status; a condition whose status does not change keeps its
// LastTransitionTime while its observedGeneration follows the object;
// another controller's parents entry stays.
func TestStatusWritten(t *testing.T) {
	kube, gw := apiWithGateway(t)
	ctx := t.Context()
	routes := gw.GatewayV1().HTTPRoutes("shop")
	r := route("shop", "app", []string{"shop.example.com"}, []gatewayv1.ParentReference{parent("web"), parent("theirs")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "web", 80, nil)}})
	created, err := routes.Create(ctx, r, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	theirs := gatewayv1.RouteParentStatus{ParentRef: created.Spec.ParentRefs[1], ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "", LastTransitionTime: metav1.Now()}}}
	created.Status.Parents = []gatewayv1.RouteParentStatus{theirs}
	if _, err := routes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A route outside the namespaces served is not seen at all: it gets
	// no status (if seen, it would be NotAllowedByListeners).
	if _, err := kube.Client(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	outside := route("elsewhere", "outside", nil, []gatewayv1.ParentReference{{Namespace: new(gatewayv1.Namespace("shop")), Name: "web"}},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "web", 80, nil)}})
	if _, err := gw.GatewayV1().HTTPRoutes("elsewhere").Create(ctx, outside, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A header value with a line break passes the API server's checks,
	// but no router could match it: the translation refuses the match,
	// and the route's status says why.
	refused := route("shop", "refused", []string{"refused.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "X-Y", Value: "a\nb"}}}},
			BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "web", 80, nil)}})
	if _, err := routes.Create(ctx, refused, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A GRPCRoute is followed and gets its status as an HTTPRoute does:
	// the Gateway's only listener is an HTTP one, which does not take it.
	rpc := grpcRoute("shop", "rpc", []string{"rpc.example.com"}, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.GRPCRouteRule{Matches: []gatewayv1.GRPCRouteMatch{method(gatewayv1.GRPCMethodMatchExact, "pkg.Svc", "Get")},
			BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("", "web", 80, nil)}})
	if _, err := gw.GatewayV1().GRPCRoutes("shop").Create(ctx, rpc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	runProvider(t, kube, "tollgate-test", config.KubernetesGateway{Namespaces: []string{"shop"}, StatusAddress: &config.IngressEndpoint{IP: "192.0.2.7"}}, always{})

	ours := func(rt *gatewayv1.HTTPRoute) *gatewayv1.RouteParentStatus {
		for i := range rt.Status.Parents {
			if rt.Status.Parents[i].ControllerName == ControllerName {
				return &rt.Status.Parents[i]
			}
		}
		return nil
	}
	var got *gatewayv1.HTTPRoute
	waitFor(t, "the route's status", func() bool {
		got, err = routes.Get(ctx, "app", metav1.GetOptions{})
		return err == nil && ours(got) != nil
	})
	wantCond(t, "route", ours(got).Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "route", ours(got).Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	if len(got.Status.Parents) != 2 || got.Status.Parents[0].ControllerName != "example.com/other" {
		t.Errorf("parents %+v, want the other controller's entry kept and ours", got.Status.Parents)
	}
	accepted := condition(ours(got).Conditions, "Accepted")

	var bad *gatewayv1.HTTPRoute
	waitFor(t, "the refused route's status", func() bool {
		bad, err = routes.Get(ctx, "refused", metav1.GetOptions{})
		return err == nil && ours(bad) != nil
	})
	wantCond(t, "refused route", ours(bad).Conditions, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
	if msg := condition(ours(bad).Conditions, "Accepted").Message; !strings.Contains(msg, "line break") {
		t.Errorf("the refused route's Accepted message %q does not give the reason", msg)
	}

	var gotRPC *gatewayv1.GRPCRoute
	waitFor(t, "the GRPCRoute's status", func() bool {
		gotRPC, err = gw.GatewayV1().GRPCRoutes("shop").Get(ctx, "rpc", metav1.GetOptions{})
		return err == nil && len(gotRPC.Status.Parents) == 1
	})
	wantCond(t, "grpcroute", gotRPC.Status.Parents[0].Conditions, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonNotAllowedByListeners))
	wantCond(t, "grpcroute", gotRPC.Status.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")

	// attachedRoutes counts the refused route too: attachment depends on
	// allowedRoutes and parentRefs alone, as the Gateway API says (the
	// GRPCRoute is not attached).
	var g *gatewayv1.Gateway
	waitFor(t, "the Gateway's status", func() bool {
		g, err = gw.GatewayV1().Gateways("shop").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(g.Status.Listeners) == 1 && g.Status.Listeners[0].AttachedRoutes == 2
	})
	wantCond(t, "gateway", g.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted")
	wantCond(t, "gateway", g.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
	wantCond(t, "listener", g.Status.Listeners[0].Conditions, "Programmed", metav1.ConditionTrue, "Programmed")
	if len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "192.0.2.7" {
		t.Errorf("addresses %+v, want 192.0.2.7", g.Status.Addresses)
	}
	c, err := gw.GatewayV1().GatewayClasses().Get(ctx, "tollgate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantCond(t, "class", c.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted")

	// A change of the spec: Accepted stays True, with its time; the
	// backend goes missing, so ResolvedRefs changes, with a new time.
	time.Sleep(1100 * time.Millisecond) // times have a resolution of a second
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := routes.Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Rules[0].BackendRefs[0].Name = "missing"
		_, err = routes.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ResolvedRefs False", func() bool {
		got, err = routes.Get(ctx, "app", metav1.GetOptions{})
		return err == nil && ours(got) != nil && condition(ours(got).Conditions, "ResolvedRefs").Status == metav1.ConditionFalse
	})
	wantCond(t, "route", ours(got).Conditions, "ResolvedRefs", metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound))
	now := condition(ours(got).Conditions, "Accepted")
	if !now.LastTransitionTime.Equal(&accepted.LastTransitionTime) {
		t.Errorf("Accepted's LastTransitionTime moved from %s to %s, though its status stayed %s", accepted.LastTransitionTime, now.LastTransitionTime, now.Status)
	}
	if now.ObservedGeneration != got.Generation || got.Generation < 2 {
		t.Errorf("Accepted's observedGeneration %d, want the route's generation %d", now.ObservedGeneration, got.Generation)
	}
	if rr := condition(ours(got).Conditions, "ResolvedRefs"); !rr.LastTransitionTime.After(accepted.LastTransitionTime.Time) {
		t.Errorf("ResolvedRefs' LastTransitionTime %s did not move on from %s when its status changed", rr.LastTransitionTime, accepted.LastTransitionTime)
	}
	if o, err := gw.GatewayV1().HTTPRoutes("elsewhere").Get(ctx, "outside", metav1.GetOptions{}); err != nil || len(o.Status.Parents) > 0 {
		t.Errorf("a route outside the namespaces served got a status: %+v (err %v)", o.Status.Parents, err)
	}
	// Settled: the leader writes no more.
	rv := got.ResourceVersion
	time.Sleep(500 * time.Millisecond)
	if again, err := routes.Get(ctx, "app", metav1.GetOptions{}); err != nil || again.ResourceVersion != rv {
		t.Errorf("the route was written again without a change (resourceVersion %s, then %s; err %v)", rv, again.ResourceVersion, err)
	}
}

// unaware is a replica that lost the leadership without noticing: its
// term's Done never closes for it, and it is never given another term.
type unaware struct{ kubernetes.Leadership }

func (u *unaware) Await(ctx context.Context) (kubernetes.Fence, error) {
	if u.Leadership == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f, err := u.Leadership.Await(ctx)
	u.Leadership = nil
	if err != nil {
		return nil, err
	}
	return stillLeading{f}, nil
}

type stillLeading struct{ kubernetes.Fence }

func (stillLeading) Done() <-chan struct{} { return nil }

// TestStaleLeaderStatusLoses: a replica that lost the leadership without
// noticing never overwrites the Gateway status the next leader wrote;
// each replica publishes its own address, so the status shows whose
// write won.
func TestStaleLeaderStatusLoses(t *testing.T) {
	kube, gw := apiWithGateway(t)
	ctx := t.Context()
	st, err := kvbackend.Open(ctx, "etcd://"+testserver.Etcd(t).Addr, kvbackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	elector := func(id string) (*leader.Elector, context.CancelFunc, chan error) {
		e, err := leader.New(leader.Config{Store: st, Key: "t/leader", Node: leader.Node{ID: id}, TTL: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ectx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ectx) }()
		return e, stop, done
	}
	replica := func(ip string, l kubernetes.Leadership) {
		runProvider(t, kube, "tollgate-"+ip, config.KubernetesGateway{StatusAddress: &config.IngressEndpoint{IP: ip}}, l)
	}
	status := func() string {
		g, err := gw.GatewayV1().Gateways("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(g.Status.Addresses) == 0 {
			return ""
		}
		return g.Status.Addresses[0].Value
	}
	waitStatus := func(want string) {
		t.Helper()
		waitFor(t, "address "+want, func() bool { return status() == want })
	}
	ea, stopA, doneA := elector("a")
	replica("192.0.2.1", &unaware{Leadership: kubernetes.ElectorLeadership(ea, "t/"+StatusTermKey)})
	waitStatus("192.0.2.1")
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	eb, stopB, doneB := elector("b")
	defer func() { stopB(); <-doneB }()
	replica("192.0.2.2", kubernetes.ElectorLeadership(eb, "t/"+StatusTermKey))
	waitStatus("192.0.2.2")
	// a still believes it leads and sees a status that is not its own:
	// it tries to write it again on every change it sees.
	for i := range 5 {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			g, err := gw.GatewayV1().Gateways("shop").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			g.Labels = map[string]string{"poke": string(rune('a' + i))}
			_, err = gw.GatewayV1().Gateways("shop").Update(ctx, g, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if got := status(); got != "192.0.2.2" {
			t.Fatalf("the stale leader's status won: %q", got)
		}
	}
}
