package testserver

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// TestInstallGatewayAPI installs the CRDs and creates a GatewayClass, a
// Gateway and an HTTPRoute with the typed clientset, then lists them back.
func TestInstallGatewayAPI(t *testing.T) {
	k := StartKube(t)
	k.InstallGatewayAPI(t)
	// A guard against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	gw, err := gatewayclient.NewForConfig(k.AdminConfig())
	if err != nil {
		t.Fatalf("gateway client: %v", err)
	}
	class := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "tollgate"},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: "tollgate-proxy.io/gateway-controller"},
	}
	if _, err := gw.GatewayV1().GatewayClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create gateway class: %v", err)
	}
	gateway := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: "tollgate",
			Listeners:        []gatewayv1.Listener{{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType}},
		},
	}
	if _, err := gw.GatewayV1().Gateways("default").Create(ctx, gateway, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create gateway: %v", err)
	}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "web"}}},
			Hostnames:       []gatewayv1.Hostname{"app.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{
				BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "app", Port: new(gatewayv1.PortNumber(80))}},
			}}}},
		},
	}
	if _, err := gw.GatewayV1().HTTPRoutes("default").Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}
	routes, err := gw.GatewayV1().HTTPRoutes("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list HTTPRoutes: %v", err)
	}
	if len(routes.Items) != 1 || routes.Items[0].Name != "app" {
		t.Fatalf("listed %d HTTPRoutes, want default/app", len(routes.Items))
	}
	// The API server applies the CRD's defaults: a path match of PathPrefix /.
	if m := routes.Items[0].Spec.Rules[0].Matches; len(m) != 1 || m[0].Path == nil || *m[0].Path.Value != "/" {
		t.Errorf("stored HTTPRoute matches %+v, want the default PathPrefix /", m)
	}
}
