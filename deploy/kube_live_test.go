package deploy_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// restrictedNamespace creates a namespace whose Pod Security admission
// warns about any pod template that breaks the "restricted" profile:
// applied with --warnings-as-errors, such a template fails.
func restrictedNamespace(t *testing.T, kube *testserver.Kube, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/warn":         "restricted",
		"pod-security.kubernetes.io/warn-version": "latest",
	}}}
	_, err := kube.Client(t).CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// buildNamespace is where a build is applied: its own namespace, or one
// made for it when it is namespace-agnostic.
func buildNamespace(b *bundle) string {
	return cmp.Or(b.namespace, "deploy-"+b.name)
}

// TestManifestsDryRunLive sends every build, as kustomize renders it for
// the other tests, to a real API server with "kubectl apply
// --dry-run=server": the server validates every object as it would store
// it, strictly (an unknown or misspelt field fails), runs its admission
// (Pod Security "restricted" warns, and warnings fail), and stores
// nothing. The shipped kustomizations are also applied with -k, through
// kubectl's own kustomize.
func TestManifestsDryRunLive(t *testing.T) {
	kube := testserver.StartKube(t)
	dir := t.TempDir()
	if slices.ContainsFunc(bundles(t), func(b *bundle) bool { return len(b.serviceMonitors) > 0 }) {
		installServiceMonitorCRD(t, kube, dir)
	}
	for _, b := range bundles(t) {
		t.Run(b.name, func(t *testing.T) {
			ns := buildNamespace(b)
			restrictedNamespace(t, kube, ns)
			file := filepath.Join(dir, b.name+".yaml")
			if err := os.WriteFile(file, b.rendered, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := kube.Kubectl(t, "--warnings-as-errors", "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", file)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server of the build: %v\n%s", err, out)
			}
			if got, want := strings.Count(out, "(server dry run)"), b.objects(); got != want {
				t.Errorf("kubectl apply --dry-run=server reported %d objects, the build has %d:\n%s", got, want, out)
			}
		})
	}
	dirs, err := kustomizations()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run("kubectl-k/"+filepath.Base(d), func(t *testing.T) {
			abs, err := filepath.Abs(d)
			if err != nil {
				t.Fatal(err)
			}
			ns := "deploy-k-" + filepath.Base(d)
			restrictedNamespace(t, kube, ns)
			if out, err := kube.Kubectl(t, "--warnings-as-errors", "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-k", abs); err != nil {
				t.Fatalf("kubectl apply -k %s --dry-run=server: %v\n%s", d, err, out)
			}
		})
	}
}

// serviceMonitorCRD is a stand-in for the Prometheus Operator's
// ServiceMonitor CRD: the kind, with a schema that accepts any spec. With
// it the API server takes the chart's ServiceMonitor through a dry run
// (its metadata is validated, its spec is not: the strict decoding into
// serviceMonitor checks that).
const serviceMonitorCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names:
    kind: ServiceMonitor
    listKind: ServiceMonitorList
    plural: servicemonitors
    singular: servicemonitor
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// installServiceMonitorCRD creates serviceMonitorCRD and waits until the
// API server serves the kind.
func installServiceMonitorCRD(t *testing.T, kube *testserver.Kube, dir string) {
	t.Helper()
	file := filepath.Join(dir, "servicemonitor-crd.yaml")
	if err := os.WriteFile(file, []byte(serviceMonitorCRD), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := kube.Kubectl(t, "apply", "-f", file); err != nil {
		t.Fatalf("create the ServiceMonitor CRD: %v\n%s", err, out)
	}
	if out, err := kube.Kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com"); err != nil {
		t.Fatalf("the ServiceMonitor CRD: %v\n%s", err, out)
	}
}

// objects counts the objects of a build.
func (b *bundle) objects() int {
	return len(b.deployments) + len(b.statefulSets) + len(b.jobs) + len(b.services) +
		len(b.configMaps) + len(b.secrets) + len(b.accounts) + len(b.budgets) +
		len(b.autoscalers) + len(b.policies) + len(b.clusterRoles) +
		len(b.clusterBindings) + len(b.ingressClasses) + len(b.roles) + len(b.roleBindings) +
		len(b.serviceMonitors)
}

// rbacProbe is one request of the RBAC matrix: a verb on a resource,
// which the replicas' account may make exactly when providerAccess lists
// it.
type rbacProbe struct {
	group, resource string
	// clusterScoped resources are asked about without a namespace.
	clusterScoped bool
}

