// Package deploy_test checks the Kubernetes manifests in deploy/kubernetes.
// Every kustomization is built in-process, every object it produces is
// decoded strictly into its Kubernetes type, and the objects are checked
// against each other (selectors, ports, references) and against what the
// tollgate binary really reads (its configuration, flags and environment).
package deploy_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeBinary()
	removeHelmHome()
	if code == 0 {
		// A DNS provider's SDK, linked in through package acme, starts a
		// logger goroutine in its init.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/baidubce/bce-sdk-go/util/log.NewLogger.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// tollgateImage is the repository of tollgate's image in the shipped
// manifests.
const tollgateImage = "ghcr.io/tollgate-proxy/tollgate"

// bundle is the decoded output of one kustomization.
type bundle struct {
	name string
	// image is the repository of tollgate's image in this build.
	image string
	// namespace is the namespace every object must be in ("" for the
	// shipped, namespace-agnostic kustomizations).
	namespace string
	// shipped is true for the kustomizations in the repository, whose
	// Secrets hold placeholders; false for the overlay README.md shows,
	// built with real values.
	shipped bool
	// chart is true for the renderings of the Helm chart in helm/tollgate
	// (helm_test.go).
	chart bool
	// externalStore is true when the store is outside the build (the
	// chart's store.bundled=false): there is no store StatefulSet to check.
	externalStore bool
	// rendered is kustomize's output, the YAML stream "kubectl apply -k"
	// would send.
	rendered []byte

	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	jobs         map[string]*batchv1.Job
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	accounts     map[string]*corev1.ServiceAccount
	budgets      map[string]*policyv1.PodDisruptionBudget
	autoscalers  map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies     map[string]*networkingv1.NetworkPolicy
	// Cluster-scoped objects.
	clusterRoles    map[string]*rbacv1.ClusterRole
	clusterBindings map[string]*rbacv1.ClusterRoleBinding
	ingressClasses  map[string]*networkingv1.IngressClass
	// Prometheus Operator ServiceMonitors (the chart's, optional).
	serviceMonitors map[string]*serviceMonitor
	// Namespaced RBAC objects: none are shipped, but an overlay may add
	// them, and TestRBAC judges every grant.
	roles        map[string]*rbacv1.Role
	roleBindings map[string]*rbacv1.RoleBinding
}

func newBundle(name string) *bundle {
	return &bundle{
		name:         name,
		image:        tollgateImage,
		shipped:      true,
		deployments:  map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		jobs:         map[string]*batchv1.Job{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
		accounts:     map[string]*corev1.ServiceAccount{},
		budgets:      map[string]*policyv1.PodDisruptionBudget{},
		autoscalers:  map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		policies:     map[string]*networkingv1.NetworkPolicy{},

		clusterRoles:    map[string]*rbacv1.ClusterRole{},
		clusterBindings: map[string]*rbacv1.ClusterRoleBinding{},
		ingressClasses:  map[string]*networkingv1.IngressClass{},
		serviceMonitors: map[string]*serviceMonitor{},
		roles:           map[string]*rbacv1.Role{},
		roleBindings:    map[string]*rbacv1.RoleBinding{},
	}
}

// kustomizations lists the shipped kustomizations: the base and every
// overlay, relative to this package's directory.
func kustomizations() ([]string, error) {
	dirs := []string{filepath.Join("kubernetes", "base")}
	overlays, err := filepath.Glob(filepath.Join("kubernetes", "overlays", "*", "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range overlays {
		dirs = append(dirs, filepath.Dir(f))
	}
	return dirs, nil
}

// loadBundles builds every shipped kustomization and the overlay of
// README.md once for all tests.
var loadBundles = sync.OnceValues(func() ([]*bundle, error) {
	dirs, err := kustomizations()
	if err != nil {
		return nil, err
	}
	var out []*bundle
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if filepath.Base(filepath.Dir(dir)) == "overlays" {
			name = "overlay-" + name
		}
		b, err := build(name, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	b, err := buildReadmeOverlay()
	if err != nil {
		return nil, fmt.Errorf("the overlay of kubernetes/README.md: %w", err)
	}
	return append(out, b), nil
})

// bundles returns every build, the kustomizations' and the chart's,
// failing the test when one does not build.
func bundles(t *testing.T) []*bundle {
	t.Helper()
	bs, err := loadBundles()
	if err != nil {
		t.Fatal(err)
	}
	charts, err := loadChartBundles(helmBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Concat(bs, charts)
}

// eachBundle runs check as a subtest for every build.
func eachBundle(t *testing.T, check func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, b := range bundles(t) {
		t.Run(b.name, func(t *testing.T) { check(t, b) })
	}
}

// build runs kustomize on dir and decodes what it produces.
func build(name, dir string) (*bundle, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b := newBundle(name)
	if b.rendered, err = rm.AsYaml(); err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		if err := b.add(r.GetApiVersion(), r.GetKind(), doc); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %q: %w", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return b, nil
}

// add decodes one object into the map of its kind.
func (b *bundle) add(apiVersion, kind string, doc []byte) error {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return decodeInto(doc, b.deployments)
	case "apps/v1 StatefulSet":
		return decodeInto(doc, b.statefulSets)
	case "batch/v1 Job":
		return decodeInto(doc, b.jobs)
	case "v1 Service":
		return decodeInto(doc, b.services)
	case "v1 ConfigMap":
		return decodeInto(doc, b.configMaps)
	case "v1 Secret":
		return decodeInto(doc, b.secrets)
	case "v1 ServiceAccount":
		return decodeInto(doc, b.accounts)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, b.budgets)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, b.autoscalers)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(doc, b.policies)
	case "networking.k8s.io/v1 IngressClass":
		return decodeInto(doc, b.ingressClasses)
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return decodeInto(doc, b.clusterRoles)
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return decodeInto(doc, b.clusterBindings)
	case "rbac.authorization.k8s.io/v1 Role":
		return decodeInto(doc, b.roles)
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return decodeInto(doc, b.roleBindings)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeInto(doc, b.serviceMonitors)
	}
	return fmt.Errorf("apiVersion %q kind %q: no Go type is registered for it in deploy_test.go (bundle.add)", apiVersion, kind)
}

// named is a Kubernetes object with metadata.
type named[T any] interface {
	*T
	GetName() string
}

func decodeInto[T any, PT named[T]](doc []byte, into map[string]*T) error {
	obj := new(T)
	if err := decodeStrict(doc, obj); err != nil {
		return err
	}
	name := PT(obj).GetName()
	if _, dup := into[name]; dup {
		return errors.New("defined twice")
	}
	into[name] = obj
	return nil
}

// decodeStrict decodes a YAML document into obj as the API server would:
// every key must name a field of obj's type exactly, as spelt in its json
// tag. encoding/json alone would match "allowprivilegeescalation" to
// allowPrivilegeEscalation, which the API server rejects (or, through
// kubectl apply, drops with a warning), so every key is also looked up,
// case-sensitively, in the Go type, whatever its value: a misspelt key
// with a zero value (false, 0, "") is as wrong as any other.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return fmt.Errorf("strict decoding into %T: %w", obj, err)
	}
	if dec.More() {
		return fmt.Errorf("strict decoding into %T: more than one document", obj)
	}
	var tree any
	if err := json.Unmarshal(js, &tree); err != nil {
		return err
	}
	if bad := unknownKeys("", tree, reflect.TypeOf(obj)); len(bad) > 0 {
		return fmt.Errorf("strict decoding into %T: unknown or misspelt fields %s (field names are case-sensitive)", obj, strings.Join(bad, ", "))
	}
	return nil
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// unknownKeys lists the keys of the decoded JSON value v, with their
// paths, that name no field of typ exactly.
func unknownKeys(path string, v any, typ reflect.Type) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if reflect.PointerTo(typ).Implements(jsonUnmarshaler) {
		// Quantity, IntOrString, Time and the like read their own form.
		return nil
	}
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		switch typ.Kind() {
		case reflect.Struct:
			fields := jsonFields(typ)
			for _, k := range slices.Sorted(maps.Keys(v)) {
				ft, ok := fields[k]
				if !ok {
					bad = append(bad, path+"."+k)
					continue
				}
				bad = append(bad, unknownKeys(path+"."+k, v[k], ft)...)
			}
		case reflect.Map:
			// Keys are data (labels, ConfigMap keys), not field names.
			for _, k := range slices.Sorted(maps.Keys(v)) {
				bad = append(bad, unknownKeys(fmt.Sprintf("%s[%q]", path, k), v[k], typ.Elem())...)
			}
		}
	case []any:
		if typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array {
			for i, e := range v {
				bad = append(bad, unknownKeys(fmt.Sprintf("%s[%d]", path, i), e, typ.Elem())...)
			}
		}
	}
	return bad
}

