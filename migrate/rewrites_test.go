package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// TestTraefikV1Rewrites checks the conversions into forward
// authentication, error pages, path rewrites and the global settings of
// the connections to servers.
func TestTraefikV1Rewrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		check func(t *testing.T, res *Result, cfg *config.Config)
	}{
		{"forward authentication", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
whitelistSourceRange = ["10.0.0.0/8"]
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
  [frontends.f.auth.forward]
  address = "https://auth.example.com/verify"
  trustForwardHeader = true
  authResponseHeaders = ["X-User"]
    [frontends.f.auth.forward.tls]
    ca = "/ca.pem"
    caOptional = true
    cert = "/client.pem"
    key = """-----BEGIN EC PRIVATE KEY-----
not-a-real-key
-----END EC PRIVATE KEY-----"""
`, func(t *testing.T, res *Result, cfg *config.Config) {
			fa := cfg.HTTP.Middlewares["f-auth"].ForwardAuth
			if fa == nil || fa.Address != "https://auth.example.com/verify" || !fa.TrustForwardHeader || !slices.Equal(fa.AuthResponseHeaders, []string{"X-User"}) {
				t.Fatalf("forwardAuth = %+v", fa)
			}
			// The key is PEM content: neither it nor the certificate it
			// goes with are written.
			if fa.TLS == nil || *fa.TLS != (config.ClientTLS{CA: "/ca.pem"}) {
				t.Fatalf("tls = %+v, want the CA only", fa.TLS)
			}
			if got := cfg.HTTP.Routers["f"].Middlewares; !slices.Equal(got, []string{"f-ipallowlist", "f-auth"}) {
				t.Fatalf("middlewares %v", got)
			}
			for _, want := range [][]string{
				{"frontends.f.auth.forward: converted", `"f-auth" (forwardAuth)`},
				{"frontends.f.auth.forward.tls.caOptional: unsupported"},
				{"frontends.f.auth.forward.tls.key: action", "PEM content"},
				{"frontends.f.auth.forward.tls: changed", "no client certificate"},
			} {
				if len(reported(res, want...)) != 1 {
					t.Errorf("no line with %q", want)
				}
			}
			if out := reportText(res) + string(res.Config); strings.Contains(out, "not-a-real-key") {
				t.Fatal("the private key is in the output")
			}
			if !strings.Contains(string(res.Config), "[http.middlewares.f-auth.forwardAuth]") {
				t.Fatalf("no forwardAuth table:\n%s", res.Config)
			}
		}},
		{"forward authentication with a CA only", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
  [frontends.f.auth.forward]
  address = "https://auth.example.com/verify"
    [frontends.f.auth.forward.tls]
    ca = "/ca.pem"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if fa := cfg.HTTP.Middlewares["f-auth"].ForwardAuth; fa.TLS == nil || *fa.TLS != (config.ClientTLS{CA: "/ca.pem"}) {
				t.Fatalf("tls = %+v", fa.TLS)
			}
			if len(reported(res, "frontends.f.auth.forward.tls: changed", "answered 500 to every request")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"basic authentication wins over forward, as in Traefik 1.x", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
  [frontends.f.auth.basic]
  users = ["bob:$2y$05$9Xe1QMz3oIx8lYI5jYvVMeQ8yq0oTqGvzw4l8g2ZcYfH.oCzW5B0u"]
  [frontends.f.auth.forward]
  address = "https://auth.example.com/verify"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if m := cfg.HTTP.Middlewares["f-auth"]; m == nil || m.BasicAuth == nil || m.ForwardAuth != nil {
				t.Fatalf("middleware f-auth = %+v, want basicAuth", m)
			}
			if len(reported(res, "frontends.f.auth.forward: converted", "ignored, as by Traefik 1.x, since basic is set")) != 1 {
				t.Fatalf("the ignored forward authentication is not reported:\n%s", reportText(res))
			}
		}},
		{"forward authentication on the API's entry point", `
[entryPoints.http]
address = ":80"
[entryPoints.traefik]
address = ":8080"
  [entryPoints.traefik.auth.forward]
  address = "http://auth:4181"
[api]
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if len(cfg.API.Users) > 0 || cfg.API.UsersFile != "" {
				t.Fatalf("api = %+v, want no users", cfg.API)
			}
			if len(reported(res, "entryPoints.traefik.auth: action", "not protected by its forward authentication")) != 1 {
				t.Fatalf("the unprotected API is not reported:\n%s", reportText(res))
			}
		}},
		{"error pages", `
[entryPoints.http]
address = ":80"
[entryPoints.admin]
address = ":8081"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[backends.pages.servers.s]
url = "http://10.0.0.2:80"
[frontends.f]
backend = "b"
entryPoints = ["http", "admin"]
basicAuth = ["bob:$2y$05$9Xe1QMz3oIx8lYI5jYvVMeQ8yq0oTqGvzw4l8g2ZcYfH.oCzW5B0u"]
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
  [frontends.f.errors.server]
  status = ["500-599"]
  backend = "pages"
  query = "{status}.html"
  [frontends.f.errors.own]
  status = ["404"]
  backend = "b"
  [frontends.f.errors.gone]
  status = ["410"]
  backend = "missing"
[frontends.pages]
backend = "pages"
entryPoints = ["http"]
  [frontends.pages.routes.r]
  rule = "Host:pages.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.HTTP.Middlewares["f-errors-server"] == nil {
				t.Fatalf("no middleware f-errors-server:\n%s\n%s", reportText(res), res.Config)
			}
			e := cfg.HTTP.Middlewares["f-errors-server"].Errors
			if e == nil || !slices.Equal(e.Status, []string{"500-599"}) || e.Service != "pages" || e.Query != "/{status}.html" {
				t.Fatalf("errors = %+v", e)
			}
			// The error pages come first: they replace the answers of
			// the other middlewares, as in Traefik 1.x.
			if r := cfg.HTTP.Routers["f"]; r == nil || !slices.Equal(r.Middlewares, []string{"f-errors-server", "f-auth"}) {
				t.Fatalf("router f = %+v, want the middlewares f-errors-server, f-auth", r)
			}
			for _, want := range [][]string{
				{"frontends.f.errors.server: converted", `"f-errors-server" (errors)`, `service "pages"`},
				{"frontends.f.errors.server.backend: changed", `entry points "admin"`},
				{"frontends.f.errors.own.backend: unsupported", "the frontend's own"},
				{"frontends.f.errors.gone.backend: unsupported", "not defined"},
			} {
				if len(reported(res, want...)) != 1 {
					t.Errorf("no line with %q", want)
				}
			}
		}},
		{"path rewrites run in Traefik 1.x's order", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.a]
  rule = "PathPrefixStripRegex:/api/{v:v[0-9]+},/x"
  [frontends.f.routes.b]
  rule = "ReplacePath:/fixed;AddPrefix:/p;ReplacePathRegex:^/p/(.*) /q/$1"
[frontends.g]
backend = "b"
  [frontends.g.routes.r]
  rule = "Host:g.example.com;ReplacePathRegex:^/a  /b"
[frontends.h]
backend = "b"
  [frontends.h.routes.r]
  rule = "PathStripRegex:/h/{id:[0-9]+}"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			want := []string{"f-strip-prefix-regex", "f-add-prefix", "f-replace-path-regex", "f-replace-path"}
			if got := cfg.HTTP.Routers["f"].Middlewares; !slices.Equal(got, want) {
				t.Fatalf("middlewares %v, want %v", got, want)
			}
			mw := cfg.HTTP.Middlewares
			if re := mw["f-strip-prefix-regex"].StripPrefixRegex.Regex; !slices.Equal(re, []string{"/api/(?:v[0-9]+)", "/x"}) {
				t.Fatalf("stripPrefixRegex %q", re)
			}
			if r := mw["f-replace-path-regex"].ReplacePathRegex; r.Regex != "^/p/(.*)" || r.Replacement != "/q/$1" {
				t.Fatalf("replacePathRegex %+v", r)
			}
			if p := mw["f-replace-path"].ReplacePath.Path; p != "/fixed" {
				t.Fatalf("replacePath %q", p)
			}
			if r := cfg.HTTP.Routers["f"].Rule; r != "PathRegexp(`^/api/(?:v[0-9]+)`) || PathPrefix(`/x`)" {
				t.Fatalf("rule %q", r)
			}
			if g := cfg.HTTP.Routers["g"]; g == nil || len(g.Middlewares) != 0 {
				t.Fatalf("router g = %+v, want it without the ReplacePathRegex Traefik 1.x ignored", g)
			}
			if len(reported(res, "frontends.g.routes.r.rule: changed", "Traefik 1.x ignored it")) != 1 {
				t.Errorf("the ignored ReplacePathRegex is not reported:\n%s", reportText(res))
			}
			h := cfg.HTTP.Routers["h"]
			if h.Rule != "PathRegexp(`^/h/(?:[0-9]+)$`)" || !slices.Equal(mw["h-strip-prefix-regex"].StripPrefixRegex.Regex, []string{"/h/(?:[0-9]+)"}) {
				t.Fatalf("router h = %+v, strip %+v", h, mw["h-strip-prefix-regex"].StripPrefixRegex)
			}
		}},
		{"servers transport for https backends", `
insecureSkipVerify = true
[entryPoints.http]
address = ":80"
[backends.plain.servers.s]
url = "http://10.0.0.1:80"
[backends.secure.servers.s]
url = "https://10.0.0.2:443"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			st := cfg.HTTP.ServersTransports[transportName]
			if st == nil || !st.InsecureSkipVerify || len(st.RootCAs) > 0 {
				t.Fatalf("servers transport = %+v", st)
			}
			if cfg.HTTP.Services["secure"].LoadBalancer.ServersTransport != transportName || cfg.HTTP.Services["plain"].LoadBalancer.ServersTransport != "" {
				t.Fatal("only the https backend should name the servers transport")
			}
			if len(reported(res, "insecureSkipVerify: converted", `servers transport "default-v1"`)) != 1 {
				t.Errorf("not reported:\n%s", reportText(res))
			}
		}},
		{"servers transport for every backend", `
insecureSkipVerify = true
rootCAs = ["/ca.pem", "/other-ca.pem"]
maxIdleConnsPerHost = 0
[forwardingTimeouts]
dialTimeout = 0
responseHeaderTimeout = "30s"
[entryPoints.http]
address = ":80"
[backends.plain.servers.s]
url = "http://10.0.0.1:80"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			want := config.ServersTransport{
				RootCAs:             []string{"/ca.pem", "/other-ca.pem"},
				MaxIdleConnsPerHost: 2,
				ForwardingTimeouts:  &config.ForwardingTimeouts{ResponseHeaderTimeout: config.Duration(30e9)},
			}
			st := cfg.HTTP.ServersTransports[transportName]
			if st == nil || st.InsecureSkipVerify || !slices.Equal(st.RootCAs, want.RootCAs) || st.MaxIdleConnsPerHost != 2 || *st.ForwardingTimeouts != *want.ForwardingTimeouts {
				t.Fatalf("servers transport = %+v, want %+v", st, want)
			}
			if cfg.HTTP.Services["plain"].LoadBalancer.ServersTransport != transportName {
				t.Fatal("timeouts concern every backend: plain should name the servers transport")
			}
			for _, want := range [][]string{
				{"insecureSkipVerify: changed", "since rootCAs is set"},
				{"maxIdleConnsPerHost: changed", "= 2"},
				{"forwardingTimeouts.dialTimeout: changed", "30s applies"},
				{"forwardingTimeouts.responseHeaderTimeout: converted"},
				{"rootCAs: converted"},
			} {
				if len(reported(res, want...)) != 1 {
					t.Errorf("no line with %q", want)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, cfg := convert(t, tc.src)
			tc.check(t, res, cfg)
		})
	}
}

// TestTraefikV1TransportFlags checks that the flags of the connections to
// servers convert as the file's keys do.
func TestTraefikV1TransportFlags(t *testing.T) {
	src := "[entryPoints.http]\naddress = \":80\"\n[backends.b.servers.s]\nurl = \"https://10.0.0.1\"\n"
	args := []string{"--insecureSkipVerify", "--maxIdleConnsPerHost=10", "--rootCAs=/a.pem, /b.pem"}
	res, cfg, err := convertTraefikV1("traefik.toml", []byte(src), Options{Args: args}, config.Parse)
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.HTTP.ServersTransports[transportName]
	if st == nil || st.InsecureSkipVerify || st.MaxIdleConnsPerHost != 10 || !slices.Equal(st.RootCAs, []string{"/a.pem", "/b.pem"}) {
		t.Fatalf("servers transport = %+v", st)
	}
	if len(reported(res, "--traefik-args: rootCAs: converted")) != 1 {
		t.Fatalf("report:\n%s", reportText(res))
	}
}

// TestTraefikV1TransportLeftOut checks that a servers transport tollgate
// refuses leaves the services in place: converted with config.Parse, the
// output validates and still serves every backend.
func TestTraefikV1TransportLeftOut(t *testing.T) {
	res, cfg := convert(t, `
insecureSkipVerify = true
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "https://10.0.0.1"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`)
	if cfg.HTTP.Services["b"] == nil || cfg.HTTP.Routers["f"] == nil {
		t.Fatalf("service or router left out:\n%s", reportText(res))
	}
	if st := cfg.HTTP.Services["b"].LoadBalancer.ServersTransport; st != "" && cfg.HTTP.ServersTransports[st] == nil {
		t.Fatalf("service b names servers transport %q, which is not defined", st)
	}
}

// TestIngressRewrites checks the Ingress annotations that convert into
// middlewares config still refuses as not implemented yet.
func TestIngressRewrites(t *testing.T) {
	convert := func(t *testing.T, manifest string) (*Result, *config.Config) {
		t.Helper()
		res, cfg, err := convertTraefikV1("traefik.toml", []byte(kubeTraefik), Options{Manifests: []Manifest{{Name: "a.yaml", Data: []byte(manifest)}}}, config.Parse)
		if err != nil {
			t.Fatal(err)
		}
		return res, cfg
	}
	t.Run("rule-type ReplacePath", func(t *testing.T) {
		one := strings.Replace(ingressDoc("one", map[string]string{"traefik.ingress.kubernetes.io/rule-type": "ReplacePath"}, ""), "path: /\n", "path: /status\n", 1)
		two := ingressDoc("two", map[string]string{"traefik.ingress.kubernetes.io/rule-type": "ReplacePath"}, "")
		two = strings.Replace(two, "      - path: /\n", "      - path: /a\n        pathType: Prefix\n        backend:\n          service: {name: two, port: {number: 80}}\n      - path: /b\n", 1)
		both := ingressDoc("both", map[string]string{"traefik.ingress.kubernetes.io/rule-type": "ReplacePath", "ingress.kubernetes.io/rewrite-target": "/x"}, "")
		res, cfg := convert(t, one+two+both)
		if p := cfg.HTTP.Middlewares["web-one-replace-path"]; p == nil || p.ReplacePath.Path != "/status" {
			t.Fatalf("middleware %+v, want replacePath to /status", p)
		}
		if p := cfg.HTTP.Middlewares["web-both-replace-path"]; p != nil {
			t.Fatalf("middleware %+v: Traefik 1.x refused ReplacePath beside rewrite-target", p)
		}
		if len(reported(res, "web/both traefik.ingress.kubernetes.io/rule-type: unsupported", "refused")) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
		if len(reported(res, "web/one traefik.ingress.kubernetes.io/rule-type: changed", "whatever its path")) != 1 ||
			len(reported(res, "web/two traefik.ingress.kubernetes.io/rule-type: unsupported", "2 paths")) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
	})
	t.Run("request-modifier", func(t *testing.T) {
		m := ingressDoc("rx", map[string]string{"ingress.kubernetes.io/request-modifier": "ReplacePathRegex: ^/api/(.*) /v2/$1"}, "") +
			ingressDoc("bad", map[string]string{"ingress.kubernetes.io/request-modifier": "ReplacePathRegex: ^/api/(.*)"}, "") +
			ingressDoc("rp", map[string]string{"ingress.kubernetes.io/request-modifier": "ReplacePath: /fixed"}, "")
		res, cfg := convert(t, m)
		if r := cfg.HTTP.Middlewares["web-rx-replace-path-regex"]; r == nil || r.ReplacePathRegex.Regex != "^/api/(.*)" || r.ReplacePathRegex.Replacement != "/v2/$1" {
			t.Fatalf("middleware %+v", r)
		}
		if r := cfg.HTTP.Middlewares["web-rp-replace-path"]; r == nil || r.ReplacePath.Path != "/fixed" {
			t.Fatalf("middleware %+v", r)
		}
		if len(reported(res, "web/bad ingress.kubernetes.io/request-modifier: changed", "Traefik 1.x ignored it")) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
		if got := reported(res, "ingress web/rx: action", "tollgate.io/router.middlewares=web-rx-replace-path-regex"); len(got) != 1 {
			t.Fatalf("annotate command not reported:\n%s", reportText(res))
		}
	})
	t.Run("forward authentication", func(t *testing.T) {
		m := ingressDoc("sso", map[string]string{
			"ingress.kubernetes.io/auth-type":             "forward",
			"ingress.kubernetes.io/auth-url":              "https://auth.example.com/verify",
			"ingress.kubernetes.io/auth-trust-headers":    "true",
			"ingress.kubernetes.io/auth-response-headers": "X-User, X-Groups",
			"ingress.kubernetes.io/auth-tls-secret":       "auth-client",
		}, "") + ingressDoc("nourl", map[string]string{"ingress.kubernetes.io/auth-type": "forward"}, "") +
			ingressDoc("nosecret", map[string]string{
				"ingress.kubernetes.io/auth-type":         "forward",
				"ingress.kubernetes.io/auth-url":          "http://auth.example.com/",
				"ingress.kubernetes.io/auth-tls-insecure": "true",
			}, "")
		res, cfg := convert(t, m)
		fa := cfg.HTTP.Middlewares["web-sso-auth"].ForwardAuth
		want := config.ClientTLS{Cert: forwardAuthDir + "/web/auth-client/tls.crt", Key: forwardAuthDir + "/web/auth-client/tls.key"}
		if fa == nil || !fa.TrustForwardHeader || !slices.Equal(fa.AuthResponseHeaders, []string{"X-User", "X-Groups"}) || fa.TLS == nil || *fa.TLS != want {
			t.Fatalf("forwardAuth %+v", fa)
		}
		if fa := cfg.HTTP.Middlewares["web-nosecret-auth"].ForwardAuth; fa == nil || fa.TLS != nil {
			t.Fatalf("forwardAuth %+v, want no tls: Traefik 1.x read auth-tls-insecure only with auth-tls-secret", fa)
		}
		for _, want := range [][]string{
			{"web/sso ingress.kubernetes.io/auth-tls-secret: action", "tls.crt"},
			{"ingress web/nourl: action", "without the forward authentication"},
			{"web/nosecret ingress.kubernetes.io/auth-tls-insecure: converted", "no effect without auth-tls-secret"},
		} {
			if len(reported(res, want...)) != 1 {
				t.Errorf("no line with %q:\n%s", want, reportText(res))
			}
		}
	})
}

// TestTraefikV1EntryPointsOnce checks that a frontend's entryPoints of the
// wrong type is one problem, though the error pages read it too.
func TestTraefikV1EntryPointsOnce(t *testing.T) {
	_, err := TraefikV1("traefik.toml", []byte(`
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
entryPoints = 3
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`))
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, "want an array of strings") {
		t.Fatalf("got %v, want one problem at entryPoints", err)
	}
}

// TestProblemString: a problem has no kind, and its line shows none (it
// showed an empty one, "key: : message").
func TestProblemString(t *testing.T) {
	_, err := ConvertTraefikV1("v1.toml", []byte("[entryPoints.http]\naddress = \"80\"\n"), Options{})
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 {
		t.Fatalf("got %v, want one problem", err)
	}
	got := e.Problems[0].String()
	if !strings.HasPrefix(got, `v1.toml:2: entryPoints.http.address: "80" is not host:port`) {
		t.Errorf("problem printed as %q", got)
	}
}