// rbacProbes are the resources the live RBAC test asks about: everything
// the provider touches, and what a compromised replica would want.
var rbacProbes = []rbacProbe{
	{"networking.k8s.io", "ingresses", false},
	{"networking.k8s.io", "ingresses/status", false},
	{"networking.k8s.io", "ingressclasses", true},
	{"networking.k8s.io", "networkpolicies", false},
	{"", "services", false},
	{"", "services/status", false},
	{"discovery.k8s.io", "endpointslices", false},
	{"", "endpoints", false},
	{"", "secrets", false},
	{"", "events", false},
	{"events.k8s.io", "events", false},
	{"gateway.networking.k8s.io", "gatewayclasses", true},
	{"gateway.networking.k8s.io", "gatewayclasses/status", true},
	{"gateway.networking.k8s.io", "gateways", false},
	{"gateway.networking.k8s.io", "gateways/status", false},
	{"gateway.networking.k8s.io", "httproutes", false},
	{"gateway.networking.k8s.io", "httproutes/status", false},
	{"gateway.networking.k8s.io", "grpcroutes", false},
	{"gateway.networking.k8s.io", "grpcroutes/status", false},
	{"gateway.networking.k8s.io", "referencegrants", false},
	{"", "pods", false},
	{"", "pods/exec", false},
	{"", "configmaps", false},
	{"", "serviceaccounts", false},
	{"", "serviceaccounts/token", false},
	{"", "namespaces", true},
	{"", "nodes", true},
	{"apps", "deployments", false},
	{"rbac.authorization.k8s.io", "clusterroles", true},
	{"rbac.authorization.k8s.io", "clusterrolebindings", true},
	{"rbac.authorization.k8s.io", "rolebindings", false},
}

var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

// TestRBACLive creates the ServiceAccount, ClusterRole and
// ClusterRoleBinding of each build in a real API server, takes a token of
// the replicas' account, and checks with it what the account may do: with
// SelfSubjectAccessReviews, exactly what providerAccess lists, for every
// verb on every resource of rbacProbes; and with real requests, that it
// can read and watch what the provider reads, update the status of an
// Ingress and record Events in both APIs, but not change an Ingress's
// spec, create a Secret or delete anything.
func TestRBACLive(t *testing.T) {
	kube := testserver.StartKube(t)
	admin := kube.Client(t)
	for _, b := range bundles(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			ns := cmp.Or(b.namespace, "default")
			serve := b.running(t, "Deployment", "serve")
			sa := serve.w.pod.Spec.ServiceAccountName
			if b.accounts[sa] == nil {
				t.Fatalf("%s: ServiceAccount %q is not in the build", serve, sa)
			}
			restrictedNamespace(t, kube, ns)
			createRBAC(t, admin, b, ns)
			token := kube.ServiceAccountTokenFile(t, ns, sa)
			client, closeClient := tokenClient(t, kube, token)
			defer closeClient()

			// Another namespace: the rights are the same everywhere.
			other := "deploy-other"
			restrictedNamespace(t, kube, other)
			// Without a Kubernetes provider (the chart's
			// ingressProvider.enabled=false and
			// gatewayProvider.enabled=false) the account may do nothing.
			provider := b.inCluster(t)
			want := map[grant]string{}
			if provider {
				waitAllowed(t, client, ns, "networking.k8s.io", "ingresses", "list")
				want = providerGrants()
			}
			for _, p := range rbacProbes {
				for _, verb := range allVerbs {
					where := []string{ns, other}
					if p.clusterScoped {
						where = []string{""}
					}
					for _, where := range where {
						g := grant{p.group, p.resource, verb}
						_, allowed := want[g]
						scope := "cluster-wide"
						if where != "" {
							scope = "in namespace " + where
						}
						got, err := canI(ctx, client, where, p.group, p.resource, verb)
						switch {
						case err != nil:
							t.Errorf("SelfSubjectAccessReview %s %s: %v", g, scope, err)
						case got && !allowed:
							t.Errorf("ServiceAccount %s/%s may %s %s, which the provider never does", ns, sa, g, scope)
						case !got && allowed:
							t.Errorf("ServiceAccount %s/%s may not %s %s, which the provider needs: %s", ns, sa, g, scope, want[g])
						}
					}
				}
			}
			for _, g := range slices.SortedFunc(maps.Keys(want), grantOrder) {
				if !slices.ContainsFunc(rbacProbes, func(p rbacProbe) bool { return p.group == g.group && p.resource == g.resource }) {
					t.Errorf("rbacProbes lacks %s, which providerAccess lists", qualified(g.group, g.resource))
				}
			}
			if provider {
				realRequests(t, admin, client, other)
			}
		})
	}
}

