package nginx

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

func (t *translation) backend() {
	var st config.ServersTransport
	used := false
	if v, ok := t.get("backend-protocol"); ok {
		switch strings.ToUpper(v) {
		case "HTTP":
			t.report("backend-protocol", Supported, "")
		case "HTTPS":
			t.r.Scheme = "https"
			st.InsecureSkipVerify, used = true, true
			t.report("backend-protocol", Supported, "https to the servers without checking their certificates, as ingress-nginx does without proxy-ssl-verify")
		case "GRPC":
			t.r.Scheme = "h2c"
			t.report("backend-protocol", Supported, "h2c (HTTP/2 without TLS) to the servers")
		case "GRPCS":
			t.r.Scheme = "https"
			st.InsecureSkipVerify, used = true, true
			t.report("backend-protocol", Supported, "https to the servers, HTTP/2 negotiated, without checking their certificates")
		case "AUTO_HTTP":
			t.report("backend-protocol", Changed, "plain HTTP to the servers; HTTP/1.1 is used with them, whatever the client spoke")
		case "FCGI", "AJP":
			t.refuse("backend-protocol", "tollgate does not speak %s; put an HTTP server in front of the application", strings.ToUpper(v))
		default:
			t.refuse("backend-protocol", "%q is not one of HTTP, HTTPS, GRPC, GRPCS, AUTO_HTTP, FCGI", v)
		}
	}
	ft := &config.ForwardingTimeouts{}
	if n, ok := t.seconds("proxy-connect-timeout"); ok {
		ft.DialTimeout, used = config.Duration(n), true
		t.report("proxy-connect-timeout", Supported, "dialTimeout %s", n)
	}
	if n, ok := t.seconds("proxy-read-timeout"); ok {
		ft.ResponseHeaderTimeout, used = config.Duration(n), true
		t.report("proxy-read-timeout", Changed, "responseHeaderTimeout %s: bounds the wait for the response headers only; ingress-nginx bounds every wait between two reads of the response, tollgate none after the headers", n)
	}
	if _, ok := t.seconds("proxy-send-timeout"); ok {
		t.report("proxy-send-timeout", Unsupported, "tollgate has no timeout between two writes of the request to a server; ignored")
	}
	if ft.DialTimeout != 0 || ft.ResponseHeaderTimeout != 0 {
		st.ForwardingTimeouts = ft
	}
	if used {
		t.r.ServersTransport = &st
		t.r.ServersTransportName = t.name("transport")
	}
	for n, why := range map[string]string{
		"proxy-ssl-secret":       "set the servers' CA and client certificate in a serversTransport by hand",
		"proxy-ssl-verify":       "set rootCAs in a serversTransport by hand",
		"proxy-ssl-name":         "set serverName in a serversTransport by hand",
		"proxy-ssl-server-name":  "tollgate always sends the server name (SNI)",
		"proxy-ssl-protocols":    "tollgate chooses the TLS versions to servers",
		"proxy-ssl-ciphers":      "tollgate chooses the ciphers to servers",
		"proxy-ssl-verify-depth": "tollgate has no equivalent",
	} {
		if _, ok := t.get(n); ok {
			t.report(n, Unsupported, "%s; ignored", why)
		}
	}
}

// seconds parses an nginx timeout annotation: whole seconds, or a number
// with s or m.
func (t *translation) seconds(name string) (time.Duration, bool) {
	v, ok := t.get(name)
	if !ok {
		return 0, false
	}
	var n int64
	unit := time.Second
	s := v
	if rest, cut := strings.CutSuffix(s, "m"); cut {
		s, unit = rest, time.Minute
	} else {
		s = strings.TrimSuffix(s, "s")
	}
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < 1 || n > 86400*7 {
		t.report(name, Unsupported, "%q is not a number of seconds from 1 to 604800; ignored", v)
		return 0, false
	}
	return time.Duration(n) * unit, true
}

