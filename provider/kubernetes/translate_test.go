package kubernetes

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

func ptr[T any](v T) *T { return &v }

func ingress(ns, name string, mutate ...func(*netv1.Ingress)) *netv1.Ingress {
	ing := &netv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1000, 0))},
		Spec: netv1.IngressSpec{
			IngressClassName: ptr("tollgate"),
			Rules: []netv1.IngressRule{{Host: "a.example.com", IngressRuleValue: netv1.IngressRuleValue{HTTP: &netv1.HTTPIngressRuleValue{
				Paths: []netv1.HTTPIngressPath{{Path: "/", PathType: ptr(netv1.PathTypePrefix), Backend: backend("web", 80, "")}},
			}}}},
		},
	}
	for _, m := range mutate {
		m(ing)
	}
	return ing
}

func backend(svc string, port int32, portName string) netv1.IngressBackend {
	return netv1.IngressBackend{Service: &netv1.IngressServiceBackend{Name: svc, Port: netv1.ServiceBackendPort{Number: port, Name: portName}}}
}

func service(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func slice(ns, svc, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-x", Labels: map[string]string{labelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func endpoint(ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Terminating: ptr(!ready)}}
}

func ourClass(name string, def bool) *netv1.IngressClass {
	c := &netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: netv1.IngressClassSpec{Controller: config.IngressController}}
	if def {
		c.Annotations = map[string]string{annotationDefaultClass: "true"}
	}
	return c
}

func baseObjects(ings ...*netv1.Ingress) *objects {
	return &objects{
		ingresses: ings,
		classes:   []*netv1.IngressClass{ourClass("tollgate", false), {ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: netv1.IngressClassSpec{Controller: "example.com/other"}}},
		services: map[string]*corev1.Service{
			"default/web": service("default", "web", corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "https", Port: 443}),
		},
		slices: map[string][]*discoveryv1.EndpointSlice{
			"default/web": {slice("default", "web", "http", 8080, endpoint("10.0.0.2", true), endpoint("10.0.0.1", true), endpoint("10.0.0.3", false))},
		},
		secrets: map[string]*corev1.Secret{},
	}
}

// testBase has a plain-text and a TLS entry point, and [acme] with
// acme set.
func testBase(acme bool) *config.Config {
	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{
		"web": {Address: ":80"}, "websecure": {Address: ":443", HTTP: &config.EntryPointHTTP{TLS: &config.EntryPointTLS{}}},
	}}
	if acme {
		base.ACME = &config.ACME{HTTPChallenge: &config.HTTPChallenge{EntryPoint: "web"}}
	}
	return base
}

func translateWith(t *testing.T, s config.KubernetesIngress, acme bool, o *objects) *result {
	t.Helper()
	return newTranslator(&s, testBase(acme), nil).translate(o)
}

func TestTranslateBasic(t *testing.T) {
	res := translateWith(t, config.KubernetesIngress{}, false, baseObjects(ingress("default", "web")))
	if len(res.provided.Parts) != 1 {
		t.Fatalf("parts: %d, problems %v", len(res.provided.Parts), res.problems)
	}
	part := res.provided.Parts[0]
	r := part.Routers["default_web_0_0@kubernetes"]
	if r == nil {
		t.Fatalf("routers: %v", part.Routers)
	}
	if want := "Host(`a.example.com`) && PathPrefix(`/`)"; r.Rule != want {
		t.Errorf("rule %q, want %q", r.Rule, want)
	}
	svc := part.Services[r.Service]
	if svc == nil || r.Service != "default_web_80@kubernetes" {
		t.Fatalf("service %q: %v", r.Service, part.Services)
	}
	var urls []string
	for _, s := range svc.LoadBalancer.Servers {
		urls = append(urls, s.URL)
	}
	// Ready endpoints only, sorted; the terminating one is drained.
	if got := strings.Join(urls, " "); got != "http://10.0.0.1:8080 http://10.0.0.2:8080" {
		t.Errorf("servers %s", got)
	}
	if len(res.problems) != 0 {
		t.Errorf("problems: %v", res.problems)
	}
}

func TestTranslatePaths(t *testing.T) {
	for _, tc := range []struct {
		typ  netv1.PathType
		path string
		want string
	}{
		{netv1.PathTypeExact, "/foo", "Path(`/foo`)"},
		{netv1.PathTypePrefix, "/foo", "(Path(`/foo`) || PathPrefix(`/foo/`))"},
		{netv1.PathTypePrefix, "/foo/", "(Path(`/foo`) || PathPrefix(`/foo/`))"},
		{netv1.PathTypePrefix, "/", "PathPrefix(`/`)"},
		{netv1.PathTypeImplementationSpecific, "/foo", "PathPrefix(`/foo`)"},
	} {
		m, _, ok := pathMatch(netv1.HTTPIngressPath{Path: tc.path, PathType: ptr(tc.typ)})
		if !ok || m != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.typ, tc.path, m, tc.want)
		}
	}
	_, exact, _ := pathMatch(netv1.HTTPIngressPath{Path: "/foo", PathType: ptr(netv1.PathTypeExact)})
	_, prefix, _ := pathMatch(netv1.HTTPIngressPath{Path: "/foo", PathType: ptr(netv1.PathTypePrefix)})
	_, longer, _ := pathMatch(netv1.HTTPIngressPath{Path: "/foo/bar", PathType: ptr(netv1.PathTypePrefix)})
	if !(exact > prefix && longer > exact) {
		t.Errorf("priorities exact %d prefix %d longer %d", exact, prefix, longer)
	}
}

