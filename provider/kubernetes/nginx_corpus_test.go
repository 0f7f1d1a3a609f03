package kubernetes

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/router"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// corpusDir holds Ingresses written for ingress-nginx, each file with an
// Expect document: the requests to send and what must come of them.
const corpusDir = "nginx/testdata/corpus"

const nginxPrefix = "nginx.ingress.kubernetes.io/"

// expect is a corpus file's Expect document.
type expect struct {
	Kind     string       `json:"kind"`
	Requests []expRequest `json:"requests"`
}

// expRequest is one request (or Count of them) and what must come of it.
type expRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	// Remote is the client's address; default 192.0.2.1.
	Remote string `json:"remote"`
	// Body is the size of the request body.
	Body int `json:"body"`
	// Count sends the request this many times (default 1); Shares and
	// AtLeast are then checked on all the answers.
	Count  int `json:"count"`
	Status int `json:"status"`
	// Backend is the Service that must answer; Path the path and query
	// it must see; Proto its protocol.
	Backend  string `json:"backend"`
	Path     string `json:"path"`
	Proto    string `json:"proto"`
	Location string `json:"location"`
	// RespHeaders must each be contained in the answer's header.
	RespHeaders map[string]string `json:"respHeaders"`
	// Seen are request headers the backend must have received.
	Seen map[string]string `json:"seen"`
	// Shares are the fractions of the answers by Backend, within
	// Tolerance (default 0.05).
	Shares    map[string]float64 `json:"shares"`
	Tolerance float64            `json:"tolerance"`
	// AtLeast are the least numbers of answers by status.
	AtLeast map[string]int `json:"atLeast"`
}

// corpusBackends serves the Services a corpus file routes to: one
// server per Service name; "secure-*" speak TLS ("secure-h2-*" with
// HTTP/2), "grpc-*" HTTP/2 without
// TLS (h2c), and "slow-*" wait 2s before answering.
type corpusBackends struct {
	t       *testing.T
	servers map[string]*httptest.Server
}

func (cb *corpusBackends) get(name string) *httptest.Server {
	if s := cb.servers[name]; s != nil {
		return s
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(name, "slow-") {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Set("X-Proto", r.Proto)
		for k, v := range r.Header {
			w.Header()["X-Seen-"+k] = v
		}
		fmt.Fprint(w, name)
	})
	s := httptest.NewUnstartedServer(h)
	switch {
	case strings.HasPrefix(name, "secure-h2-"):
		s.EnableHTTP2 = true
		s.StartTLS()
	case strings.HasPrefix(name, "secure-"):
		s.StartTLS()
	case strings.HasPrefix(name, "grpc-"):
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
		s.Start()
	default:
		s.Start()
	}
	cb.servers[name] = s
	return s
}

func (cb *corpusBackends) close() {
	for _, s := range cb.servers {
		s.Close()
	}
}

// authServer admits "Authorization: Bearer good" and names the user in
// X-User; anything else gets 401.
func authServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", "alice")
		w.Header().Set("X-Other", "not copied")
	}))
}

