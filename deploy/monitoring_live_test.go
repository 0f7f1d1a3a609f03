package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// onlyOnTrouble are the metrics a healthy replica does not expose, with
// their labels (as docs/operations.md lists them): the test cannot see
// them on the replica it scrapes.
var onlyOnTrouble = map[string][]string{
	// A series per name whose stored certificate cannot be served.
	"tollgate_acme_certificates_unusable": {"domain"},
}

// exposition is what a scrape returned: each sample name (a histogram's
// _bucket, _sum and _count) with the label names its series have.
type exposition map[string]map[string]bool

func (e exposition) add(name string, m *dto.Metric, extra ...string) {
	if e[name] == nil {
		e[name] = map[string]bool{}
	}
	for _, l := range m.GetLabel() {
		e[name][l.GetName()] = true
	}
	for _, l := range extra {
		e[name][l] = true
	}
}

// liveClient is the tests' HTTP client: no connection outlives a
// request, so none is left for the goroutine-leak check.
var liveClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// scrape reads url's Prometheus text exposition.
func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := liveClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	out := exposition{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				out.add(name+"_bucket", m, "le")
				out.add(name+"_sum", m)
				out.add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				out.add(name, m, "quantile")
				out.add(name+"_sum", m)
				out.add(name+"_count", m)
			default:
				out.add(name, m)
			}
		}
	}
	return out
}

// liveReplica is a tollgate process on the embedded store with a router,
// a service with a health check and ACME against Pebble.
type liveReplica struct {
	web, websecure, api int
	log                 *testserver.Buffer
}

func startLiveReplica(t *testing.T) *liveReplica {
	t.Helper()
	bin := tollgateBinary(t)
	ports := testserver.FreePorts(t, 3)
	r := &liveReplica{web: ports[0], websecure: ports[1], api: ports[2], log: &testserver.Buffer{}}
	pebble := testserver.StartPebble(t, testserver.PebbleOptions{HTTPPort: r.web})

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(backend.Close)

	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "encryption-key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[store]
endpoint = "file:%s"

[entryPoints.web]
address = "127.0.0.1:%d"

[entryPoints.websecure]
address = "127.0.0.1:%d"
  [entryPoints.websecure.http.tls]

[entryPoints.api]
address = "127.0.0.1:%d"

[api]
entryPoint = "api"

[metrics.prometheus]
entryPoint = "api"

[lifecycle]
drainDelay = "10ms"
graceTimeout = "2s"

[acme]
email = "monitoring@tollgate.test"
caServer = %q
caCertificates = [%q]
encryptionKeyFile = %q
  [acme.httpChallenge]
  entryPoint = "web"

[[acme.domains]]
main = "app.tollgate.test"

[http.routers.app]
rule = "Host(%s)"
entryPoints = ["web", "websecure"]
service = "app"

[http.services.app.loadBalancer]
  [[http.services.app.loadBalancer.servers]]
  url = %q
  [http.services.app.loadBalancer.healthCheck]
  path = "/healthz"
  interval = "2s"
  timeout = "1s"
`, filepath.Join(dir, "state.db"), r.web, r.websecure, r.api, pebble.Directory(), pebble.CACertFile(), keyFile,
		"`app.tollgate.test`", backend.URL)
	cfgFile := filepath.Join(dir, "tollgate.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgFile, "--node-id", "r1")
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("tollgate's log:\n%s", r.log.String())
		}
	})
	r.waitFor(t, "the replica to be ready", func() bool {
		select {
		case <-done:
			t.Fatalf("tollgate serve ended:\n%s", r.log.String())
		default:
		}
		resp, err := liveClient.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", r.api))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// waitFor polls ok for a minute.
func (r *liveReplica) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *liveReplica) metricsURL() string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", r.api) }

// TestMonitoringMetricsExposed scrapes a running replica and checks that
// every metric the alerts and the dashboard use is exposed, and every
// label they group by, match on, name in a legend or an annotation exists
// on one of the metrics of the same expression (or is a target label).
func TestMonitoringMetricsExposed(t *testing.T) {
	pr := loadMonitoring(t).rule
	_, queries := loadDashboard(t)
	for _, r := range pr.Spec.Groups {
		for _, rl := range r.Rules {
			q := query{where: "alert " + rl.Alert, expr: rl.Expr}
			for _, a := range slices.Sorted(maps.Values(rl.Annotations)) {
				for _, m := range annotationLabel.FindAllStringSubmatch(a, -1) {
					q.legend = append(q.legend, m[1])
				}
			}
			queries = append(queries, q)
		}
	}

	r := startLiveReplica(t)
	// A request through the router, and a certificate from Pebble.
	r.waitFor(t, "the router to answer", func() bool {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", r.web), nil)
		req.Host = "app.tollgate.test"
		resp, err := liveClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var exposed exposition
	r.waitFor(t, "the certificate of app.tollgate.test", func() bool {
		exposed = scrape(t, r.metricsURL())
		return exposed["tollgate_tls_certs_not_after"] != nil
	})

	for _, q := range queries {
		have := map[string]bool{}
		for _, l := range targetLabels {
			have[l] = true
		}
		for _, name := range metricName.FindAllString(q.expr, -1) {
			labels, ok := exposed[name]
			if !ok {
				trouble, known := onlyOnTrouble[name]
				if !known {
					t.Errorf("%s: %s is not exposed by a running replica (in %q)", q.where, name, q.expr)
					continue
				}
				labels = map[string]bool{}
				for _, l := range trouble {
					labels[l] = true
				}
			}
			for l := range labels {
				have[l] = true
			}
		}
		for _, l := range append(labelsUsed(q.expr), q.legend...) {
			if !have[l] {
				t.Errorf("%s: label %s is on none of its metrics (%s)", q.where, l, strings.Join(slices.Sorted(maps.Keys(have)), ", "))
			}
		}
	}
}