func TestTranslateClasses(t *testing.T) {
	byName := ingress("default", "by-name")
	other := ingress("default", "other", func(i *netv1.Ingress) { i.Spec.IngressClassName = ptr("other") })
	missing := ingress("default", "missing", func(i *netv1.Ingress) { i.Spec.IngressClassName = ptr("nope") })
	annotated := ingress("default", "annotated", func(i *netv1.Ingress) {
		i.Spec.IngressClassName = nil
		i.Annotations = map[string]string{annotationClass: "tollgate"}
	})
	annotatedOther := ingress("default", "annotated-other", func(i *netv1.Ingress) {
		i.Spec.IngressClassName = nil
		i.Annotations = map[string]string{annotationClass: "nginx"}
	})
	none := ingress("default", "none", func(i *netv1.Ingress) { i.Spec.IngressClassName = nil })
	o := baseObjects(byName, other, missing, annotated, annotatedOther, none)
	served := func(res *result) string {
		var names []string
		for _, i := range res.served {
			names = append(names, i.Name)
		}
		return strings.Join(names, " ")
	}
	if got := served(translateWith(t, config.KubernetesIngress{}, false, o)); got != "annotated by-name" {
		t.Errorf("served %q", got)
	}
	o.classes[0] = ourClass("tollgate", true) // the default class
	if got := served(translateWith(t, config.KubernetesIngress{}, false, o)); got != "annotated by-name none" {
		t.Errorf("with a default class: served %q", got)
	}
	if got := served(translateWith(t, config.KubernetesIngress{IngressClass: "other"}, false, o)); got != "" {
		t.Errorf("ingressClass other (not ours): served %q", got)
	}
}

func TestTranslateTLS(t *testing.T) {
	withTLS := ingress("default", "web", func(i *netv1.Ingress) {
		i.Spec.Rules = append(i.Spec.Rules, netv1.IngressRule{Host: "b.example.com", IngressRuleValue: i.Spec.Rules[0].IngressRuleValue})
		i.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"a.example.com"}, SecretName: "a-tls"}, {Hosts: []string{"b.example.com"}}}
	})
	o := baseObjects(withTLS)
	o.secrets["default/a-tls"] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
	res := translateWith(t, config.KubernetesIngress{}, true, o)
	part := res.provided.Parts[0]
	a, b := part.Routers["default_web_0_0-tls@kubernetes"], part.Routers["default_web_1_0-tls@kubernetes"]
	if a == nil || b == nil {
		t.Fatalf("routers: %v", part.Routers)
	}
	if len(a.TLS.Domains) != 0 {
		t.Errorf("a host with a secret is ordered from ACME: %v", a.TLS.Domains)
	}
	if len(b.TLS.Domains) != 1 || b.TLS.Domains[0].Main != "b.example.com" {
		t.Errorf("a host without a secret is not ordered from ACME: %+v", b.TLS)
	}
	if c := part.Certificates; len(c) != 1 || c[0].Source != "secret default/a-tls" || !slices.Equal(c[0].Names, []string{"a.example.com"}) {
		t.Errorf("certificates %v", c)
	}
	if !a.TLS.CertificateProvided || b.TLS.CertificateProvided {
		t.Errorf("certificate provided: a %v, b %v", a.TLS.CertificateProvided, b.TLS.CertificateProvided)
	}
	// Without [acme]: reported, served with the default certificate.
	res = translateWith(t, config.KubernetesIngress{}, false, o)
	if p := res.problems[objectRef{"Ingress", "default", "web"}]; len(p) != 1 || !strings.Contains(p[0], "no [acme]") {
		t.Errorf("problems %v", p)
	}
	// A missing secret is reported; the host is still served over TLS.
	delete(o.secrets, "default/a-tls")
	res = translateWith(t, config.KubernetesIngress{}, true, o)
	if p := res.problems[objectRef{"Ingress", "default", "web"}]; len(p) != 1 || !strings.Contains(p[0], `secret "a-tls" not found`) {
		t.Errorf("problems %v", p)
	}
	if res.provided.Parts[0].Routers["default_web_0_0-tls@kubernetes"] == nil {
		t.Error("the TLS route of a host whose secret is missing is gone")
	}
}

