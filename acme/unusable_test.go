package acme_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// unusableRecords returns, for the certificate of name stored at key,
// records that cannot be served, by what is wrong with them, and the
// sealed key data and garbage they hold, which no error may quote.
func unusableRecords(t *testing.T, kr *acme.Keyring, key, name string) (map[string][]byte, []byte) {
	t.Helper()
	valid, _ := certRecord(t, kr, key, []string{name}, time.Now().Add(time.Hour))
	var rec acme.CertRecord
	if err := json.Unmarshal(valid, &rec); err != nil {
		t.Fatal(err)
	}
	marshal := func(r acme.CertRecord) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrongKey := rec // sealed for another name: does not open here
	other, _ := certRecord(t, kr, key+"-other", []string{name}, time.Now().Add(time.Hour))
	var o acme.CertRecord
	_ = json.Unmarshal(other, &o)
	wrongKey.PrivateKey = o.PrivateKey
	wrongChain := rec // a chain of another key
	certPEM, _, _ := selfSigned(t, []string{name}, time.Now().Add(time.Hour))
	wrongChain.Certificate = string(certPEM)
	notCovered := rec // a chain that does not cover the record's names
	certPEM, keyPEM, _ := selfSigned(t, []string{"elsewhere.example.org"}, time.Now().Add(time.Hour))
	notCovered.Certificate = string(certPEM)
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	notCovered.PrivateKey = sealed
	badAlg := rec // the sealed data where the algorithm belongs
	badAlg.PrivateKey.Alg = rec.PrivateKey.Data[:40]
	garbage := make([]byte, 200)
	_, _ = rand.Read(garbage)
	secrets := append([]byte(rec.PrivateKey.Data+o.PrivateKey.Data+sealed.Data), garbage...)
	return map[string][]byte{
		"wrong key":   marshal(wrongKey),
		"wrong chain": marshal(wrongChain),
		"not covered": marshal(notCovered),
		"bad alg":     marshal(badAlg),
		"garbage":     garbage,
		"truncated":   valid[:len(valid)*2/3],
		"not json":    append([]byte("x"), valid...),
	}, secrets
}

// TestCacheUnusable runs testUnusable against every backend. It is not in
// TestCache's list: the caches of that suite already hold close to the 200
// connections a Consul agent allows one client (blocking queries a cache
// stops go on holding theirs on the server for a while), and this test
// starts two more.
func TestCacheUnusable(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) { testUnusable(t, b.Client(t)) })
	}
}

// testUnusable (issue 14, A7): a stored certificate record that cannot be
// served, whatever the reason, leaves the certificate held before in
// service and marks the name unusable in the view and the metrics, until
// a usable record or a delete replaces it; a cache started over such a
// record becomes ready, serves nothing for the name and marks it too.
// No error quotes the record.
func testUnusable(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	const name = "a.example.com"
	key := f.key(f.keys.Cert, name)
	good := f.certWait([]string{name}, time.Now().Add(time.Hour))
	bads, secrets := unusableRecords(t, f.kr, key, name)
	for what, bad := range bads {
		f.putWait(key, bad)
		if !bytes.Equal(f.served(name), good) {
			t.Fatalf("%s: the certificate held before is no longer served", what)
		}
		u := f.c.Snapshot().Unusable[name]
		if u == nil || u.Key != key || u.Err == nil {
			t.Fatalf("%s: view's unusable mark = %+v", what, u)
		}
		if quotes(u.Err.Error(), secrets) {
			t.Errorf("%s: the error quotes the record: %v", what, u.Err)
		}
		if got := unusableMetric(t, f.reg, name); got != 1 {
			t.Fatalf("%s: tollgate_acme_certificates_unusable{domain=%q} = %v, want 1", what, name, got)
		}
	}
	// Started over the unusable record, a cache is ready and serves
	// nothing for the name.
	restarted := &fixture{t: t, ctx: f.ctx, s: s, keys: f.keys, kr: f.kr, reg: prometheus.NewRegistry(), applied: make(chan int64, 1024)}
	restarted.start()
	if restarted.served(name) != nil || restarted.c.Snapshot().Unusable[name] == nil || unusableMetric(t, restarted.reg, name) != 1 {
		t.Fatal("a cache started over an unusable record serves it or does not mark it")
	}
	// A usable record clears the mark; so does a delete.
	f.certWait([]string{name}, time.Now().Add(2*time.Hour))
	if f.c.Snapshot().Unusable[name] != nil || unusableMetric(t, f.reg, name) != 0 {
		t.Fatal("a usable record did not clear the unusable mark")
	}
	restarted.sync()
	if restarted.served(name) == nil || restarted.c.Snapshot().Unusable[name] != nil {
		t.Fatal("the restarted cache does not serve the usable record")
	}
	f.putWait(key, []byte("{"))
	f.del(key)
	f.sync()
	if f.c.Snapshot().Unusable[name] != nil || f.served(name) != nil {
		t.Fatal("a deleted record is still marked unusable or served")
	}
}

// unusableMetric returns tollgate_acme_certificates_unusable{domain} of
// reg; 0 when it is not reported.
func unusableMetric(t *testing.T, reg *prometheus.Registry, domain string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_acme_certificates_unusable" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "domain" && l.GetValue() == domain {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// quotes reports whether msg holds a run of 6 bytes of secret.
func quotes(msg string, secret []byte) bool {
	for i := 0; i+6 <= len(secret); i++ {
		if strings.Contains(msg, string(secret[i:i+6])) {
			return true
		}
	}
	return false
}

// TestDecodeErrorsQuoteNothing (issue 14, A10): the errors of a record
// that does not decode, or whose key does not open, say where and what is
// wrong, never which bytes.
func TestDecodeErrorsQuoteNothing(t *testing.T) {
	// As long as sealed key data is: a short plain word in the place of
	// an algorithm or key id is shown, as written.
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"syntax", `{"version":1,"domains":["a"],` + secret},
		{"truncated", `{"version":1,"privateKey":{"alg":"xchacha20poly1305","data":"` + secret},
		{"bad time", `{"version":1,"notAfter":"` + secret + `"}`},
		{"wrong type", `{"version":"` + secret + `"}`},
		{"bad base64", `{"version":1,"domains":["a"],"certificate":"x","privateKey":{"alg":"xchacha20poly1305","kid":"00000000","data":"` + secret + `!!"}}`},
		{"alg", `{"version":1,"domains":["a"],"certificate":"x","privateKey":{"alg":"` + secret + `","data":"x"}}`},
		{"kid", `{"version":1,"domains":["a"],"certificate":"x","privateKey":{"alg":"xchacha20poly1305","kid":"` + secret + `/+=","data":"x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := acme.DecodeCert([]byte(tc.in))
			if err == nil {
				_, err = rec.KeyPair(parseKeyring(t, newKey(t)), "k")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret[:6]) || strings.Contains(err.Error(), "'") {
				t.Errorf("the error quotes the record: %v", err)
			}
		})
	}
}
