package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
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
		{
			name: "TCP rules",
			doc: `[entryPoints.websecure]
address = ":443"
[tcp.routers.db]
rule = "HostSNI(` + "`db.example.com:5432`" + `)"
service = "db"
[tcp.routers.db.tls]
passthrough = true
[tcp.routers.web]
rule = "Host(` + "`example.com`" + `)"
service = "db"
[[tcp.services.db.loadBalancer.servers]]
address = "10.0.0.7:5432"
`,
			want: []string{
				":4:1: tcp.routers.db.rule: invalid rule: column 9: HostSNI: \"db.example.com:5432\" has a port; a server name has none (the entry point is the port): write HostSNI(`db.example.com`)",
				":9:1: tcp.routers.web.rule: invalid rule: column 1: unknown matcher \"Host\": Host is an HTTP router matcher; TCP rules use HostSNI",
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

// TestCheckForeign checks that check and serve answer a file written for
// something else with one pointer: the Traefik 1.x files the converter's
// tests use point at tollgate migrate traefik-v1, and a Traefik v3 YAML
// file says tollgate reads TOML.
func TestCheckForeign(t *testing.T) {
	files, err := filepath.Glob("../../migrate/testdata/traefik-v1/*.toml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 Traefik 1.x examples in migrate/testdata/traefik-v1, found %d (%v)", len(files), err)
	}
	for _, file := range files {
		for _, cmd := range []string{"check", "serve"} {
			t.Run(cmd+" "+filepath.Base(file), func(t *testing.T) {
				code, stdout, stderr := tollgate(t, cmd, "--config", file)
				if code != exitInvalid {
					t.Fatalf("exit %d, want %d; output:\n%s%s", code, exitInvalid, stdout, stderr)
				}
				want := "invalid configuration: " + file + ": this is a Traefik 1.x configuration: convert it with `tollgate migrate traefik-v1 " + file + " --out tollgate.toml` (see docs/migration.md)\n"
				if cmd == "serve" {
					// serve logs it as the error record it exits with.
					want = `err="` + strings.TrimSuffix(want, "\n") + `" exit_code=3`
				}
				if !strings.Contains(stderr, want) || strings.Contains(stderr, "unknown key") {
					t.Errorf("output is not the one problem %q:\n%s", want, stderr)
				}
			})
		}
	}
	file := writeFile(t, "traefik.yml", "http:\n  routers:\n    web:\n      rule: Host(`a.example.com`)\n")
	code, stdout, stderr := tollgate(t, "check", "--config", file)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d; output:\n%s%s", code, exitInvalid, stdout, stderr)
	}
	if want := file + ": tollgate reads TOML, and this is YAML: "; !strings.Contains(stderr, want) {
		t.Errorf("output does not contain %q:\n%s", want, stderr)
	}
}

// selfSignedPEM returns a new self-signed certificate and its key, PEM.
func selfSignedPEM(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{CommonName: "backend.test", Names: []string{"backend.test"}, Serial: 1})
	return string(c.CertPEM()), string(c.KeyPEM(t))
}

// TestCheckServersTransportFiles checks that check reads the files a
// serversTransport names and reports each that cannot be used at its key,
// with the file, line and column; and that --skip-files reads none.
func TestCheckServersTransportFiles(t *testing.T) {
	certA, _ := selfSignedPEM(t)
	_, keyB := selfSignedPEM(t)
	notPEM := writeFile(t, "not-pem.txt", "no certificate here\n")
	cert := writeFile(t, "client.pem", certA)
	otherKey := writeFile(t, "other-key.pem", keyB)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	file := writeFile(t, "check.toml", fmt.Sprintf(`[entryPoints.web]
address = ":80"
[http.routers.a]
rule = "PathPrefix(`+"`/`"+`)"
service = "s"
[http.services.s.loadBalancer]
serversTransport = "backend"
[[http.services.s.loadBalancer.servers]]
url = "https://127.0.0.1:9"
[http.serversTransports.backend]
serverName = "backend.test"
rootCAs = [%q]
[[http.serversTransports.backend.certificates]]
certFile = %q
keyFile = %q
[http.serversTransports.other]
rootCAs = [%q]
`, missing, cert, otherKey, notPEM))
	code, stdout, stderr := tollgate(t, "check", "--config", file)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d; output:\n%s%s", code, exitInvalid, stdout, stderr)
	}
	for _, w := range []string{
		file + ":12:12: http.serversTransports.backend.rootCAs[0]: CA file " + missing + " does not exist",
		file + ":14:1: http.serversTransports.backend.certificates[0].certFile: certificate file " + cert + " with key file " + otherKey + ": tls: private key does not match public key",
		file + ":17:12: http.serversTransports.other.rootCAs[0]: CA file " + notPEM + " holds no PEM certificate",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("output does not contain %q:\n%s", w, stderr)
		}
	}
	if strings.Contains(stderr, strings.Split(keyB, "\n")[1]) {
		t.Errorf("output quotes a file's content:\n%s", stderr)
	}
	if code, stdout, stderr := tollgate(t, "check", "--config", file, "--skip-files"); code != exitOK {
		t.Errorf("--skip-files: exit %d, want %d (no file read); output:\n%s%s", code, exitOK, stdout, stderr)
	}
}