func TestTranslateBackends(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend netv1.IngressBackend
		mutate  func(*objects)
		servers string
		problem string
	}{
		{"port by name", backend("web", 0, "http"), nil, "http://10.0.0.1:8080 http://10.0.0.2:8080", ""},
		{"missing service", backend("nope", 80, ""), nil, "", `service "nope" not found`},
		{"missing port", backend("web", 81, ""), nil, "", "has no port 81"},
		{"no ready endpoints", backend("web", 80, ""), func(o *objects) { o.slices["default/web"] = nil }, "", "no ready endpoints"},
		{"external name refused", backend("ext", 80, ""), func(o *objects) {
			o.services["default/ext"] = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "api.example.net", Ports: []corev1.ServicePort{{Port: 80}}}}
		}, "", "allowExternalNameServices"},
		{"https by port name", backend("web", 443, ""), func(o *objects) {
			o.slices["default/web"] = append(o.slices["default/web"], slice("default", "web", "https", 8443, endpoint("10.0.0.9", true)))
		}, "https://10.0.0.9:8443", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := ingress("default", "web", func(i *netv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend = tc.backend })
			o := baseObjects(ing)
			if tc.mutate != nil {
				tc.mutate(o)
			}
			res := translateWith(t, config.KubernetesIngress{}, false, o)
			part := res.provided.Parts[0]
			r := part.Routers["default_web_0_0@kubernetes"]
			var urls []string
			for _, s := range part.Services[r.Service].LoadBalancer.Servers {
				urls = append(urls, s.URL)
			}
			if got := strings.Join(urls, " "); got != tc.servers {
				t.Errorf("servers %q, want %q", got, tc.servers)
			}
			p := res.problems[objectRef{"Ingress", "default", "web"}]
			if tc.problem == "" && len(p) > 0 || tc.problem != "" && (len(p) != 1 || !strings.Contains(p[0], tc.problem)) {
				t.Errorf("problems %q, want one with %q", p, tc.problem)
			}
		})
	}
}

func TestTranslateMerges(t *testing.T) {
	base := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: ":80"}, "websecure": {Address: ":443", HTTP: &config.EntryPointHTTP{TLS: &config.EntryPointTLS{}}}},
		HTTP:        &config.HTTP{Middlewares: map[string]*config.Middleware{"strip": {StripPrefix: &config.StripPrefix{Prefixes: []string{"/x"}}}}},
	}
	good := ingress("default", "good", func(i *netv1.Ingress) {
		i.Annotations = map[string]string{AnnotationMiddlewares: "strip", AnnotationEntryPoints: "web"}
	})
	bad := ingress("default", "bad", func(i *netv1.Ingress) {
		i.Annotations = map[string]string{AnnotationMiddlewares: "nope"}
		i.Spec.Rules[0].Host = "b.example.com"
	})
	res := translateWith(t, config.KubernetesIngress{}, false, baseObjects(good, bad))
	merged, refused := config.Merge(base, res.provided)
	if len(refused) != 1 || refused[0].Owner != "ingress default/bad" || !strings.Contains(refused[0].Err.Error(), `middleware "nope" is not defined`) {
		t.Fatalf("refused %v", refused)
	}
	if merged.HTTP.Routers["default_good_0_0@kubernetes"] == nil || merged.HTTP.Routers["default_bad_0_0@kubernetes"] != nil {
		t.Errorf("merged routers %v", merged.HTTP.Routers)
	}
	rt := router.New(router.Config{})
	defer rt.Close()
	if err := rt.Apply(merged); err != nil {
		t.Errorf("the router refuses the merged configuration: %v", err)
	}
}

func TestObjectName(t *testing.T) {
	// "a-b"/"c" and "a"/"b-c" are different objects.
	if objectName([]string{"a-b", "c", "80"}, "") == objectName([]string{"a", "b-c", "80"}, "") {
		t.Error("two objects share a name")
	}
	parts := []string{strings.Repeat("n", 63), strings.Repeat("i", 200), "0", "0"}
	got := objectName(parts, "-tls")
	if len(got) > 64 || !strings.HasSuffix(got, "-tls") || got == objectName(append(parts[:3:3], "1"), "-tls") {
		t.Errorf("objectName: %q", got)
	}
}