// loadCorpusFile reads a corpus file into objects whose Services reach
// the backends, with auth.test replaced by the auth server.
func loadCorpusFile(t *testing.T, file, authURL string, cb *corpusBackends) (*objects, expect) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte("http://auth.test"), []byte(authURL))
	var m Manifests
	if err := m.Read(file, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var exp expect
	for _, raw := range m.Other {
		var e expect
		if err := yaml.UnmarshalStrict(raw, &e); err == nil && e.Kind == "Expect" {
			exp = e
		} else if err != nil {
			t.Fatalf("%s: a document that is not an Ingress, IngressClass, Secret or Expect: %v", file, err)
		}
	}
	o := &objects{
		classes: append([]*netv1.IngressClass{ourClass("tollgate", false),
			{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: netv1.IngressClassSpec{Controller: config.NginxController}}}, m.IngressClasses...),
		services:    map[string]*corev1.Service{},
		slices:      map[string][]*discoveryv1.EndpointSlice{},
		secrets:     map[string]*corev1.Secret{},
		authSecrets: map[string]*corev1.Secret{},
	}
	for _, s := range m.Secrets {
		s.Namespace = cmpOr(s.Namespace, "default")
		o.authSecrets[s.Namespace+"/"+s.Name] = s
	}
	for i, ing := range m.Ingresses {
		ing.Namespace = cmpOr(ing.Namespace, "default")
		ing.CreationTimestamp = metav1.NewTime(time.Unix(1000+int64(i), 0))
		var bes []netv1.IngressBackend
		if ing.Spec.DefaultBackend != nil {
			bes = append(bes, *ing.Spec.DefaultBackend)
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP != nil {
				for _, p := range r.HTTP.Paths {
					bes = append(bes, p.Backend)
				}
			}
		}
		for _, be := range bes {
			if be.Service == nil {
				continue
			}
			key := ing.Namespace + "/" + be.Service.Name
			if o.services[key] != nil {
				continue
			}
			u, _ := url.Parse(cb.get(be.Service.Name).URL)
			port, _ := strconv.Atoi(u.Port())
			o.services[key] = service(ing.Namespace, be.Service.Name, corev1.ServicePort{Name: "http", Port: 80})
			o.slices[key] = []*discoveryv1.EndpointSlice{slice(ing.Namespace, be.Service.Name, "http", int32(port), endpoint("127.0.0.1", true))}
		}
		for _, tl := range ing.Spec.TLS {
			if tl.SecretName == "" || o.secrets[ing.Namespace+"/"+tl.SecretName] != nil {
				continue
			}
			c := testcert.SelfSigned(t, testcert.Spec{Names: tl.Hosts})
			o.secrets[ing.Namespace+"/"+tl.SecretName] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ing.Namespace, Name: tl.SecretName},
				Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: c.CertPEM(), corev1.TLSPrivateKeyKey: c.KeyPEM(t)}}
		}
	}
	o.ingresses = m.Ingresses
	return o, exp
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reportText is the problems of a translation, one line each, sorted by
// object.
func reportText(problems map[objectRef][]string) string {
	var b strings.Builder
	refs := make([]objectRef, 0, len(problems))
	for ref := range problems {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b objectRef) int { return strings.Compare(a.String(), b.String()) })
	for _, ref := range refs {
		for _, m := range problems[ref] {
			fmt.Fprintf(&b, "%s: %s\n", ref, m)
		}
	}
	return b.String()
}

// TestNginxCorpus translates each corpus file with nginxAnnotations
// "classes", merges it, applies it to a router and sends the file's
// requests through it to real backends; the problems reported (logged and
// turned into Events by the provider) are compared with NAME.golden.
func TestNginxCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("the corpus has %d files, want at least 30", len(files))
	}
	auth := authServer()
	defer auth.Close()
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			cb := &corpusBackends{t: t, servers: map[string]*httptest.Server{}}
			defer cb.close()
			o, exp := loadCorpusFile(t, file, auth.URL, cb)
			if len(exp.Requests) == 0 {
				t.Fatalf("%s has no Expect document with requests", file)
			}
			s := config.KubernetesIngress{NginxAnnotations: config.NginxClasses}
			res := newTranslator(&s, testBase(false), nil).translate(o)
			got := strings.ReplaceAll(reportText(res.problems), auth.URL, "http://auth.test")
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./provider/kubernetes -run TestNginxCorpus -update)", err)
			}
			if got != string(want) {
				t.Errorf("report:\n%s\nwant (%s):\n%s", got, golden, want)
			}
			merged, refused := config.Merge(testBase(false), res.provided)
			if len(refused) > 0 {
				t.Fatalf("refused parts: %v", refused)
			}
			rt := router.New(router.Config{})
			defer rt.Close()
			if err := rt.Apply(merged); err != nil {
				t.Fatalf("the router refuses the translated configuration: %v", err)
			}
			for i, er := range exp.Requests {
				checkCorpusRequest(t, rt, i, er)
			}
		})
	}
}

