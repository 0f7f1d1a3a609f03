package gateway

import (
	"fmt"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config"
)

// timeouts turns a rule's timeouts into the serversTransport its
// backends use: the shorter of request and backendRequest (zero disables
// either) bounds the wait for a backend's response headers, as a
// serversTransport's responseHeaderTimeout, and a request that exceeds it
// is answered 504. It returns the transport's name ("" without
// timeouts), a note on how that differs from the Gateway API, and why the
// timeouts cannot be served.
func (b *routeBuild) timeouts(t *gatewayv1.HTTPRouteTimeouts) (transport, note, bad string) {
	if t == nil {
		return "", "", ""
	}
	var bound time.Duration
	for _, d := range []struct {
		what string
		v    *gatewayv1.Duration
	}{{"request", t.Request}, {"backendRequest", t.BackendRequest}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(string(*d.v))
		if err != nil || v < 0 {
			return "", "", fmt.Sprintf("timeouts.%s %q is not a duration", d.what, *d.v)
		}
		if v > 0 && (bound == 0 || v < bound) {
			bound = v
		}
	}
	if bound == 0 {
		return "", "", ""
	}
	name := objectName("timeout", fmt.Sprintf("%dms", bound.Milliseconds()))
	if b.part.ServersTransports == nil {
		b.part.ServersTransports = map[string]*config.ServersTransport{}
	}
	b.part.ServersTransports[name] = &config.ServersTransport{ForwardingTimeouts: &config.ForwardingTimeouts{ResponseHeaderTimeout: config.Duration(bound)}}
	note = fmt.Sprintf("timeouts are served as a %s bound on the wait for each backend's response headers (answered 504): the time to read the request and to stream the response body is not bounded", bound)
	return name, note, ""
}
