package migrate

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestTraefikV1Golden converts every file in testdata/traefik-v1 and
// compares the configuration and the report with testdata/golden (run with
// -update to rewrite them). NAME.args beside NAME.toml holds the flags
// Traefik ran with, NAME.ingresses.yaml its Kubernetes manifests. Every
// output must pass tollgate's validation (and every key of the source
// must appear in the report: TestTraefikV1EveryKeyReported).
func TestTraefikV1Golden(t *testing.T) {
	files, err := filepath.Glob("testdata/traefik-v1/*.toml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 examples in testdata/traefik-v1, found %d (%v)", len(files), err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			opts := goldenOptions(t, file)
			res, _, err := convertTraefikV1(name, src, opts, config.Parse)
			if err != nil {
				t.Fatalf("TraefikV1: %v", err)
			}
			if _, err := config.Parse("converted.toml", res.Config); err != nil {
				t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
			}
			var report bytes.Buffer
			if err := res.WriteReport(&report); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".toml"))
			golden(t, base+".toml", res.Config)
			golden(t, base+".report", report.Bytes())

			again, _, err := convertTraefikV1(name, src, opts, config.Parse)
			if err != nil || !bytes.Equal(again.Config, res.Config) || !slices.Equal(again.Items, res.Items) {
				t.Fatalf("a second conversion differs (err %v)", err)
			}
		})
	}
}

// goldenOptions reads the flags and manifests that go with an example.
func goldenOptions(t *testing.T, file string) Options {
	t.Helper()
	var opts Options
	base := strings.TrimSuffix(file, ".toml")
	if b, err := os.ReadFile(base + ".args"); err == nil {
		if opts.Args, err = SplitArgs(string(b)); err != nil {
			t.Fatalf("%s.args: %v", base, err)
		}
	}
	if b, err := os.ReadFile(base + ".ingresses.yaml"); err == nil {
		opts.Manifests = []Manifest{{Name: filepath.Base(base) + ".ingresses.yaml", Data: b}}
	}
	return opts
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTraefikV1Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the output (go test -update rewrites it); got:\n%s", path, got)
	}
}

// convert converts src, failing the test on an error, and parses the
// result with tollgate's config package.
func convert(t *testing.T, src string) (*Result, *config.Config) {
	t.Helper()
	res, err := TraefikV1("traefik.toml", []byte(src))
	if err != nil {
		t.Fatalf("TraefikV1: %v", err)
	}
	cfg, err := config.Parse("converted.toml", res.Config)
	if err != nil {
		t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
	}
	return res, cfg
}

// reported returns the report lines that contain every one of parts.
func reported(res *Result, parts ...string) []string {
	var out []string
	for _, it := range res.Items {
		s := it.String()
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(s, p) }) {
			out = append(out, s)
		}
	}
	return out
}

func reportText(res *Result) string {
	var b strings.Builder
	_ = res.WriteReport(&b)
	return b.String()
}

const twoEntryPoints = `
[entryPoints]
  [entryPoints.http]
  address = ":80"
    [entryPoints.http.redirect]
    entryPoint = "https"
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
`

