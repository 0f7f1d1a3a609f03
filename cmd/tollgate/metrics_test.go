package main

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/router"
)

// sample returns the value of the series of metrics (the text exposition
// format) whose name and labels are exactly series, and whether it is
// there.
func sample(t *testing.T, metrics, series string) (float64, bool) {
	t.Helper()
	for line := range strings.Lines(metrics) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// checkOpsMetrics checks the build, leadership and configuration metrics
// of a replica that leads and whose configuration was taken after
// started.
func checkOpsMetrics(t *testing.T, metrics string, started time.Time) {
	t.Helper()
	build := regexp.MustCompile(`(?m)^tollgate_build_info\{commit="[^"]+",goversion="` + regexp.QuoteMeta(runtime.Version()) + `",version="[^"]+"\} 1$`)
	if !build.MatchString(metrics) {
		t.Errorf("no tollgate_build_info series with this Go version:\n%s", grepLines(metrics, "tollgate_build_info"))
	}
	if term, ok := sample(t, metrics, "tollgate_leader_term"); !ok || term <= 0 {
		t.Errorf("the leader's tollgate_leader_term = %v (present: %v), want a positive token:\n%s", term, ok, grepLines(metrics, "tollgate_leader"))
	}
	ts, ok := sample(t, metrics, "tollgate_config_last_reload_success_timestamp_seconds")
	if at := time.Unix(0, int64(ts*1e9)); !ok || at.Before(started.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("tollgate_config_last_reload_success_timestamp_seconds = %v (present: %v), want the start's time, after %s", ts, ok, started)
	}
}

// TestCertsNotAfterShared registers the router's and the ACME metrics on
// one registry, as serve does: both report tollgate_tls_certs_not_after,
// which a registry accepts only with the same help and labels.
func TestCertsNotAfterShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := router.NewMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := acme.NewMetrics(reg); err != nil {
		t.Fatalf("the ACME metrics do not register next to the router's: %v", err)
	}
}