// jsonFields maps the JSON names of a struct's fields, those of embedded
// structs included (TypeMeta, with json:",inline"), to their types.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			maps.Copy(fields, jsonFields(ft))
			continue
		}
		fields[cmp.Or(name, f.Name)] = f.Type
	}
	return fields
}

// workload is a Deployment, StatefulSet or Job: something that runs pods.
type workload struct {
	kind, name string
	// selector is nil for a Job, whose selector Kubernetes makes.
	selector *metav1.LabelSelector
	replicas int32
	pod      *corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim
	// serviceName is a StatefulSet's governing Service.
	serviceName string
}

func (w workload) String() string { return w.kind + " " + w.name }

// workloads lists every workload, in a fixed order.
func (b *bundle) workloads() []workload {
	var ws []workload
	for _, name := range slices.Sorted(maps.Keys(b.deployments)) {
		d := b.deployments[name]
		n := replicas(d.Spec.Replicas)
		if hpa := b.autoscalerOf("Deployment", name); hpa != nil && d.Spec.Replicas == nil {
			n = replicas(hpa.Spec.MinReplicas)
		}
		ws = append(ws, workload{kind: "Deployment", name: name, selector: d.Spec.Selector,
			replicas: n, pod: &d.Spec.Template})
	}
	for _, name := range slices.Sorted(maps.Keys(b.statefulSets)) {
		s := b.statefulSets[name]
		ws = append(ws, workload{kind: "StatefulSet", name: name, selector: s.Spec.Selector,
			replicas: replicas(s.Spec.Replicas), pod: &s.Spec.Template,
			claims: s.Spec.VolumeClaimTemplates, serviceName: s.Spec.ServiceName})
	}
	for _, name := range slices.Sorted(maps.Keys(b.jobs)) {
		j := b.jobs[name]
		ws = append(ws, workload{kind: "Job", name: name, replicas: replicas(j.Spec.Parallelism), pod: &j.Spec.Template})
	}
	return ws
}

