package gateway

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// TestTranslateQuoting: every value a route puts into a rule reaches the
// router's matcher as it was written, backquotes included; what the
// router would refuse is refused by the translation, the rule only, with
// the reason in the route's status.
func TestTranslateQuoting(t *testing.T) {
	header := func(name, value string) gatewayv1.HTTPRouteMatch {
		return gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
	}
	headerRegex := func(name, value string) gatewayv1.HTTPRouteMatch {
		m := header(name, value)
		m.Headers[0].Type = new(gatewayv1.HeaderMatchRegularExpression)
		return m
	}
	query := func(name, value string) gatewayv1.HTTPRouteMatch {
		return gatewayv1.HTTPRouteMatch{QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
	}
	path := func(typ gatewayv1.PathMatchType, v string) gatewayv1.HTTPRouteMatch {
		return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(typ), Value: new(v)}}
	}
	for _, tc := range []struct {
		name  string
		match gatewayv1.HTTPRouteMatch
		want  []string // the matcher's arguments, as the router reads them
		bad   string   // or what the status says
	}{
		{"header name with a backquote", header("X`y", "1"), []string{"X`y", "1"}, ""},
		{"header value with a backquote", header("X-A", "a`b"), []string{"X-A", "a`b"}, ""},
		{"header value with a tab", header("X-A", "a\tb"), []string{"X-A", "a\tb"}, ""},
		{"header regex with a backquote", headerRegex("X-A", "a`.*"), []string{"X-A", "^(?:a`.*)$"}, ""},
		{"query with backquotes", query("q`", "v`"), []string{"q`", "v`"}, ""},
		{"exact path with a backquote", path(gatewayv1.PathMatchExact, "/a`b"), []string{"/a`b"}, ""},
		{"header value with a line break", header("X-A", "a\nb"), nil, "line break"},
		{"header name not a token", header("X A", "1"), nil, "the router cannot match this"},
		{"query name with =", query("a=b", "1"), nil, "the router cannot match this"},
		{"path not starting with /", path(gatewayv1.PathMatchExact, "api"), nil, "expected a path starting with"},
		{"path with NUL", path(gatewayv1.PathMatchExact, "/a\x00"), nil, "contains NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
				gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{tc.match}, BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}},
				gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
			res := Translate(settings, o)
			rt := routers(t, res) // every rule parses
			conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
			if rt["shop_app_shop_web_http_1_0_0@kubernetes-gateway"] == nil {
				t.Error("the other rule is not served")
			}
			r := rt["shop_app_shop_web_http_0_0_0@kubernetes-gateway"]
			if tc.bad != "" {
				wantCond(t, tc.name, conds, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
				if c := condition(conds, "Accepted"); !strings.Contains(c.Message, tc.bad) || !strings.Contains(c.Message, "rule 0 match 0") {
					t.Errorf("message %q, want rule 0 match 0 and %q", c.Message, tc.bad)
				}
				if r != nil {
					t.Errorf("router %+v, want none for the refused match", r)
				}
				return
			}
			wantCond(t, tc.name, conds, "Accepted", metav1.ConditionTrue, "Accepted")
			if r == nil {
				t.Fatal("no router")
			}
			e, err := rule.Parse(r.Rule)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			rule.Walk(e, func(x rule.Expr) bool {
				if m, ok := x.(*rule.Matcher); ok && slices.Equal(m.Args, tc.want) {
					found = true
				}
				return true
			})
			if !found {
				t.Errorf("rule %s has no matcher with arguments %q", r.Rule, tc.want)
			}
		})
	}
}

// TestTranslateHeaderFilterRefused: a header filter the headers
// middleware cannot hold is refused by the translation, with the reason.
func TestTranslateHeaderFilterRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    gatewayv1.HTTPHeaderFilter
		bad  string
	}{
		{"value with a line break", gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "a\r\nb"}}}, "line break"},
		{"added value with NUL", gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "a\x00"}}}, "NUL"},
		{"removed name with a space", gatewayv1.HTTPHeaderFilter{Remove: []string{"X A"}}, "not an HTTP token"},
		{"removed name with a slash", gatewayv1.HTTPHeaderFilter{Remove: []string{"a/b"}}, "not an HTTP token"},
		{"name the store cannot hold", gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "..", Value: "1"}}}, "cannot be stored"},
		{"name too long", gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: gatewayv1.HTTPHeaderName(strings.Repeat("x", 129)), Value: "1"}}}, "cannot be stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			o.HTTPRoutes = []*gatewayv1.HTTPRoute{route("shop", "app", nil, []gatewayv1.ParentReference{parent("web")},
				gatewayv1.HTTPRouteRule{Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &tc.f}},
					BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("", "app", 80, nil)}})}
			res := Translate(settings, o)
			conds := res.HTTPRoutes["shop/app"].Parents[0].Conditions
			wantCond(t, tc.name, conds, "Accepted", metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue))
			if c := condition(conds, "Accepted"); !strings.Contains(c.Message, tc.bad) {
				t.Errorf("message %q, want %q", c.Message, tc.bad)
			}
			if rt := routers(t, res); len(rt) != 0 {
				t.Errorf("routers %v, want none", rt)
			}
		})
	}
}