func TestTraefikV1Conversions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		check func(t *testing.T, res *Result, cfg *config.Config)
	}{
		{"http to https redirect", twoEntryPoints, func(t *testing.T, res *Result, cfg *config.Config) {
			r := cfg.EntryPoints["http"].HTTP.Redirections.EntryPoint
			if r.To != "https" || r.Permanent == nil || *r.Permanent || r.Scheme != "" {
				t.Fatalf("redirection = %+v, want to https, not permanent, scheme https", r)
			}
			if cfg.EntryPoints["https"].HTTP.TLS == nil {
				t.Fatal("https does not serve TLS")
			}
			if len(reported(res, "entryPoints.http.redirect", "changed", "307")) != 1 {
				t.Fatalf("the temporary redirect is not reported as changed:\n%s", reportText(res))
			}
		}},
		{"onHostRule on several TLS entry points", `
[entryPoints]
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
  [entryPoints.partners]
  address = ":8443"
    [entryPoints.partners.tls]
[acme]
email = "ops@example.com"
storage = "traefik/acme/account"
entryPoint = "https"
onHostRule = true
  [acme.tlsChallenge]
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if !cfg.ACME.OnHostRule {
				t.Fatal("onHostRule is off")
			}
			if len(reported(res, "acme.onHostRule", "changed", "partners")) != 1 {
				t.Fatalf("the wider scope of onHostRule is not reported:\n%s", reportText(res))
			}
		}},
		{"the API's entry point's users guard the API", `
[entryPoints]
  [entryPoints.http]
  address = ":80"
  [entryPoints.traefik]
  address = ":8080"
    [entryPoints.traefik.auth.basic]
    users = ["ops:$2y$05$abcdefghijklmnopqrstuu5jYzJ6Oz0nnbuY4X2zYg8YxTiW8J4Nm", "old:$apr1$x$y"]
    usersFile = "/etc/traefik/users"
[api]
`, func(t *testing.T, res *Result, cfg *config.Config) {
			a := cfg.API
			if a == nil || !a.Dashboard || a.EntryPoint != "traefik" {
				t.Fatalf("api = %+v, want the dashboard on entry point traefik", a)
			}
			if len(a.Users) != 1 || !strings.HasPrefix(a.Users[0], "ops:$2y$") || a.UsersFile != "/etc/traefik/users" {
				t.Fatalf("api users = %q, file %q; want ops and the users file", a.Users, a.UsersFile)
			}
			if len(reported(res, "entryPoints.traefik.auth", "converted", "[api] users")) != 1 {
				t.Fatalf("the API's users are not reported:\n%s", reportText(res))
			}
		}},
		{"the API's entry point's digest auth", `
[entryPoints]
  [entryPoints.http]
  address = ":80"
  [entryPoints.traefik]
  address = ":8080"
    [entryPoints.traefik.auth.digest]
    users = ["ops:traefik:0123456789abcdef0123456789abcdef"]
[api]
dashboard = false
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if a := cfg.API; a == nil || a.Dashboard || len(a.Users) > 0 {
				t.Fatalf("api = %+v, want no dashboard and no users", a)
			}
			if len(reported(res, "entryPoints.traefik.auth", "action", "not protected")) != 1 {
				t.Fatalf("the unprotected API is not reported:\n%s", reportText(res))
			}
		}},
		{"no entry points", `logLevel = "DEBUG"`, func(t *testing.T, res *Result, cfg *config.Config) {
			if ep := cfg.EntryPoints["http"]; ep == nil || ep.Address != ":80" {
				t.Fatalf("entry points = %v, want Traefik's default http on :80", cfg.EntryPoints)
			}
			if cfg.Log == nil || cfg.Log.Level != "debug" {
				t.Fatalf("log = %+v, want level debug", cfg.Log)
			}
		}},
		{"frontend on both entry points", `
defaultEntryPoints = ["http", "https"]
[entryPoints]
  [entryPoints.http]
  address = ":80"
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
passHostHeader = true
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			tlsR, plain := cfg.HTTP.Routers["f"], cfg.HTTP.Routers["f-http"]
			if tlsR == nil || plain == nil {
				t.Fatalf("routers = %v, want f (TLS) and f-http", slices.Sorted(mapKeys(cfg.HTTP.Routers)))
			}
			if tlsR.TLS == nil || plain.TLS != nil || !slices.Equal(tlsR.EntryPoints, []string{"https"}) || !slices.Equal(plain.EntryPoints, []string{"http"}) {
				t.Fatalf("f = %+v, f-http = %+v", tlsR, plain)
			}
			if tlsR.Rule != "Host(`a.example.com`)" || tlsR.Priority != len("Host:a.example.com") {
				t.Fatalf("rule %q priority %d", tlsR.Rule, tlsR.Priority)
			}
			if s := cfg.HTTP.Services["b"].LoadBalancer; s.PassHostHeader != nil {
				t.Fatalf("passHostHeader = %v, want unset (true)", *s.PassHostHeader)
			}
		}},
		{"passHostHeader defaults to false", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
entryPoints = ["http"]
  [frontends.f.routes.r]
  rule = "PathPrefix:/"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if p := cfg.HTTP.Services["b"].LoadBalancer.PassHostHeader; p == nil || *p {
				t.Fatalf("passHostHeader = %v, want false as in Traefik 1.x's file provider", p)
			}
			if len(reported(res, "backends.b", "changed", "passHostHeader = false")) != 1 {
				t.Fatalf("not reported:\n%s", reportText(res))
			}
		}},
		{"onHostRule keeps Traefik's certificate shape", `
[entryPoints.https]
address = ":443"
  [entryPoints.https.tls]
[acme]
email = "ops@example.com"
onHostRule = true
  [acme.tlsChallenge]
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
entryPoints = ["https"]
  [frontends.f.routes.r]
  rule = "Host:a.example.com,b.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			d := cfg.HTTP.Routers["f"].TLS.Domains
			if len(d) != 1 || d[0].Main != "a.example.com" || !slices.Equal(d[0].SANs, []string{"b.example.com"}) {
				t.Fatalf("tls.domains = %+v, want one certificate a.example.com with b.example.com, as Traefik ordered it", d)
			}
			if cfg.ACME.EncryptionKeyEnv != EncryptionKeyEnv || cfg.ACME.TLSChallenge == nil || !cfg.ACME.OnHostRule {
				t.Fatalf("acme = %+v", cfg.ACME)
			}
		}},
		{"DNS challenge wins as in Traefik", `
[entryPoints.http]
address = ":80"
[acme]
email = "ops@example.com"
  [acme.httpChallenge]
  entryPoint = "http"
  [acme.dnsChallenge]
  provider = "cloudflare"
  delayBeforeCheck = 20
  [[acme.domains]]
  main = "*.Example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			a := cfg.ACME
			if a.DNSChallenge == nil || a.HTTPChallenge != nil || a.DNSChallenge.DelayBeforeCheck.String() != "20s" {
				t.Fatalf("acme = %+v, want DNS-01 only with a 20s delay", a)
			}
			if a.Domains[0].Main != "*.example.com" {
				t.Fatalf("domain %q, want it lower-cased", a.Domains[0].Main)
			}
			if len(reported(res, "acme.httpChallenge", "unsupported")) != 1 {
				t.Fatalf("the unused HTTP challenge is not reported:\n%s", reportText(res))
			}
		}},
		{"rule modifiers become middlewares", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.a]
  rule = "PathPrefixStrip:/api,/v1/api"
  [frontends.f.routes.b]
  rule = "AddPrefix:/internal"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			r := cfg.HTTP.Routers["f"]
			if r.Rule != "PathPrefix(`/api`) || PathPrefix(`/v1/api`)" {
				t.Fatalf("rule %q", r.Rule)
			}
			if !slices.Equal(r.Middlewares, []string{"f-strip-prefix", "f-add-prefix"}) {
				t.Fatalf("middlewares %v", r.Middlewares)
			}
			if p := cfg.HTTP.Middlewares["f-strip-prefix"].StripPrefix.Prefixes; !slices.Equal(p, []string{"/v1/api", "/api"}) {
				t.Fatalf("prefixes %v, want the longest first", p)
			}
		}},
		{"authentication that cannot be checked leaves the frontend out", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.open]
backend = "b"
  [frontends.open.routes.r]
  rule = "Host:open.example.com"
[frontends.md5]
backend = "b"
basicAuth = ["u:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
  [frontends.md5.routes.r]
  rule = "Host:md5.example.com"
[frontends.digest]
backend = "b"
  [frontends.digest.routes.r]
  rule = "Host:digest.example.com"
  [frontends.digest.auth.digest]
  users = ["u:traefik:0123456789abcdef0123456789abcdef"]
[frontends.nourl]
backend = "b"
  [frontends.nourl.routes.r]
  rule = "Host:nourl.example.com"
  [frontends.nourl.auth.forward]
  trustForwardHeader = true
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if got := slices.Sorted(mapKeys(cfg.HTTP.Routers)); !slices.Equal(got, []string{"open"}) {
				t.Fatalf("routers %v, want only open", got)
			}
			if len(reported(res, "frontends.digest.auth.digest", "unsupported")) != 1 || len(reported(res, "frontends.md5.basicAuth", "unsupported")) != 1 ||
				len(reported(res, "frontends.nourl.auth.forward: unsupported", "without address")) != 1 {
				t.Fatalf("not reported:\n%s", reportText(res))
			}
			if strings.Contains(reportText(res)+string(res.Config), "$apr1$") {
				t.Fatal("a password hash is in the output")
			}
		}},
		{"invalid server URL leaves the backend and its frontends out", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "ftp://10.0.0.1"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:f.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.HTTP != nil && (len(cfg.HTTP.Routers) > 0 || len(cfg.HTTP.Services) > 0) {
				t.Fatalf("http = %+v, want nothing", cfg.HTTP)
			}
			if len(reported(res, "traefik.toml:4: backends.b", "unsupported", "scheme must be")) != 1 {
				t.Fatalf("not reported at the backend:\n%s", reportText(res))
			}
		}},
		{"cluster store", `
[consul]
endpoint = "10.0.0.5:8500,10.0.0.6:8500"
prefix = "edge"
  [consul.tls]
  ca = "/ca.pem"
[acme]
email = "ops@example.com"
storage = "edge/acme/account"
entryPoint = "https"
  [acme.tlsChallenge]
[entryPoints.https]
address = ":443"
  [entryPoints.https.tls]
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.Store.Endpoint != "consul://10.0.0.5:8500?tls=true&ca_file=/ca.pem" || cfg.Store.Prefix != "tollgate" {
				t.Fatalf("store = %+v", cfg.Store)
			}
			if res.ACMEStorage != "edge/acme/account" {
				t.Fatalf("ACMEStorage %q", res.ACMEStorage)
			}
			if len(reported(res, "acme.storage", "action", "--from-traefik-v1", "--prefix edge")) != 1 {
				t.Fatalf("the import command is not reported:\n%s", reportText(res))
			}
		}},
		{"unknown keys are reported", `
[entryPoints.http]
address = ":80"
adress = ":81"
[acmee]
email = "x"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if len(reported(res, "traefik.toml:4: entryPoints.http.adress", "unknown")) != 1 || len(reported(res, "traefik.toml:5: acmee", "unknown table")) != 1 {
				t.Fatalf("unknown keys not reported:\n%s", reportText(res))
			}
		}},
		{"routers leave TLS options to their entry points", `
[entryPoints]
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
    minVersion = "VersionTLS12"
    [entryPoints.https.tls.clientCA]
    files = ["/ca.pem"]
  [entryPoints.public]
  address = ":8443"
    [entryPoints.public.tls]
    minVersion = "VersionTLS13"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
entryPoints = ["https", "public"]
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if len(cfg.HTTP.Routers) == 0 {
				t.Fatal("no router")
			}
			for name, r := range cfg.HTTP.Routers {
				if r.TLS == nil || r.TLS.Options != "" {
					t.Fatalf("router %s: tls = %+v, want TLS without options: the entry point's apply", name, r.TLS)
				}
			}
			if cfg.EntryPoints["https"].HTTP.TLS.Options == "" || cfg.EntryPoints["public"].HTTP.TLS.Options == "" ||
				cfg.EntryPoints["https"].HTTP.TLS.Options == cfg.EntryPoints["public"].HTTP.TLS.Options {
				t.Fatalf("entry point options %q and %q, want each its own", cfg.EntryPoints["https"].HTTP.TLS.Options, cfg.EntryPoints["public"].HTTP.TLS.Options)
			}
			if ca := cfg.TLS.Options[cfg.EntryPoints["https"].HTTP.TLS.Options].ClientAuth; ca == nil || ca.ClientAuthType != "RequireAndVerifyClientCert" {
				t.Fatalf("https's client authentication = %+v", ca)
			}
		}},
		{"a route without rule leaves the frontend out", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.typo]