// autoscalerOf returns the HorizontalPodAutoscaler that scales a
// workload, or nil.
func (b *bundle) autoscalerOf(kind, name string) *autoscalingv2.HorizontalPodAutoscaler {
	for _, hpa := range b.autoscalers {
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind == kind && ref.Name == name {
			return hpa
		}
	}
	return nil
}

// replicas applies Kubernetes' default of 1.
func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

// selecting returns the workloads whose pods sel selects.
func (b *bundle) selecting(sel labels.Selector) []workload {
	var out []workload
	for _, w := range b.workloads() {
		if !sel.Empty() && sel.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// allContainers returns the init and regular containers of a pod.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}

// containerPort finds the port a Service or probe names, by name or
// number, among the pod's containers.
func containerPort(spec *corev1.PodSpec, port string, number int32) (*corev1.ContainerPort, bool) {
	for _, c := range spec.Containers {
		for i, p := range c.Ports {
			if port != "" && p.Name == port || port == "" && p.ContainerPort == number {
				return &c.Ports[i], true
			}
		}
	}
	return nil, false
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func TestKustomizationsBuild(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		if len(b.deployments) == 0 || len(b.services) == 0 {
			t.Errorf("the build has %d Deployments and %d Services, want at least one of each", len(b.deployments), len(b.services))
		}
		stores := 0
		for _, s := range b.statefulSets {
			if s.Labels["app.kubernetes.io/component"] == "store" {
				stores++
			}
		}
		switch {
		case b.externalStore && stores != 0:
			t.Errorf("the build has %d store StatefulSets (label app.kubernetes.io/component=store), want none with an external store", stores)
		case !b.externalStore && stores != 1:
			t.Errorf("the build has %d store StatefulSets (label app.kubernetes.io/component=store), want exactly 1", stores)
		}
	})
}

func TestNamespaces(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		check := func(kind string, m metav1.Object) {
			if got := m.GetNamespace(); got != b.namespace {
				t.Errorf("%s %s: metadata.namespace is %q, want %q (the base must not name a namespace)", kind, m.GetName(), got, b.namespace)
			}
		}
		for _, o := range b.deployments {
			check("Deployment", o)
		}
		for _, o := range b.statefulSets {
			check("StatefulSet", o)
		}
		for _, o := range b.jobs {
			check("Job", o)
		}
		for _, o := range b.services {
			check("Service", o)
		}
		for _, o := range b.configMaps {
			check("ConfigMap", o)
		}
		for _, o := range b.secrets {
			check("Secret", o)
		}
		for _, o := range b.accounts {
			check("ServiceAccount", o)
		}
		for _, o := range b.budgets {
			check("PodDisruptionBudget", o)
		}
		for _, o := range b.autoscalers {
			check("HorizontalPodAutoscaler", o)
		}
		for _, o := range b.policies {
			check("NetworkPolicy", o)
		}
		for _, o := range b.roles {
			check("Role", o)
		}
		for _, o := range b.serviceMonitors {
			check("ServiceMonitor", o)
		}
		for _, o := range b.roleBindings {
			check("RoleBinding", o)
		}
		// Cluster-scoped: a namespace here is an error the API server
		// ignores, and a sign of a misplaced object.
		clusterScoped := func(kind string, m metav1.Object) {
			if got := m.GetNamespace(); got != "" {
				t.Errorf("%s %s is cluster-scoped but has metadata.namespace %q", kind, m.GetName(), got)
			}
		}
		for _, o := range b.clusterRoles {
			clusterScoped("ClusterRole", o)
		}
		for _, o := range b.clusterBindings {
			clusterScoped("ClusterRoleBinding", o)
		}
		for _, o := range b.ingressClasses {
			clusterScoped("IngressClass", o)
		}
	})
}