// TestTranslateChecksSecretOnce: a rebuild follows every endpoint change,
// so a secret's certificate is checked once per version, not per rebuild.
func TestTranslateChecksSecretOnce(t *testing.T) {
	ing := ingress("default", "web", func(i *netv1.Ingress) {
		i.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"a.example.com"}, SecretName: "a-tls"}}
	})
	o := baseObjects(ing)
	o.secrets["default/a-tls"] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a-tls", ResourceVersion: "1"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
	calls := 0
	tr := newTranslator(&config.KubernetesIngress{}, testBase(false), func(config.KeyPair) error { calls++; return nil })
	for range 3 {
		tr.translate(o)
	}
	if calls != 1 {
		t.Fatalf("checked %d times in 3 rebuilds, want 1", calls)
	}
	o.secrets["default/a-tls"].ResourceVersion = "2"
	tr.translate(o)
	if calls != 2 {
		t.Fatalf("a new version was not checked again (%d checks)", calls)
	}
}

// TestRouterRefusedPart: an Ingress that names a middleware the router
// cannot build (its users file is missing) is refused alone; the other
// Ingresses are applied, and so is the file configuration.
func TestRouterRefusedPart(t *testing.T) {
	base := testBase(false)
	base.HTTP = &config.HTTP{Middlewares: map[string]*config.Middleware{
		"auth": {BasicAuth: &config.BasicAuth{UsersFile: "/nonexistent/users"}},
	}}
	good := ingress("default", "good")
	bad := ingress("default", "bad", func(i *netv1.Ingress) {
		i.Annotations = map[string]string{AnnotationMiddlewares: "auth"}
		i.Spec.Rules[0].Host = "b.example.com"
	})
	res := newTranslator(&config.KubernetesIngress{}, base, nil).translate(baseObjects(good, bad))
	rt := router.New(router.Config{})
	defer rt.Close()
	sources := config.NewSources(base, rt.Apply)
	refused, err := sources.SetProvided(res.provided)
	if err != nil {
		t.Fatalf("the whole configuration was refused: %v", err)
	}
	if len(refused) != 1 || refused[0].Owner != "ingress default/bad" || !strings.Contains(refused[0].Err.Error(), "users") {
		t.Fatalf("refused %v", refused)
	}
	if sources.Current().HTTP.Routers["default_good_0_0@kubernetes"] == nil {
		t.Fatal("the good Ingress is not applied")
	}
}

func TestTranslateEntryPointsAndConflicts(t *testing.T) {
	older := ingress("default", "older", func(i *netv1.Ingress) {
		i.Spec.DefaultBackend = &netv1.IngressBackend{Service: &netv1.IngressServiceBackend{Name: "web", Port: netv1.ServiceBackendPort{Number: 80}}}
		i.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"a.example.com"}}}
		i.Annotations = map[string]string{AnnotationEntryPoints: "web"}
	})
	newer := ingress("default", "newer", func(i *netv1.Ingress) {
		i.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
		i.Spec.DefaultBackend = older.Spec.DefaultBackend
		i.Spec.Rules = append(i.Spec.Rules, netv1.IngressRule{Host: "*.example.org", IngressRuleValue: i.Spec.Rules[0].IngressRuleValue})
		i.Spec.TLS = []netv1.IngressTLS{{Hosts: []string{"*.example.org"}}}
	})
	outside := ingress("default", "outside", func(i *netv1.Ingress) {
		i.Annotations = map[string]string{AnnotationEntryPoints: "api"}
		i.Spec.Rules[0].Host = "c.example.com"
	})
	res := translateWith(t, config.KubernetesIngress{EntryPoints: []string{"web", "websecure"}}, true, baseObjects(older, newer, outside))
	routers := map[string]*config.Router{}
	for _, p := range res.provided.Parts {
		for n, r := range p.Routers {
			routers[n] = r
		}
	}
	// Plain-text entry points only: no TLS routes, the rest served.
	if routers["default_older_default@kubernetes"] == nil || routers["default_older_default-tls@kubernetes"] != nil || routers["default_older_0_0-tls@kubernetes"] != nil {
		t.Errorf("older's routers: %v", routers)
	}
	// The newer Ingress's copy of the same host and path, and its default
	// backend, lose to the older one; its other rule is served.
	if routers["default_newer_0_0@kubernetes"] != nil || routers["default_newer_default@kubernetes"] != nil || routers["default_newer_1_0@kubernetes"] == nil {
		t.Errorf("newer's routers: %v", routers)
	}
	// A wildcard from ACME without DNS-01: reported, served with the
	// default certificate.
	if r := routers["default_newer_1_0-tls@kubernetes"]; r == nil || len(r.TLS.Domains) != 0 {
		t.Errorf("wildcard TLS router: %+v", r)
	}
	problems := fmt.Sprint(res.problems)
	for _, want := range []string{"none of its entry points (web) serves TLS", "routed by the older Ingress default/older", "needs a secret, or [acme.dnsChallenge]", `entry point "api" is not one of`} {
		if !strings.Contains(problems, want) {
			t.Errorf("no problem saying %q in %s", want, problems)
		}
	}
	if routers["default_outside_0_0@kubernetes"] != nil {
		t.Error("an Ingress naming an entry point outside entryPoints is served")
	}
}
