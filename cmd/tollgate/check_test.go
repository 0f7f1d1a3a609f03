package main

import (
	"strings"
	"testing"
)

// TestCheckPositions checks that check refuses what the router would
// refuse, located in the file: a circuit breaker expression the router
// cannot parse (once only the router saw it, without a position, and not
// at all in a middleware no router uses), and TLS option names crypto/tls
// does not know.
func TestCheckPositions(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{
			name: "circuit breaker expression",
			doc: `[entryPoints.web]
address = ":80"
[http.routers.a]
rule = "PathPrefix(` + "`/`" + `)"
service = "s"
middlewares = ["cb"]
[[http.services.s.loadBalancer.servers]]
url = "http://127.0.0.1:9"
[http.middlewares.cb.circuitBreaker]
expression = "NetworkErrorRatio() = 0.5"
[http.middlewares.unused.circuitBreaker]
expression = "NetworkErrorRatio() > 0.5 &&"
`,
			want: []string{
				":10:1: http.middlewares.cb.circuitBreaker.expression: invalid expression: column 21: unexpected character '='",
				":12:1: http.middlewares.unused.circuitBreaker.expression: invalid expression: column 29: expected a metric",
			},
		},
		{
			name: "TLS names",
			doc: `[entryPoints.websecure]
address = ":443"
[entryPoints.websecure.http.tls]
options = "custom"
[tls.options.custom]
minVersion = "VersionTLS14"
cipherSuites = ["TLS_FOO"]
curvePreferences = ["P256"]
`,
			want: []string{
				`:6:1: tls.options.custom.minVersion: minVersion "VersionTLS14": use VersionTLS12 or VersionTLS13`,
				`:7:17: tls.options.custom.cipherSuites[0]: cipher suite "TLS_FOO" is unknown or insecure`,
				`:8:21: tls.options.custom.curvePreferences[0]: curve "P256": use X25519`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "check.toml", tc.doc)
			code, stdout, stderr := tollgate(t, "check", "--config", file)
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, exitInvalid, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, file+w) {
					t.Errorf("output does not contain %q:\n%s", file+w, stderr)
				}
			}
		})
	}
}
