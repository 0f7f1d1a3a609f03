package nginx

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/config/rule"
)

// secretMap serves Secret data from memory: Translate only reads data
// through its Secrets interface.
type secretMap map[string]map[string][]byte

func (s secretMap) SecretData(_ context.Context, ns, name string) (map[string][]byte, error) {
	d, ok := s[ns+"/"+name]
	if !ok {
		return nil, errors.New("not found")
	}
	return d, nil
}

const (
	// htpasswd -nbB alice secret, and an apr1 line.
	bcryptAlice = "$2y$05$eBkbk7sBHAqGwSh4.YawCuUVNQeh.rMwzs1QJ6xvQjgxfkq6eXmMS"
	apr1Bob     = "$apr1$kT3W8m8x$2Vj1pVOaGUA7xf1RFiTYW/"
)

var testSecrets = secretMap{
	"ns/basic":   {"auth": []byte("# users\nalice:" + bcryptAlice + "\nbob:" + apr1Bob + "\n")},
	"ns/onlymd5": {"auth": []byte("bob:" + apr1Bob + "\n")},
	"ns/map":     {"alice": []byte(bcryptAlice + "\n"), "bob": []byte(apr1Bob)},
	"ns/nokey":   {"users": []byte("alice:" + bcryptAlice)},
}

func ann(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[Prefix+kv[i]] = kv[i+1]
	}
	return m
}

// statuses renders the report as "name: status" lines.
func statuses(r *Result) []string {
	var out []string
	for _, e := range r.Report {
		out = append(out, strings.TrimPrefix(e.Annotation, Prefix)+": "+e.Status.String())
	}
	return out
}

func mw(r *Result, what string) *config.Middleware { return r.Middlewares["ns_web_nginx-"+what] }

func i64(n int) *int { return &n }