backend = "b"
  [frontends.typo.routes.host]
  rule = "Host:a.example.com"
  [frontends.typo.routes.path]
  rules = "Path:/admin"
[frontends.only]
backend = "b"
  [frontends.only.routes.r]
  rul = "Host:b.example.com"
[frontends.ok]
backend = "b"
  [frontends.ok.routes.r]
  rule = "Host:c.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if got := slices.Sorted(mapKeys(cfg.HTTP.Routers)); !slices.Equal(got, []string{"ok"}) {
				t.Fatalf("routers %v, want only ok: a frontend with a route without rule is left out", got)
			}
			for _, at := range []string{"frontends.typo.routes.path", "frontends.only.routes.r"} {
				if len(reported(res, at+": unsupported", "no rule", "not converted")) != 1 {
					t.Fatalf("%s is not reported:\n%s", at, reportText(res))
				}
			}
			if len(reported(res, `"rules"`, "rule =")) != 1 {
				t.Fatalf("the report does not name the key found and the key to write:\n%s", reportText(res))
			}
		}},
		{"priorities keep Traefik 1.x's order", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.catchall]
backend = "b"
[frontends.empty]
backend = "b"
  [frontends.empty.routes]
[frontends.two]
backend = "b"
  [frontends.two.routes.host]
  rule = "Host:a.io"
  [frontends.two.routes.path]
  rule = "PathPrefix:/x"
