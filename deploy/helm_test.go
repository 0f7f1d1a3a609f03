package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// chartDir is the Helm chart, relative to this package's directory.
var chartDir = filepath.Join("helm", "tollgate")

// helmBinary is the helm that `make testdeps` builds.
func helmBinary(t *testing.T) string {
	t.Helper()
	return testserver.Binary(t, "helm")
}

// chartValues is one set of values the chart is rendered with.
type chartValues struct {
	name, release, namespace string
	// values is a values file.
	values string
	// image is tollgate's image repository with these values.
	image string
	// external are the Secrets the values name but the chart does not
	// make, by name, with their keys and values: those docs/helm.md has
	// the user create.
	external map[string]map[string]string
	// externalStore: store.bundled is false.
	externalStore bool
}

// A 32-byte key, base64: what "openssl rand -base64 32" prints.
const exampleKey = "q0b1mSg3a8pZ0cS7m8V2cD1yQ4k9H6tXlW5eR2uJ3nA="

// chartValueSets are the value sets the chart is tested with: its
// defaults (the bundled Consul, like the kustomize base), an external etcd
// with TLS client certificates and autoscaling, and an external Consul
// with a token, a ServiceMonitor, a fixed replica count and no Ingress
// provider.
var chartValueSets = []chartValues{
	{
		name: "helm-default", release: "tollgate", namespace: "helm-default",
		image: tollgateImage,
	},
	{
		name: "helm-etcd", release: "edge", namespace: "helm-etcd",
		image:         "registry.example.com/tollgate",
		externalStore: true,
		values: `
image:
  repository: registry.example.com/tollgate
  tag: v1.2.3
encryptionKey:
  existingSecret: edge-keys
  secretKey: current
store:
  type: etcd
  bundled: false
  prefix: edge
  endpoint: etcd-0.etcd.store.svc:2379,etcd-1.etcd.store.svc:2379,etcd-2.etcd.store.svc:2379
  credentials:
    existingSecret: edge-etcd
  tls:
    enabled: true
    secretName: edge-etcd-client
    clientCertificate: true
autoscaling:
  enabled: true
  minReplicas: 4
  maxReplicas: 12
  targetCPUUtilizationPercentage: 60
`,
		external: map[string]map[string]string{
			"edge-keys":        {"current": exampleKey},
			"edge-etcd":        {"password": "an-etcd-password"},
			"edge-etcd-client": {"ca.crt": "a PEM CA certificate", "tls.crt": "a PEM client certificate", "tls.key": "a PEM private key"},
		},
	},
	{
		name: "helm-consul", release: "proxy", namespace: "helm-consul",
		image:         tollgateImage,
		externalStore: true,
		values: `
image:
  tag: v1.2.3
store:
  type: consul
  bundled: false
  endpoint: consul-server.consul.svc:8500
  credentials:
    existingSecret: consul-acl
    secretKey: acl-token
autoscaling:
  enabled: false
replicas: 4
serviceMonitor:
  enabled: true
  labels:
    release: prometheus
ingressProvider:
  enabled: false
gatewayProvider:
  enabled: true
`,
		external: map[string]map[string]string{
			"consul-acl": {"acl-token": "0b4e4a3c-2f7d-4d51-9d8e-7c1f2a9b6e05"},
		},
	},
}

// helmHome holds helm's configuration, cache and data directories for
// the tests, so that helm touches nothing of $HOME; TestMain removes it.
var helmHome = sync.OnceValues(func() (string, error) {
	return os.MkdirTemp("", "tollgate-deploy-helm-")
})

func removeHelmHome() {
	if dir, err := helmHome(); err == nil {
		_ = os.RemoveAll(dir)
	}
}