func TestWorkloadSelectors(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			podLabels := labels.Set(w.pod.Labels)
			if w.selector != nil {
				sel, err := metav1.LabelSelectorAsSelector(w.selector)
				switch {
				case err != nil:
					t.Errorf("%s: spec.selector: %v", w, err)
					continue
				case sel.Empty():
					t.Errorf("%s: spec.selector is empty", w)
				case !sel.Matches(podLabels):
					t.Errorf("%s: spec.selector %s does not match the pod template's labels %v", w, sel, podLabels)
				}
				for _, other := range b.workloads() {
					if other.String() != w.String() && sel.Matches(labels.Set(other.pod.Labels)) {
						t.Errorf("%s: spec.selector %s also matches the pods of %s", w, sel, other)
					}
				}
			}
			for i, c := range w.pod.Spec.TopologySpreadConstraints {
				checkOwnPods(t, fmt.Sprintf("%s: topologySpreadConstraints[%d].labelSelector", w, i), c.LabelSelector, podLabels)
			}
			if a := w.pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
				for i, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
					checkOwnPods(t, fmt.Sprintf("%s: podAntiAffinity.preferred[%d].labelSelector", w, i), term.PodAffinityTerm.LabelSelector, podLabels)
				}
				for i, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
					checkOwnPods(t, fmt.Sprintf("%s: podAntiAffinity.required[%d].labelSelector", w, i), term.LabelSelector, podLabels)
				}
			}
		}
	})
}

// checkOwnPods checks that a spreading selector selects the workload's own
// pods; one that does not spreads nothing.
func checkOwnPods(t *testing.T, what string, ls *metav1.LabelSelector, own labels.Set) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || ls == nil || sel.Empty() || !sel.Matches(own) {
		t.Errorf("%s: %v does not select the workload's own pods %v", what, ls, own)
	}
}

func TestServices(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, name := range slices.Sorted(maps.Keys(b.services)) {
			svc := b.services[name]
			if len(svc.Spec.Selector) == 0 {
				t.Errorf("Service %s: spec.selector is empty", name)
				continue
			}
			selected := b.selecting(labels.SelectorFromSet(svc.Spec.Selector))
			if len(selected) == 0 {
				t.Errorf("Service %s: spec.selector %v selects no pods of any workload", name, svc.Spec.Selector)
			}
			for _, w := range selected {
				for _, p := range svc.Spec.Ports {
					target, number := p.TargetPort.StrVal, p.TargetPort.IntVal
					if target == "" && number == 0 {
						number = p.Port
					}
					cp, ok := containerPort(&w.pod.Spec, target, number)
					switch {
					case !ok:
						t.Errorf("Service %s: port %q targets %s, which no container of %s declares", name, p.Name, p.TargetPort.String(), w)
					case protocolOf(cp.Protocol) != protocolOf(p.Protocol):
						t.Errorf("Service %s: port %q is %s but %s declares %s as %s", name, p.Name, protocolOf(p.Protocol), w, p.TargetPort.String(), protocolOf(cp.Protocol))
					}
				}
			}
		}
		for _, w := range b.workloads() {
			if w.kind != "StatefulSet" {
				continue
			}
			svc, ok := b.services[w.serviceName]
			switch {
			case !ok:
				t.Errorf("%s: spec.serviceName %q names no Service", w, w.serviceName)
			case svc.Spec.ClusterIP != corev1.ClusterIPNone:
				t.Errorf("%s: its governing Service %s is not headless (clusterIP %q)", w, w.serviceName, svc.Spec.ClusterIP)
			case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.pod.Labels)):
				t.Errorf("%s: its governing Service %s does not select its pods", w, w.serviceName)
			case !svc.Spec.PublishNotReadyAddresses:
				t.Errorf("%s: its governing Service %s must publish not-ready addresses, or members cannot find each other to become ready", w, w.serviceName)
			}
		}
	})
}

