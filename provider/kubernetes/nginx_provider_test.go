package kubernetes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// leading is a Leadership whose replica always leads.
type leading struct{}

func (leading) Await(context.Context) (Fence, error) { return leadingTerm{}, nil }

type leadingTerm struct{}

func (leadingTerm) Done() <-chan struct{}       { return nil }
func (leadingTerm) Check(context.Context) error { return nil }

// bcrypt hashes of "secret" and "other" (htpasswd -B).
const (
	aliceHash = "$2y$05$B51u372gprkuX0gV1XAukesCXhh4QRfsw1w13e8qAWRJUHgLgsEt."
	basicOK   = "Basic YWxpY2U6c2VjcmV0" // alice:secret
)

// TestNginxProvider runs the provider against a real API server with
// nginxAnnotations "classes": an Ingress of class nginx is served with its
// annotations (rewrite, basic authentication from an Opaque Secret); one
// of tollgate's class has its nginx annotations ignored; an unsupported
// annotation becomes an Event on its Ingress; and a change of the auth
// Secret is applied.
func TestNginxProvider(t *testing.T) {
	kube, admin := apiWithWeb(t)
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.NetworkingV1().IngressClasses().Create(ctx, &netv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: netv1.IngressClassSpec{Controller: config.NginxController}}, metav1.CreateOptions{}))
	secrets := admin.CoreV1().Secrets("apps")
	must(secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "users"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"auth": []byte("alice:" + aliceHash + "\n")}}, metav1.CreateOptions{}))
	mk := func(name, class string, ann map[string]string) *netv1.Ingress {
		ing := webIngress(name, nil)
		ing.Spec.IngressClassName = ptr(class)
		ing.Annotations = ann
		ing.Spec.Rules[0].HTTP.Paths[0].Path = "/app"
		return ing
	}
	ings := admin.NetworkingV1().Ingresses("apps")
	must(ings.Create(ctx, mk("opted", "nginx", map[string]string{
		"nginx.ingress.kubernetes.io/rewrite-target": "/",
		"nginx.ingress.kubernetes.io/auth-type":      "basic",
		"nginx.ingress.kubernetes.io/auth-secret":    "users",
		"nginx.ingress.kubernetes.io/enable-cors":    "true",
	}), metav1.CreateOptions{}))
	must(ings.Create(ctx, mk("ignored", "tollgate", map[string]string{
		"nginx.ingress.kubernetes.io/rewrite-target":         "/",
		"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8",
	}), metav1.CreateOptions{}))

	// A canary paired with its main Ingress, and one without.
	canary := map[string]string{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "10"}
	must(ings.Create(ctx, mk("main", "nginx", nil), metav1.CreateOptions{}))
	paired := mk("paired", "nginx", canary)
	paired.Spec.Rules[0].Host = "main.example.com"
	must(ings.Create(ctx, paired, metav1.CreateOptions{}))
	must(ings.Create(ctx, mk("lonely", "nginx", canary), metav1.CreateOptions{}))

	s := config.KubernetesIngress{NginxAnnotations: config.NginxClasses,
		Endpoint: kube.URL, TokenFile: kube.AdminTokenFile(), CAFile: kube.CAFile,
		IngressEndpoint: &config.IngressEndpoint{IP: "192.0.2.10"}}
	rt := router.New(router.Config{})
	defer rt.Close()
	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}}}
	sources := config.NewSources(base, rt.Apply)
	p, err := New(Config{Settings: &s, Sink: sources, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- p.Run(runCtx) }()
	go func() { done <- p.RunLeader(runCtx, leading{}) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	<-p.Ready()

	// The API server refuses loopback endpoints, so the Service has none:
	// a request that passes the middlewares gets 503 from it.
	get := func(host, path, authz string) int {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil)
		req.RemoteAddr = "203.0.113.9:40000"
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		rt.Handler("web").ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get("opted.example.com", "/app/x", ""); code != http.StatusUnauthorized {
		t.Errorf("opted without credentials: %d, want 401", code)
	}
	if code := get("opted.example.com", "/app/x", basicOK); code != http.StatusServiceUnavailable {
		t.Errorf("opted as alice: %d, want 503 (admitted, to a Service without endpoints)", code)
	}
	if code := get("ignored.example.com", "/app/x", ""); code != http.StatusServiceUnavailable {
		t.Errorf("ignored from outside 10.0.0.0/8: %d, want 503 (no allow list: admitted)", code)
	}
	routers := sources.Current().HTTP.Routers
	if r := routers["apps_opted_0_0@kubernetes"]; r == nil || len(r.Middlewares) != 2 ||
		sources.Current().HTTP.Middlewares[r.Middlewares[1]].ReplacePathRegex == nil {
		t.Errorf("the opted Ingress's router: %+v, want basic auth then the rewrite", r)
	}
	if r := routers["apps_ignored_0_0@kubernetes"]; r == nil || len(r.Middlewares) != 0 {
		t.Errorf("the ignored Ingress's router: %+v, want no middleware", r)
	}

	// The leader records the unsupported annotation on the Ingress.
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := admin.CoreV1().Events("apps").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=opted"})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs.Items {
			found = found || (ev.Type == corev1.EventTypeWarning && ev.Reason == "NginxAnnotation" && strings.Contains(ev.Message, "nginx.ingress.kubernetes.io/enable-cors: unsupported"))
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Event for enable-cors on apps/opted; events: %v", evs.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The paired canary's status is its main's; the lonely one, not
	// served, has none.
	deadline = time.Now().Add(30 * time.Second)
	for {
		got, err := ings.Get(ctx, "paired", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lb := got.Status.LoadBalancer.Ingress; len(lb) == 1 && lb[0].IP == "192.0.2.10" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of the paired canary: %+v", got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := ings.Get(ctx, "lonely", metav1.GetOptions{}); err != nil || len(got.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status of the canary without a main: %v, %+v", err, got.Status)
	}
	evs, err := admin.CoreV1().Events("apps").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=ignored"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if strings.Contains(ev.Message, "nginx.ingress.kubernetes.io") {
			t.Errorf("event on apps/ignored, whose nginx annotations are not read: %s", ev.Message)
		}
	}

	// A new password in the Secret is applied without touching the
	// Ingress.
	sec, err := secrets.Get(ctx, "users", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["auth"] = []byte("carol:" + aliceHash + "\n")
	must(secrets.Update(ctx, sec, metav1.UpdateOptions{}))
	deadline = time.Now().Add(30 * time.Second)
	for {
		if code := get("opted.example.com", "/app/x", basicOK); code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice is still admitted after the Secret changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := get("opted.example.com", "/app/x", "Basic Y2Fyb2w6c2VjcmV0"); code != http.StatusServiceUnavailable { // carol:secret
		t.Errorf("carol after the change: %d, want 503 (admitted)", code)
	}
}