// createRBAC creates a build's ServiceAccounts, ClusterRoles,
// ClusterRoleBindings and IngressClasses, removing the cluster-scoped ones
// when the test ends (every build has them under the same names).
func createRBAC(t *testing.T, admin kubernetes.Interface, b *bundle, ns string) {
	t.Helper()
	ctx := t.Context()
	for _, name := range slices.Sorted(maps.Keys(b.accounts)) {
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, b.accounts[name], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create ServiceAccount %s: %v", name, err)
		}
	}
	cleanup := func(what string, del func(context.Context, string, metav1.DeleteOptions) error, name string) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := del(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", what, name, err)
			}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(b.clusterRoles)) {
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, b.clusterRoles[name], metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRole %s: %v", name, err)
		}
		cleanup("ClusterRole", admin.RbacV1().ClusterRoles().Delete, name)
	}
	for _, name := range slices.Sorted(maps.Keys(b.clusterBindings)) {
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, b.clusterBindings[name], metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRoleBinding %s: %v", name, err)
		}
		cleanup("ClusterRoleBinding", admin.RbacV1().ClusterRoleBindings().Delete, name)
	}
	for _, name := range slices.Sorted(maps.Keys(b.ingressClasses)) {
		if _, err := admin.NetworkingV1().IngressClasses().Create(ctx, b.ingressClasses[name], metav1.CreateOptions{}); err != nil {
			t.Fatalf("create IngressClass %s: %v", name, err)
		}
		cleanup("IngressClass", admin.NetworkingV1().IngressClasses().Delete, name)
	}
}

// tokenClient returns a client of the test server that authenticates
// with nothing but the bearer token in file, and a function that closes
// its connections.
func tokenClient(t *testing.T, kube *testserver.Kube, file string) (kubernetes.Interface, func()) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kube.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.BearerTokenFile = file
	// No client-side rate limit: the RBAC matrix makes hundreds of
	// access reviews.
	cfg.QPS = -1
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() { utilnet.CloseIdleConnectionsFor(hc.Transport) }
}

// canI asks the API server whether the client may make a request.
func canI(ctx context.Context, c kubernetes.Interface, ns, group, resource, verb string) (bool, error) {
	res, sub, _ := strings.Cut(resource, "/")
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Group: group, Resource: res, Subresource: sub, Verb: verb,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// waitAllowed waits until the API server's RBAC authorizer, which learns
// of new bindings through a watch, allows a request the binding grants.
func waitAllowed(t *testing.T, c kubernetes.Interface, ns, group, resource, verb string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := canI(ctx, c, ns, group, resource, verb)
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the account may still not %s %s a minute after the binding was created (last error: %v)", verb, qualified(group, resource), err)
		case <-tick.C:
		}
	}
}

