package migrate

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// ingressDoc writes an Ingress of networking.k8s.io/v1 with annotations
// and, if class is not empty, spec.ingressClassName.
func ingressDoc(name string, annotations map[string]string, className string) string {
	var b strings.Builder
	b.WriteString("---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name + "\n  namespace: web\n")
	if annotations != nil {
		b.WriteString("  annotations:\n")
		for _, k := range slices.Sorted(maps.Keys(annotations)) {
			b.WriteString("    " + k + ": \"" + annotations[k] + "\"\n")
		}
	}
	b.WriteString("spec:\n")
	if className != "" {
		b.WriteString("  ingressClassName: " + className + "\n")
	}
	b.WriteString("  rules:\n  - host: " + name + ".example.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service: {name: " + name + ", port: {number: 80}}\n")
	return b.String()
}

const kubeTraefik = `
defaultEntryPoints = ["http"]
[entryPoints.http]
address = ":80"
[kubernetes]
`

func convertIngresses(t *testing.T, src string, manifests ...string) *Result {
	t.Helper()
	var ms []Manifest
	for i, m := range manifests {
		ms = append(ms, Manifest{Name: []string{"a.yaml", "b.yaml", "c.yaml"}[i], Data: []byte(m)})
	}
	res, err := ConvertTraefikV1("traefik.toml", []byte(src), Options{Manifests: ms})
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	parseConverted(t, res)
	return res
}

// TestIngressClasses checks which Ingresses tollgate serves after the
// conversion of Traefik's default class (empty ingressClass: the
// annotation "traefik", empty or absent), and what the report asks for
// each.
func TestIngressClasses(t *testing.T) {
	const class = "kubernetes.io/ingress.class"
	manifest := ingressDoc("none", nil, "") +
		ingressDoc("empty", map[string]string{class: ""}, "") +
		ingressDoc("traefik", map[string]string{class: "traefik"}, "") +
		ingressDoc("nginx", map[string]string{class: "nginx", "traefik.frontend.priority": "5"}, "") +
		ingressDoc("named", nil, "traefik") +
		ingressDoc("other", nil, "public")
	tollgateClass := "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: traefik\nspec:\n  controller: tollgate-proxy.io/ingress-controller\n"
	res := convertIngresses(t, kubeTraefik, manifest+tollgateClass)
	for _, want := range [][]string{
		{"ingress web/none: changed", "no class"},
		{"ingress web/none: action", "kubernetes.io/ingress.class=traefik"},
		{"ingress web/empty kubernetes.io/ingress.class: changed", "empty"},
		{"ingress web/empty: action", "--overwrite", "kubernetes.io/ingress.class=traefik"},
		{"ingress web/traefik kubernetes.io/ingress.class: converted"},
		{"ingress web/traefik: converted", "nothing to change"},
		{"ingress web/nginx: converted", "not checked: Traefik 1.x did not serve it"},
		{"ingress web/named: converted", "names tollgate's IngressClass"},
		{"ingress web/other: action", `spec.ingressClassName "public"`},
	} {
		if got := reported(res, want...); len(got) != 1 {
			t.Errorf("want one line with %q, got %q", want, got)
		}
	}
	if len(reported(res, "web/nginx traefik.frontend.priority")) != 0 {
		t.Errorf("the annotations of an Ingress Traefik did not serve are reported:\n%s", reportText(res))
	}
	// With a default IngressClass of tollgate's, an Ingress without class
	// needs nothing.
	defaultClass := strings.Replace(tollgateClass, "  name: traefik\n", "  name: traefik\n  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}\n", 1)
	res = convertIngresses(t, kubeTraefik, ingressDoc("none", nil, "")+defaultClass)
	if len(reported(res, "ingress web/none: converted", "default IngressClass traefik")) != 1 || len(reported(res, "web/none", "action")) != 0 {
		t.Fatalf("report:\n%s", reportText(res))
	}
}

// TestIngressAnnotationsEveryOneReported reads the example manifests and
// checks that every Traefik annotation of every Ingress and Service
// Traefik served has its line, and that every Ingress has its verdict.
func TestIngressAnnotationsEveryOneReported(t *testing.T) {
	const file = "testdata/traefik-v1/kubernetes.toml"
	opts := goldenOptions(t, file)
	res, err := ConvertTraefikV1("kubernetes.toml", mustRead(t, file), opts)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, it := range res.Items {
		keys[it.Key] = true
	}
	c := &converter{}
	objs := c.readManifest(1, opts.Manifests[0])
	if len(objs) < 6 {
		t.Fatalf("read %d objects, want the example's 6 Ingresses and Services", len(objs))
	}
	n := 0
	for _, o := range objs {
		if o.ing == nil && o.kind != "Service" {
			continue
		}
		if o.ing != nil && !keys[o.id()] {
			t.Errorf("%s has no line of its own", o.id())
		}
		if o.ing != nil && slices.ContainsFunc(res.Items, func(it Item) bool { return it.Key == o.id() && strings.HasPrefix(it.Message, "not checked") }) {
			continue
		}
		for k := range o.meta.Annotations {
			if canonicalAnnotation(k) == "" {
				continue
			}
			n++
			if !keys[o.id()+" "+k] {
				t.Errorf("%s: annotation %s has no line", o.id(), k)
			}
		}
	}
	if n < 30 {
		t.Fatalf("checked %d annotations, want the example's 30 or more", n)
	}
}

func TestIngressManifestsRead(t *testing.T) {
	t.Run("documents and their lines", func(t *testing.T) {
		data := "# leading comment\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\n    a: b\n    traefik.ingress.kubernetes.io/affinity: \"true\"\n--- # next\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
		docs := splitDocuments([]byte(data))
		if len(docs) != 2 || docs[0].line != 6 || docs[1].line != 14 {
			t.Fatalf("documents %+v, want two, on lines 6 and 14", docs)
		}
		c := &converter{}
		objs := c.readManifest(1, Manifest{Name: "m.yaml", Data: []byte(data)})
		if len(objs) != 1 || objs[0].line != 6 || objs[0].annLines["traefik.ingress.kubernetes.io/affinity"] != 12 {
			t.Fatalf("objects %+v, want the Service on line 6 with its annotation on line 12", objs)
		}
	})
	t.Run("kubectl's JSON list", func(t *testing.T) {
		data := `{
  "apiVersion": "v1",
  "items": [
    {
      "apiVersion": "networking.k8s.io/v1",
      "kind": "Ingress",
      "metadata": {
        "annotations": {
          "traefik.frontend.priority": "7"
        },
        "name": "web",
        "namespace": "shop"
      },
      "spec": {"rules": [{"host": "a.example.com"}]}
    }
  ],
  "kind": "List"
}`
		res := convertIngresses(t, kubeTraefik, data)
		if len(reported(res, "a.yaml:9: ingress shop/web traefik.frontend.priority: converted", `tollgate.io/router.priority: "7"`)) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
	})
	t.Run("documents that cannot be read", func(t *testing.T) {
		res := convertIngresses(t, kubeTraefik, "apiVersion: v1\nkind: Service\nmetadata: {name: [}\n", "apiVersion: extensions/v2\nkind: Ingress\nmetadata: {name: x}\n",
			ingressDoc("fine", map[string]string{"ingress.kubernetes.io/priority": "3"}, ""))
		if len(reported(res, "a.yaml:1: action: not read")) != 1 || len(reported(res, "b.yaml:1: action: not read", "not an Ingress API version")) != 1 ||
			len(reported(res, "c.yaml:8: ingress web/fine ingress.kubernetes.io/priority: converted")) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
	})
	t.Run("no Kubernetes provider", func(t *testing.T) {
		res := convertIngresses(t, "[entryPoints.http]\naddress = \":80\"\n", ingressDoc("x", nil, ""))
		if len(reported(res, "a.yaml: action", "no [kubernetes] section")) != 1 {
			t.Fatalf("report:\n%s", reportText(res))
		}
	})
}

// TestIngressMiddlewares checks the middlewares made from annotations and
// the order an Ingress names them in: as Traefik 1.x ran them.
func TestIngressMiddlewares(t *testing.T) {
	src := `
defaultEntryPoints = ["http", "https"]
[entryPoints.http]
address = ":80"
[entryPoints.https]
address = ":8443"
  [entryPoints.https.tls]
  [entryPoints.https.whiteList]
  sourceRange = ["10.0.0.0/8"]
[kubernetes]
enablePassTLSCert = true
`
	m := ingressDoc("app", map[string]string{
		"kubernetes.io/ingress.class":                         "traefik",
		"traefik.ingress.kubernetes.io/rewrite-target":        "/v2",
		"ingress.kubernetes.io/request-modifier":              "AddPrefix: /prefix",
		"ingress.kubernetes.io/ssl-redirect":                  "true",
		"ingress.kubernetes.io/whitelist-source-range":        "192.0.2.0/24",
		"ingress.kubernetes.io/frame-deny":                    "true",
		"ingress.kubernetes.io/redirect-entry-point":          "https",
		"traefik.ingress.kubernetes.io/frontend-entry-points": "https",
	}, "")
	// The Ingress routes /api, not only /.
	m = strings.Replace(m, "      - path: /\n", "      - path: /api\n", 1)
	res := convertIngresses(t, src, m)
	cfg := parseConverted(t, res)
	got := reported(res, "ingress web/app: action", "kubectl annotate ingress -n web app --overwrite")
	want := "tollgate.io/router.middlewares=https-ipallowlist,web-app-strip-prefix,web-app-add-prefix,web-app-add-prefix-2,web-app-ipallowlist,web-app-redirect,web-app-https,web-app-headers,web-app-client-cert"
	if len(got) != 1 || !strings.Contains(got[0], want) || !strings.Contains(got[0], "tollgate.io/router.entrypoints=https") || !strings.Contains(got[0], "tollgate.io/router.tls=true") {
		t.Fatalf("annotate command %q, want %q", got, want)
	}
	mw := cfg.HTTP.Middlewares
	if p := mw["web-app-strip-prefix"].StripPrefix.Prefixes; !slices.Equal(p, []string{"/api"}) {
		t.Fatalf("strip prefixes %v", p)
	}
	if mw["web-app-add-prefix"].AddPrefix.Prefix != "/v2" || mw["web-app-add-prefix-2"].AddPrefix.Prefix != "/prefix" {
		t.Fatalf("add prefixes %+v, %+v", mw["web-app-add-prefix"].AddPrefix, mw["web-app-add-prefix-2"].AddPrefix)
	}
	if r := mw["web-app-redirect"].RedirectScheme; r == nil || r.Scheme != "https" || r.Port != "8443" {
		t.Fatalf("redirect %+v, want to https on 8443", r)
	}
	if !mw["web-app-headers"].Headers.FrameDeny || !mw["web-app-client-cert"].PassTLSClientCert.PEM {
		t.Fatal("headers or client certificate middleware is wrong")
	}
}

// TestIngressInvalidValues checks that annotation values tollgate would
// refuse never make the configuration invalid: they are reported, and
// the rest converted.
func TestIngressInvalidValues(t *testing.T) {
	m := ingressDoc("bad", map[string]string{
		"ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8, not-a-range",
		"ingress.kubernetes.io/redirect-regex":         "([",
		"ingress.kubernetes.io/redirect-replacement":   "/x",
		"ingress.kubernetes.io/rate-limit":             "rateset: [",
		"ingress.kubernetes.io/priority":               "high",
		"ingress.kubernetes.io/auth-type":              "digest",
		"ingress.kubernetes.io/pass-client-tls-cert":   "pem: maybe",
	}, "") + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: web\n  annotations:\n    ingress.kubernetes.io/circuit-breaker-expression: \"Nonsense(\"\n"
	res := convertIngresses(t, kubeTraefik, m)
	for _, want := range []string{
		"whitelist-source-range: action", "redirect-regex: unsupported", "rate-limit: unsupported", "priority: converted",
		"auth-type: unsupported", "pass-client-tls-cert: unsupported", "circuit-breaker-expression: unsupported",
	} {
		if len(reported(res, "web/bad", want)) == 0 {
			t.Errorf("no line %q", want)
		}
	}
	if got := reported(res, "ingress web/bad: action", "kubectl annotate"); len(got) != 1 || strings.Contains(got[0], "circuit-breaker") {
		t.Errorf("the command %q names a middleware that was left out", got)
	}
	if len(reported(res, "ingress web/bad: action", "without the digest authentication")) != 1 {
		t.Errorf("the missing authentication is not reported")
	}
	if t.Failed() {
		t.Logf("report:\n%s", reportText(res))
	}
}
