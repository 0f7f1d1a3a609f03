package deploy_test

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tollgate-proxy/tollgate/config"
)

// access is one kind of request the Kubernetes Ingress provider makes of
// the API server: verbs on a resource of an API group ("" is the core
// group). A subresource is written "resource/subresource", as in RBAC.
type access struct {
	group, resource string
	verbs           []string
	// why the provider needs it.
	why string
}

var readVerbs = []string{"get", "list", "watch"}

// providerAccess is everything the Ingress provider asks of the API
// server: shared informers (get, list, watch) on what an Ingress is made
// of, the status of Ingresses (written by the leader), and Events in both
// APIs, since client-go's event recorders use either. The ClusterRole
// bound to the replicas must grant exactly this.
var providerAccess = []access{
	{"networking.k8s.io", "ingresses", readVerbs, "the Ingresses it serves"},
	{"networking.k8s.io", "ingressclasses", readVerbs, "which classes name tollgate's controller"},
	{"networking.k8s.io", "ingresses/status", []string{"update"}, "the leader writes the load balancer's address into status.loadBalancer"},
	{"", "services", readVerbs, "the backends, and the published Service's status.loadBalancer"},
	{"discovery.k8s.io", "endpointslices", readVerbs, "the addresses of the backends' pods"},
	{"", "secrets", readVerbs, "the TLS Secrets an Ingress's spec.tls names"},
	{"gateway.networking.k8s.io", "gatewayclasses", readVerbs, "the Gateway API provider: which classes name tollgate's controller"},
	{"gateway.networking.k8s.io", "gateways", readVerbs, "the Gateway API provider: the listeners served"},
	{"gateway.networking.k8s.io", "httproutes", readVerbs, "the Gateway API provider: the routes served"},
	{"gateway.networking.k8s.io", "grpcroutes", readVerbs, "the Gateway API provider: the gRPC routes served"},
	{"gateway.networking.k8s.io", "referencegrants", readVerbs, "the Gateway API provider: references across namespaces"},
	{"", "namespaces", []string{"list", "watch"}, "the Gateway API provider: namespace labels for allowedRoutes selectors"},
	{"gateway.networking.k8s.io", "gatewayclasses/status", []string{"update"}, "the leader writes GatewayClass conditions"},
	{"gateway.networking.k8s.io", "gateways/status", []string{"update"}, "the leader writes Gateway conditions, listeners and addresses"},
	{"gateway.networking.k8s.io", "httproutes/status", []string{"update"}, "the leader writes its HTTPRoute parents entries"},
	{"gateway.networking.k8s.io", "grpcroutes/status", []string{"update"}, "the leader writes its GRPCRoute parents entries"},
	{"", "events", []string{"create", "patch"}, "events about Ingresses (core API)"},
	{"events.k8s.io", "events", []string{"create", "patch"}, "events about Ingresses (events.k8s.io API)"},
}

// grant is one verb on one resource of one API group.
type grant struct{ group, resource, verb string }

func (g grant) String() string {
	return fmt.Sprintf("%s %s", g.verb, qualified(g.group, g.resource))
}

// qualified names a resource with its group, "core" for the core group.
func qualified(group, resource string) string {
	return resource + "." + cmp.Or(group, "core")
}

// providerGrants returns providerAccess as single grants, with why each
// is needed.
func providerGrants() map[grant]string {
	out := map[grant]string{}
	for _, a := range providerAccess {
		for _, v := range a.verbs {
			out[grant{a.group, a.resource, v}] = a.why
		}
	}
	return out
}

