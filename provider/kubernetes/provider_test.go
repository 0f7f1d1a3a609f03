package kubernetes

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/router"
)

// apiWithWeb starts an API server with the IngressClass "tollgate", the
// namespace "apps" and its Service "web", and returns it with an admin
// client.
func apiWithWeb(t *testing.T) (*testserver.Kube, kubernetes.Interface) {
	t.Helper()
	kube := testserver.StartKube(t)
	admin := kube.Client(t)
	ctx := context.Background()
	for _, err := range []error{
		func() error {
			_, err := admin.NetworkingV1().IngressClasses().Create(ctx, ourClass("tollgate", false), metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{})
			return err
		}(),
		func() error {
			_, err := admin.CoreV1().Services("apps").Create(ctx, service("apps", "web", corev1.ServicePort{Name: "http", Port: 80}), metav1.CreateOptions{})
			return err
		}(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return kube, admin
}

// webIngress is an Ingress of class tollgate to apps/web, port http.
func webIngress(name string, labels map[string]string) *netv1.Ingress {
	return ingress("apps", name, func(i *netv1.Ingress) {
		i.CreationTimestamp = metav1.Time{}
		i.Labels = labels
		i.Spec.Rules[0].Host = name + ".example.com"
		i.Spec.Rules[0].HTTP.Paths[0].Backend = backend("web", 0, "http")
	})
}

// runProvider runs a provider with settings s (its connection filled in),
// writing status as manager under l when l is not nil, and a real router
// until the test ends; it returns the provider and its sources.
func runProvider(t *testing.T, kube *testserver.Kube, manager string, s config.KubernetesIngress, l Leadership) (*Provider, *config.Sources) {
	t.Helper()
	s.Endpoint, s.TokenFile, s.CAFile = kube.URL, kube.AdminTokenFile(), kube.CAFile
	rt := router.New(router.Config{})
	base := &config.Config{EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}}}
	sources := config.NewSources(base, rt.Apply)
	p, err := New(Config{Settings: &s, Sink: sources, Base: base, FieldManager: manager})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- p.Run(ctx) }()
	go func() {
		if l == nil {
			done <- nil
			return
		}
		done <- p.RunLeader(ctx, l)
	}()
	t.Cleanup(func() {
		stop()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		rt.Close()
	})
	return p, sources
}

// TestLabelSelector: only the Ingresses the selector matches are served,
// and one that comes to match later is served then.
func TestLabelSelector(t *testing.T) {
	kube, admin := apiWithWeb(t)
	ctx := context.Background()
	ings := admin.NetworkingV1().Ingresses("apps")
	for _, ing := range []*netv1.Ingress{webIngress("matching", map[string]string{"team": "web"}), webIngress("other", map[string]string{"team": "db"}), webIngress("none", nil)} {
		if _, err := ings.Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, sources := runProvider(t, kube, "tollgate", config.KubernetesIngress{LabelSelector: "team=web"}, nil)
	<-p.Ready()
	served := func() []string {
		var out []string
		for name := range sources.Current().HTTP.Routers {
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	if got := served(); !slices.Equal(got, []string{"apps_matching_0_0@kubernetes"}) {
		t.Fatalf("routers %v, want only apps-matching's", got)
	}
	other, err := ings.Get(ctx, "other", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Labels["team"] = "web"
	if _, err := ings.Update(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(served(), []string{"apps_matching_0_0@kubernetes", "apps_other_0_0@kubernetes"}) {
		if time.Now().After(deadline) {
			t.Fatalf("routers %v after the label changed", served())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
