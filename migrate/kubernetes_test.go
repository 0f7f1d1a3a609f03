package migrate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

func TestTraefikV1Kubernetes(t *testing.T) {
	const eps = `
defaultEntryPoints = ["http", "https", "traefik"]
[entryPoints.http]
address = ":80"
[entryPoints.https]
address = ":443"
  [entryPoints.https.tls]
  [entryPoints.https.auth.basic]
  users = ["alice:$2y$05$9Xe1QMz3oIx8lYI5jYvVMeQ8yq0oTqGvzw4l8g2ZcYfH.oCzW5B0u"]
[entryPoints.traefik]
address = ":8080"
[api]
`
	for _, tc := range []struct {
		name  string
		src   string
		check func(t *testing.T, res *Result, k *config.KubernetesIngress)
	}{
		{"Traefik's default class", "[kubernetes]\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if k.IngressClass != "traefik" || k.Endpoint != "" || k.IngressEndpoint != nil {
				t.Fatalf("provider %+v, want ingressClass traefik and the in-cluster client", k)
			}
			if len(reported(res, "kubernetes: changed", `ingressClass = "traefik"`, "without the annotation or with an empty one")) != 1 ||
				len(reported(res, "kubernetes: action", "IngressClass named traefik", config.IngressController, "is-default-class")) != 1 {
				t.Fatalf("the default class is not reported:\n%s", reportText(res))
			}
		}},
		{"endpoint without scheme nor token", "[kubernetes]\nendpoint = \"10.96.0.1:443\"\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if k.Endpoint != "https://10.96.0.1:443" || k.TokenFile != "" {
				t.Fatalf("provider %+v", k)
			}
			if len(reported(res, "kubernetes.endpoint: changed", "needs the scheme", "serviceaccount/token")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"token and CA in the cluster", "[kubernetes]\ntoken = \"s3cr3t-t0ken\"\ncertAuthFilePath = \"/ca.pem\"\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if k.CAFile != "" || k.TokenFile != "" {
				t.Fatalf("provider %+v: caFile and tokenFile are refused without endpoint", k)
			}
			if len(reported(res, "kubernetes.token: converted", "not needed")) != 1 || len(reported(res, "kubernetes.certAuthFilePath: converted", "not needed")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"token with endpoint", "[kubernetes]\nendpoint = \"https://api:6443\"\ntoken = \"s3cr3t-t0ken\"\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if k.TokenFile != "" {
				t.Fatalf("tokenFile %q: the converter cannot know the file", k.TokenFile)
			}
			if len(reported(res, "kubernetes.token: action", "write it to a file", "tokenFile", "tollgate check --config")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
		}},
		{"ingressEndpoint without publishedService", "[kubernetes]\n[kubernetes.ingressEndpoint]\nip = \"203.0.113.1\"\nhostname = \"lb.example.com\"\npublishedService = \"\"\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if e := k.IngressEndpoint; e == nil || e.IP != "203.0.113.1" || e.Hostname != "lb.example.com" || e.PublishedService != "" {
				t.Fatalf("ingressEndpoint %+v", k.IngressEndpoint)
			}
		}},
		{"an empty ingressEndpoint", "[kubernetes]\n[kubernetes.ingressEndpoint]\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if k.IngressEndpoint != nil {
				t.Fatalf("ingressEndpoint %+v, want none: Traefik wrote no status", k.IngressEndpoint)
			}
		}},
		{"settings without equivalent", "[kubernetes]\ndisablePassHostHeaders = true\nenablePassTLSCert = true\nthrottleDuration = 0\nfilename = \"k.tmpl\"\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			for _, want := range []string{"kubernetes.disablePassHostHeaders: unsupported", "kubernetes.enablePassTLSCert: unsupported", "kubernetes.throttleDuration: changed", "kubernetes.filename: unsupported"} {
				if len(reported(res, want)) != 1 {
					t.Errorf("no line %q:\n%s", want, reportText(res))
				}
			}
		}},
		{"entry points and their middlewares", eps + "[kubernetes]\n", func(t *testing.T, res *Result, k *config.KubernetesIngress) {
			if !slices.Equal(k.EntryPoints, []string{"http", "https"}) {
				t.Fatalf("entryPoints %v, want defaultEntryPoints without the API's", k.EntryPoints)
			}
			if len(reported(res, "kubernetes: changed", `"traefik" serves the API`)) != 1 ||
				len(reported(res, "kubernetes: action", `"https-auth"`, "tollgate.io/router.middlewares")) != 1 {
				t.Fatalf("report:\n%s", reportText(res))
			}
			if !strings.Contains(string(res.Config), "[http.middlewares.https-auth.basicAuth]") {
				t.Fatalf("the entry point's middleware is not kept for the Ingresses:\n%s", res.Config)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, cfg := convert(t, tc.src)
			if cfg.Providers == nil || cfg.Providers.KubernetesIngress == nil {
				t.Fatalf("no [providers.kubernetesIngress]:\n%s", res.Config)
			}
			if strings.Contains(reportText(res)+string(res.Config), "s3cr3t") {
				t.Fatal("the token is in the output")
			}
			tc.check(t, res, cfg.Providers.KubernetesIngress)
		})
	}
}

// TestTraefikV1KubernetesTokenNeverWritten converts the example with a
// token and checks that neither the configuration nor the report holds
// it.
func TestTraefikV1KubernetesTokenNeverWritten(t *testing.T) {
	src, err := os.ReadFile("testdata/traefik-v1/kubernetes.toml")
	if err != nil {
		t.Fatal(err)
	}
	tree, _, err := decodeSource("kubernetes.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := tree["kubernetes"].(map[string]any)["token"].(string)
	if len(token) < 20 {
		t.Fatalf("the example's token %q is too short to search for", token)
	}
	res, err := ConvertTraefikV1("kubernetes.toml", src, goldenOptions(t, "testdata/traefik-v1/kubernetes.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{token, token[:16], token[len(token)-16:]} {
		if strings.Contains(string(res.Config)+reportText(res), part) {
			t.Fatalf("the token (or part of it) is in the output")
		}
	}
}
