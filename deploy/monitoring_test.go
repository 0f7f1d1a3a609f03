package deploy_test

// Checks of the monitoring bundle in deploy/monitoring: its objects
// decode strictly, its ServiceMonitor scrapes the Service of
// deploy/kubernetes, promtool accepts its rules and every expression of
// the Grafana dashboard, and every metric and label they use is one a
// running replica exposes.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// monitoringDir is the bundle, relative to this package.
const monitoringDir = "monitoring"

// prometheusRule is the part of the Prometheus Operator's PrometheusRule
// (monitoring.coreos.com/v1) the bundle may use: a misspelt or unknown
// field fails strict decoding.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

// ruleGroup is a Prometheus rule group, as in a rule file.
type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Record        string            `json:"record,omitempty"`
	Alert         string            `json:"alert,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the bundle may use.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// monitoring is the decoded output of deploy/monitoring's kustomization.
type monitoring struct {
	rule    *prometheusRule
	monitor *serviceMonitor
}

// loadMonitoring builds the kustomization and decodes its two objects
// strictly.
func loadMonitoring(t *testing.T) monitoring {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), monitoringDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", monitoringDir, err)
	}
	var m monitoring
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch gvk := r.GetApiVersion() + " " + r.GetKind(); gvk {
		case "monitoring.coreos.com/v1 PrometheusRule":
			if m.rule != nil {
				t.Fatal("two PrometheusRules")
			}
			m.rule = new(prometheusRule)
			err = decodeStrict(doc, m.rule)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			if m.monitor != nil {
				t.Fatal("two ServiceMonitors")
			}
			m.monitor = new(serviceMonitor)
			err = decodeStrict(doc, m.monitor)
		default:
			t.Fatalf("%s %s: not expected in %s", gvk, r.GetName(), monitoringDir)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", r.GetKind(), r.GetName(), err)
		}
	}
	if m.rule == nil || m.monitor == nil {
		t.Fatalf("%s builds no PrometheusRule or no ServiceMonitor", monitoringDir)
	}
	return m
}

// TestServiceMonitorSelectsAPIService checks that the ServiceMonitor
// scrapes every build of deploy/kubernetes: it selects a Service whose
// port of its endpoint's name leads to the entry point serving /metrics,
// and it keeps tollgate's own "service" label.
func TestServiceMonitorSelectsAPIService(t *testing.T) {
	sm := loadMonitoring(t).monitor
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Path != "/metrics" {
		t.Errorf("path %q, want /metrics", ep.Path)
	}
	// The operator sets "service" on every target; tollgate's metrics have
	// their own.
	if !ep.HonorLabels {
		t.Error("honorLabels is off: tollgate's label service would become exported_service")
	}
	eachBundle(t, func(t *testing.T, b *bundle) {
		var targets []string
		for name, svc := range b.services {
			if !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Name == ep.Port {
					targets = append(targets, name)
					if p.TargetPort.String() != "api" {
						t.Errorf("Service %s port %s targets %s, want the container port api", name, p.Name, p.TargetPort.String())
					}
				}
			}
			if sm.Spec.JobLabel != "" && svc.Labels[sm.Spec.JobLabel] != "tollgate" {
				t.Errorf("Service %s: jobLabel %s is %q, want tollgate", name, sm.Spec.JobLabel, svc.Labels[sm.Spec.JobLabel])
			}
		}
		if len(targets) != 1 {
			t.Fatalf("Services with port %s selected: %v, want one", ep.Port, targets)
		}
		// A bundle's own ServiceMonitor (the chart's) keeps tollgate's
		// labels and job as this one does.
		for name, own := range b.serviceMonitors {
			if own.Spec.JobLabel != sm.Spec.JobLabel {
				t.Errorf("ServiceMonitor %s: jobLabel %q, want %q as in %s", name, own.Spec.JobLabel, sm.Spec.JobLabel, monitoringDir)
			}
			for _, oep := range own.Spec.Endpoints {
				if !oep.HonorLabels || oep.Port != ep.Port || oep.Path != ep.Path {
					t.Errorf("ServiceMonitor %s: endpoint %+v, want port %s, path %s and honorLabels as in %s", name, oep, ep.Port, ep.Path, monitoringDir)
				}
			}
		}
		// The port the Service leads to is the one of the entry point
		// that serves /metrics.
		cfg := b.config(t)
		if cfg.Metrics == nil || cfg.Metrics.Prometheus == nil {
			t.Fatal("the configuration serves no /metrics ([metrics.prometheus])")
		}
		name := "api"
		if cfg.API != nil && cfg.API.EntryPoint != "" {
			name = cfg.API.EntryPoint
		}
		name = cmp.Or(cfg.Metrics.Prometheus.EntryPoint, name)
		ep, ok := cfg.EntryPoints[name]
		if !ok {
			t.Fatalf("/metrics is served on entry point %s, which is not defined", name)
		}
		cp, ok := containerPort(&b.running(t, "Deployment", "serve").w.pod.Spec, "api", 0)
		if !ok {
			t.Fatal("the serve container has no port api")
		}
		if _, port, err := net.SplitHostPort(ep.Address); err != nil || port != strconv.Itoa(int(cp.ContainerPort)) {
			t.Errorf("/metrics is served on entry point %s (%s), not on the container port api (%d)", name, ep.Address, cp.ContainerPort)
		}
	})
}

// promtool runs the promtool of make testdeps.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(testserver.Binary(t, "promtool"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeRules writes groups as a Prometheus rule file into dir.
func writeRules(t *testing.T, dir, name string, groups []ruleGroup) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrometheusRuleChecks runs promtool check rules on the
// PrometheusRule's groups, and checks that every alert has its severity,
// summary, description and a runbook that exists in docs/operations.md.
func TestPrometheusRuleChecks(t *testing.T) {
	pr := loadMonitoring(t).rule
	promtool(t, "check", "rules", "--lint=all", "--lint-fatal", writeRules(t, t.TempDir(), "rules.yaml", pr.Spec.Groups))

	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := headingAnchors(string(doc))
	const runbooks = "https://github.com/tollgate-proxy/tollgate/blob/main/docs/operations.md#"
	for _, r := range alerts(pr) {
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[k] == "" {
				t.Errorf("%s: no %s", r.Alert, k)
			}
		}
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbooks)
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q is no heading of docs/operations.md", r.Alert, r.Annotations["runbook_url"])
		}
		if anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook_url %q, want the heading named after the alert", r.Alert, r.Annotations["runbook_url"])
		}
	}
}

func alerts(pr *prometheusRule) []rule {
	var out []rule
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// headingAnchors returns the anchors the Markdown headings of doc get:
// lower-case, spaces to hyphens, punctuation dropped.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.SplitSeq(doc, "\n") {
		if title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
		}
	}
	return out
}

// TestAlertsTriggered runs promtool test rules on the PrometheusRule with
// the cases of testdata/monitoring/alerts_test.yaml.
func TestAlertsTriggered(t *testing.T) {
	dir := t.TempDir()
	writeRules(t, dir, "rules.yaml", loadMonitoring(t).rule.Spec.Groups)
	cases, err := os.ReadFile(filepath.Join("testdata", "monitoring", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alerts_test.yaml")
	if err := os.WriteFile(path, cases, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "test", "rules", path)
}

// dashboard is the Grafana dashboard, decoded as far as the tests look.
type dashboard struct {
	UID         string                  `json:"uid"`
	Title       string                  `json:"title"`
	Panels      []panel                 `json:"panels"`
	Annotations struct{ List []target } `json:"annotations"`
	Templating  struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// variable is a template variable.
type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasource     `json:"datasource"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"` // of a collapsed row
}