[frontends.set]
backend = "b"
priority = 7
  [frontends.set.routes.r]
  rule = "Host:a.io"
[frontends.negative]
backend = "b"
priority = -3
  [frontends.negative.routes.r]
  rule = "Host:b.io"
[frontends.one]
backend = "b"
priority = 1
  [frontends.one.routes.r]
  rule = "Host:c.io"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if len(reported(res, "frontends.catchall: changed", `ties with frontends of priority 1 ("one")`)) != 1 {
				t.Fatalf("the tie with priority = 1 is not reported:\n%s", reportText(res))
			}
			want := map[string]int{
				"catchall": 1, "empty": 1, // 0 in Traefik 1.x, tried last
				"two":      len("Host:a.io") + len("PathPrefix:/x"),
				"set":      7,
				"negative": len("Host:b.io"), // Traefik used priorities above 0 only
			}
			for name, p := range want {
				r := cfg.HTTP.Routers[name]
				if r == nil || r.Priority != p {
					t.Fatalf("router %s = %+v, want priority %d", name, r, p)
				}
			}
			if r := cfg.HTTP.Routers["catchall"]; r.Rule != "PathPrefix(`/`)" {
				t.Fatalf("catchall rule %q", r.Rule)
			}
		}},
		{"frontends without entryPoints listen on defaultEntryPoints, else http", `
[entryPoints]
  [entryPoints.http]
  address = ":80"
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
    minVersion = "VersionTLS12"
  [entryPoints.admin]
  address = ":8081"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
[frontends.nowhere]
backend = "b"
entryPoints = ["gone"]
  [frontends.nowhere.routes.r]
  rule = "Host:b.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if got := slices.Sorted(mapKeys(cfg.HTTP.Routers)); !slices.Equal(got, []string{"f"}) {
				t.Fatalf("routers %v, want f only", got)
			}
			if r := cfg.HTTP.Routers["f"]; !slices.Equal(r.EntryPoints, []string{"http"}) || r.TLS != nil {
				t.Fatalf("f = %+v, want on http only, Traefik 1.x's defaultEntryPoints", r)
			}
			if len(reported(res, "frontends.nowhere.entryPoints: unsupported", "none of the frontend's entry points is defined")) != 1 {
				t.Fatalf("nowhere is not reported:\n%s", reportText(res))
			}
		}},
		{"defaultEntryPoints that are not defined leave the frontend out", `
defaultEntryPoints = ["web", "websecure"]
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.HTTP != nil && len(cfg.HTTP.Routers) > 0 {
				t.Fatalf("routers %v, want none", slices.Sorted(mapKeys(cfg.HTTP.Routers)))
			}
			if len(reported(res, "frontends.f: unsupported", "none of the frontend's entry points is defined")) != 1 ||
				len(reported(res, "frontends.f: unsupported", `"websecure" of defaultEntryPoints is not defined`)) != 1 {
				t.Fatalf("not reported:\n%s", reportText(res))
			}
		}},
		{"a Host with a star matched nothing in Traefik 1.x", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.wild]