// runHelm runs helm with args and returns its standard output; a
// failure's error holds its standard error.
func runHelm(bin string, args ...string) ([]byte, error) {
	home, err := helmHome()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// valuesFile writes values into a file of helm's directory for the tests.
func valuesFile(name, values string) (string, error) {
	home, err := helmHome()
	if err != nil {
		return "", err
	}
	f := filepath.Join(home, name+".values.yaml")
	return f, os.WriteFile(f, []byte(values), 0o600)
}

// renderChart runs "helm template" with a values file.
func renderChart(bin, release, namespace, values string) ([]byte, error) {
	f, err := valuesFile(release+"-"+namespace, values)
	if err != nil {
		return nil, err
	}
	return runHelm(bin, "template", release, chartDir, "--namespace", namespace, "--values", f)
}

// loadChartBundles renders the chart with every value set once for all
// tests.
var loadChartBundles = func() func(bin string) ([]*bundle, error) {
	var once sync.Once
	var out []*bundle
	var err error
	return func(bin string) ([]*bundle, error) {
		once.Do(func() {
			for _, vs := range chartValueSets {
				var b *bundle
				if b, err = buildChart(bin, vs); err != nil {
					err = fmt.Errorf("the chart with the values %s: %w", vs.name, err)
					return
				}
				out = append(out, b)
			}
		})
		return out, err
	}
}()

// buildChart renders the chart with one value set and decodes what it
// produces, and the user's objects the values name.
func buildChart(bin string, vs chartValues) (*bundle, error) {
	rendered, err := renderChart(bin, vs.release, vs.namespace, vs.values)
	if err != nil {
		return nil, err
	}
	b := newBundle(vs.name)
	b.chart, b.shipped = true, false
	b.image, b.namespace, b.externalStore = vs.image, vs.namespace, vs.externalStore
	b.rendered = rendered
	for _, name := range slices.Sorted(maps.Keys(vs.external)) {
		sec := corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vs.namespace},
			Data:       map[string][]byte{},
		}
		for k, v := range vs.external[name] {
			sec.Data[k] = []byte(v)
		}
		doc, err := yaml.Marshal(sec)
		if err != nil {
			return nil, err
		}
		b.rendered = append(b.rendered, append([]byte("---\n# The user's Secret\n"), doc...)...)
	}
	if err := b.addStream(b.rendered); err != nil {
		return nil, err
	}
	return b, nil
}

// addStream decodes every object of a YAML stream into the bundle.
func (b *bundle) addStream(stream []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return err
		}
		if head.Kind == "" && head.APIVersion == "" {
			continue // only comments
		}
		if err := b.add(head.APIVersion, head.Kind, doc); err != nil {
			return fmt.Errorf("%s %q: %w", head.Kind, head.Metadata.Name, err)
		}
	}
}

