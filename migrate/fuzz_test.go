package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// FuzzTraefikV1 checks that no input makes the conversion panic, that it
// fails only with an *Error, and that whatever it converts passes
// tollgate's validation.
func FuzzTraefikV1(f *testing.F) {
	files, _ := filepath.Glob("testdata/traefik-v1/*.toml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"", "[entryPoints.http]\naddress = \":80\"\n", twoEntryPoints,
		"[frontends.f]\nbackend = \"b\"\n[frontends.f.routes.r]\nrule = \"Host:{a:[}\"\n[backends.b.servers.s]\nurl = \"http://x\"\n",
		"[[tls]]\n[tls.certificate]\ncertFile = \"a\"\n", "[acme]\n[[acme.domains]]\nmain = 1\n",
		"[entryPoints.a.tls]\ncipherSuites = [1]\n", "entryPoints = 3\n", "[backends.b.servers]\ns = 1\n",
		"insecureSkipVerify = true\nrootCAs = \"a,b\"\nmaxIdleConnsPerHost = -5\n[forwardingTimeouts]\ndialTimeout = 0\n[backends.b.servers.s]\nurl = \"https://x\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := TraefikV1("fuzz.toml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("error %v (%T) is not an *Error with problems", err, err)
			}
			return
		}
		if _, err := config.Parse("converted.toml", res.Config); err != nil {
			t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
		}
	})
}

// FuzzParseV1Rule checks that no rule makes the rule converter panic.
func FuzzParseV1Rule(f *testing.F) {
	for _, s := range []string{"Host:a.com", "PathPrefixStrip:/a,/b;Method:GET", "HostRegexp:{a:[a-z]+}.b", "Query:a={b}", "Headers:a,b,c,d", "Path:/{{}}", ";;:,", "ReplacePathRegex:^/(a) /$1;ReplacePath:/x", "PathStripRegex:/{a}/b,/c;PathPrefixStripRegex:/{d:[0-9]+}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseV1Rule(s)
		if err == nil && len(r.exprs) > 0 {
			_ = andAll(r.exprs).String()
		}
	})
}

// FuzzDecodeTraefikV1 checks that no stored value makes the reader panic
// or fail with anything but ErrFormat.
func FuzzDecodeTraefikV1(f *testing.F) {
	f.Add([]byte(`{"Email":"a@b.c","DomainsCertificate":{"Certs":[{"Domains":{"Main":"a.b"},"Certificate":{"Certificate":"eA==","PrivateKey":"eA=="}}]}}`))
	f.Add([]byte("H4sIAAAAAAAA/w=="))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte(`{"PrivateKey":"MIIB"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeTraefikV1(b); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
	})
}

// FuzzReadACMEJSON checks that no acme.json makes the reader panic or fail
// with anything but ErrFormat.
func FuzzReadACMEJSON(f *testing.F) {
	f.Add([]byte(`{"le":{"Account":{"Email":"a@b.c"},"Certificates":[{"domain":{"main":"a.b"},"certificate":"eA==","key":"eA==","Store":"default"}]}}`))
	f.Add([]byte(`{"Account":null,"Certificates":[]}`))
	f.Add([]byte(`{"le":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ReadACMEJSON(b); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
	})
}

// FuzzSplitArgs checks that no command line makes the splitter panic, and
// that splitting what it joined back gives the same words.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"--consul --consul.endpoint=a:1", `--x="a b" 'c d' e\ f`, `"unclosed`, "\\", `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitArgs(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := SplitArgs(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q split to %q, its quoted form to %q (%v)", s, words, again, err)
		}
	})
}

// FuzzTraefikV1Flags checks that no flags make the conversion panic or
// produce a configuration tollgate refuses.
func FuzzTraefikV1Flags(f *testing.F) {
	f.Add("--consul --consul.endpoint=10.0.0.5:8500 --consul.prefix=traefik")
	f.Add("--etcd.endpoint etcd:2379 --etcd.useapiv3 --kubernetes --kubernetes.namespaces=a,b")
	f.Add("--kubernetes.ingressendpoint.ip=1.2.3.4 --kubernetes.throttleduration=x --acme.storage")
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitArgs(s)
		if err != nil {
			return
		}
		res, err := ConvertTraefikV1("fuzz.toml", []byte("[entryPoints.http]\naddress = \":80\"\n"), Options{Args: args})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("error %v (%T) is not an *Error with problems", err, err)
			}
			return
		}
		if _, err := config.Parse("converted.toml", res.Config); err != nil {
			t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
		}
	})
}

// FuzzIngressManifest checks that no manifest makes the Ingress check
// panic, fail the conversion, or produce a configuration tollgate
// refuses.
func FuzzIngressManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/traefik-v1/kubernetes.ingresses.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    ingress.kubernetes.io/rewrite-target: x\n    ingress.kubernetes.io/rule-type: PathStrip\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /a/\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","annotations":{"ingress.kubernetes.io/circuit-breaker-expression":"x"}}}]}`))
	f.Add([]byte("---\n--- x\n...\n"))
	src := []byte("[entryPoints.http]\naddress = \":80\"\n[entryPoints.https]\naddress = \":443\"\n  [entryPoints.https.tls]\n[kubernetes]\n")
	f.Fuzz(func(t *testing.T, manifest []byte) {
		res, err := ConvertTraefikV1("fuzz.toml", src, Options{Manifests: []Manifest{{Name: "fuzz.yaml", Data: manifest}}})
		if err != nil {
			t.Fatalf("a manifest failed the conversion: %v", err)
		}
		if _, err := config.Parse("converted.toml", res.Config); err != nil {
			t.Fatalf("the converted configuration does not validate: %v\n%s", err, res.Config)
		}
	})
}