// writeVerbs are the verbs that change objects.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// checkRules checks the rules of a role: every one names its groups,
// resources and verbs, no wildcards, no non-resource URLs, no aggregation,
// and no verb that widens rights (escalate, bind, impersonate) or writes
// Secrets. It returns the grants of the rules.
func checkRules(t *testing.T, where string, rules []rbacv1.PolicyRule) map[grant]bool {
	t.Helper()
	out := map[grant]bool{}
	for i, r := range rules {
		at := fmt.Sprintf("%s: rules[%d]", where, i)
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			if slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, "*") }) {
				t.Errorf("%s: a wildcard in %q: name every group, resource and verb", at, list)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s: nonResourceURLs %q: the provider requests none", at, r.NonResourceURLs)
		}
		if len(r.APIGroups) == 0 || len(r.Resources) == 0 || len(r.Verbs) == 0 {
			t.Errorf("%s: grants nothing (apiGroups %q, resources %q, verbs %q)", at, r.APIGroups, r.Resources, r.Verbs)
		}
		for _, v := range r.Verbs {
			if v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("%s: verb %s lets the account widen its own rights", at, v)
			}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "" && strings.Split(res, "/")[0] == "secrets" && slices.Contains(writeVerbs, v) {
						t.Errorf("%s: %s: a replica must never write Secrets", at, grant{g, res, v})
					}
					out[grant{g, res, v}] = true
				}
			}
		}
	}
	return out
}

// accountGrants returns what the bindings of a build grant, by service
// account ("namespace/name"), checking that every binding names a role of
// the build and binds service accounts only.
func (b *bundle) accountGrants(t *testing.T) map[string]map[grant]bool {
	t.Helper()
	ns := cmp.Or(b.namespace, "default")
	out := map[string]map[grant]bool{}
	bind := func(where string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, bindingNS string) {
		var rules []rbacv1.PolicyRule
		switch {
		case ref.APIGroup != rbacv1.GroupName:
			t.Errorf("%s: roleRef.apiGroup %q, want %s", where, ref.APIGroup, rbacv1.GroupName)
			return
		case ref.Kind == "ClusterRole" && b.clusterRoles[ref.Name] != nil:
			cr := b.clusterRoles[ref.Name]
			if cr.AggregationRule != nil {
				t.Errorf("%s: ClusterRole %s aggregates other roles: its rules are whatever matches the labels", where, ref.Name)
			}
			rules = cr.Rules
		case ref.Kind == "Role" && b.roles[ref.Name] != nil && bindingNS != "":
			rules = b.roles[ref.Name].Rules
		default:
			// cluster-admin, admin, edit, view and the system: roles grant
			// far more than the provider needs, and may change with the
			// cluster's version.
			t.Errorf("%s: roleRef %s %s is not a role of the build", where, ref.Kind, ref.Name)
			return
		}
		grants := checkRules(t, fmt.Sprintf("%s %s", ref.Kind, ref.Name), rules)
		for i, s := range subjects {
			if s.Kind != rbacv1.ServiceAccountKind {
				t.Errorf("%s: subjects[%d] is %s %s: the manifests bind their own service accounts only", where, i, s.Kind, s.Name)
				continue
			}
			sns := cmp.Or(s.Namespace, bindingNS)
			if sns != ns {
				t.Errorf("%s: subjects[%d] is the ServiceAccount %s of namespace %q; the build's objects are in %q", where, i, s.Name, sns, ns)
			}
			if b.accounts[s.Name] == nil {
				t.Errorf("%s: subjects[%d] names ServiceAccount %s, which is not in the build", where, i, s.Name)
			}
			key := sns + "/" + s.Name
			if out[key] == nil {
				out[key] = map[grant]bool{}
			}
			maps.Copy(out[key], grants)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.clusterBindings)) {
		crb := b.clusterBindings[name]
		bind("ClusterRoleBinding "+name, crb.RoleRef, crb.Subjects, "")
	}
	for _, name := range slices.Sorted(maps.Keys(b.roleBindings)) {
		rb := b.roleBindings[name]
		bind("RoleBinding "+name, rb.RoleRef, rb.Subjects, cmp.Or(rb.Namespace, ns))
	}
	return out
}