backend = "b"
  [frontends.wild.routes.r]
  rule = "Host:*.a.io"
[frontends.mixed]
backend = "b"
  [frontends.mixed.routes.r]
  rule = "Host:*.b.io,b.io"
[frontends.regexp]
backend = "b"
  [frontends.regexp.routes.r]
  rule = "HostRegexp:*.c.io"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if got := slices.Sorted(mapKeys(cfg.HTTP.Routers)); !slices.Equal(got, []string{"mixed"}) {
				t.Fatalf("routers %v, want mixed only", got)
			}
			if r := cfg.HTTP.Routers["mixed"].Rule; r != "Host(`b.io`)" {
				t.Fatalf("mixed rule %q, want the literal b.io only", r)
			}
			for _, f := range []string{"wild", "mixed", "regexp"} {
				if len(reported(res, "frontends."+f+".routes.r.rule: action", "compared Host literally", "HostRegexp:{")) != 1 {
					t.Fatalf("%s is not reported:\n%s", f, reportText(res))
				}
			}
		}},
		{"a server URL's path and query are dropped", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:8080/app?debug=1"
[backends.b.servers.t]
url = "http://10.0.0.2:8080/"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			srv := cfg.HTTP.Services["b"].LoadBalancer.Servers
			if srv[0].URL != "http://10.0.0.1:8080" || srv[1].URL != "http://10.0.0.2:8080/" {
				t.Fatalf("servers %+v, want no path nor query", srv)
			}
			if len(reported(res, "backends.b.servers.s.url: changed", `"/app?debug=1" is dropped`)) != 1 || len(reported(res, "servers.t")) != 0 {
				t.Fatalf("not reported once:\n%s", reportText(res))
			}
		}},
		{"trailing slashes are reported once", `
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.a]
backend = "b"
  [frontends.a.routes.r]
  rule = "Path:/a"
[frontends.b]
backend = "b"
  [frontends.b.routes.r]
  rule = "Host:b.io;PathStrip:/b"
[frontends.c]
backend = "b"
  [frontends.c.routes.r]
  rule = "PathPrefix:/c"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			got := reported(res, "changed", "keepTrailingSlash")
			if len(got) != 1 || !strings.Contains(got[0], `"a", "b"`) {
				t.Fatalf("trailing slash reports %q, want one naming a and b:\n%s", got, reportText(res))
			}
			res2, _ := convert(t, "keepTrailingSlash = true\n"+`
[entryPoints.http]
address = ":80"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.a]
backend = "b"
  [frontends.a.routes.r]
  rule = "Path:/a"