func checkCorpusRequest(t *testing.T, rt *router.Router, i int, er expRequest) {
	t.Helper()
	u, err := url.Parse(er.URL)
	if err != nil {
		t.Fatalf("request %d: %v", i, err)
	}
	ep := "web"
	if u.Scheme == "https" {
		ep = "websecure"
	}
	count := max(er.Count, 1)
	byBackend := map[string]int{}
	byStatus := map[string]int{}
	for range count {
		var body io.Reader
		if er.Body > 0 {
			body = bytes.NewReader(bytes.Repeat([]byte("x"), er.Body))
		}
		req := httptest.NewRequest(cmpOr(er.Method, http.MethodGet), er.URL, body)
		req.RemoteAddr = net.JoinHostPort(cmpOr(er.Remote, "192.0.2.1"), "40000")
		for k, v := range er.Headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		rt.Handler(ep).ServeHTTP(rec, req)
		resp := rec.Result()
		byBackend[resp.Header.Get("X-Backend")]++
		byStatus[strconv.Itoa(resp.StatusCode)]++
		if count > 1 {
			continue
		}
		what := fmt.Sprintf("request %d %s %s", i, req.Method, er.URL)
		if er.Status != 0 && resp.StatusCode != er.Status {
			t.Errorf("%s: status %d, want %d (body %q)", what, resp.StatusCode, er.Status, rec.Body.String())
		}
		for k, want := range map[string]string{"X-Backend": er.Backend, "X-Path": er.Path, "X-Proto": er.Proto, "Location": er.Location} {
			if got := resp.Header.Get(k); want != "" && got != want {
				t.Errorf("%s: %s %q, want %q", what, k, got, want)
			}
		}
		for k, want := range er.RespHeaders {
			if got := strings.Join(resp.Header.Values(k), "; "); !strings.Contains(got, want) {
				t.Errorf("%s: header %s %q, want it to contain %q", what, k, got, want)
			}
		}
		for k, want := range er.Seen {
			if got := resp.Header.Get("X-Seen-" + k); got != want {
				t.Errorf("%s: the backend saw %s %q, want %q", what, k, got, want)
			}
		}
	}
	if count == 1 {
		return
	}
	tol := er.Tolerance
	if tol == 0 {
		tol = 0.05
	}
	for b, share := range er.Shares {
		if got := float64(byBackend[b]) / float64(count); got < share-tol || got > share+tol {
			t.Errorf("request %d %s: %s answered %.3f of %d requests, want %.3f±%.3f (by backend %v)", i, er.URL, b, got, count, share, tol, byBackend)
		}
	}
	for st, n := range er.AtLeast {
		if byStatus[st] < n {
			t.Errorf("request %d %s: %d answers with status %s, want at least %d (by status %v)", i, er.URL, byStatus[st], st, n, byStatus)
		}
	}
}

