package gateway

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config"
)

// A GRPCRoute is served by the HTTPRoute machinery: fromGRPC turns it into
// the HTTPRoute of the same metadata, parentRefs and hostnames whose rules
// match the path "/SERVICE/METHOD" gRPC requests have, with the same
// header matches, filters and backendRefs, and the precedence and the
// problems of each method match kept aside (grpcMatch).

// grpcMatch is what the translation keeps of a GRPCRoute match: its
// priority below the host rank, or why it cannot be served.
type grpcMatch struct {
	prio int
	bad  string
}

// Priority of a GRPCRoute match below the host rank, in the HTTPRoute
// layout so that the two kinds compare on a shared hostname: a method
// match ranks as an Exact path as long as its service (above every
// PathPrefix), then by the length of its method, then by its number of
// header matches, as the GRPCRoute precedence says; a match without a
// method ranks as the PathPrefix "/" with its header matches. Below the
// path, the method's length takes the 6 bits of the method flag and the
// header count (lengths past 63 rank alike), the header count the 5 of
// the query count.
const grpcMethodShift = headerShift

func grpcPriority(service, method string, headers int) int {
	if service == "" && method == "" {
		return (2<<11|1)<<pathShift | min(headers, 31)<<headerShift
	}
	return (3<<11|min(len(service), 2047))<<pathShift | min(len(method), 63)<<grpcMethodShift | min(headers, 31)
}

// fromGRPC turns GRPCRoute g into the HTTPRoute the routes are built
// from, and the matches of each rule.
func fromGRPC(g *gatewayv1.GRPCRoute) (*gatewayv1.HTTPRoute, [][]grpcMatch) {
	r := &gatewayv1.HTTPRoute{ObjectMeta: g.ObjectMeta}
	r.Spec.CommonRouteSpec = g.Spec.CommonRouteSpec
	r.Spec.Hostnames = g.Spec.Hostnames
	matches := make([][]grpcMatch, len(g.Spec.Rules))
	for ri, gr := range g.Spec.Rules {
		rule := gatewayv1.HTTPRouteRule{Name: gr.Name, Filters: httpFilters(gr.Filters), SessionPersistence: gr.SessionPersistence}
		for _, be := range gr.BackendRefs {
			rule.BackendRefs = append(rule.BackendRefs, gatewayv1.HTTPBackendRef{BackendRef: be.BackendRef, Filters: httpFilters(be.Filters)})
		}
		for _, m := range gr.Matches {
			hm, gm := httpMatch(m)
			rule.Matches = append(rule.Matches, hm)
			matches[ri] = append(matches[ri], gm)
		}
		r.Spec.Rules = append(r.Spec.Rules, rule)
	}
	return r, matches
}

// httpFilters turns GRPCRoute filters into the HTTPRoute filters of the
// same type and settings (the types share their names).
func httpFilters(fs []gatewayv1.GRPCRouteFilter) []gatewayv1.HTTPRouteFilter {
	var out []gatewayv1.HTTPRouteFilter
	for _, f := range fs {
		out = append(out, gatewayv1.HTTPRouteFilter{
			Type:                   gatewayv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		})
	}
	return out
}

// httpMatch turns a GRPCRoute match into an HTTPRoute match on the path
// and headers, with its priority or why it cannot be served.
func httpMatch(m gatewayv1.GRPCRouteMatch) (gatewayv1.HTTPRouteMatch, grpcMatch) {
	var hm gatewayv1.HTTPRouteMatch
	var gm grpcMatch
	for _, h := range m.Headers {
		typ := gatewayv1.HeaderMatchType(ptrOr(h.Type, gatewayv1.GRPCHeaderMatchExact))
		hm.Headers = append(hm.Headers, gatewayv1.HTTPHeaderMatch{Type: &typ, Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value})
	}
	gm.prio = grpcPriority("", "", len(m.Headers))
	if m.Method == nil {
		return hm, gm
	}
	service, method := ptrOr(m.Method.Service, ""), ptrOr(m.Method.Method, "")
	gm.prio = grpcPriority(service, method, len(m.Headers))
	if service == "" && method == "" {
		gm.bad = "a method match needs a service or a method"
		return hm, gm
	}
	for _, v := range []struct{ what, value string }{{"service", service}, {"method", method}} {
		if strings.ContainsRune(v.value, 0) {
			gm.bad = fmt.Sprintf("method match %s %.100q contains NUL", v.what, v.value)
			return hm, gm
		}
	}
	var path string
	typ := gatewayv1.PathMatchRegularExpression
	switch t := ptrOr(m.Method.Type, gatewayv1.GRPCMethodMatchExact); t {
	case gatewayv1.GRPCMethodMatchExact:
		if strings.Contains(service, "/") || strings.Contains(method, "/") {
			gm.bad = fmt.Sprintf("method match %.100q/%.100q: a service or method name has no /", service, method)
			return hm, gm
		}
		switch {
		case service != "" && method != "":
			path, typ = "/"+service+"/"+method, gatewayv1.PathMatchExact
		case service != "":
			path = "/" + regexp.QuoteMeta(service) + "/[^/]+"
		default:
			path = "/[^/]+/" + regexp.QuoteMeta(method)
		}
	case gatewayv1.GRPCMethodMatchRegularExpression:
		for _, v := range []struct{ what, value string }{{"service", service}, {"method", method}} {
			if _, err := regexp.Compile(v.value); err != nil {
				gm.bad = fmt.Sprintf("method match %s regular expression: %v", v.what, err)
				return hm, gm
			}
		}
		path = "/(?:" + orAny(service) + ")/(?:" + orAny(method) + ")"
	default:
		gm.bad = fmt.Sprintf("method match type %s is not supported", t)
		return hm, gm
	}
	hm.Path = &gatewayv1.HTTPPathMatch{Type: &typ, Value: &path}
	return hm, gm
}

// orAny is re, or what matches any service or method name when re is
// empty.
func orAny(re string) string {
	if re == "" {
		return "[^/]+"
	}
	return re
}

// grpcMatch gives match mi of rule ri of a GRPCRoute its priority, and
// says why it cannot be served: what the method match found, else what
// the HTTPRoute match made of it did (err).
func (b *routeBuild) grpcMatch(ri, mi int, err string) (int, string) {
	if ri >= len(b.grpc) || mi >= len(b.grpc[ri]) {
		return grpcPriority("", "", 0), err // a rule without matches matches every request
	}
	gm := b.grpc[ri][mi]
	return gm.prio, cmp.Or(gm.bad, err)
}

// grpcServers makes a GRPCRoute's backends speak HTTP/2: without TLS
// (h2c) unless the Service port says https.
func grpcServers(servers []config.Server) []config.Server {
	out := make([]config.Server, 0, len(servers))
	for _, s := range servers {
		if rest, ok := strings.CutPrefix(s.URL, "http://"); ok {
			s.URL = "h2c://" + rest
		}
		out = append(out, s)
	}
	return out
}