// TestChartLint runs "helm lint --strict" with every value set: the chart
// is well-formed, its values pass values.schema.json, and helm has
// nothing to warn about.
func TestChartLint(t *testing.T) {
	bin := helmBinary(t)
	for _, vs := range chartValueSets {
		t.Run(vs.name, func(t *testing.T) {
			f, err := valuesFile("lint-"+vs.name, vs.values)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := runHelm(bin, "lint", "--strict", chartDir, "--namespace", vs.namespace, "--values", f); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestChartRejectsBadValues checks that values the chart cannot work
// with fail "helm template" and "helm lint", naming the value: the schema
// by its JSON pointer (/store/type), the templates' checks by its path
// (store.endpoint).
func TestChartRejectsBadValues(t *testing.T) {
	bin := helmBinary(t)
	tests := []struct {
		name, values string
		// want are strings the error must contain.
		want []string
		// templateOnly: a check of the templates that the schema cannot
		// express; "helm lint" reports a template's fail as information
		// only.
		templateOnly bool
	}{
		{"unknown key", "replica: 3\n", []string{"'replica' not allowed"}, false},
		{"store type", "store:\n  type: redis\n", []string{"/store/type", "consul", "etcd"}, false},
		{"few replicas", "autoscaling:\n  minReplicas: 1\n", []string{"/autoscaling/minReplicas", "want 3"}, false},
		{"max below min", "autoscaling:\n  minReplicas: 5\n  maxReplicas: 4\n", []string{"autoscaling.maxReplicas"}, true},
		{"external store without endpoint", "store:\n  bundled: false\n", []string{"/store/endpoint"}, false},
		{"external store without credentials", "store:\n  bundled: false\n  endpoint: consul:8500\n", []string{"/store/credentials/existingSecret"}, false},
		{"bundled etcd", "store:\n  type: etcd\n", []string{"/store/type", "consul"}, false},
		{"endpoint with bundled store", "store:\n  endpoint: consul:8500\n", []string{"/store/endpoint"}, false},
		{"TLS without Secret", "store:\n  bundled: false\n  endpoint: consul:8500\n  credentials:\n    existingSecret: x\n  tls:\n    enabled: true\n", []string{"/store/tls/secretName"}, false},
		{"no disruption", "podDisruptionBudget:\n  maxUnavailable: 0\n", []string{"/podDisruptionBudget/maxUnavailable"}, false},
		{"probe path", "probes:\n  readiness:\n    path: ready\n", []string{"/probes/readiness/path"}, false},
		{"empty config", "config: \"\"\n", []string{"/config"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := valuesFile("bad", tt.values)
			if err != nil {
				t.Fatal(err)
			}
			cmds := [][]string{{"template", "tollgate", chartDir, "--values", f}}
			if !tt.templateOnly {
				cmds = append(cmds, []string{"lint", chartDir, "--values", f})
			}
			for _, cmd := range cmds {
				out, err := runHelm(bin, cmd...)
				if err == nil {
					t.Errorf("helm %s accepted:\n%s", cmd[0], tt.values)
					continue
				}
				msg := err.Error() + string(out)
				for _, w := range tt.want {
					if !strings.Contains(msg, w) {
						t.Errorf("helm %s: the error does not name %q:\n%s", cmd[0], w, msg)
					}
				}
			}
		})
	}
}

// chartConsulPolicy returns the ACL policy of tollgate's token that the
// chart mounts into its Consul servers: the ConfigMap of their volume
// "policies".
func (b *bundle) chartConsulPolicy(t *testing.T, sts *appsv1.StatefulSet) (where string, text []byte, policy aclPolicy) {
	t.Helper()
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name != "policies" || v.ConfigMap == nil {
			continue
		}
		cm, ok := b.configMaps[v.ConfigMap.Name]
		if !ok || len(cm.Data) != 1 {
			t.Fatalf("StatefulSet %s: volume policies: ConfigMap %s is not in the build or does not hold one policy", sts.Name, v.ConfigMap.Name)
		}
		for key, data := range cm.Data {
			where = fmt.Sprintf("ConfigMap %s key %s", cm.Name, key)
			text = []byte(data)
		}
		if err := hcl.Decode(&policy, string(text)); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		return where, text, policy
	}
	t.Fatalf("StatefulSet %s has no ConfigMap volume policies", sts.Name)
	return "", nil, aclPolicy{}
}

// equivalentNames maps the names of the kustomize base's objects, less
// the content hash of generated ConfigMaps and Secrets, to those of the
// chart released as "tollgate" in the namespace default, where they
// differ on purpose:
//
//   - the bundled Consul's objects carry the release's name, so that two
//     releases in one namespace do not share a store;
//   - the store credential's Secret is named for what it is to the chart
//     (a generated Consul ACL token SecretID, or the user's Secret);
//   - the ClusterRole and ClusterRoleBinding are cluster-scoped, so they
//     carry the namespace as well as the release's name.
var equivalentNames = map[string]string{
	"consul":                      "tollgate-consul",
	"consul-server":               "tollgate-consul-server",
	"consul-config":               "tollgate-consul-config",
	"consul-policies":             "tollgate-consul-policies",
	"tollgate-consul-token":       "tollgate-store-token",
	"ClusterRole/tollgate":        "tollgate-default",
	"ClusterRoleBinding/tollgate": "tollgate-default",
}

// baseNames maps the chart's names back to the base's.
var baseNames = func() map[string]string {
	m := map[string]string{}
	for base, c := range equivalentNames {
		_, name, found := strings.Cut(base, "/")
		if !found {
			name = base
		}
		m[c] = name
	}
	return m
}()

// chartNames matches the names of baseNames as whole names, the longest
// first (tollgate-consul-server before tollgate-consul), in one pass.
var chartNames = func() *regexp.Regexp {
	names := slices.SortedFunc(maps.Keys(baseNames), func(a, b string) int { return len(b) - len(a) })
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
}()

// chartName is the chart's name for a base object.
func chartName(kind, base string) string {
	if n, ok := equivalentNames[kind+"/"+base]; ok {
		return n
	}
	if n, ok := equivalentNames[base]; ok {
		return n
	}
	return base
}

// generatedName matches the names of the base's generated objects, with
// their content hash.
var generatedName = regexp.MustCompile(`\b(tollgate-config|tollgate-encryption-key|tollgate-consul-token|consul-config|consul-policies)-[a-z0-9]{10}\b`)

// comparable returns an object as JSON for comparing the chart's with
// the base's: metadata, labels, selectors (the chart's add
// app.kubernetes.io/instance), annotations (the chart's hooks),
// imagePullPolicy (the chart sets it) and the items of Secret volumes
// (the chart mounts only the keys the files are read from, as the user's
// Secrets may hold others) are left out, and the chart's names are
// replaced by the base's.
func comparable(t *testing.T, obj any, chart bool) any {
	t.Helper()
	js, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	if chart {
		s = chartNames.ReplaceAllStringFunc(s, func(m string) string { return baseNames[m] })
	} else {
		s = generatedName.ReplaceAllString(s, "$1")
	}
	var tree any
	if err := json.Unmarshal([]byte(s), &tree); err != nil {
		t.Fatal(err)
	}
	return strip(tree, "")
}

// strip removes what comparable leaves out, recursively.
func strip(v any, parent string) any {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"metadata", "labels", "matchLabels", "selector", "annotations", "imagePullPolicy"} {
			delete(v, k)
		}
		if parent == "secret" {
			delete(v, "items")
		}
		for k, e := range v {
			v[k] = strip(e, k)
		}
	case []any:
		for i, e := range v {
			v[i] = strip(e, parent)
		}
	}
	return v
}

// TestChartMatchesKustomizeBase renders the chart with its default values
// as the release "tollgate" in the namespace default, where the base goes
// unless an overlay moves it, and checks that it makes the base's objects:
// the same kinds, with the names equivalentNames allows, the same specs
// but for what comparable leaves out, the same configuration and Consul
// server configuration and policy, and Secrets with the same keys. The
// differences that remain are deliberate: the chart's Secrets hold
// generated values where the base's hold placeholders, and the storeconfig
// Job, its ConfigMap and its ServiceAccount are hooks of the release.
func TestChartMatchesKustomizeBase(t *testing.T) {
	bin := helmBinary(t)
	var base *bundle
	for _, b := range bundles(t) {
		if b.name == "base" {
			base = b
		}
	}
	if base == nil {
		t.Fatal("the base was not built")
	}
	rendered, err := renderChart(bin, "tollgate", "default", "")
	if err != nil {
		t.Fatal(err)
	}
	chart := newBundle("chart-as-base")
	if err := chart.addStream(rendered); err != nil {
		t.Fatal(err)
	}
	type objects struct {
		kind        string
		base, chart any
	}
	kinds := []objects{
		{"Deployment", base.deployments, chart.deployments},
		{"StatefulSet", base.statefulSets, chart.statefulSets},
		{"Job", base.jobs, chart.jobs},
		{"Service", base.services, chart.services},
		{"ServiceAccount", base.accounts, chart.accounts},
		{"PodDisruptionBudget", base.budgets, chart.budgets},
		{"HorizontalPodAutoscaler", base.autoscalers, chart.autoscalers},
		{"NetworkPolicy", base.policies, chart.policies},
		{"ClusterRole", base.clusterRoles, chart.clusterRoles},
		{"ClusterRoleBinding", base.clusterBindings, chart.clusterBindings},
		{"IngressClass", base.ingressClasses, chart.ingressClasses},
		{"ConfigMap", base.configMaps, chart.configMaps},
		{"Secret", base.secrets, chart.secrets},
		{"ServiceMonitor", base.serviceMonitors, chart.serviceMonitors},
	}
	for _, k := range kinds {
		bm, cm := reflect.ValueOf(k.base), reflect.ValueOf(k.chart)
		want := map[string]string{} // chart name -> base name
		for _, key := range bm.MapKeys() {
			name := generatorName(key.String())
			want[chartName(k.kind, name)] = key.String()
		}
		var got []string
		for _, key := range cm.MapKeys() {
			got = append(got, key.String())
		}
		slices.Sort(got)
		if w := slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
			t.Errorf("%s: the chart makes %q, the base %q (as the chart names them)", k.kind, got, w)
			continue
		}
		for _, name := range got {
			b, c := bm.MapIndex(reflect.ValueOf(want[name])).Interface(), cm.MapIndex(reflect.ValueOf(name)).Interface()
			switch k.kind {
			case "ConfigMap":
				compareConfigMaps(t, name, base.configMaps[want[name]].Data, chart.configMaps[name].Data)
			case "Secret":
				bk, ck := slices.Sorted(maps.Keys(base.secrets[want[name]].Data)), slices.Sorted(maps.Keys(chart.secrets[name].Data))
				if !slices.Equal(bk, ck) {
					t.Errorf("Secret %s: keys %q, the base's %q", name, ck, bk)
				}
			default:
				if d := differences("", comparable(t, b, false), comparable(t, c, true)); len(d) > 0 {
					t.Errorf("%s %s differs from the base's %s:\n%s", k.kind, name, want[name], strings.Join(d, "\n"))
				}
			}
		}
	}
}