`)
			if len(reported(res2, "changed", "keepTrailingSlash")) != 0 || len(reported(res2, "keepTrailingSlash: converted")) != 1 {
				t.Fatalf("with keepTrailingSlash = true:\n%s", reportText(res2))
			}
		}},
		{"entry point auth without users keeps its routers", `
[entryPoints.http]
address = ":80"
  [entryPoints.http.auth]
  headerField = "X-WebAuth-User"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			r := cfg.HTTP.Routers["f"]
			if r == nil || slices.Contains(r.Middlewares, "") {
				t.Fatalf("router f = %+v", r)
			}
			if res.Count(Unsupported) != 1 || len(reported(res, "entryPoints.http.auth: unsupported")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"TLS without minVersion is reported", `
[entryPoints]
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]
  [entryPoints.strict]
  address = ":8443"
    [entryPoints.strict.tls]
    minVersion = "VersionTLS12"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if len(reported(res, "entryPoints.https.tls: changed", "TLS 1.0 and 1.1")) != 1 || len(reported(res, "TLS 1.0 and 1.1")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"middlewares run in Traefik 1.x's order", `
[retry]
[entryPoints.http]
address = ":80"
compress = true
  [entryPoints.http.whiteList]
  sourceRange = ["10.0.0.0/8"]
  [entryPoints.http.auth.basic]
  users = ["alice:$2y$05$9Xe1QMz3oIx8lYI5jYvVMeQ8yq0oTqGvzw4l8g2ZcYfH.oCzW5B0u"]
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[backends.b.circuitBreaker]
expression = "NetworkErrorRatio() > 0.5"
[frontends.f]
backend = "b"
whitelistSourceRange = ["10.1.0.0/16"]
basicAuth = ["bob:$2y$05$9Xe1QMz3oIx8lYI5jYvVMeQ8yq0oTqGvzw4l8g2ZcYfH.oCzW5B0u"]
passTLSCert = true
  [frontends.f.routes.r]
  rule = "PathPrefixStrip:/app"
  [frontends.f.redirect]
  regex = "^http://old/(.*)"
  replacement = "http://new/$1"
  [frontends.f.headers]
  sslRedirect = true
  frameDeny = true
  [frontends.f.rateLimit.rateSet.r]
  period = "1s"
  average = 10
  burst = 20
`, func(t *testing.T, res *Result, cfg *config.Config) {
			want := []string{"http-auth", "compress", "http-ipallowlist", "f-strip-prefix", "f-ipallowlist", "f-redirect", "f-https", "f-headers", "f-auth", "f-client-cert", "b-circuit-breaker", "retry-1", "f-ratelimit-r"}
			if got := cfg.HTTP.Routers["f"].Middlewares; !slices.Equal(got, want) {
				t.Fatalf("middlewares\n%v, want\n%v", got, want)
			}
		}},
		{"proxyProtocol with trustedIPs keeps the entry point's routers", `
[entryPoints.http]
address = ":80"
  [entryPoints.http.proxyProtocol]
  trustedIPs = ["10.0.0.0/8"]
[backends.b.servers.s]
url = "http://10.0.0.1:80"
[frontends.f]
backend = "b"
  [frontends.f.routes.r]
  rule = "Host:a.example.com"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			pp := cfg.EntryPoints["http"].ProxyProtocol
			if pp == nil || pp.Insecure || !slices.Equal(pp.TrustedIPs, []string{"10.0.0.0/8"}) {
				t.Fatalf("proxyProtocol = %+v, want trustedIPs [10.0.0.0/8]", pp)
			}
			if r := cfg.HTTP.Routers["f"]; r == nil || !slices.Equal(r.EntryPoints, []string{"http"}) {
				t.Fatalf("router f = %+v, want it on entry point http", r)
			}
			if len(reported(res, "entryPoints.http.proxyProtocol: changed", "closed")) != 1 || res.Count(Unsupported) != 0 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"proxyProtocol with insecure and trustedIPs keeps insecure", `
[entryPoints.http]
address = ":80"
  [entryPoints.http.proxyProtocol]
  trustedIPs = ["10.0.0.1"]
  insecure = true
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if pp := cfg.EntryPoints["http"].ProxyProtocol; pp == nil || !pp.Insecure || len(pp.TrustedIPs) != 0 {
				t.Fatalf("proxyProtocol = %+v, want insecure alone", pp)
			}
			if len(reported(res, "entryPoints.http.proxyProtocol.trustedIPs: changed", "dropped")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"an unknown load balancer method becomes wrr", `
[entryPoints.http]
address = ":80"
[backends.b.loadBalancer]
method = "random"
[backends.b.servers.s]
url = "http://10.0.0.1:80"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.HTTP.Services["b"] == nil {
				t.Fatal("backend b is not converted")
			}
			if len(reported(res, "backends.b.loadBalancer.method: changed", `"random"`, "weighted round robin")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"keys match case-insensitively", `
[entryPoints.http]
Address = ":80"
[backends.b.LoadBalancer]
method = "drr"
[backends.b.servers.S1]
URL = "http://10.0.0.1"
`, func(t *testing.T, res *Result, cfg *config.Config) {
			if cfg.EntryPoints["http"].Address != ":80" || cfg.HTTP.Services["b"].LoadBalancer.Servers[0].URL != "http://10.0.0.1" {
				t.Fatalf("config %+v", cfg)
			}
			if res.Count(Unknown) != 0 {
				t.Fatalf("unknown keys:\n%s", reportText(res))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, cfg := convert(t, tc.src)
			tc.check(t, res, cfg)
		})
	}
}