// ingressProvider returns the Ingress provider's configuration in the
// configuration the replicas follow, or nil without one (the chart with
// ingressProvider.enabled=false), in which case the build must have no
// IngressClass, and no RBAC objects unless the Gateway API provider is
// configured.
func (b *bundle) ingressProvider(t *testing.T) *config.KubernetesIngress {
	t.Helper()
	cfg := b.config(t)
	if cfg.Providers == nil || cfg.Providers.KubernetesIngress == nil {
		if n := len(b.ingressClasses); n > 0 {
			t.Errorf("the configuration has no [providers.kubernetesIngress], but the build has %d IngressClasses, which would serve nothing", n)
		}
		if n := len(b.clusterRoles) + len(b.clusterBindings) + len(b.roles) + len(b.roleBindings); n > 0 && b.gatewayProvider(t) == nil {
			t.Errorf("the configuration has no Kubernetes provider, but the build has %d RBAC objects, which would serve nothing", n)
		}
		return nil
	}
	return cfg.Providers.KubernetesIngress
}

// gatewayProvider returns the Gateway API provider's configuration in the
// configuration the replicas follow, or nil without one.
func (b *bundle) gatewayProvider(t *testing.T) *config.KubernetesGateway {
	t.Helper()
	cfg := b.config(t)
	if cfg.Providers == nil {
		return nil
	}
	return cfg.Providers.KubernetesGateway
}

// inCluster reports whether a Kubernetes provider of the configuration
// talks to the pod's own API server with its service account (no
// endpoint): the rights of providerAccess, granted together to both
// providers, are needed then.
func (b *bundle) inCluster(t *testing.T) bool {
	t.Helper()
	k, g := b.ingressProvider(t), b.gatewayProvider(t)
	return (k != nil && k.Endpoint == "") || (g != nil && g.Endpoint == "")
}

// TestRBAC checks that the replicas' service account may do exactly what
// the Ingress provider needs, and the storeconfig Job's nothing.
func TestRBAC(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		in := b.inCluster(t)
		serve := b.running(t, "Deployment", "serve")
		job := b.running(t, "Job", "storeconfig")
		ns := cmp.Or(b.namespace, "default")
		sa := cmp.Or(serve.w.pod.Spec.ServiceAccountName, "default")
		if sa == "default" {
			t.Errorf("%s: runs as the namespace's default ServiceAccount; give the replicas an account of their own", serve)
		}
		if js := cmp.Or(job.w.pod.Spec.ServiceAccountName, "default"); js == sa {
			t.Errorf("%s: runs as %s, the replicas' account: the Job needs no API access and should not hold theirs", job, js)
		}
		granted := b.accountGrants(t)
		got := granted[ns+"/"+sa]
		want := providerGrants()
		if !in {
			// No provider, or ones that talk to another API server with
			// tokenFile.
			want = nil
		}
		for _, g := range slices.SortedFunc(maps.Keys(want), grantOrder) {
			if !got[g] {
				t.Errorf("ServiceAccount %s/%s may not %s, which the Ingress provider needs: %s", ns, sa, g, want[g])
			}
		}
		for _, g := range slices.SortedFunc(maps.Keys(got), grantOrder) {
			if _, ok := want[g]; !ok {
				t.Errorf("ServiceAccount %s/%s may %s, which the Ingress provider never does", ns, sa, g)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(granted)) {
			if key != ns+"/"+sa && len(granted[key]) > 0 {
				t.Errorf("ServiceAccount %s is granted %d rights; only the replicas' account %s talks to the API", key, len(granted[key]), sa)
			}
		}
	})
}

func grantOrder(a, b grant) int {
	return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.resource, b.resource), cmp.Compare(a.verb, b.verb))
}