type target struct {
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Datasource   *datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one PromQL expression of the dashboard, where it is used and
// the labels its legend names.
type query struct {
	where, expr string
	legend      []string
}

// loadDashboard decodes the dashboard and returns its queries, with the
// template variables replaced by values promtool can parse.
func loadDashboard(t *testing.T) (*dashboard, []query) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	vars := map[string]string{"namespace": ".*", "job": ".*", "__rate_interval": "2m", "__interval": "30s", "__range": "6h"}
	variable := regexp.MustCompile(`\$\{?(\w+)\}?`)
	expand := func(where, s string) string {
		return variable.ReplaceAllStringFunc(s, func(v string) string {
			name := variable.FindStringSubmatch(v)[1]
			val, ok := vars[name]
			if !ok {
				t.Errorf("%s: unknown variable %s in %q", where, v, s)
			}
			return val
		})
	}
	legend := regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	var out []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for i, tg := range p.Targets {
				where := fmt.Sprintf("panel %q target %d", p.Title, i)
				q := query{where: where, expr: expand(where, tg.Expr)}
				for _, m := range legend.FindAllStringSubmatch(tg.LegendFormat, -1) {
					q.legend = append(q.legend, m[1])
				}
				out = append(out, q)
			}
		}
	}
	walk(d.Panels)
	for i, a := range d.Annotations.List {
		if a.Expr != "" {
			where := fmt.Sprintf("annotation %d", i)
			out = append(out, query{where: where, expr: expand(where, a.Expr)})
		}
	}
	// label_values(SELECTOR, LABEL): the selector is PromQL, the label
	// one it must have.
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is no label_values(selector, label)", v.Name, q.Query)
		}
		where := "variable " + v.Name
		out = append(out, query{where: where, expr: expand(where, m[1]), legend: []string{m[2]}})
	}
	return &d, out
}

// TestDashboard checks the dashboard: every panel and query uses the
// data source variable, panel IDs are unique, and promtool parses every
// expression (each wrapped in a recording rule).
func TestDashboard(t *testing.T) {
	d, queries := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	hasDS := slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	})
	if !hasDS {
		t.Error(`no template variable "datasource" of type datasource for prometheus`)
	}
	ids := map[int]string{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q have the id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %v, want ${datasource}", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q target %d: data source %v, want ${datasource}", p.Title, i, tg.Datasource)
				}
			}
		}
	}
	walk(d.Panels)

	var rules []rule
	for i, q := range queries {
		rules = append(rules, rule{Record: fmt.Sprintf("tollgate_dashboard:query_%d", i), Expr: q.expr})
	}
	promtool(t, "check", "rules", writeRules(t, t.TempDir(), "dashboard.yaml", []ruleGroup{{Name: "dashboard", Rules: rules}}))
}

var (
	metricName = regexp.MustCompile(`\btollgate_[a-z0-9_]+\b`)
	// A grouping clause: by (...), without (...), on (...) and the like.
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// The label of a matcher inside a selector's braces.
	matcherLabel = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"`)
	braces       = regexp.MustCompile(`\{([^{}]*)\}`)
	// $labels.X in an alert's annotations.
	annotationLabel = regexp.MustCompile(`\$labels\.(\w+)`)
)

// labelsUsed are the label names expr groups by or matches on.
func labelsUsed(expr string) []string {
	var out []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	for _, m := range braces.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcherLabel.FindAllStringSubmatch(m[1], -1) {
			out = append(out, l[1])
		}
	}
	return out
}

// targetLabels are the labels Prometheus attaches to every series it
// scrapes (the Prometheus Operator sets namespace; without it, a matcher
// on it matches the empty value).
var targetLabels = []string{"job", "instance", "namespace"}
