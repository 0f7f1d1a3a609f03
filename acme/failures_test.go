package acme_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// counter returns the value of the counter name{label=value} in reg, or
// -1 when there is no such series.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestOrderFailuresCounted: against Pebble, a renewal an operator
// requested and a first order whose validations fail are each counted in
// tollgate_acme_orders_total{result="failure"} with the cause
// "validation", the renewal also in tollgate_acme_renewals_total; OnOrder
// hears of each finished order with its names, whether it renewed and its
// error.
func TestOrderFailuresCounted(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	// Pebble reuses a valid authorization for about half of the names of
	// a later order: with twelve names the renewal has at least one
	// challenge to answer but for one run in 4096.
	const main = "renewed.failures.tollgate.test"
	cl := newTestCluster(t, c, st)
	d := config.Domain{Main: main}
	for i := range 11 {
		d.SANs = append(d.SANs, fmt.Sprintf("n%d.%s", i, main))
	}
	cl.cfg.ACME.Domains = []config.Domain{d}
	reg := prometheus.NewRegistry()
	m, err := acme.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"rate_limited", "validation", "rejected_identifier", "ca_error", "account", "unreachable", "store", "other"} {
		if got := counter(t, reg, "tollgate_acme_order_failures_total", "reason", reason); got != 0 {
			t.Fatalf("tollgate_acme_order_failures_total{reason=%q} = %v before any order, want 0", reason, got)
		}
	}
	type order struct {
		main    string
		renewal bool
		failed  bool
	}
	var mu sync.Mutex
	var orders []order
	r1 := cl.start("r1", func(mc *acme.ManagerConfig) {
		mc.Metrics = m
		mc.OnOrder = func(names []string, renewal bool, err error) {
			mu.Lock()
			defer mu.Unlock()
			orders = append(orders, order{names[0], renewal, err != nil})
		}
	})
	cl.waitFor("first certificate", time.Minute, func() bool { return cl.record(main) != nil })

	c.failHTTP.Store(true)
	if _, err := acme.RequestRenewal(context.Background(), st, cl.keys, main); err != nil {
		t.Fatal(err)
	}
	cl.waitFor("the failed renewal counted", time.Minute, func() bool {
		return counter(t, reg, "tollgate_acme_renewals_total", "result", "failure") == 1
	})
	if got := counter(t, reg, "tollgate_acme_order_failures_total", "reason", "validation"); got != 1 {
		t.Fatalf("after the failed renewal: failures{reason=validation} = %v, want 1", got)
	}

	cfg := *cl.cfg
	a := *cfg.ACME
	a.Domains = append([]config.Domain{{Main: "new.failures.tollgate.test"}}, a.Domains...)
	cfg.ACME = &a
	r1.mgr.SetConfig(&cfg)
	cl.waitFor("the failed first order counted", time.Minute, func() bool {
		return counter(t, reg, "tollgate_acme_orders_total", "result", "failure") == 2
	})
	for _, tc := range []struct {
		name, label, value string
		want               float64
	}{
		{"tollgate_acme_order_failures_total", "reason", "validation", 2},
		{"tollgate_acme_order_failures_total", "reason", "other", 0},
		{"tollgate_acme_orders_total", "result", "success", 1},
		{"tollgate_acme_renewals_total", "result", "failure", 1},
		{"tollgate_acme_renewals_total", "result", "success", 0},
	} {
		if got := counter(t, reg, tc.name, tc.label, tc.value); got != tc.want {
			t.Errorf("%s{%s=%q} = %v, want %v", tc.name, tc.label, tc.value, got, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []order{{main, false, false}, {main, true, true}, {"new.failures.tollgate.test", false, true}}
	if !slices.Equal(orders, want) {
		t.Errorf("OnOrder heard %+v, want %+v", orders, want)
	}
}

// refusedCertWrites is a store that refuses the first refuse writes of a
// certificate record.
type refusedCertWrites struct {
	kvstore.Store
	refuse atomic.Int32
}

func (s *refusedCertWrites) Apply(ctx context.Context, f kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	for _, op := range ops {
		if strings.Contains(op.Key, "/certs/") && s.refuse.Add(-1) >= 0 {
			return 0, errors.New("injected: certificate write refused")
		}
	}
	return s.Store.Apply(ctx, f, ops...)
}

// TestCertificateNotStoredCounted: a certificate the CA issued that the
// store does not take is a failed order (cause "store"); the next attempt
// fetches the same certificate and succeeds.
func TestCertificateNotStoredCounted(t *testing.T) {
	c := newCA(t)
	st := &refusedCertWrites{Store: backendtest.Embedded(t).Client(t)}
	st.refuse.Store(5) // every write of the first attempt
	cl := newTestCluster(t, c, st, "unstored.tollgate.test")
	reg := prometheus.NewRegistry()
	m, err := acme.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cl.start("r1", func(mc *acme.ManagerConfig) { mc.Metrics = m })
	cl.waitFor("the certificate stored", 2*time.Minute, func() bool { return cl.record("unstored.tollgate.test") != nil })
	for _, tc := range []struct {
		name, label, value string
		want               float64
	}{
		{"tollgate_acme_orders_total", "result", "failure", 1},
		{"tollgate_acme_order_failures_total", "reason", "store", 1},
		{"tollgate_acme_orders_total", "result", "success", 1},
	} {
		if got := counter(t, reg, tc.name, tc.label, tc.value); got != tc.want {
			t.Errorf("%s{%s=%q} = %v, want %v", tc.name, tc.label, tc.value, got, tc.want)
		}
	}
	if n := c.pebble.Orders()["unstored.tollgate.test"]; n != 1 {
		t.Errorf("%d orders at the CA, want 1 (the second attempt fetches the same certificate)", n)
	}
}