func TestTraefikV1Errors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // each a problem's text, file:line first
	}{
		{"not TOML", "[entryPoints\naddress = 1", []string{"traefik.toml:1:"}},
		{"duplicate key", "logLevel = \"INFO\"\nlogLevel = \"DEBUG\"", []string{"traefik.toml:2:"}},
		{"wrong types", "[entryPoints.http]\naddress = 80\n[acme]\nonHostRule = \"yes\"\n[acme.tlsChallenge]\n",
			[]string{"traefik.toml:2: entryPoints.http.address: want a string, found the integer 80", "traefik.toml:4: acme.onHostRule: want true or false"}},
		{"redirect to nowhere", "[entryPoints.http]\naddress = \":80\"\n  [entryPoints.http.redirect]\n  entryPoint = \"https\"\n",
			[]string{"traefik.toml:4: entryPoints.http.redirect.entryPoint: redirect to entry point \"https\", which is not defined"}},
		{"entry point without address", "[entryPoints.http]\ncompress = true\n", []string{"traefik.toml:1: entryPoints.http: entry point \"http\" has no address"}},
		{"bad address", "[entryPoints.http]\naddress = \"80\"\n", []string{"traefik.toml:2: entryPoints.http.address: ", "(tollgate key entryPoints.http.address)"}},
		{"bad duration", "graceTimeOut = \"soon\"\n", []string{"traefik.toml:1: graceTimeOut: \"soon\" is not a duration"}},
		{"bad log level", "logLevel = \"LOUD\"\n", []string{"traefik.toml:1: logLevel: log level \"LOUD\""}},
		{"proxyProtocol trusting nobody", "[entryPoints.http]\naddress = \":80\"\n  [entryPoints.http.proxyProtocol]\n  insecure = false\n  trustedIPs = []\n",
			[]string{"traefik.toml:3: entryPoints.http.proxyProtocol: proxyProtocol without trustedIPs or insecure = true: Traefik 1.x did not start"}},
		{"proxyProtocol with a bad address", "[entryPoints.http]\naddress = \":80\"\n  [entryPoints.http.proxyProtocol]\n  trustedIPs = [\"10.0.0.0/33\"]\n",
			[]string{"traefik.toml:4: entryPoints.http.proxyProtocol.trustedIPs: ", "10.0.0.0/33", "(tollgate key entryPoints.http.proxyProtocol.trustedIPs"}},
		{"no challenge possible", "[entryPoints.web]\naddress = \":8000\"\n[acme]\nemail = \"a@example.com\"\n", []string{"traefik.toml:3: acme: no ACME challenge is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := TraefikV1("traefik.toml", []byte(tc.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (result %v), want an *Error", err, res != nil)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// parseConverted parses a result's configuration with tollgate's config
// package, failing the test when it does not validate.
func parseConverted(t *testing.T, res *Result) *config.Config {
	t.Helper()
	cfg, err := config.Parse("converted.toml", res.Config)
	if err != nil {
		t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
	}
	return cfg
}
