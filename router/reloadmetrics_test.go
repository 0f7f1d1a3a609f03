package router

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadsCounterPreset checks that tollgate_config_reloads_total has
// both results at 0 before any reload, so that increase() sees the first
// refused one.
func TestReloadsCounterPreset(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, result := range []string{"success", "failure"} {
		if got := testutil.ToFloat64(m.reloads.WithLabelValues(result)); got != 0 {
			t.Errorf("%s = %v before any reload, want 0", result, got)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "tollgate_config_reloads_total"); err != nil || n != 2 {
		t.Fatalf("tollgate_config_reloads_total has %d series (err %v) before any reload, want 2", n, err)
	}
	m.Reloaded(false)
	if got := testutil.ToFloat64(m.reloads.WithLabelValues("failure")); got != 1 {
		t.Fatalf("failure = %v after a refused reload, want 1", got)
	}
}