// differences lists where two decoded JSON values differ, by path, with
// the base's value and the chart's.
func differences(path string, base, chart any) []string {
	bm, bok := base.(map[string]any)
	cm, cok := chart.(map[string]any)
	if bok && cok {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(maps.Collect(func(yield func(string, bool) bool) {
			for k := range bm {
				yield(k, true)
			}
			for k := range cm {
				yield(k, true)
			}
		}))) {
			out = append(out, differences(path+"."+k, bm[k], cm[k])...)
		}
		return out
	}
	bs, bok := base.([]any)
	cs, cok := chart.([]any)
	if bok && cok && len(bs) == len(cs) {
		var out []string
		for i := range bs {
			out = append(out, differences(fmt.Sprintf("%s[%d]", path, i), bs[i], cs[i])...)
		}
		return out
	}
	if reflect.DeepEqual(base, chart) {
		return nil
	}
	bj, _ := json.Marshal(base)
	cj, _ := json.Marshal(chart)
	return []string{fmt.Sprintf("  %s: base %s, chart %s", path, bj, cj)}
}

// compareConfigMaps compares the chart's ConfigMap with the base's by
// meaning: tollgate's configuration as tollgate parses it, Consul's files
// as HCL (with the chart's names replaced by the base's).
func compareConfigMaps(t *testing.T, name string, base, chart map[string]string) {
	t.Helper()
	if bk, ck := slices.Sorted(maps.Keys(base)), slices.Sorted(maps.Keys(chart)); !slices.Equal(bk, ck) {
		t.Errorf("ConfigMap %s: keys %q, the base's %q", name, ck, bk)
		return
	}
	for key, bv := range base {
		cv := chart[key]
		var bo, co any
		var err error
		switch {
		case strings.HasSuffix(key, ".toml"):
			var bc, cc *config.Config
			if bc, err = config.Parse(key, []byte(bv)); err == nil {
				cc, err = config.Parse(key, []byte(cv))
			}
			bo, co = bc, cc
		case strings.HasSuffix(key, ".hcl"):
			cv = strings.ReplaceAll(cv, "tollgate-consul", "consul")
			var bm, cm map[string]any
			if err = hcl.Decode(&bm, bv); err == nil {
				err = hcl.Decode(&cm, cv)
			}
			bo, co = bm, cm
		default:
			bo, co = bv, cv
		}
		if err != nil {
			t.Errorf("ConfigMap %s key %s: %v", name, key, err)
			continue
		}
		if !reflect.DeepEqual(bo, co) {
			t.Errorf("ConfigMap %s key %s differs from the base's in meaning:\nchart: %+v\nbase:  %+v", name, key, co, bo)
		}
	}
}