// realRequests makes the provider's requests, and some it must never
// make, with the account's client in namespace ns.
func realRequests(t *testing.T, admin, c kubernetes.Interface, ns string) {
	t.Helper()
	ctx := t.Context()
	class := "tollgate"
	_, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls"},
		StringData: map[string]string{"placeholder": "not a certificate"},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	prefix := networkingv1.PathTypePrefix
	ing, err := admin.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			Rules: []networkingv1.IngressRule{{Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &prefix,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}},
			}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if ing, err = admin.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	allowed := []struct {
		what string
		do   func() error
	}{
		{"list ingresses in every namespace", func() error {
			_, err := c.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch ingresses", func() error { return watchOnce(c.NetworkingV1().Ingresses("").Watch(ctx, metav1.ListOptions{})) }},
		{"get an ingress", func() error {
			_, err := c.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
			return err
		}},
		{"list ingressclasses", func() error {
			_, err := c.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch ingressclasses", func() error { return watchOnce(c.NetworkingV1().IngressClasses().Watch(ctx, metav1.ListOptions{})) }},
		{"list services", func() error {
			_, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch services", func() error { return watchOnce(c.CoreV1().Services("").Watch(ctx, metav1.ListOptions{})) }},
		{"list endpointslices", func() error {
			_, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch endpointslices", func() error { return watchOnce(c.DiscoveryV1().EndpointSlices("").Watch(ctx, metav1.ListOptions{})) }},
		{"list secrets", func() error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch secrets", func() error { return watchOnce(c.CoreV1().Secrets("").Watch(ctx, metav1.ListOptions{})) }},
		{"update an ingress's status", func() error {
			cp := ing.DeepCopy()
			cp.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}
			_, err := c.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
			return err
		}},
		{"create and patch a core event", func() error {
			now := metav1.Now()
			ev, err := c.CoreV1().Events(ns).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: eventName()},
				InvolvedObject: corev1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: ns, Name: "web", UID: ing.UID},
				Reason:         "Sync", Message: "served", Type: corev1.EventTypeNormal,
				Source:         corev1.EventSource{Component: "tollgate"},
				FirstTimestamp: now, LastTimestamp: now, Count: 1,
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			_, err = c.CoreV1().Events(ns).Patch(ctx, ev.Name, types.StrategicMergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
			return err
		}},
		{"create and patch an events.k8s.io event", func() error {
			ev, err := c.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{
				ObjectMeta:          metav1.ObjectMeta{Name: eventName()},
				EventTime:           metav1.NowMicro(),
				ReportingController: "tollgate-proxy.io/ingress-controller", ReportingInstance: "tollgate-0",
				Action: "Sync", Reason: "Sync", Note: "served", Type: corev1.EventTypeNormal,
				Regarding: corev1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: ns, Name: "web", UID: ing.UID},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			// A recorder counts a repeated event in its series.
			series := fmt.Sprintf(`{"series":{"count":2,"lastObservedTime":%q}}`, metav1.NowMicro().Format(metav1.RFC3339Micro))
			_, err = c.EventsV1().Events(ns).Patch(ctx, ev.Name, types.MergePatchType, []byte(series), metav1.PatchOptions{})
			return err
		}},
	}
	for _, r := range allowed {
		if err := r.do(); err != nil {
			t.Errorf("the replicas' account cannot %s: %v", r.what, err)
		}
	}

	forbidden := []struct {
		what string
		do   func() error
	}{
		{"update an ingress's spec", func() error {
			cp, err := admin.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("admin: %w", err)
			}
			cp.Spec.Rules[0].Host = "other.example.com"
			_, err = c.NetworkingV1().Ingresses(ns).Update(ctx, cp, metav1.UpdateOptions{})
			return err
		}},
		{"patch an ingress's annotations", func() error {
			_, err := c.NetworkingV1().Ingresses(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"annotations":{"x":"y"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"create a secret", func() error {
			_, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stolen"}}, metav1.CreateOptions{})
			return err
		}},
		{"update a secret", func() error {
			s, err := admin.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("admin: %w", err)
			}
			_, err = c.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
			return err
		}},
		{"delete an ingress", func() error { return c.NetworkingV1().Ingresses(ns).Delete(ctx, "web", metav1.DeleteOptions{}) }},
		{"delete a service", func() error { return c.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}) }},
		{"delete a secret", func() error { return c.CoreV1().Secrets(ns).Delete(ctx, "web-tls", metav1.DeleteOptions{}) }},
		{"delete the ingressclass", func() error { return c.NetworkingV1().IngressClasses().Delete(ctx, class, metav1.DeleteOptions{}) }},
		{"delete events", func() error {
			return c.CoreV1().Events(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
		{"create a service", func() error {
			_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
			return err
		}},
		{"list pods", func() error {
			_, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list configmaps", func() error {
			_, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"bind a role", func() error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "tollgate-escalated"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tollgate", Namespace: ns}},
			}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, r := range forbidden {
		switch err := r.do(); {
		case err == nil:
			t.Errorf("the replicas' account may %s", r.what)
		case !apierrors.IsForbidden(err):
			t.Errorf("%s: want a 403 Forbidden, got %v", r.what, err)
		}
	}
}

// eventName names an event of the Ingress "web" as client-go's recorders
// do: the object's name, a dot and a unique hexadecimal number.
func eventName() string {
	return fmt.Sprintf("web.%x", time.Now().UnixNano())
}

// watchOnce checks that a watch starts, and stops it.
func watchOnce(w interface{ Stop() }, err error) error {
	if err != nil {
		return err
	}
	w.Stop()
	return nil
}
