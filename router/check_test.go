package router_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// TestCheckTLSNames gives Check TLS options with names crypto/tls does not
// know, in a configuration built in code that validation never saw: each
// is an error, never a silent zero (which would mean no client
// authentication, or a cipher suite with ID 0).
func TestCheckTLSNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts config.TLSOptions
		want string
	}{
		{"minVersion", config.TLSOptions{MinVersion: "VersionTLS14"}, `minVersion: "VersionTLS14": use VersionTLS12 or VersionTLS13`},
		{"maxVersion", config.TLSOptions{MaxVersion: "VersionTLS11"}, `maxVersion: "VersionTLS11": tollgate requires TLS 1.2 or later`},
		{"cipherSuites", config.TLSOptions{CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA"}}, `cipher suite "TLS_RSA_WITH_RC4_128_SHA" is unknown or insecure`},
		{"curvePreferences", config.TLSOptions{CurvePreferences: []string{"P256"}}, `curve "P256": use X25519`},
		{"clientAuthType", config.TLSOptions{ClientAuth: &config.ClientAuth{ClientAuthType: "RequireClientCert"}}, `clientAuthType "RequireClientCert": use one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{
				EntryPoints: map[string]*config.EntryPoint{"websecure": {Address: ":443", HTTP: &config.EntryPointHTTP{TLS: &config.EntryPointTLS{Options: "custom"}}}},
				TLS:         &config.TLS{Options: map[string]*config.TLSOptions{"custom": &tc.opts}},
			}
			err := router.Check(cfg)
			if err == nil || !strings.Contains(err.Error(), "TLS options custom: "+tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// everyMiddleware is a configuration that validation accepts with one
// router per middleware type, each at the edges of what validation allows.
const everyMiddleware = `
[entryPoints.web]
address = ":80"
[[http.services.s.loadBalancer.servers]]
url = "http://127.0.0.1:9"
[http.middlewares.addPrefix.addPrefix]
prefix = "/"
[http.middlewares.stripPrefix.stripPrefix]
prefixes = ["/", "/a/ b~%20"]
[http.middlewares.redirectScheme.redirectScheme]
scheme = "https"
port = "65535"
[http.middlewares.redirectRegex.redirectRegex]
regex = "^http://([^/]*)/(.*)$"
replacement = "https://${1}/${2}"
[http.middlewares.headerRedirect.headerRedirect]
header = "X-Region"
targets = { eu = "https://eu.example.com/x?a=b", us = "http://us.example.com:8080" }
default = "https://www.example.com"
[http.middlewares.headers.headers]
stsSeconds = 0
customRequestHeaders = { X-A = "", "X-B~!" = "v a l" }
customResponseHeaders = { Server = "" }
[http.middlewares.basicAuth.basicAuth]
users = ["alice:$2y$05$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZa"]
headerField = "X-User"
[http.middlewares.ipAllowList.ipAllowList]
sourceRange = ["10.0.0.0/8", "::1", "::ffff:10.0.0.1/128", "fe80::/10"]
rejectStatusCode = 599
[http.middlewares.ipAllowList.ipAllowList.ipStrategy]
excludedIPs = ["192.168.0.1"]
[http.middlewares.rateLimit.rateLimit]
average = 1
burst = 2147483647
period = "0s"
[http.middlewares.rateLimit.rateLimit.sourceCriterion]
requestHeaderName = "X-Api-Key"
[http.middlewares.retry.retry]
attempts = 1
initialInterval = "0s"
[http.middlewares.circuitBreaker.circuitBreaker]
expression = "ResponseCodeRatio(0, 1000, 0, 1000) > 0.5 || LatencyAtQuantileMS(100) > -1 && NetworkErrorRatio() != 0"
responseCode = 400
[http.middlewares.compress.compress]
includedContentTypes = ["text/html; charset=utf-8", "application/vnd.api+json"]
minResponseBodyBytes = 0
encodings = ["zstd", "br", "gzip"]
[http.middlewares.passTLSClientCert.passTLSClientCert]
pem = true
[http.middlewares.chain.chain]
middlewares = ["addPrefix", "retry"]
[http.middlewares.forwardAuth.forwardAuth]
address = "https://auth.example.com:65535/verify?a=b"
trustForwardHeader = true
authResponseHeaders = ["X-User", "X-~!"]
authResponseHeadersRegex = "^X-Auth-"
authRequestHeaders = ["Cookie", "Authorization"]
addAuthCookiesToResponse = ["session", "__Host-a"]
headerField = "X-Forwarded-User"
forwardBody = true
maxBodySize = -1
preserveLocationHeader = true
preserveRequestMethod = true
[http.middlewares.forwardAuth.forwardAuth.tls]
ca = "/nonexistent/ca.pem"
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
insecureSkipVerify = true
[http.middlewares.errors.errors]
status = ["100-599", "404", "599"]
service = "s"
query = "/{status}/{originalStatus}?u={url}"
statusRewrites = { "100-599" = 100, "418" = 599 }
[http.middlewares.replacePath.replacePath]
path = "/"
[http.middlewares.replacePathRegex.replacePathRegex]
regex = "^/(?P<rest>.*)$"
replacement = "%zz${rest}"
[http.middlewares.stripPrefixRegex.stripPrefixRegex]
regex = ["x*", "^/[a-z]+%2F"]
[http.middlewares.inFlightReq.inFlightReq]
amount = 1
[http.middlewares.inFlightReq.inFlightReq.sourceCriterion]
requestHost = true
[http.middlewares.buffering.buffering]
maxRequestBodyBytes = 0
memRequestBodyBytes = 9223372036854775807
maxResponseBodyBytes = 1
memResponseBodyBytes = 0
retryExpression = "!(IsNetworkError() || ResponseCode() != -1) && RequestMethod() != \"\""
[http.middlewares.contentType.contentType]
`

// TestCheckAcceptsWhatValidationAccepts feeds the router's constructors
// configurations that validation accepts: every middleware type at the
// edges of what validation allows, and the examples. The router must
// build each one, or `tollgate check` would accept what a replica refuses.
// everyServiceType nests every service type in every other, health
// propagated throughout.
const everyServiceType = `
[entryPoints.web]
address = ":80"
[http.routers.r]
rule = "PathPrefix(` + "`/`" + `)"
service = "top"
[http.services.top.failover]
service = "canary"
fallback = "shadow"
healthCheck = {}
[http.services.canary.weighted]
services = [{ name = "a", weight = 1000000 }, { name = "b", weight = 0 }, { name = "inner" }]
healthCheck = {}
[http.services.canary.weighted.sticky.cookie]
name = "c"
[http.services.inner.weighted]
services = [{ name = "b" }]
healthCheck = {}
[http.services.shadow.mirroring]
service = "a"
mirrorBody = false
maxBodySize = -1
healthCheck = {}
mirrors = [{ name = "b", percent = 100 }, { name = "canary", percent = 0 }]
[http.services.a.loadBalancer.healthCheck]
path = "/health"
[[http.services.a.loadBalancer.servers]]
url = "http://127.0.0.1:9"
[http.services.b.loadBalancer.passiveHealthCheck]
[[http.services.b.loadBalancer.servers]]
url = "http://127.0.0.1:10"
`

func TestCheckAcceptsWhatValidationAccepts(t *testing.T) {
	var b strings.Builder
	b.WriteString(everyMiddleware)
	for _, f := range reflect.VisibleFields(reflect.TypeFor[config.Middleware]()) {
		name := f.Tag.Get("toml")
		if !strings.Contains(everyMiddleware, "[http.middlewares."+name+"."+name+"]") {
			t.Errorf("everyMiddleware has no %s middleware; add one", name)
		}
		fmt.Fprintf(&b, "[http.routers.%s]\nrule = \"PathPrefix(`/%s`)\"\nservice = \"s\"\nmiddlewares = [%q]\n", name, name, name)
	}
	cfg, err := config.Parse("every.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("validation refuses everyMiddleware: %v", err)
	}
	if err := router.Check(cfg); err != nil {
		t.Errorf("the router refuses what validation accepts: %v", err)
	}

	cfg, err = config.Parse("services.toml", []byte(everyServiceType))
	if err != nil {
		t.Fatalf("validation refuses everyServiceType: %v", err)
	}
	if err := router.Check(cfg); err != nil {
		t.Errorf("the router refuses what validation accepts: %v", err)
	}

	files, err := filepath.Glob("../examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, file := range files {
		cfg, err := config.LoadFile(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if err := router.Check(cfg); err != nil {
			t.Errorf("%s: the router refuses what validation accepts: %v", file, err)
		}
	}
}

// TestValidationRefusesWhatRouterRefuses lists configurations that once
// only the router refused, so that `tollgate check` and storeconfig
// accepted them (or refused them without a position), and a replica
// following the store refused them only in its log. Validation refuses
// each one now, at its key.
func TestValidationRefusesWhatRouterRefuses(t *testing.T) {
	const base = "[entryPoints.web]\naddress = \":80\"\n[entryPoints.websecure]\naddress = \":443\"\n[entryPoints.websecure.http.tls]\n" +
		"[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:9\"\n" +
		"[http.routers.r]\nrule = \"PathPrefix(`/`)\"\nentryPoints = [\"web\"]\nservice = \"s\"\nmiddlewares = [\"m\"]\n"
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"circuit breaker expression", "[http.middlewares.m.circuitBreaker]\nexpression = \"NetworkErrorRatio() > 0.5 &&\"\n",
			"http.middlewares.m.circuitBreaker.expression: invalid expression: column 29: expected a metric"},
		{"circuit breaker metric arguments", "[http.middlewares.m.circuitBreaker]\nexpression = \"LatencyAtQuantileMS(0) > 100\"\n",
			"http.middlewares.m.circuitBreaker.expression: invalid expression: column 1: LatencyAtQuantileMS: quantile 0 is not a percentage"},
		{"add prefix control character", "[http.middlewares.m.addPrefix]\nprefix = \"/a\\u0001\"\n",
			`http.middlewares.m.addPrefix.prefix: prefix "/a\x01" contains a control character`},
		{"strip prefix control character", "[http.middlewares.m.stripPrefix]\nprefixes = [\"/a\", \"/b\\n\"]\n",
			`http.middlewares.m.stripPrefix.prefixes[1]: prefix "/b\n" contains a control character`},
		{"compress media type", "[http.middlewares.m.compress]\nexcludedContentTypes = [\"text\"]\n",
			`http.middlewares.m.compress.excludedContentTypes[0]: "text" is not a media type such as text/html`},
		{"compress media type parameters", "[http.middlewares.m.compress]\nincludedContentTypes = [\"text/html; charset\"]\n",
			`http.middlewares.m.compress.includedContentTypes[0]: "text/html; charset" is not a media type`},
		{"rate limit burst", "[http.middlewares.m.rateLimit]\naverage = 10\nburst = 2147483648\n",
			"http.middlewares.m.rateLimit.burst: burst 2147483648 is too large"},
		{"TLS options for one host", "[http.middlewares.m.retry]\nattempts = 1\n[tls.options.strict]\nminVersion = \"VersionTLS13\"\n" +
			"[http.routers.a]\nrule = \"Host(`a.example.com`)\"\nservice = \"s\"\n[http.routers.a.tls]\n" +
			"[http.routers.b]\nrule = \"Host(`A.example.com.`) && Path(`/x`)\"\nservice = \"s\"\n[http.routers.b.tls]\noptions = \"strict\"\n",
			`http.routers.b.tls.options: routers a and b both serve a.example.com on entry point websecure with different TLS options (the entry point's and "strict")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("bad.toml", []byte(base+tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validation: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzCheckAcceptsWhatValidationAccepts checks, on arbitrary documents,
// that the router builds every configuration validation accepts, except
// one naming a users file, whose content validation cannot see.
func FuzzCheckAcceptsWhatValidationAccepts(f *testing.F) {
	f.Add(everyMiddleware)
	f.Add(everyServiceType)
	files, _ := filepath.Glob("../examples/*.toml")
	for _, file := range files {
		if doc, err := os.ReadFile(file); err == nil {
			f.Add(string(doc))
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := config.Parse("fuzz.toml", []byte(doc))
		if err != nil || cfg.HTTP == nil {
			return
		}
		for _, m := range cfg.HTTP.Middlewares {
			if m.BasicAuth != nil && m.BasicAuth.UsersFile != "" {
				return
			}
		}
		if err := router.Check(cfg); err != nil {
			t.Fatalf("the router refuses what validation accepts: %v\n%s", err, doc)
		}
	})
}
