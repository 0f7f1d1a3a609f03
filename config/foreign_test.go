package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// TestForeignFormats checks that YAML and JSON documents, named so or
// recognised by their content, get one problem saying tollgate reads TOML
// instead of a TOML syntax error, and that a TOML file with a syntax error
// keeps its syntax error.
func TestForeignFormats(t *testing.T) {
	const yamlDoc = "# Traefik v3 dynamic configuration\nhttp:\n  routers:\n    web:\n      rule: Host(`a.example.com`)\n      service: app\n"
	const jsonDoc = "{\n  \"http\": {\"routers\": {\"web\": {\"rule\": \"Host(`a.example.com`)\"}}}\n}\n"
	for _, tc := range []struct {
		name, file, doc, want string
	}{
		{"yaml by content", "dynamic.toml", yamlDoc, "tollgate reads TOML, and this is YAML: "},
		{"yaml document start", "dynamic.conf", "---\nentryPoints:\n  web:\n    address: \":80\"\n", "tollgate reads TOML, and this is YAML: "},
		{"yaml by name", "traefik.yml", "entryPoints = [\n", "tollgate reads TOML, and this is YAML: "},
		{"json by content", "dynamic.toml", jsonDoc, "tollgate reads TOML, and this is JSON: "},
		{"json by name", "traefik.json", "[1, 2]", "tollgate reads TOML, and this is JSON: "},
		{"toml with one colon typo", "tollgate.toml", "[entryPoints.web]\naddress: \":80\"\n[api]\nentryPoint = \"web\"\n", "expected '=' after key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file, []byte(tc.doc))
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if !strings.Contains(e.Problems[0].Message, tc.want) {
				t.Errorf("message %q does not contain %q", e.Problems[0].Message, tc.want)
			}
		})
	}
}

// TestTraefikV1Markers checks the detection rule: a Traefik 1.x file has
// several markers, a tollgate file with one Traefik 1.x key has one and is
// checked as a tollgate file.
func TestTraefikV1Markers(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want int
	}{
		{"tollgate", "[entryPoints.web]\naddress = \":80\"\n[entryPoints.web.http.tls]\n[acme]\nemail = \"a@example.com\"\n[acme.onDemand]\nask = \"http://127.0.0.1:9/ask\"\n", 0},
		{"proxyProtocol and a 1.x key", "[entryPoints.web]\naddress = \":80\"\n[entryPoints.web.proxyProtocol]\ntrustedIPs = [\"10.0.0.0/8\"]\n[entryPoints.web.tls]\n", 1},
		{"one typo", "[entryPoints.web]\naddress = \":80\"\n[entryPoints.web.tls]\n", 1},
		{"one section", "[file]\n[entryPoints.web]\naddress = \":80\"\n", 1},
		{"entry points and acme", "[entryPoints.http]\naddress = \":80\"\n[entryPoints.http.redirect]\nentryPoint = \"https\"\n[acme]\nstorage = \"acme.json\"\n", 2},
		{"acme onDemand bool and rule", "[acme]\nonDemand = true\n[http.routers.a]\nrule = \"Host:a.example.com\"\n", 2},
		{"globals count once", "logLevel = \"INFO\"\ngraceTimeOut = \"10s\"\ndebug = true\n", 1},
		{"1.x everything", "defaultEntryPoints = [\"http\"]\n[file]\n[backends]\n[frontends]\n[consul]\n", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := decodeTOML("f.toml", []byte(tc.doc))
			if tc.want >= traefikV1Threshold {
				if err == nil || !strings.Contains(err.Error(), "this is a Traefik 1.x configuration") {
					t.Fatalf("not recognised as Traefik 1.x: %v", err)
				}
			} else if err != nil {
				t.Fatalf("decode: %v", err)
			}
			var tree map[string]any
			if err := toml.Unmarshal([]byte(tc.doc), &tree); err != nil {
				t.Fatal(err)
			}
			if got := traefikV1Markers(tree); len(got) != tc.want {
				t.Errorf("markers %q, want %d", got, tc.want)
			}
		})
	}
}