// TestChartHooks checks that the storeconfig Job, and what it needs that
// the release does not otherwise have, are hooks run on every install and
// upgrade that Helm replaces by itself: no "delete the Job" step as with
// kubectl apply.
func TestChartHooks(t *testing.T) {
	for _, b := range bundles(t) {
		if !b.chart {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			job := b.running(t, "Job", "storeconfig")
			j := b.jobs[job.w.name]
			hooked := map[string]metav1.Object{"Job " + j.Name: j}
			for _, v := range job.w.pod.Spec.Volumes {
				if v.ConfigMap != nil && b.configMaps[v.ConfigMap.Name] != nil {
					hooked["ConfigMap "+v.ConfigMap.Name] = b.configMaps[v.ConfigMap.Name]
				}
			}
			if sa := b.accounts[job.w.pod.Spec.ServiceAccountName]; sa != nil {
				hooked["ServiceAccount "+sa.Name] = sa
			}
			weights := map[string]string{}
			for what, o := range hooked {
				a := o.GetAnnotations()
				events := strings.Split(a["helm.sh/hook"], ",")
				install := "pre-install"
				if !b.externalStore {
					// The bundled Consul exists only once the release does.
					install = "post-install"
				}
				if !slices.Contains(events, install) || !slices.Contains(events, "pre-upgrade") {
					t.Errorf("%s: helm.sh/hook %q, want %s and pre-upgrade", what, a["helm.sh/hook"], install)
				}
				policies := strings.Split(a["helm.sh/hook-delete-policy"], ",")
				if !slices.Contains(policies, "before-hook-creation") || !slices.Contains(policies, "hook-succeeded") {
					t.Errorf("%s: helm.sh/hook-delete-policy %q, want before-hook-creation and hook-succeeded", what, a["helm.sh/hook-delete-policy"])
				}
				weights[what] = a["helm.sh/hook-weight"]
			}
			// What the Job needs is created before it.
			jw := atoiOr(weights["Job "+j.Name])
			for what, w := range weights {
				if !strings.HasPrefix(what, "Job ") && atoiOr(w) >= jw {
					t.Errorf("%s: hook weight %s, not below the Job's %s: it may not exist when the Job starts", what, w, weights["Job "+j.Name])
				}
			}
		})
	}
}