func TestTranslate(t *testing.T) {
	paths := []Path{{Host: "example.com", Path: "/api"}, {Host: "example.com", Path: "/exact", Exact: true}}
	tests := []struct {
		name   string
		ann    map[string]string
		tls    bool
		paths  []Path
		report []string // "annotation: status", sorted
		refuse bool
		check  func(t *testing.T, r *Result)
	}{
		{name: "none", ann: ann()},
		{name: "other prefixes are not read", ann: map[string]string{"tollgate.io/router.priority": "3", "example.com/x": "y"}},
		{
			name: "rewrite-target with capture groups", ann: ann("rewrite-target", "/$2x", "use-regex", "true"),
			paths:  []Path{{Host: "a", Path: "/something(/|$)(.*)"}, {Host: "a", Path: "/exact", Exact: true}},
			report: []string{"rewrite-target: changed", "use-regex: changed"},
			check: func(t *testing.T, r *Result) {
				want := map[int]Route{
					0: {Match: "PathRegexp(`(?i)^/something(/|$)(.*)`)", Priority: 38, Middleware: "ns_web_nginx-rewrite-0"},
					1: {Middleware: "ns_web_nginx-rewrite-1"},
				}
				if !reflect.DeepEqual(r.Routes, want) {
					t.Errorf("routes %+v, want %+v", r.Routes, want)
				}
				m := mw(r, "rewrite-0").ReplacePathRegex
				if m.Replacement != "/${2}x" {
					t.Errorf("replacement %q", m.Replacement)
				}
				re := regexp.MustCompile(m.Regex)
				if got := re.ReplaceAllString("/SomeThing/new/path", m.Replacement); got != "/new/pathx" {
					t.Errorf("rewritten to %q", got)
				}
				if got := re.ReplaceAllString("/something", m.Replacement); got != "/x" {
					t.Errorf("rewritten to %q", got)
				}
			},
		},
		{
			name: "rewrite-target alone makes regex paths", ann: ann("rewrite-target", "/"), paths: paths,
			report: []string{"rewrite-target: changed"},
			check: func(t *testing.T, r *Result) {
				if len(r.Routes) != 2 || r.Routes[0].Match != "PathRegexp(`(?i)^/api`)" || r.Routes[1].Match != "" {
					t.Errorf("routes %+v", r.Routes)
				}
				re := regexp.MustCompile(mw(r, "rewrite-0").ReplacePathRegex.Regex)
				if got := re.ReplaceAllString("/api/v1?", "/"); got != "/" {
					t.Errorf("rewritten to %q", got)
				}
			},
		},
		{name: "client certificates refuse", ann: ann("auth-tls-secret", "ns/ca", "auth-tls-verify-client", "on"),
			report: []string{"auth-tls-secret: unsupported", "auth-tls-verify-client: unsupported"}, refuse: true},
		{name: "client certificates refuse by default", ann: ann("auth-tls-secret", "ns/ca"),
			report: []string{"auth-tls-secret: unsupported"}, refuse: true},
		{name: "client certificates off", ann: ann("auth-tls-secret", "ns/ca", "auth-tls-verify-client", "off"),
			report: []string{"auth-tls-secret: unsupported", "auth-tls-verify-client: supported"}},
		{name: "use-regex alone", ann: ann("use-regex", "true"), paths: paths, report: []string{"use-regex: changed"},
			check: func(t *testing.T, r *Result) {
				if len(r.Routes) != 1 || r.Routes[0].Middleware != "" || len(r.Middlewares) != 0 {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "use-regex false", ann: ann("use-regex", "false"), paths: paths, report: []string{"use-regex: supported"}},
		{name: "bad path regex refuses", ann: ann("use-regex", "true"), paths: []Path{{Path: "/(?=x)"}}, report: []string{"use-regex: unsupported"}, refuse: true},
		{name: "huge repetition in path refuses", ann: ann("use-regex", "true"), paths: []Path{{Path: "/(" + strings.Repeat("x{2,1000}", 400) + ")"}}, report: []string{"use-regex: unsupported"}, refuse: true},
		{name: "nested repetition in path refuses", ann: ann("use-regex", "true"), paths: []Path{{Path: "/((a{100}){100}){100}"}}, report: []string{"use-regex: unsupported"}, refuse: true},
		{name: "backquote in path refuses", ann: ann("rewrite-target", "/"), paths: []Path{{Path: "/a`b"}}, report: []string{"rewrite-target: unsupported"}, refuse: true},
		{
			name: "ssl-redirect with tls", ann: ann("ssl-redirect", "true"), tls: true, report: []string{"ssl-redirect: supported"},
			check: func(t *testing.T, r *Result) {
				want := &config.RedirectScheme{Scheme: "https", Permanent: true}
				if !reflect.DeepEqual(mw(r, "ssl-redirect").RedirectScheme, want) || !slices.Equal(r.PlainMiddlewares, []string{"ns_web_nginx-ssl-redirect"}) || len(r.RouterMiddlewares) != 0 {
					t.Errorf("result %+v", r)
				}
			},
		},
		{name: "ssl-redirect without tls", ann: ann("ssl-redirect", "true"), report: []string{"ssl-redirect: supported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{name: "ssl-redirect false", ann: ann("ssl-redirect", "false"), tls: true, report: []string{"ssl-redirect: supported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{name: "ssl-redirect odd", ann: ann("ssl-redirect", "yes"), tls: true, report: []string{"ssl-redirect: unsupported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{name: "force-ssl-redirect", ann: ann("force-ssl-redirect", "true", "ssl-redirect", "true"), report: []string{"force-ssl-redirect: supported", "ssl-redirect: supported"},
			check: func(t *testing.T, r *Result) {
				if len(r.PlainMiddlewares) != 1 || mw(r, "ssl-redirect") == nil {
					t.Errorf("result %+v", r)
				}
			}},
		{
			name: "permanent-redirect", ann: ann("permanent-redirect", "https://new.example/$x", "permanent-redirect-code", "308"),
			report: []string{"permanent-redirect: changed", "permanent-redirect-code: changed"},
			check: func(t *testing.T, r *Result) {
				want := &config.RedirectRegex{Regex: "^.*$", Replacement: "https://new.example/$$x", Permanent: true}
				if !reflect.DeepEqual(mw(r, "permanent-redirect").RedirectRegex, want) {
					t.Errorf("got %+v", mw(r, "permanent-redirect").RedirectRegex)
				}
			},
		},
		{name: "permanent-redirect 301", ann: ann("permanent-redirect", "/new", "permanent-redirect-code", "301"), report: []string{"permanent-redirect: changed", "permanent-redirect-code: supported"}},
		{name: "permanent-redirect bad code", ann: ann("permanent-redirect", "/new", "permanent-redirect-code", "200"), report: []string{"permanent-redirect: changed", "permanent-redirect-code: unsupported"}},
		{name: "permanent-redirect not a URL", ann: ann("permanent-redirect", "new"), report: []string{"permanent-redirect: unsupported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{name: "code alone", ann: ann("temporal-redirect-code", "307"), report: []string{"temporal-redirect-code: unsupported"}},
		{name: "temporal-redirect", ann: ann("temporal-redirect", "https://x.example/"), report: []string{"temporal-redirect: changed"},
			check: func(t *testing.T, r *Result) {
				if m := mw(r, "temporal-redirect").RedirectRegex; m.Permanent || m.Replacement != "https://x.example/" {
					t.Errorf("got %+v", m)
				}
			}},
		{
			name: "app-root", ann: ann("app-root", "/app"), report: []string{"app-root: supported"},
			check: func(t *testing.T, r *Result) {
				m := mw(r, "app-root").RedirectRegex
				re := regexp.MustCompile(m.Regex)
				if got := re.ReplaceAllString("https://a.example/", m.Replacement); got != "https://a.example/app" {
					t.Errorf("redirects to %q", got)
				}
				if re.MatchString("https://a.example/x") {
					t.Error("redirects a path other than /")
				}
			},
		},
		{name: "app-root bad", ann: ann("app-root", "app"), report: []string{"app-root: unsupported"}},
		{
			name: "from-to-www-redirect", ann: ann("from-to-www-redirect", "true"), paths: []Path{{Host: "example.com", Path: "/"}, {Host: "www.other.org", Path: "/"}},
			report: []string{"from-to-www-redirect: changed"},
			check: func(t *testing.T, r *Result) {
				want := map[string]string{"www.example.com": "example.com", "other.org": "www.other.org"}
				if !reflect.DeepEqual(r.AliasHosts, want) {
					t.Errorf("aliases %v", r.AliasHosts)
				}
				redirect := func(in string) string {
					for _, n := range r.RouterMiddlewares {
						m := r.Middlewares[n].RedirectRegex
						if re := regexp.MustCompile(m.Regex); re.MatchString(in) {
							return re.ReplaceAllString(in, m.Replacement)
						}
					}
					return ""
				}
				for in, out := range map[string]string{
					"https://www.example.com/a?b":  "https://example.com/a?b",
					"https://WWW.Example.com":      "https://Example.com",
					"http://other.org:8080/x":      "http://www.other.org:8080/x",
					"http://www.example.com.evil/": "",
					"https://example.com/a":        "",
					"https://www.other.org/":       "",
				} {
					if got := redirect(in); got != out {
						t.Errorf("%s redirects to %q, want %q", in, got, out)
					}
				}
			},
		},
		{name: "from-to-www-redirect without host", ann: ann("from-to-www-redirect", "true"), paths: []Path{{Path: "/"}}, report: []string{"from-to-www-redirect: unsupported"}},
		{
			name: "backend-protocol HTTPS", ann: ann("backend-protocol", "HTTPS"), report: []string{"backend-protocol: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Scheme != "https" || r.ServersTransportName != "ns_web_nginx-transport" || !r.ServersTransport.InsecureSkipVerify {
					t.Errorf("result %+v", r)
				}
			},
		},
		{name: "backend-protocol GRPC", ann: ann("backend-protocol", "grpc"), report: []string{"backend-protocol: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Scheme != "h2c" || r.ServersTransport != nil {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "backend-protocol GRPCS", ann: ann("backend-protocol", "GRPCS"), report: []string{"backend-protocol: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Scheme != "https" || !r.ServersTransport.InsecureSkipVerify {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "backend-protocol HTTP", ann: ann("backend-protocol", "HTTP"), report: []string{"backend-protocol: supported"}},
		{name: "backend-protocol AUTO_HTTP", ann: ann("backend-protocol", "AUTO_HTTP"), report: []string{"backend-protocol: changed"},
			check: func(t *testing.T, r *Result) {
				if r.Scheme != "" {
					t.Errorf("scheme %q", r.Scheme)
				}
			}},
		{name: "backend-protocol FCGI", ann: ann("backend-protocol", "FCGI"), report: []string{"backend-protocol: unsupported"}, refuse: true},
		{name: "backend-protocol AJP", ann: ann("backend-protocol", "ajp"), report: []string{"backend-protocol: unsupported"}, refuse: true},
		{name: "backend-protocol odd", ann: ann("backend-protocol", "SPDY"), report: []string{"backend-protocol: unsupported"}, refuse: true},
		{
			name: "timeouts", ann: ann("proxy-connect-timeout", "5", "proxy-read-timeout", "120s", "proxy-send-timeout", "60"),
			report: []string{"proxy-connect-timeout: supported", "proxy-read-timeout: changed", "proxy-send-timeout: unsupported"},
			check: func(t *testing.T, r *Result) {
				want := &config.ForwardingTimeouts{DialTimeout: config.Duration(5 * time.Second), ResponseHeaderTimeout: config.Duration(120 * time.Second)}
				if !reflect.DeepEqual(r.ServersTransport.ForwardingTimeouts, want) || r.Scheme != "" {
					t.Errorf("result %+v", r.ServersTransport)
				}
			},
		},
		{name: "bad timeouts", ann: ann("proxy-connect-timeout", "five", "proxy-read-timeout", "-1", "proxy-send-timeout", "99999999999999999999"),
			report: []string{"proxy-connect-timeout: unsupported", "proxy-read-timeout: unsupported", "proxy-send-timeout: unsupported"},
			check: func(t *testing.T, r *Result) {
				if r.ServersTransport != nil {
					t.Errorf("transport %+v", r.ServersTransport)
				}
			}},
		{name: "proxy-body-size", ann: ann("proxy-body-size", "8m"), report: []string{"proxy-body-size: changed"},
			check: func(t *testing.T, r *Result) {
				if n := mw(r, "body-size").Buffering.MaxRequestBodyBytes; n != 8<<20 {
					t.Errorf("limit %d", n)
				}
			}},
		{name: "proxy-body-size 0", ann: ann("proxy-body-size", "0"), report: []string{"proxy-body-size: supported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{name: "proxy-body-size bad", ann: ann("proxy-body-size", "8mb"), report: []string{"proxy-body-size: unsupported"},
			check: func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{
			name: "allowlist", ann: ann("whitelist-source-range", "10.0.0.0/8, 192.168.1.1,::1/128"), report: []string{"whitelist-source-range: supported"},
			check: func(t *testing.T, r *Result) {
				want := []string{"10.0.0.0/8", "192.168.1.1", "::1/128"}
				if got := mw(r, "allowlist").IPAllowList.SourceRange; !slices.Equal(got, want) || r.RouterMiddlewares[0] != "ns_web_nginx-allowlist" {
					t.Errorf("ranges %v", got)
				}
			},
		},
		{name: "allowlist new name wins", ann: ann("whitelist-source-range", "10.0.0.0/8", "allowlist-source-range", "1.2.3.4"),
			report: []string{"allowlist-source-range: supported", "whitelist-source-range: unsupported"},
			check: func(t *testing.T, r *Result) {
				if got := mw(r, "allowlist").IPAllowList.SourceRange; !slices.Equal(got, []string{"1.2.3.4"}) {
					t.Errorf("ranges %v", got)
				}
			}},
		{name: "bad CIDR refuses", ann: ann("allowlist-source-range", "10.0.0.0/33"), report: []string{"allowlist-source-range: unsupported"}, refuse: true},
		{name: "empty allowlist refuses", ann: ann("allowlist-source-range", " , "), report: []string{"allowlist-source-range: unsupported"}, refuse: true},
		{name: "denylist refuses", ann: ann("denylist-source-range", "10.0.0.0/8"), report: []string{"denylist-source-range: unsupported"}, refuse: true},
		{
			name: "forward auth", ann: ann("auth-url", "https://auth.example/check", "auth-signin", "https://auth.example/start", "auth-response-headers", "X-User, X-Email", "auth-method", "GET"),
			report: []string{"auth-method: supported", "auth-response-headers: supported", "auth-signin: unsupported", "auth-url: changed"},
			check: func(t *testing.T, r *Result) {
				want := &config.ForwardAuth{Address: "https://auth.example/check", AuthResponseHeaders: []string{"X-User", "X-Email"}}
				if !reflect.DeepEqual(mw(r, "forward-auth").ForwardAuth, want) {
					t.Errorf("got %+v", mw(r, "forward-auth").ForwardAuth)
				}
			},
		},
		{name: "auth-method POST", ann: ann("auth-url", "http://a/", "auth-method", "POST"), report: []string{"auth-method: unsupported", "auth-url: changed"}},
		{name: "auth-url with variables refuses", ann: ann("auth-url", "http://a/?rd=$host"), report: []string{"auth-url: unsupported"}, refuse: true},
		{name: "auth-url not a URL refuses", ann: ann("auth-url", "auth"), report: []string{"auth-url: unsupported"}, refuse: true},
		{name: "auth-signin alone", ann: ann("auth-signin", "https://x/"), report: []string{"auth-signin: unsupported"}},
		{
			name: "basic auth", ann: ann("auth-type", "basic", "auth-secret", "basic", "auth-realm", "Staff"),
			report: []string{"auth-realm: supported", "auth-secret: changed", "auth-type: supported"},
			check: func(t *testing.T, r *Result) {
				want := &config.BasicAuth{Users: []string{"alice:" + bcryptAlice}, Realm: "Staff"}
				if !reflect.DeepEqual(mw(r, "basic-auth").BasicAuth, want) {
					t.Errorf("got %+v", mw(r, "basic-auth").BasicAuth)
				}
				for _, e := range r.Report {
					if strings.Contains(e.Note, "$2y$") || strings.Contains(e.Note, "$apr1$") {
						t.Errorf("the report shows a hash: %s", e.Note)
					}
				}
			},
		},
		{name: "basic auth map", ann: ann("auth-type", "basic", "auth-secret", "ns/map", "auth-secret-type", "auth-map"),
			report: []string{"auth-secret: changed", "auth-secret-type: supported", "auth-type: supported"},
			check: func(t *testing.T, r *Result) {
				if got := mw(r, "basic-auth").BasicAuth.Users; !slices.Equal(got, []string{"alice:" + bcryptAlice}) {
					t.Errorf("users %v", got)
				}
			}},
		{name: "basic auth md5 only refuses", ann: ann("auth-type", "basic", "auth-secret", "onlymd5"), report: []string{"auth-secret: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "basic auth missing secret refuses", ann: ann("auth-type", "basic", "auth-secret", "nope"), report: []string{"auth-secret: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "basic auth no auth key refuses", ann: ann("auth-type", "basic", "auth-secret", "nokey"), report: []string{"auth-secret: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "basic auth other namespace refuses", ann: ann("auth-type", "basic", "auth-secret", "other/basic"), report: []string{"auth-secret: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "basic auth without secret refuses", ann: ann("auth-type", "basic"), report: []string{"auth-type: unsupported"}, refuse: true},
		{name: "digest refuses", ann: ann("auth-type", "digest", "auth-secret", "basic"), report: []string{"auth-secret: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "bad secret type refuses", ann: ann("auth-type", "basic", "auth-secret", "basic", "auth-secret-type", "ldap"), report: []string{"auth-secret: unsupported", "auth-secret-type: unsupported", "auth-type: unsupported"}, refuse: true},
		{name: "auth-secret alone", ann: ann("auth-secret", "basic"), report: []string{"auth-secret: unsupported"}},
		{
			name: "cors", ann: ann("enable-cors", "true", "cors-allow-origin", "*", "cors-allow-methods", "GET", "cors-allow-headers", "X", "cors-allow-credentials", "true", "cors-max-age", "60"),
			report: []string{"cors-allow-credentials: unsupported", "cors-allow-headers: unsupported", "cors-allow-methods: unsupported", "cors-allow-origin: unsupported", "cors-max-age: unsupported", "enable-cors: unsupported"},
			check:  func(t *testing.T, r *Result) { noMiddlewares(t, r) },
		},
		{
			name: "affinity", ann: ann("affinity", "cookie", "session-cookie-name", "route", "session-cookie-path", "/app", "session-cookie-max-age", "3600", "session-cookie-samesite", "Strict", "session-cookie-secure", "true", "session-cookie-change-on-failure", "true"),
			report: []string{"affinity: changed", "session-cookie-change-on-failure: unsupported", "session-cookie-max-age: supported", "session-cookie-name: supported", "session-cookie-path: supported", "session-cookie-samesite: supported", "session-cookie-secure: supported"},
			check: func(t *testing.T, r *Result) {
				want := &config.Sticky{Cookie: &config.Cookie{Name: "route", Path: "/app", MaxAge: 3600, SameSite: "strict", Secure: true, HTTPOnly: true}}
				if !reflect.DeepEqual(r.Sticky, want) {
					t.Errorf("sticky %+v", r.Sticky.Cookie)
				}
			},
		},
		{name: "affinity defaults and odd values", ann: ann("affinity", "cookie", "session-cookie-name", "a b", "session-cookie-max-age", "soon", "session-cookie-samesite", "sometimes"),
			report: []string{"affinity: changed", "session-cookie-max-age: unsupported", "session-cookie-name: unsupported", "session-cookie-samesite: unsupported"},
			check: func(t *testing.T, r *Result) {
				want := &config.Cookie{Name: "INGRESSCOOKIE", HTTPOnly: true}
				if !reflect.DeepEqual(r.Sticky.Cookie, want) {
					t.Errorf("cookie %+v", r.Sticky.Cookie)
				}
			}},
		{name: "affinity other", ann: ann("affinity", "ip", "session-cookie-name", "x"), report: []string{"affinity: unsupported", "session-cookie-name: unsupported"}},
		{name: "cookie settings alone", ann: ann("session-cookie-name", "x"), report: []string{"session-cookie-name: unsupported"}},
		{
			name: "canary weight", ann: ann("canary", "true", "canary-weight", "20"), report: []string{"canary: supported", "canary-weight: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Canary == nil || *r.Canary.Weight != 20 || r.Canary.Match != "" || r.Canary.NeverMatch != "" {
					t.Fatalf("canary %+v", r.Canary)
				}
				want := &config.Service{Weighted: &config.Weighted{Services: []config.WeightedService{{Name: "main", Weight: i64(80)}, {Name: "canary", Weight: i64(20)}}}}
				if got := r.Canary.WeightedService("main", "canary"); !reflect.DeepEqual(got, want) {
					t.Errorf("service %+v", got.Weighted)
				}
			},
		},
		{name: "canary weight total", ann: ann("canary", "true", "canary-weight", "20", "canary-weight-total", "1000"), report: []string{"canary: supported", "canary-weight: supported", "canary-weight-total: supported"},
			check: func(t *testing.T, r *Result) {
				if ws := r.Canary.WeightedService("m", "c").Weighted.Services; *ws[0].Weight != 980 {
					t.Errorf("services %+v", ws)
				}
			}},
		{name: "canary weight too high", ann: ann("canary", "true", "canary-weight", "101"), report: []string{"canary: changed", "canary-weight: unsupported"}},
		{
			name: "canary by header", ann: ann("canary", "true", "canary-by-header", "X-Canary"), report: []string{"canary: supported", "canary-by-header: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Canary.Match != "Header(`X-Canary`, `always`)" || r.Canary.NeverMatch != "Header(`X-Canary`, `never`)" || r.Canary.Weight != nil {
					t.Errorf("canary %+v", r.Canary)
				}
			},
		},
		{name: "canary by header value", ann: ann("canary", "true", "canary-by-header", "X-Canary", "canary-by-header-value", "yes", "canary-by-header-pattern", "y.*"),
			report: []string{"canary: supported", "canary-by-header: supported", "canary-by-header-pattern: unsupported", "canary-by-header-value: supported"},
			check: func(t *testing.T, r *Result) {
				if r.Canary.Match != "Header(`X-Canary`, `yes`)" || r.Canary.NeverMatch != "" {
					t.Errorf("canary %+v", r.Canary)
				}
			}},
		{name: "canary by header pattern", ann: ann("canary", "true", "canary-by-header", "X-Canary", "canary-by-header-pattern", "^(a|b)$"),
			report: []string{"canary: supported", "canary-by-header: supported", "canary-by-header-pattern: changed"},
			check: func(t *testing.T, r *Result) {
				if r.Canary.Match != "HeaderRegexp(`X-Canary`, `^(a|b)$`)" {
					t.Errorf("canary %+v", r.Canary)
				}
			}},
		{name: "canary bad pattern", ann: ann("canary", "true", "canary-by-header", "X-Canary", "canary-by-header-pattern", "(?<=a)"),
			report: []string{"canary: changed", "canary-by-header: supported", "canary-by-header-pattern: unsupported"}},
		{name: "canary huge pattern", ann: ann("canary", "true", "canary-by-header", "X-Canary", "canary-by-header-pattern", strings.Repeat("\\pL{1000}", 500)[:maxValue]),
			report: []string{"canary: changed", "canary-by-header: supported", "canary-by-header-pattern: unsupported"}},
		{name: "canary bad header name", ann: ann("canary", "true", "canary-by-header", "X Canary", "canary-by-header-value", "v"),
			report: []string{"canary: changed", "canary-by-header: unsupported", "canary-by-header-value: unsupported"}},
		{
			name: "canary by header and cookie", ann: ann("canary", "true", "canary-by-header", "X-C", "canary-by-cookie", "c"),
			report: []string{"canary: supported", "canary-by-cookie: changed", "canary-by-header: supported"},
			check: func(t *testing.T, r *Result) {
				wantM := "(Header(`X-C`, `always`) || (!Header(`X-C`, `never`) && HeaderRegexp(`Cookie`, `(^|;\\s*)c=always(;|$)`)))"
				wantN := "(Header(`X-C`, `never`) || (!Header(`X-C`, `always`) && HeaderRegexp(`Cookie`, `(^|;\\s*)c=never(;|$)`)))"
				if r.Canary.Match != wantM || r.Canary.NeverMatch != wantN {
					t.Errorf("canary %+v", r.Canary)
				}
			},
		},
		{name: "canary settings without canary", ann: ann("canary", "false", "canary-weight", "10", "canary-by-header", "X"),
			report: []string{"canary: supported", "canary-by-header: unsupported", "canary-weight: unsupported"},
			check: func(t *testing.T, r *Result) {
				if r.Canary != nil {
					t.Errorf("canary %+v", r.Canary)
				}
			}},
		{
			name: "rate limits", ann: ann("limit-rps", "10", "limit-burst-multiplier", "3", "limit-connections", "4"),
			report: []string{"limit-burst-multiplier: supported", "limit-connections: changed", "limit-rps: changed"},
			check: func(t *testing.T, r *Result) {
				want := &config.RateLimit{Average: 10, Period: config.Duration(time.Second), Burst: 30}
				if !reflect.DeepEqual(mw(r, "limit-rps").RateLimit, want) || mw(r, "limit-connections").InFlightReq.Amount != 4 {
					t.Errorf("got %+v", r.Middlewares)
				}
			},
		},
		{name: "limit-rpm default burst", ann: ann("limit-rpm", "60"), report: []string{"limit-rpm: changed"},
			check: func(t *testing.T, r *Result) {
				want := &config.RateLimit{Average: 60, Period: config.Duration(time.Minute), Burst: 300}
				if !reflect.DeepEqual(mw(r, "limit-rpm").RateLimit, want) {
					t.Errorf("got %+v", mw(r, "limit-rpm").RateLimit)
				}
			}},
		{name: "bad limits", ann: ann("limit-rps", "0", "limit-connections", "many", "limit-burst-multiplier", "2"),
			report: []string{"limit-burst-multiplier: unsupported", "limit-connections: unsupported", "limit-rps: unsupported"},
			check:  func(t *testing.T, r *Result) { noMiddlewares(t, r) }},
		{
			name: "snippets, lua and unknown ones", ann: ann("configuration-snippet", "more_set_headers x;", "server-snippet", "location /x {}", "lua-resty-waf", "active", "no-such-annotation", "1", "upstream-hash-by", "$uri"),
			report: []string{"configuration-snippet: unsupported", "lua-resty-waf: unsupported", "no-such-annotation: unsupported", "server-snippet: unsupported", "upstream-hash-by: unsupported"},
			check:  func(t *testing.T, r *Result) { noMiddlewares(t, r) },
		},
		{name: "overlong value", ann: ann("app-root", "/"+strings.Repeat("a", maxValue)), report: []string{"app-root: unsupported"}},
		{
			name: "order of middlewares", ann: ann("limit-rps", "1", "auth-url", "http://a/", "allowlist-source-range", "10.0.0.0/8", "proxy-body-size", "1k", "permanent-redirect", "/x"),
			report: []string{"allowlist-source-range: supported", "auth-url: changed", "limit-rps: changed", "permanent-redirect: changed", "proxy-body-size: changed"},
			check: func(t *testing.T, r *Result) {
				want := []string{"ns_web_nginx-allowlist", "ns_web_nginx-permanent-redirect", "ns_web_nginx-forward-auth", "ns_web_nginx-limit-rps", "ns_web_nginx-body-size"}
				if !slices.Equal(r.RouterMiddlewares, want) {
					t.Errorf("order %v", r.RouterMiddlewares)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.paths
			if p == nil {
				p = paths
			}
			r := Translate(t.Context(), Ingress{Namespace: "ns", Name: "web", Annotations: tc.ann, Paths: p, TLS: tc.tls}, testSecrets)
			if got := statuses(r); !slices.Equal(got, tc.report) {
				t.Errorf("report\n got %q\nwant %q\n%v", got, tc.report, r.Report)
			}
			if (len(r.Refused) > 0) != tc.refuse {
				t.Errorf("refused %q, want refused %v", r.Refused, tc.refuse)
			}
			checkInvariants(t, tc.ann, r)
			if tc.check != nil && !t.Failed() {
				tc.check(t, r)
			}
		})
	}
}

func noMiddlewares(t *testing.T, r *Result) {
	t.Helper()
	if len(r.Middlewares) != 0 || len(r.RouterMiddlewares) != 0 || len(r.PlainMiddlewares) != 0 {
		t.Errorf("middlewares %v", r.Middlewares)
	}
}

// checkInvariants holds for every result: one report entry per nginx
// annotation, every named middleware defined and valid as a rule part.
func checkInvariants(t *testing.T, ann map[string]string, r *Result) {
	t.Helper()
	var want []string
	for k := range ann {
		if strings.HasPrefix(k, Prefix) {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	var got []string
	for _, e := range r.Report {
		got = append(got, e.Annotation)
	}
	if !slices.Equal(got, want) {
		t.Errorf("report covers %q, want each of %q once", got, want)
	}
	for _, n := range slices.Concat(r.RouterMiddlewares, r.PlainMiddlewares) {
		if r.Middlewares[n] == nil {
			t.Errorf("middleware %s is used but not defined", n)
		}
	}
	var rules []string
	for _, rt := range r.Routes {
		if rt.Match != "" {
			rules = append(rules, "Host(`a.example`) && "+rt.Match)
		}
		if rt.Middleware != "" && r.Middlewares[rt.Middleware] == nil {
			t.Errorf("middleware %s is used but not defined", rt.Middleware)
		}
	}
	if c := r.Canary; c != nil {
		for _, m := range []string{c.Match, c.NeverMatch} {
			if m != "" {
				rules = append(rules, "Host(`a.example`) && "+m)
			}
		}
	}
	for _, s := range rules {
		if _, err := rule.Parse(s); err != nil {
			t.Errorf("rule %s: %v", s, err)
		}
	}
	for n, m := range r.Middlewares {
		for _, re := range regexesOf(m) {
			if _, err := regexp.Compile(re); err != nil {
				t.Errorf("middleware %s: %v", n, err)
			}
		}
	}
}

func regexesOf(m *config.Middleware) []string {
	switch {
	case m.RedirectRegex != nil:
		return []string{m.RedirectRegex.Regex}
	case m.ReplacePathRegex != nil:
		return []string{m.ReplacePathRegex.Regex}
	}
	return nil
}

func TestBasicAuthWithoutSecrets(t *testing.T) {
	r := Translate(t.Context(), Ingress{Namespace: "ns", Name: "web", Annotations: ann("auth-type", "basic", "auth-secret", "basic")}, nil)
	if len(r.Refused) != 1 || len(r.Middlewares) != 0 {
		t.Errorf("result %+v", r)
	}
}

func TestHtpasswdBounds(t *testing.T) {
	var b strings.Builder
	for i := range maxUsers + 3 {
		fmt.Fprintf(&b, "u%d:%s\n", i, bcryptAlice)
	}
	b.WriteString("long:" + strings.Repeat("x", 100_000) + "\n")
	users, skipped := htpasswd([]byte(b.String()))
	if len(users) != maxUsers || skipped != 4 {
		t.Errorf("%d users, %d skipped", len(users), skipped)
	}
}

func TestRegexpSize(t *testing.T) {
	for expr, ok := range map[string]bool{
		"/api(/|$)(.*)":           true,
		"/a{1000}":                true,
		"/(a{100}){10}":           true,
		"/(a{100}){100}":          false,
		"/((a{100}){100}){100}":   false,
		"/(x{1000}){21}":          false,
		strings.Repeat("a", 4096): true,
	} {
		if _, err := compile(expr); (err == nil) != ok {
			t.Errorf("compile(%.40q): %v, want ok %v", expr, err, ok)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "1k": 1024, "2K": 2048, "8m": 8 << 20, "1g": 1 << 30} {
		if got, err := size(in); err != nil || got != want {
			t.Errorf("size(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5m", "1t", "99999999999g", "1 m"} {
		if _, err := size(in); err == nil {
			t.Errorf("size(%q) has no error", in)
		}
	}
}

func FuzzTranslate(f *testing.F) {
	names := []string{"rewrite-target", "use-regex", "ssl-redirect", "force-ssl-redirect", "permanent-redirect", "permanent-redirect-code",
		"temporal-redirect", "backend-protocol", "proxy-body-size", "proxy-read-timeout", "proxy-connect-timeout", "allowlist-source-range",
		"whitelist-source-range", "auth-url", "auth-type", "auth-secret", "auth-secret-type", "affinity", "session-cookie-name",
		"session-cookie-max-age", "canary", "canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value",
		"canary-by-header-pattern", "canary-by-cookie", "app-root", "from-to-www-redirect", "limit-rps", "limit-burst-multiplier",
		"limit-connections", "enable-cors", "configuration-snippet"}
	f.Add(uint64(0), "/a(.*)", "true", "/$1")
	f.Add(uint64(1<<40-1), "10.0.0.0/8", "20", "basic")
	f.Add(uint64(0xffff), "X-Canary", "8m", "cookie")
	f.Fuzz(func(t *testing.T, which uint64, path, v1, v2 string) {
		a := map[string]string{}
		for i, n := range names {
			if which&(1<<i) != 0 {
				a[Prefix+n] = []string{v1, v2, "true"}[i%3]
			}
		}
		ing := Ingress{Namespace: "ns", Name: "web", Annotations: a, TLS: which&(1<<62) != 0,
			Paths: []Path{{Host: "example.com", Path: path}, {Host: "www." + v2, Path: "/"}}}
		r := Translate(context.Background(), ing, testSecrets)
		checkInvariants(t, a, r)
		for _, e := range r.Report {
			if len(e.Note) > 3*maxValue+1000 {
				t.Errorf("note of %d bytes", len(e.Note))
			}
		}
		_ = fmt.Sprint(r.Report)
	})
}