func TestDisruptionBudgets(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		covered := map[string]bool{}
		for _, name := range slices.Sorted(maps.Keys(b.budgets)) {
			pdb := b.budgets[name]
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || sel.Empty() {
				t.Errorf("PodDisruptionBudget %s: spec.selector %v is empty or invalid (%v)", name, pdb.Spec.Selector, err)
				continue
			}
			selected := b.selecting(sel)
			if len(selected) != 1 || selected[0].kind == "Job" {
				t.Errorf("PodDisruptionBudget %s: selects the pods of %v, want those of exactly one Deployment or StatefulSet", name, selected)
				continue
			}
			w := selected[0]
			covered[w.String()] = true
			// The default (IfHealthyBudget) lets pods that are not ready
			// block evictions while the budget is spent: during a store
			// outage no replica is ready, and no node could be drained.
			if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
				t.Errorf("PodDisruptionBudget %s: unhealthyPodEvictionPolicy is %v, want AlwaysAllow: pods that are not ready must not block node drains", name, p)
			}
			least := w.replicas
			for _, hpa := range b.autoscalers {
				if hpa.Spec.ScaleTargetRef.Kind == w.kind && hpa.Spec.ScaleTargetRef.Name == w.name && hpa.Spec.MinReplicas != nil {
					least = min(least, *hpa.Spec.MinReplicas)
				}
			}
			switch {
			case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable != nil:
				t.Errorf("PodDisruptionBudget %s: sets both minAvailable and maxUnavailable", name)
			case pdb.Spec.MaxUnavailable != nil:
				if v := pdb.Spec.MaxUnavailable; v.Type == intstr.Int && v.IntVal < 1 || v.Type == intstr.String && v.StrVal == "0%" {
					t.Errorf("PodDisruptionBudget %s: maxUnavailable %s allows no disruption: nodes could never be drained", name, v.String())
				}
			case pdb.Spec.MinAvailable != nil:
				if v := pdb.Spec.MinAvailable; v.Type != intstr.Int || v.IntVal >= least {
					t.Errorf("PodDisruptionBudget %s: minAvailable %s leaves no disruption with %d replicas of %s (give a number of pods)", name, v.String(), least, w)
				}
			default:
				t.Errorf("PodDisruptionBudget %s: sets neither minAvailable nor maxUnavailable", name)
			}
		}
		for _, w := range b.workloads() {
			if w.kind != "Job" && w.replicas > 1 && !covered[w.String()] {
				t.Errorf("%s: %d replicas and no PodDisruptionBudget", w, w.replicas)
			}
		}
	})
}

func TestAutoscalers(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, name := range slices.Sorted(maps.Keys(b.autoscalers)) {
			hpa := b.autoscalers[name]
			ref := hpa.Spec.ScaleTargetRef
			d, ok := b.deployments[ref.Name]
			if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || !ok {
				t.Errorf("HorizontalPodAutoscaler %s: scaleTargetRef %s %s %s names no Deployment of the build", name, ref.APIVersion, ref.Kind, ref.Name)
				continue
			}
			lo, hi := replicas(hpa.Spec.MinReplicas), hpa.Spec.MaxReplicas
			if hpa.Spec.MinReplicas == nil || lo < 3 || hi < lo {
				t.Errorf("HorizontalPodAutoscaler %s: minReplicas %v, maxReplicas %d; want 3 <= minReplicas <= maxReplicas", name, hpa.Spec.MinReplicas, hi)
			}
			// The autoscaler owns the count: with replicas in the manifest,
			// every apply would set a scaled-out fleet back to it. A new
			// Deployment starts with 1, and the autoscaler raises it to
			// minReplicas.
			if d.Spec.Replicas != nil {
				t.Errorf("HorizontalPodAutoscaler %s: Deployment %s sets replicas %d; leave it out, or every apply resets what the autoscaler scaled", name, ref.Name, *d.Spec.Replicas)
			}
			for i, m := range hpa.Spec.Metrics {
				if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
					continue
				}
				if m.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
					for _, c := range d.Spec.Template.Spec.Containers {
						if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
							t.Errorf("HorizontalPodAutoscaler %s: metrics[%d] scales on %s utilization, but container %s of Deployment %s requests no %s", name, i, m.Resource.Name, c.Name, ref.Name, m.Resource.Name)
						}
					}
				}
			}
		}
	})
}