// TestServiceAccountTokens checks that a token is mounted exactly where
// something talks to the Kubernetes API: into the replicas, whose Ingress
// provider uses the in-cluster configuration, and nowhere else.
func TestServiceAccountTokens(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		in := b.inCluster(t)
		serve := b.running(t, "Deployment", "serve")
		for _, w := range b.workloads() {
			need := w.String() == serve.w.String() && in
			switch got := tokenMounted(b, &w.pod.Spec); {
			case need && !got:
				t.Errorf("%s: mounts no service account token, but its Ingress provider uses the in-cluster configuration (set automountServiceAccountToken: true in the pod template)", w)
			case !need && got:
				t.Errorf("%s: mounts a service account token, but does not talk to the Kubernetes API (set automountServiceAccountToken: false)", w)
			}
		}
		// Any other pod that names an account gets no token by default.
		for _, name := range slices.Sorted(maps.Keys(b.accounts)) {
			if a := b.accounts[name].AutomountServiceAccountToken; a == nil || *a {
				t.Errorf("ServiceAccount %s: automountServiceAccountToken is not false; mount the token in the pod templates that need it", name)
			}
		}
	})
}

// defaultClassAnnotation marks an IngressClass as the cluster's default.
const defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"

// TestIngressClass checks the IngressClass against the controller name
// tollgate serves and the class its configuration names.
func TestIngressClass(t *testing.T) {
	md, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), defaultClassAnnotation) {
		t.Errorf("%s does not say how to make tollgate's IngressClass the default (annotation %s)", readmeFile, defaultClassAnnotation)
	}
	eachBundle(t, func(t *testing.T, b *bundle) {
		k := b.ingressProvider(t)
		if k == nil {
			t.Skip("no Ingress provider")
		}
		var ours []string
		for _, name := range slices.Sorted(maps.Keys(b.ingressClasses)) {
			ic := b.ingressClasses[name]
			if ic.Spec.Controller != config.IngressController {
				t.Errorf("IngressClass %s: spec.controller %q, want %q (config.IngressController)", name, ic.Spec.Controller, config.IngressController)
				continue
			}
			ours = append(ours, name)
			if ic.Spec.Parameters != nil {
				t.Errorf("IngressClass %s: spec.parameters is set; tollgate reads none", name)
			}
			// The shipped class must not take over the Ingresses that name
			// no class, which another controller may be serving.
			if b.shipped && ic.Annotations[defaultClassAnnotation] == "true" {
				t.Errorf("IngressClass %s is marked as the cluster's default (%s); leave that to the operator", name, defaultClassAnnotation)
			}
		}
		if len(ours) != 1 {
			t.Fatalf("the build has IngressClasses %q of controller %s, want exactly one", ours, config.IngressController)
		}
		if k.IngressClass != "" && k.IngressClass != ours[0] {
			t.Errorf("[providers.kubernetesIngress] ingressClass is %q, but the build's IngressClass is %s", k.IngressClass, ours[0])
		}
	})
}

// TestIngressProvider checks the provider's configuration against the
// manifests: where it serves Ingresses, and which Service's address it
// publishes in their status.
func TestIngressProvider(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		k := b.ingressProvider(t)
		if k == nil {
			t.Skip("no Ingress provider")
		}
		cfg := b.config(t)
		serve := b.running(t, "Deployment", "serve")
		if k.Endpoint != "" {
			t.Errorf("[providers.kubernetesIngress] endpoint %q: inside the cluster, leave it empty for the pod's own API server and token", k.Endpoint)
		}
		// Entry points: the public ones only. Empty means every entry
		// point, the API's included.
		eps := k.EntryPoints
		if len(eps) == 0 {
			eps = slices.Sorted(maps.Keys(cfg.EntryPoints))
		}
		listens := map[string]int32{}
		for name, ep := range cfg.EntryPoints {
			if port, err := listenPort(ep.Address); err == nil {
				listens[name] = port
			}
		}
		public := b.publishedEntryPoints(t, serve, listens)
		apiName, _ := apiEntryPoint(cfg)
		for _, ep := range eps {
			switch {
			case ep == apiName:
				t.Errorf("[providers.kubernetesIngress] serves Ingresses on the API entry point %s, which must stay inside the cluster; list the public entry points in entryPoints", apiName)
			case len(public[ep]) == 0:
				t.Errorf("[providers.kubernetesIngress] serves Ingresses on entry point %s, which the load balancer does not publish", ep)
			}
		}
		// The address in the Ingresses' status: the LoadBalancer Service
		// in front of the replicas, in the build's namespace.
		var lb []string
		for _, name := range slices.Sorted(maps.Keys(b.services)) {
			svc := b.services[name]
			if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(serve.w.pod.Labels)) {
				lb = append(lb, name)
			}
		}
		e := k.IngressEndpoint
		switch {
		case len(lb) != 1:
			t.Errorf("%d LoadBalancer Services select the replicas, want 1", len(lb))
		case e == nil:
			t.Errorf("[providers.kubernetesIngress] has no ingressEndpoint: Ingresses would show no address")
		case e.PublishedService != cmp.Or(b.namespace, "default")+"/"+lb[0]:
			t.Errorf("[providers.kubernetesIngress.ingressEndpoint] publishedService is %q, want %q: the LoadBalancer Service of the build, in its namespace",
				e.PublishedService, cmp.Or(b.namespace, "default")+"/"+lb[0])
		}
	})
}

