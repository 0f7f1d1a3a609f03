package acme_test

import (
	"crypto/x509"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// notAfterSeries returns tollgate_tls_certs_not_after's series, each as
// "cn|sans|serial" with its value.
func (f *fixture) notAfterSeries() map[string]float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_tls_certs_not_after" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["source"] != "acme" {
				f.t.Fatalf("series %v: want source=acme", l)
			}
			out[l["cn"]+"|"+l["sans"]+"|"+l["serial"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

// seriesOf is the notAfterSeries key of the leaf der.
func seriesOf(t *testing.T, der []byte) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName + "|" + "a.example.com,b.example.com" + "|" + hex.EncodeToString(leaf.SerialNumber.Bytes())
}

func testNotAfterGauge(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	if got := f.notAfterSeries(); len(got) != 0 {
		t.Fatalf("series with no certificate: %v", got)
	}
	first := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	// The record's main domain comes first; the names are sorted.
	names := []string{"b.example.com", "a.example.com"}
	der := f.certWait(names, first)
	want := map[string]float64{seriesOf(t, der): float64(first.Unix())}
	if got := f.notAfterSeries(); !maps.Equal(got, want) {
		t.Fatalf("series = %v, want %v", got, want)
	}
	if k := slices.Collect(maps.Keys(want))[0]; !strings.HasPrefix(k, "b.example.com|") {
		t.Fatalf("cn of %q is not the leaf's", k)
	}

	// A renewal replaces the series: the old serial's is gone.
	renewed := first.Add(60 * 24 * time.Hour)
	der2 := f.certWait(names, renewed)
	want = map[string]float64{seriesOf(t, der2): float64(renewed.Unix())}
	if got := f.notAfterSeries(); !maps.Equal(got, want) {
		t.Fatalf("after a renewal: series = %v, want %v", got, want)
	}

	// One series per certificate; a deleted certificate's goes.
	f.certWait([]string{"c.example.com"}, first)
	if got := f.notAfterSeries(); len(got) != 2 {
		t.Fatalf("two certificates: series = %v", got)
	}
	f.del(f.key(f.keys.Cert, "c.example.com"))
	f.sync()
	if got := f.notAfterSeries(); !maps.Equal(got, want) {
		t.Fatalf("after a delete: series = %v, want %v", got, want)
	}
}