func TestProbes(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			for _, c := range w.pod.Spec.Containers {
				if w.kind != "Job" && c.ReadinessProbe == nil {
					t.Errorf("%s: container %s has no readinessProbe", w, c.Name)
				}
				probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}
				for _, kind := range slices.Sorted(maps.Keys(probes)) {
					p := probes[kind]
					if p == nil {
						continue
					}
					var port *corev1.ContainerPort
					var ok bool
					switch {
					case p.HTTPGet != nil:
						port, ok = containerPort(&w.pod.Spec, p.HTTPGet.Port.StrVal, p.HTTPGet.Port.IntVal)
					case p.TCPSocket != nil:
						port, ok = containerPort(&w.pod.Spec, p.TCPSocket.Port.StrVal, p.TCPSocket.Port.IntVal)
					case p.GRPC != nil:
						port, ok = containerPort(&w.pod.Spec, "", p.GRPC.Port)
					default:
						continue
					}
					if !ok {
						t.Errorf("%s: container %s: %s targets a port no container declares", w, c.Name, kind)
					} else if protocolOf(port.Protocol) != corev1.ProtocolTCP {
						t.Errorf("%s: container %s: %s targets %s port %s", w, c.Name, kind, port.Protocol, port.Name)
					}
				}
			}
		}
	})
}

func TestPodSecurity(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			spec := &w.pod.Spec
			psc := spec.SecurityContext
			if psc == nil {
				psc = &corev1.PodSecurityContext{}
			}
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Errorf("%s: uses the host's network, PID or IPC namespace", w)
			}
			unprivilegedFrom := int32(1024)
			for _, s := range psc.Sysctls {
				if s.Name == "net.ipv4.ip_unprivileged_port_start" {
					var n int32
					if _, err := fmt.Sscan(s.Value, &n); err != nil {
						t.Errorf("%s: sysctl %s = %q is not a number", w, s.Name, s.Value)
					}
					unprivilegedFrom = n
				}
			}
			for _, c := range allContainers(spec) {
				sc := c.SecurityContext
				if sc == nil {
					t.Errorf("%s: container %s has no securityContext", w, c.Name)
					continue
				}
				where := fmt.Sprintf("%s: container %s", w, c.Name)
				if !orBool(sc.RunAsNonRoot, psc.RunAsNonRoot) {
					t.Errorf("%s: runAsNonRoot is not true", where)
				}
				if uid := orInt(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
					t.Errorf("%s: runAsUser is not set to a non-zero uid (the kubelet cannot check a named USER of the image)", where)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s: readOnlyRootFilesystem is not true", where)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: allowPrivilegeEscalation is not false", where)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("%s: privileged", where)
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: capabilities.drop does not contain ALL", where)
				} else if len(sc.Capabilities.Add) > 0 {
					t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
				}
				seccomp := psc.SeccompProfile
				if sc.SeccompProfile != nil {
					seccomp = sc.SeccompProfile
				}
				if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost {
					t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
				}
				for _, p := range c.Ports {
					if p.ContainerPort < unprivilegedFrom {
						t.Errorf("%s: listens on port %d, which a process without capabilities may bind only with the pod sysctl net.ipv4.ip_unprivileged_port_start <= %d (it is %d)",
							where, p.ContainerPort, p.ContainerPort, unprivilegedFrom)
					}
				}
			}
		}
	})
}

// tokenMounted reports whether the kubelet mounts a service account
// token into a pod: the pod's automountServiceAccountToken decides, else
// its account's, else it does (Kubernetes' default).
func tokenMounted(b *bundle, spec *corev1.PodSpec) bool {
	if spec.AutomountServiceAccountToken != nil {
		return *spec.AutomountServiceAccountToken
	}
	sa, ok := b.accounts[cmp.Or(spec.ServiceAccountName, "default")]
	return !ok || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken
}

func orBool(a, b *bool) bool {
	if a != nil {
		return *a
	}
	return b != nil && *b
}

func orInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// podFields are the fieldRef paths the kubelet resolves for a container.
var podFields = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
	"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

func TestReferences(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			spec := &w.pod.Spec
			if sa := spec.ServiceAccountName; sa != "" && sa != "default" && b.accounts[sa] == nil {
				t.Errorf("%s: serviceAccountName %q names no ServiceAccount of the build", w, sa)
			}
			volumes := map[string]bool{}
			for _, c := range w.claims {
				volumes[c.Name] = true
			}
			for _, v := range spec.Volumes {
				volumes[v.Name] = true
				where := fmt.Sprintf("%s: volume %s", w, v.Name)
				if s := v.Secret; s != nil {
					b.checkKeys(t, where, "Secret", s.SecretName, s.Optional, s.Items)
				}
				if cm := v.ConfigMap; cm != nil {
					b.checkKeys(t, where, "ConfigMap", cm.Name, cm.Optional, cm.Items)
				}
			}
			for _, c := range allContainers(spec) {
				where := fmt.Sprintf("%s: container %s", w, c.Name)
				for _, m := range c.VolumeMounts {
					if !volumes[m.Name] {
						t.Errorf("%s: volumeMount %s at %s names no volume or volumeClaimTemplate", where, m.Name, m.MountPath)
					}
				}
				b.checkEnv(t, where, c)
			}
		}
	})
}