// TestGatewayProvider checks the Gateway API provider's configuration
// against the manifests: a listener port is served by the entry point the
// load balancer publishes on that port, and the address in the Gateways'
// status is the LoadBalancer Service's.
func TestGatewayProvider(t *testing.T) {
	covered := false
	eachBundle(t, func(t *testing.T, b *bundle) {
		g := b.gatewayProvider(t)
		if g == nil {
			t.Skip("no Gateway API provider")
		}
		covered = true
		cfg := b.config(t)
		serve := b.running(t, "Deployment", "serve")
		if g.Endpoint != "" {
			t.Errorf("[providers.kubernetesGateway] endpoint %q: inside the cluster, leave it empty for the pod's own API server and token", g.Endpoint)
		}
		listens := map[string]int32{}
		for name, ep := range cfg.EntryPoints {
			if port, err := listenPort(ep.Address); err == nil {
				listens[name] = port
			}
		}
		public := b.publishedEntryPoints(t, serve, listens)
		ports := g.ListenerEntryPoints(cfg.EntryPoints)
		if len(ports) == 0 {
			t.Error("[providers.kubernetesGateway] maps no listener port to an entry point: no listener would be programmed")
		}
		for _, port := range slices.Sorted(maps.Keys(ports)) {
			if ep := ports[port]; !slices.Contains(public[ep], port) {
				t.Errorf("[providers.kubernetesGateway] serves listener port %d by entry point %s, which the load balancer publishes on %v", port, ep, public[ep])
			}
		}
		var lb []string
		for _, name := range slices.Sorted(maps.Keys(b.services)) {
			svc := b.services[name]
			if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(serve.w.pod.Labels)) {
				lb = append(lb, name)
			}
		}
		want := ""
		if len(lb) == 1 {
			want = cmp.Or(b.namespace, "default") + "/" + lb[0]
		}
		if e := g.StatusAddress; e == nil || e.PublishedService != want {
			t.Errorf("[providers.kubernetesGateway.statusAddress] %+v, want publishedService %q: the LoadBalancer Service of the build, in its namespace", e, want)
		}
	})
	if !covered {
		t.Error("no build configures the Gateway API provider: the chart's gatewayProvider values are not tested")
	}
}

// TestTollgateCheck runs "tollgate check" on the configuration the
// storeconfig Job publishes: what the binary refuses, the Job would
// refuse too (with exit code 3, which fails the Job for good). The files
// it names are in Secrets mounted into the pods, hence --skip-files.
func TestTollgateCheck(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		job := b.running(t, "Job", "storeconfig")
		_, doc, err := b.mountedFile(&job.w.pod.Spec, job.c, job.flags["config"])
		if err != nil {
			t.Fatalf("%s: --config: %v", job, err)
		}
		file := filepath.Join(t.TempDir(), "tollgate.toml")
		if err := os.WriteFile(file, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out := runTollgate(t, nil, "check", "--skip-files", "--config", file); code != 0 {
			t.Errorf("%s: tollgate check refuses the configuration it publishes (exit code %d):\n%s", job, code, out)
		}
	})
}
