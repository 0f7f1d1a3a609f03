package gateway

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// TestRefusedRouteStatus: a route the sink refused is not Accepted, with
// the sink's reason; the others keep their status.
func TestRefusedRouteStatus(t *testing.T) {
	o := base()
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{
		route("shop", "bad", []string{"bad.example.com"}, []gatewayv1.ParentReference{parent("web")}, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}}),
		route("shop", "good", []string{"good.example.com"}, []gatewayv1.ParentReference{parent("web")}, gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}}),
	}
	res := Translate(settings, o)
	refuse(res, []config.Refusal{{Provider: ProviderName, Owner: "httproute shop/bad", Err: errors.New("router clash")}})
	conds := res.HTTPRoutes["shop/bad"].Parents[0].Conditions
	wantCond(t, "refused route", conds, "Accepted", "False", string(gatewayv1.RouteReasonUnsupportedValue))
	if c := condition(conds, "Accepted"); c.Message != "not served: router clash" {
		t.Errorf("message %q, want the sink's reason", c.Message)
	}
	wantCond(t, "other route", res.HTTPRoutes["shop/good"].Parents[0].Conditions, "Accepted", "True", "Accepted")
	if p := problemsOf(res)["HTTPRoute shop/bad"]; len(p) != 1 || p[0] != "not served: router clash" {
		t.Errorf("problems %q, want the refusal", p)
	}
}

// TestUnusableCertificateStatus: a listener whose Secret the router
// cannot use is neither resolved nor programmed, and says why.
func TestUnusableCertificateStatus(t *testing.T) {
	o := base()
	l := listener("https", 443, "secure.example.com")
	l.Protocol = gatewayv1.HTTPSProtocolType
	l.TLS = &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "garbage"}}}
	o.Gateways[0].Spec.Listeners = append(o.Gateways[0].Spec.Listeners, l)
	o.Secrets = append(o.Secrets, tlsSecret("shop", "garbage"))
	checked := settings
	checked.CheckPair = func(config.KeyPair) error { return errors.New("names no host") }
	res := Translate(checked, o)
	st := res.Gateways["shop/web"]
	wantCond(t, "listener https", st.Listeners[1].Conditions, "ResolvedRefs", "False", string(gatewayv1.ListenerReasonInvalidCertificateRef))
	wantCond(t, "listener https", st.Listeners[1].Conditions, "Programmed", "False", string(gatewayv1.ListenerReasonInvalid))
	wantCond(t, "listener http", st.Listeners[0].Conditions, "Programmed", "True", string(gatewayv1.ListenerReasonProgrammed))
	if p := problemsOf(res)["Gateway shop/web"]; len(p) != 1 || !strings.HasPrefix(p[0], "listener https: certificateRef shop/garbage: malformed: ") {
		t.Errorf("problems %q, want the listener's", p)
	}

	// A well-formed certificate the router refuses (it names no host):
	// the listener stays resolved, as the Gateway API asks, and the
	// certificate is reported and not served.
	leaf := testcert.SelfSigned(t, testcert.Spec{CommonName: "no-sans"})
	o.Secrets[len(o.Secrets)-1].Data = map[string][]byte{corev1.TLSCertKey: leaf.CertPEM(), corev1.TLSPrivateKeyKey: leaf.KeyPEM(t)}
	o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
	res = Translate(checked, o)
	st = res.Gateways["shop/web"]
	wantCond(t, "listener https", st.Listeners[1].Conditions, "ResolvedRefs", "True", string(gatewayv1.ListenerReasonResolvedRefs))
	wantCond(t, "listener https", st.Listeners[1].Conditions, "Programmed", "True", string(gatewayv1.ListenerReasonProgrammed))
	if p := problemsOf(res)["Gateway shop/web"]; len(p) != 1 || p[0] != "listener https: certificateRef shop/garbage is not served: names no host" {
		t.Errorf("problems %q, want the certificate's", p)
	}
	for _, part := range res.Provided.Parts {
		if len(part.Certificates) != 0 {
			t.Errorf("certificates served: %v", part.Certificates)
		}
	}
}
