package testserver

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestKube starts an API server, creates the objects an ingress provider
// reads as the admin, checks that RBAC keeps a ServiceAccount without
// bindings out and lets it in once bound, that kubectl works with the
// kubeconfig, and that the objects survive a restart.
func TestKube(t *testing.T) {
	start := time.Now()
	k := StartKube(t)
	t.Logf("kube-apiserver ready after %v", time.Since(start).Round(time.Millisecond))
	// A guard against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin := k.Client(t)

	const ns = "shop"
	createObjects(ctx, t, admin, ns)

	// A ServiceAccount without bindings may not list Ingresses.
	tokenFile := k.ServiceAccountTokenFile(t, "tollgate", "reader")
	reader := saClient(t, k, tokenFile)
	_, err := reader.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("unbound service account listing ingresses: got error %v, want forbidden", err)
	}

	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "tollgate-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"networking.k8s.io"},
			Resources: []string{"ingresses"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role: %v", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tollgate-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "tollgate-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "tollgate", Name: "reader"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role binding: %v", err)
	}
	ings, err := reader.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("bound service account listing ingresses: %v", err)
	}
	if len(ings.Items) != 1 || ings.Items[0].Name != "web" {
		t.Errorf("bound service account lists %d ingresses, want shop/web", len(ings.Items))
	}
	// The role grants Ingresses only.
	if _, err := reader.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("bound service account listing services: got error %v, want forbidden", err)
	}

	out, err := k.Kubectl(t, "get", "ns", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	if !strings.Contains(out, "namespace/"+ns) {
		t.Errorf("kubectl get ns: got %q, want namespace/%s in it", out, ns)
	}

	k.Stop(t)
	if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Errorf("namespace read while the API server is stopped: got no error")
	}
	start = time.Now()
	k.Start(t)
	t.Logf("kube-apiserver ready again after %v", time.Since(start).Round(time.Millisecond))
	checkObjects(ctx, t, admin, ns)
	if _, err := reader.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("bound service account after restart: %v", err)
	}
}

// createObjects creates a namespace with a Service, an Ingress routing to it
// and an EndpointSlice of the Service.
func createObjects(ctx context.Context, t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path:     "/",
					PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"},
					}},
				}},
			}},
		}}},
	}
	if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ingress: %v", err)
	}
	portName, port, ready := "http", int32(8080), true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "web-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.1.0.7"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpoint slice: %v", err)
	}
}

// checkObjects checks that the objects createObjects made are there.
func checkObjects(ctx context.Context, t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	if _, err := c.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("service: %v", err)
	}
	if _, err := c.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("ingress: %v", err)
	}
	slices, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatalf("endpoint slices: %v", err)
	}
	if len(slices.Items) != 1 || len(slices.Items[0].Endpoints) != 1 || slices.Items[0].Endpoints[0].Addresses[0] != "10.1.0.7" {
		t.Errorf("endpoint slices of web: got %+v, want one with 10.1.0.7", slices.Items)
	}
}

// saClient is a clientset authenticated by the token in tokenFile.
func saClient(t *testing.T, k *Kube, tokenFile string) kubernetes.Interface {
	t.Helper()
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{
		Host:            k.URL,
		BearerToken:     string(token),
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile},
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}

// TestKubeMissingBinary checks that StartKube fails, and says what to run,
// when kube-apiserver has not been built.
func TestKubeMissingBinary(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartKube(ft)
	}()
	<-done
	if !strings.Contains(ft.msg, "kube-apiserver") || !strings.Contains(ft.msg, "run make testdeps") {
		t.Errorf("StartKube without kube-apiserver: got failure %q, want it to say run make testdeps", ft.msg)
	}
}

// fatalTB records the message of Fatal and Fatalf and ends the goroutine.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