// TestNginxServed: which Ingresses are served, and which have their nginx
// annotations read, for each nginxAnnotations setting.
func TestNginxServed(t *testing.T) {
	nginxClass := func(name, controller string, def bool) *netv1.IngressClass {
		c := &netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: netv1.IngressClassSpec{Controller: controller}}
		if def {
			c.Annotations = map[string]string{annotationDefaultClass: "true"}
		}
		return c
	}
	byName := func(class string) *netv1.Ingress {
		return ingress("default", "x", func(i *netv1.Ingress) { i.Spec.IngressClassName = ptr(class) })
	}
	byAnnotation := func(class string) *netv1.Ingress {
		return ingress("default", "x", func(i *netv1.Ingress) {
			i.Spec.IngressClassName = nil
			i.Annotations = map[string]string{annotationClass: class}
		})
	}
	none := ingress("default", "x", func(i *netv1.Ingress) { i.Spec.IngressClassName = nil })
	classes := []*netv1.IngressClass{ourClass("tollgate", false), nginxClass("nginx", config.NginxController, false),
		nginxClass("internal", config.NginxController, false), nginxClass("haproxy", "haproxy.org/ingress-controller", false)}
	for _, tc := range []struct {
		name            string
		s               config.KubernetesIngress
		ing             *netv1.Ingress
		classes         []*netv1.IngressClass
		served, nginxOn bool
	}{
		{"off: nginx class not served", config.KubernetesIngress{}, byName("nginx"), classes, false, false},
		{"off: tollgate's without nginx", config.KubernetesIngress{}, byName("tollgate"), classes, true, false},
		{"classes: nginx class", config.KubernetesIngress{NginxAnnotations: "classes"}, byName("nginx"), classes, true, true},
		{"classes: tollgate's without nginx", config.KubernetesIngress{NginxAnnotations: "classes"}, byName("tollgate"), classes, true, false},
		{"all: tollgate's with nginx", config.KubernetesIngress{NginxAnnotations: "all"}, byName("tollgate"), classes, true, true},
		{"classes: a class not listed", config.KubernetesIngress{NginxAnnotations: "classes"}, byName("internal"), classes, false, false},
		{"classes: listed", config.KubernetesIngress{NginxAnnotations: "classes", NginxIngressClasses: []string{"internal"}}, byName("internal"), classes, true, true},
		{"classes: another controller's class of that name", config.KubernetesIngress{NginxAnnotations: "classes", NginxIngressClasses: []string{"haproxy"}}, byName("haproxy"), classes, false, false},
		{"classes: the IngressClass is gone", config.KubernetesIngress{NginxAnnotations: "classes"}, byName("nginx"), classes[:1], true, true},
		{"classes: the old annotation", config.KubernetesIngress{NginxAnnotations: "classes"}, byAnnotation("nginx"), classes, true, true},
		{"classes: the default class is nginx", config.KubernetesIngress{NginxAnnotations: "classes"}, none,
			[]*netv1.IngressClass{ourClass("tollgate", false), nginxClass("nginx", config.NginxController, true)}, true, true},
		{"classes: no class, no default", config.KubernetesIngress{NginxAnnotations: "classes"}, none, classes, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served, on := newTranslator(&tc.s, testBase(false), nil).served(tc.ing, tc.classes)
			if served != tc.served || on != tc.nginxOn {
				t.Errorf("served %v, nginx %v; want %v, %v", served, on, tc.served, tc.nginxOn)
			}
		})
	}
}

// TestNginxCache: a rebuild translates an Ingress's nginx annotations
// again only when the Ingress or its auth Secret changed.
func TestNginxCache(t *testing.T) {
	ing := ingress("default", "web", func(i *netv1.Ingress) {
		i.ResourceVersion = "1"
		i.Spec.IngressClassName = ptr("nginx")
		i.Annotations = map[string]string{nginxPrefix + "auth-type": "basic", nginxPrefix + "auth-secret": "users"}
	})
	o := baseObjects(ing)
	o.authSecrets = map[string]*corev1.Secret{"default/users": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "users", ResourceVersion: "7"},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"auth": []byte("alice:$2y$05$B51u372gprkuX0gV1XAukesCXhh4QRfsw1w13e8qAWRJUHgLgsEt.\n")}}}
	tr := newTranslator(&config.KubernetesIngress{NginxAnnotations: config.NginxClasses}, testBase(false), nil)
	users := func() []string {
		res := tr.translate(o)
		for _, p := range res.provided.Parts {
			for _, m := range p.Middlewares {
				if m.BasicAuth != nil {
					return m.BasicAuth.Users
				}
			}
		}
		t.Fatalf("no basicAuth middleware; problems %v", res.problems)
		return nil
	}
	first := tr.ngxCache
	users()
	cached := tr.ngxCache["default/web"].n
	users()
	if tr.ngxCache["default/web"].n != cached || first != nil {
		t.Error("translated again without a change")
	}
	o.authSecrets["default/users"].Data = map[string][]byte{"auth": []byte("carol:$2y$05$B51u372gprkuX0gV1XAukesCXhh4QRfsw1w13e8qAWRJUHgLgsEt.\n")}
	o.authSecrets["default/users"].ResourceVersion = "8"
	if got := users(); len(got) != 1 || !strings.HasPrefix(got[0], "carol:") {
		t.Errorf("after the Secret changed: users %v", got)
	}
	ing.ResourceVersion = "2"
	ing.Annotations[nginxPrefix+"auth-realm"] = "shop"
	users()
	if n := tr.ngxCache["default/web"].n; n == cached || len(n.res.Middlewares) == 0 {
		t.Error("not translated again after the Ingress changed")
	}
}
