package router

import (
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/config"
)

// notAfterSeries returns tollgate_tls_certs_not_after's series in reg,
// each as "cn|sans|serial|source" with its value.
func notAfterSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return gaugeSeries(t, reg, "tollgate_tls_certs_not_after", "cn", "sans", "serial", "source")
}

// gaugeSeries returns the series of the gauge or counter name in reg, each
// keyed by the values of labels joined with "|", with its value (summed
// over the series of other labels).
func gaugeSeries(t *testing.T, reg *prometheus.Registry, name string, labels ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			key := make([]string, len(labels))
			for i, n := range labels {
				key[i] = l[n]
			}
			out[strings.Join(key, "|")] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// TestProvidedCertificatesNotAfter checks tollgate_tls_certs_not_after
// for provided certificates: one series per pair served (not for one that
// serves no name or cannot be served), replaced when the pair is rotated.
func TestProvidedCertificatesNotAfter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := New(Config{Metrics: m})
	defer rt.Close()
	apply := func(pairs ...config.KeyPair) {
		t.Helper()
		if err := rt.Apply(&config.Config{ProvidedCertificates: pairs}); err != nil {
			t.Fatal(err)
		}
	}
	expiry := func(kp config.KeyPair) float64 { return float64(mustParse(t, kp).Leaf.NotAfter.Unix()) }
	if got := notAfterSeries(t, reg); len(got) != 0 {
		t.Fatalf("series before any Apply: %v", got)
	}

	www := makePair(t, "secret shop/www", 1, "www.example.com", "a.example.com", "192.0.2.1")
	api := makePair(t, "secret shop/api", 0x1234, "api.example.com")
	shadowed := makePair(t, "secret shop/old", 3, "www.example.com") // every name taken by www
	bad := makePair(t, "secret shop/bad", 5, "bad.example.com")
	bad.Key = api.Key
	apply(www, api, shadowed, bad)
	want := map[string]float64{
		"cn.example.com|a.example.com,www.example.com|01|provided": expiry(www),
		"cn.example.com|api.example.com|1234|provided":             expiry(api),
	}
	if got := notAfterSeries(t, reg); !maps.Equal(got, want) {
		t.Fatalf("series = %v, want %v", got, want)
	}

	rotated := makePair(t, "secret shop/www", 2, "www.example.com", "a.example.com")
	apply(rotated, api)
	want = map[string]float64{
		"cn.example.com|a.example.com,www.example.com|02|provided": expiry(rotated),
		"cn.example.com|api.example.com|1234|provided":             expiry(api),
	}
	if got := notAfterSeries(t, reg); !maps.Equal(got, want) {
		t.Fatalf("after a rotation: series = %v, want %v", got, want)
	}
	apply()
	if got := notAfterSeries(t, reg); len(got) != 0 {
		t.Fatalf("series with no pair provided: %v", got)
	}
}