func atoiOr(s string) int {
	var n int
	_, _ = fmt.Sscan(s, &n)
	return n
}

// TestChartInstallLive installs the chart with its defaults into a real
// API server (without hooks: the server runs no Job controller, and the
// hook Job would never finish), upgrades it and uninstalls it, checking
// that the Secrets the chart generates keep their values across the
// upgrade (lookup) and outlive the release (helm.sh/resource-policy:
// keep): a new encryption key would make every stored private key
// unreadable.
func TestChartInstallLive(t *testing.T) {
	bin := helmBinary(t)
	kube := testserver.StartKube(t)
	const ns, release = "helm-live", "tollgate"
	restrictedNamespace(t, kube, ns)
	helm := func(args ...string) {
		t.Helper()
		args = append(args, "--namespace", ns, "--kubeconfig", kube.Kubeconfig(t))
		if out, err := runHelm(bin, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	secrets := []string{release + "-encryption-key", release + "-store-token"}
	values := func() map[string]map[string][]byte {
		t.Helper()
		out := map[string]map[string][]byte{}
		for _, name := range secrets {
			s, err := kube.Client(t).CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("Secret %s: %v", name, err)
			}
			out[name] = s.Data
		}
		return out
	}
	helm("install", release, chartDir, "--no-hooks", "--set", "image.tag=v1.2.3")
	installed := values()
	for name, data := range installed {
		if len(data) != 1 {
			t.Errorf("Secret %s has %d keys, want 1", name, len(data))
		}
	}
	helm("upgrade", release, chartDir, "--no-hooks", "--reuse-values", "--set", "image.tag=v1.2.4")
	if upgraded := values(); !reflect.DeepEqual(upgraded, installed) {
		t.Errorf("the upgrade changed the generated Secrets %v", secrets)
	}
	d, err := kube.Client(t).AppsV1().Deployments(ns).Get(t.Context(), release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != tollgateImage+":v1.2.4" {
		t.Errorf("after the upgrade the Deployment runs %s, want tag v1.2.4", img)
	}
	helm("uninstall", release)
	if kept := values(); !reflect.DeepEqual(kept, installed) {
		t.Errorf("uninstalling changed the generated Secrets %v", secrets)
	}
}