// checkKeys checks that a volume's Secret or ConfigMap exists and has the
// keys the volume's items name.
func (b *bundle) checkKeys(t *testing.T, where, kind, name string, optional *bool, items []corev1.KeyToPath) {
	t.Helper()
	keys, ok := b.keysOf(kind, name)
	if !ok {
		if optional == nil || !*optional {
			t.Errorf("%s: %s %q is not in the build", where, kind, name)
		}
		return
	}
	for _, it := range items {
		if !keys[it.Key] {
			t.Errorf("%s: %s %s has no key %q", where, kind, name, it.Key)
		}
	}
}

// keysOf returns the keys of a Secret or ConfigMap of the build.
func (b *bundle) keysOf(kind, name string) (map[string]bool, bool) {
	keys := map[string]bool{}
	switch kind {
	case "Secret":
		s, ok := b.secrets[name]
		if !ok {
			return nil, false
		}
		for k := range s.Data {
			keys[k] = true
		}
		for k := range s.StringData {
			keys[k] = true
		}
	case "ConfigMap":
		cm, ok := b.configMaps[name]
		if !ok {
			return nil, false
		}
		for k := range cm.Data {
			keys[k] = true
		}
		for k := range cm.BinaryData {
			keys[k] = true
		}
	}
	return keys, true
}

// checkEnv checks a container's environment: references to Secrets,
// ConfigMaps and pod fields resolve, and every $(VAR) names a variable the
// kubelet can expand.
func (b *bundle) checkEnv(t *testing.T, where string, c *corev1.Container) {
	t.Helper()
	defined := map[string]bool{}
	for _, e := range c.Env {
		if e.Value != "" {
			for _, ref := range expansions(e.Value) {
				if !defined[ref] {
					t.Errorf("%s: env %s refers to $(%s), which is not defined before it", where, e.Name, ref)
				}
			}
		}
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.SecretKeyRef != nil:
				r := vf.SecretKeyRef
				b.checkKey(t, fmt.Sprintf("%s: env %s", where, e.Name), "Secret", r.Name, r.Key, r.Optional)
			case vf.ConfigMapKeyRef != nil:
				r := vf.ConfigMapKeyRef
				b.checkKey(t, fmt.Sprintf("%s: env %s", where, e.Name), "ConfigMap", r.Name, r.Key, r.Optional)
			case vf.FieldRef != nil:
				if !slices.Contains(podFields, vf.FieldRef.FieldPath) && !strings.HasPrefix(vf.FieldRef.FieldPath, "metadata.labels[") &&
					!strings.HasPrefix(vf.FieldRef.FieldPath, "metadata.annotations[") {
					t.Errorf("%s: env %s: fieldRef %q is not a field the kubelet provides", where, e.Name, vf.FieldRef.FieldPath)
				}
			case vf.ResourceFieldRef != nil:
				r := vf.ResourceFieldRef
				kind, res, _ := strings.Cut(r.Resource, ".")
				if kind != "limits" && kind != "requests" || !slices.Contains([]string{"cpu", "memory", "ephemeral-storage"}, res) {
					t.Errorf("%s: env %s: resourceFieldRef %q is not a resource the kubelet provides", where, e.Name, r.Resource)
				}
			}
		}
		defined[e.Name] = true
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			if _, ok := b.keysOf("Secret", ef.SecretRef.Name); !ok {
				t.Errorf("%s: envFrom Secret %q is not in the build", where, ef.SecretRef.Name)
			}
		}
		if ef.ConfigMapRef != nil {
			if _, ok := b.keysOf("ConfigMap", ef.ConfigMapRef.Name); !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not in the build", where, ef.ConfigMapRef.Name)
			}
		}
	}
	for _, arg := range slices.Concat(c.Command, c.Args) {
		for _, ref := range expansions(arg) {
			if !defined[ref] {
				t.Errorf("%s: argument %q refers to $(%s), which the container's env does not define", where, arg, ref)
			}
		}
	}
}

func (b *bundle) checkKey(t *testing.T, where, kind, name, key string, optional *bool) {
	t.Helper()
	keys, ok := b.keysOf(kind, name)
	switch {
	case !ok && (optional == nil || !*optional):
		t.Errorf("%s: %s %q is not in the build", where, kind, name)
	case ok && !keys[key]:
		t.Errorf("%s: %s %s has no key %q", where, kind, name, key)
	}
}

