package acme_test

import (
	"slices"
	"testing"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
)

func TestWanted(t *testing.T) {
	const routers = `
[http.routers.site]
rule = "Host(` + "`Example.COM`" + `) || Host(` + "`www.example.com`" + `) || Host(` + "`a.wild.example`" + `) || Host(` + "`10.0.0.1`" + `)"
service = "s"
  [http.routers.site.tls]

[http.routers.plain]
rule = "Host(` + "`plain.example.com`" + `)"
service = "s"

[http.routers.explicit]
rule = "Host(` + "`ignored.example.com`" + `)"
service = "s"
  [http.routers.explicit.tls]
  [[http.routers.explicit.tls.domains]]
  main = "api.example.com"
  sans = ["api2.example.com"]

[http.services.s.loadBalancer]
  [[http.services.s.loadBalancer.servers]]
  url = "http://127.0.0.1:1"
`
	for _, tc := range []struct {
		name     string
		acme     string
		onDemand []string
		want     [][]string
	}{
		{"domains only", `[[acme.domains]]
main = "example.com"
sans = ["www.example.com"]`, nil, [][]string{{"example.com", "www.example.com"}, {"api.example.com", "api2.example.com"}}},
		{"on host rule", "onHostRule = true", []string{"ondemand.example.net", "www.example.com"},
			[][]string{{"api.example.com", "api2.example.com"}, {"example.com"}, {"www.example.com"}, {"a.wild.example"}, {"ondemand.example.net"}}},
		{"wildcard covers", "onHostRule = true\n[[acme.domains]]\nmain = \"*.wild.example\"\n[acme.dnsChallenge]\nprovider = \"cloudflare\"", nil,
			[][]string{{"*.wild.example"}, {"api.example.com", "api2.example.com"}, {"example.com"}, {"www.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "[entryPoints.web]\naddress = \":80\"\n[entryPoints.websecure]\naddress = \":443\"\n  [entryPoints.websecure.http.tls]\n" +
				"[acme]\ninsecurePlaintextKeys = true\n" + tc.acme + "\n  [acme.httpChallenge]\n  entryPoint = \"web\"\n" + routers
			cfg, err := config.Parse("test.toml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, w := range acme.Wanted(cfg, tc.onDemand) {
				got = append(got, w.Domains)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestWantedCertificateProvided: a router whose certificate a provider
// supplies (a Kubernetes TLS Secret) gets no order, onHostRule or not.
func TestWantedCertificateProvided(t *testing.T) {
	cfg := &config.Config{
		ACME: &config.ACME{OnHostRule: true},
		HTTP: &config.HTTP{Routers: map[string]*config.Router{
			"secret@kubernetes": {Rule: "Host(`secret.example.com`)", Service: "s", TLS: &config.RouterTLS{CertificateProvided: true}},
			"acme@kubernetes":   {Rule: "Host(`acme.example.com`)", Service: "s", TLS: &config.RouterTLS{}},
		}},
	}
	got := acme.Wanted(cfg, nil)
	if len(got) != 1 || got[0].Main() != "acme.example.com" {
		t.Fatalf("wanted %v, want only acme.example.com", got)
	}
}

// TestWantedTCP: TCP routers that terminate TLS ask for their tls.domains,
// or with onHostRule for their HostSNI names, as HTTP routers do; those
// that pass TLS through, or have no TLS, ask for nothing, and neither does
// HostSNI(`*`). A wildcard needs DNS-01.
func TestWantedTCP(t *testing.T) {
	const routers = `
[tcp.routers.db]
rule = "HostSNI(` + "`DB.example.com`" + `) || HostSNI(` + "`*.db.example.com`" + `) || HostSNI(` + "`*`" + `)"
service = "s"
  [tcp.routers.db.tls]

[tcp.routers.explicit]
rule = "HostSNI(` + "`ignored.example.com`" + `)"
service = "s"
  [tcp.routers.explicit.tls]
  [[tcp.routers.explicit.tls.domains]]
  main = "mq.example.com"

[tcp.routers.pass]
rule = "HostSNI(` + "`pass.example.com`" + `)"
service = "s"
  [tcp.routers.pass.tls]
  passthrough = true

[tcp.routers.plain]
rule = "HostSNI(` + "`*`" + `)"
service = "s"

[tcp.services.s.loadBalancer]
  [[tcp.services.s.loadBalancer.servers]]
  address = "127.0.0.1:1"
`
	for _, tc := range []struct {
		name string
		acme string
		want [][]string
	}{
		{"domains only", "", [][]string{{"mq.example.com"}}},
		{"on host rule", "onHostRule = true", [][]string{{"db.example.com"}, {"mq.example.com"}}},
		{"wildcard with DNS-01", "onHostRule = true\n[acme.dnsChallenge]\nprovider = \"cloudflare\"",
			[][]string{{"db.example.com"}, {"*.db.example.com"}, {"mq.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "[entryPoints.websecure]\naddress = \":443\"\n  [entryPoints.websecure.http.tls]\n" +
				"[acme]\ninsecurePlaintextKeys = true\n" + tc.acme + "\n  [acme.tlsChallenge]\n" + routers
			cfg, err := config.Parse("test.toml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, w := range acme.Wanted(cfg, nil) {
				got = append(got, w.Domains)
				if w.Source != "tcp router db" && w.Source != "tcp router explicit" {
					t.Errorf("source %q, want a TCP router", w.Source)
				}
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
