package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// TestTranslateTimeouts: a rule's timeouts bound the wait for the
// backend's response headers with the shorter of the two, through a
// serversTransport of the part, with a note; the router answers 504 when
// the backend is slower, and the rule without timeouts waits.
func TestTranslateTimeouts(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer slow.Close()
	u, _ := url.Parse(slow.URL)
	port, _ := strconv.Atoi(u.Port())

	o := base()
	svc, es := service("shop", "slow", 80, u.Hostname())
	es.Ports = []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(port))}}
	o.Services = append(o.Services, svc)
	o.EndpointSlices = append(o.EndpointSlices, es)
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/bounded")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "slow", 80, nil)},
			Timeouts: &gatewayv1.HTTPRouteTimeouts{Request: new(gatewayv1.Duration("2s")), BackendRequest: new(gatewayv1.Duration("300ms"))}},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/free")}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "slow", 80, nil)},
			Timeouts: &gatewayv1.HTTPRouteTimeouts{Request: new(gatewayv1.Duration("0s"))}},
	)}
	res := Translate(settings, o)
	wantCond(t, "route", res.HTTPRoutes["shop/app"].Parents[0].Conditions, "Accepted", "True", "Accepted")
	bounded := service1(res, "shop_slow_80_timeout_300ms@kubernetes-gateway")
	if bounded == nil || bounded.LoadBalancer.ServersTransport != "timeout_300ms@kubernetes-gateway" {
		t.Fatalf("the bounded rule's service: %+v", bounded)
	}
	if st := res.Provided.Parts[0].ServersTransports["timeout_300ms@kubernetes-gateway"]; st == nil || st.ForwardingTimeouts.ResponseHeaderTimeout.Std() != 300*time.Millisecond {
		t.Errorf("the part's transport: %+v", st)
	}
	if notes := res.Notes["shop/app"]; len(notes) != 1 || !strings.Contains(notes[0], "response headers") {
		t.Errorf("notes %q, want one on the timeouts", notes)
	}

	merged, refused := config.Merge(&config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}}}, res.Provided)
	if len(refused) > 0 {
		t.Fatalf("refused: %v", refused)
	}
	rt := router.New(router.Config{})
	defer rt.Close()
	if err := rt.Apply(merged); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/bounded": http.StatusGatewayTimeout, "/free": http.StatusOK} {
		rec := httptest.NewRecorder()
		rt.Handler("web").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://shop.example.com"+path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}