// expansions returns the names of the $(VAR) references in s, skipping
// escaped $$(VAR).
func expansions(s string) []string {
	var refs []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if s[i+1] != '(' {
			continue
		}
		end := strings.IndexByte(s[i+2:], ')')
		if end < 0 {
			break
		}
		refs = append(refs, s[i+2:i+2+end])
		i += 2 + end
	}
	return refs
}

func TestSecretsHoldNoRealValues(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, name := range slices.Sorted(maps.Keys(b.secrets)) {
			for key, v := range b.secrets[name].Data {
				placeholder := strings.Contains(string(v), "REPLACE_ME")
				if b.chart {
					// The chart generates its Secrets or names the user's;
					// it has no placeholders.
					if placeholder {
						t.Errorf("Secret %s: key %s holds a placeholder; the chart generates its Secrets", name, key)
					}
					continue
				}
				if b.shipped && !placeholder {
					t.Errorf("Secret %s: key %s holds a value without REPLACE_ME: the repository must hold no real secret", name, key)
				}
				if !b.shipped && placeholder {
					t.Errorf("Secret %s: key %s still holds the placeholder after the overlay replaced it", name, key)
				}
			}
		}
	})
}

func TestStrictDecoding(t *testing.T) {
	const doc = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: example
spec:
  template:
    spec:
      hostNetwork: false
      containers:
        - name: example
          ports:
            - containerPort: 8080
          securityContext:
            %s: false
`
	tests := []struct {
		key string
		// bad is the path decodeStrict must name; "" if it must accept.
		bad string
	}{
		{"allowPrivilegeEscalation", ""},
		{"allowprivilegeescalation", ".spec.template.spec.containers[0].securityContext.allowprivilegeescalation"},
		{"AllowPrivilegeEscalation", ".spec.template.spec.containers[0].securityContext.AllowPrivilegeEscalation"},
		{"readOnlyRootFileSystem", ".spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"},
		{"allowPrivilegeEscalations", "allowPrivilegeEscalations"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := decodeStrict(fmt.Appendf(nil, doc, tt.key), new(appsv1.Deployment))
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tt.bad != "" && err == nil:
				t.Errorf("%s: false was accepted; the API server rejects the key", tt.key)
			case tt.bad != "" && !strings.Contains(err.Error(), tt.bad):
				t.Errorf("error %q does not name %s", err, tt.bad)
			}
		})
	}
	// Keys of maps are data, whatever their case.
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    Name: x\ndata:\n  MixedCase: \"\"\n"
	if err := decodeStrict([]byte(cm), new(corev1.ConfigMap)); err != nil {
		t.Errorf("a ConfigMap with mixed-case data keys and labels: %v", err)
	}
}

// storeAntiAffinity returns the required pod anti-affinity term of a
// workload that keeps its pods on different nodes, or nil.
func storeAntiAffinity(w workload) *corev1.PodAffinityTerm {
	a := w.pod.Spec.Affinity
	if a == nil || a.PodAntiAffinity == nil {
		return nil
	}
	for i, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if term.TopologyKey == "kubernetes.io/hostname" {
			return &a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i]
		}
	}
	return nil
}

func TestSpreading(t *testing.T) {
	eachBundle(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			switch {
			case w.kind == "StatefulSet" && w.pod.Labels["app.kubernetes.io/component"] == "store":
				// Two members on one node lose the quorum with it; a
				// preference would allow that when nodes are short.
				term := storeAntiAffinity(w)
				if term == nil {
					t.Errorf("%s: no required pod anti-affinity on kubernetes.io/hostname: two members on one node would lose the quorum with it", w)
					continue
				}
				checkOwnPods(t, fmt.Sprintf("%s: required anti-affinity", w), term.LabelSelector, labels.Set(w.pod.Labels))
			case w.kind == "Deployment":
				cs := w.pod.Spec.TopologySpreadConstraints
				if !slices.ContainsFunc(cs, func(c corev1.TopologySpreadConstraint) bool { return c.TopologyKey == "kubernetes.io/hostname" }) {
					t.Errorf("%s: no topologySpreadConstraint on kubernetes.io/hostname", w)
				}
				// Without it, the old revision's pods count during a
				// rolling update, and the new ones pile up where the old
				// ones were few.
				for i, c := range cs {
					if !slices.Contains(c.MatchLabelKeys, appsv1.DefaultDeploymentUniqueLabelKey) {
						t.Errorf("%s: topologySpreadConstraints[%d] (%s): matchLabelKeys %v lacks %s", w, i, c.TopologyKey, c.MatchLabelKeys, appsv1.DefaultDeploymentUniqueLabelKey)
					}
				}
			}
		}
	})
}