func (t *translation) affinity() {
	v, ok := t.get("affinity")
	names := []string{"affinity-mode", "affinity-canary-behavior", "session-cookie-name", "session-cookie-path", "session-cookie-max-age", "session-cookie-expires", "session-cookie-samesite", "session-cookie-secure", "session-cookie-domain", "session-cookie-change-on-failure", "session-cookie-conditional-samesite-none", "session-cookie-hash"}
	if !ok {
		t.orphans(names, "without affinity: cookie it does nothing")
		return
	}
	if !strings.EqualFold(v, "cookie") {
		t.report("affinity", Unsupported, "%q: only cookie affinity exists; ignored", v)
		for _, n := range names {
			if _, set := t.get(n); set {
				t.report(n, Unsupported, "affinity is not cookie; ignored")
			}
		}
		return
	}
	c := &config.Cookie{Name: "INGRESSCOOKIE", HTTPOnly: true}
	if n, ok := t.get("session-cookie-name"); ok {
		if !cookieName.MatchString(n) {
			t.report("session-cookie-name", Unsupported, "%q is not a cookie name; INGRESSCOOKIE is used", n)
		} else {
			c.Name = n
			t.report("session-cookie-name", Supported, "")
		}
	}
	if p, ok := t.get("session-cookie-path"); ok {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "; \t") {
			t.report("session-cookie-path", Unsupported, "%q is not a cookie path; / is used", p)
		} else {
			c.Path = p
			t.report("session-cookie-path", Supported, "")
		}
	}
	if n, ok := t.integer("session-cookie-max-age", 0, 1<<31-1); ok {
		c.MaxAge = int(n)
		t.report("session-cookie-max-age", Supported, "")
	}
	if n, ok := t.integer("session-cookie-expires", 0, 1<<31-1); ok {
		if c.MaxAge == 0 {
			c.MaxAge = int(n)
		}
		t.report("session-cookie-expires", Changed, "sent as Max-Age (tollgate sets no Expires attribute)")
	}
	if s, ok := t.get("session-cookie-samesite"); ok {
		switch strings.ToLower(s) {
		case "none", "lax", "strict":
			c.SameSite = strings.ToLower(s)
			t.report("session-cookie-samesite", Supported, "")
		default:
			t.report("session-cookie-samesite", Unsupported, "%q is not None, Lax or Strict; no SameSite attribute", s)
		}
	}
	if b, ok := t.boolean("session-cookie-secure"); ok {
		c.Secure = b
		t.report("session-cookie-secure", Supported, "")
	}
	if m, ok := t.get("affinity-mode"); ok {
		if strings.EqualFold(m, "balanced") {
			t.report("affinity-mode", Supported, "")
		} else {
			t.report("affinity-mode", Changed, "%q: a client stays on its server while it is up; when the servers change, tollgate does not rebalance anyway", m)
		}
	}
	for _, n := range names {
		if _, set := t.a[n]; set && !t.reported[n] {
			t.report(n, Unsupported, "the sticky cookie of tollgate has no equivalent; ignored")
		}
	}
	t.r.Sticky = &config.Sticky{Cookie: c}
	t.report("affinity", Changed, "sticky cookie on the Ingress's services; its value is tollgate's, not ingress-nginx's, so clients pinned before the move are placed again once")
}

var cookieName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,256}$`)

func (t *translation) cors() {
	on, ok := t.boolean("enable-cors")
	names := []string{"cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-allow-credentials", "cors-max-age", "cors-expose-headers"}
	if ok {
		if on {
			t.report("enable-cors", Unsupported, "the headers middleware of tollgate has no CORS settings: preflight OPTIONS requests cannot be answered; answer CORS in the service")
		} else {
			t.report("enable-cors", Supported, "")
		}
	}
	for _, n := range names {
		if _, set := t.get(n); set {
			t.report(n, Unsupported, "tollgate has no CORS support (see enable-cors); ignored")
		}
	}
}
