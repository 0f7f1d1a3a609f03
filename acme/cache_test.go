package acme_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
	"github.com/tollgate-proxy/tollgate/router"
)

var (
	_ router.CertSource = (*acme.Cache)(nil)
	_ router.Challenges = (*acme.Cache)(nil)
)

// testTimeout bounds every wait so that a broken test fails instead of
// hanging; nothing asserts on timing.
const testTimeout = 30 * time.Second

// oidACMEIdentifier is the acmeIdentifier extension of RFC 8737.
var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// selfSigned makes a self-signed certificate for names, valid until
// notAfter, and returns its PEM, its key's PEM and its DER.
func selfSigned(t testing.TB, names []string, notAfter time.Time) (certPEM, keyPEM, der []byte) {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{Names: names, NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter})
	return c.CertPEM(), c.KeyPEM(t), c.DER
}

// certRecord returns a certificate record for names, its key sealed by kr
// for key, and the leaf's DER.
func certRecord(t testing.TB, kr *acme.Keyring, key string, names []string, notAfter time.Time) ([]byte, []byte) {
	t.Helper()
	certPEM, keyPEM, der := selfSigned(t, names, notAfter)
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(acme.CertRecord{
		Version: acme.RecordVersion, Domains: names,
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter,
		Issuer: names[0], Serial: "01", KeyType: "EC256", CA: "https://ca.test/dir",
		Node: "test", Token: 1, Written: time.Now(),
		Certificate: string(certPEM), PrivateKey: sealed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, der
}

// fixture is a Cache following a store under its own prefix.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	s       kvstore.Store
	keys    acme.Keys
	kr      *acme.Keyring
	c       *acme.Cache
	reg     *prometheus.Registry
	applied chan int64
	stop    func()

	mu       sync.Mutex
	answered []string // the domains OnAnswered reported, in order
}

// answers returns the domains OnAnswered reported so far.
func (f *fixture) answers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.answered)
}

// newFixture starts a Cache of a fresh prefix of s, named after the test.
func newFixture(t *testing.T, s kvstore.Store) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	t.Cleanup(cancel)
	prefix := strings.NewReplacer("/", "-", "#", "-").Replace(t.Name())
	f := &fixture{
		t: t, ctx: ctx, s: s, keys: acme.NewKeys(prefix),
		kr: parseKeyring(t, newKey(t)), reg: prometheus.NewRegistry(),
		applied: make(chan int64, 1024),
	}
	return f
}

// start runs the cache and waits until it is ready.
func (f *fixture) start() *fixture {
	f.t.Helper()
	m, err := acme.NewMetrics(f.reg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.c, err = acme.NewCache(acme.CacheConfig{
		Store: f.s, Keys: f.keys, Keyring: f.kr, Metrics: m,
		OnApplied: func(rev int64) {
			select {
			case f.applied <- rev:
			default:
			}
		},
		OnAnswered: func(domain string) {
			f.mu.Lock()
			f.answered = append(f.answered, domain)
			f.mu.Unlock()
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.run()
	select {
	case <-f.c.Ready():
	case <-time.After(testTimeout):
		f.t.Fatal("the cache is not ready")
	}
	return f
}

// run runs the cache until stop or the end of the test.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.c.Run(ctx); err != nil {
			f.t.Errorf("Run: %v", err)
		}
	})
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	f.t.Cleanup(f.stop)
}

func (f *fixture) key(build func(string) (string, error), name string) string {
	f.t.Helper()
	k, err := build(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// put writes value (a JSON value unless []byte) at key and returns the
// revision.
func (f *fixture) put(key string, value any) int64 {
	f.t.Helper()
	b, ok := value.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(value); err != nil {
			f.t.Fatal(err)
		}
	}
	rev, err := kvstore.Put(f.ctx, f.s, key, b)
	if err != nil {
		f.t.Fatal(err)
	}
	return rev
}

// putCert writes a certificate for names under names[0] and returns the
// revision and the leaf's DER.
func (f *fixture) putCert(names []string, notAfter time.Time) (int64, []byte) {
	f.t.Helper()
	key := f.key(f.keys.Cert, names[0])
	b, der := certRecord(f.t, f.kr, key, names, notAfter)
	return f.put(key, b), der
}

func (f *fixture) del(key string) {
	f.t.Helper()
	if err := kvstore.Delete(f.ctx, f.s, key); err != nil {
		f.t.Fatal(err)
	}
}

// wait waits until the cache has applied key's changes up to rev.
func (f *fixture) wait(key string, rev int64) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, testTimeout)
	defer cancel()
	if err := f.c.WaitKey(ctx, key, rev); err != nil {
		f.t.Fatal(err)
	}
}

// putWait writes value at key and waits until the cache has applied it.
func (f *fixture) putWait(key string, value any) {
	f.t.Helper()
	f.wait(key, f.put(key, value))
}

// certWait writes a certificate for names, waits until the cache has
// applied it and returns the leaf's DER.
func (f *fixture) certWait(names []string, notAfter time.Time) []byte {
	f.t.Helper()
	rev, der := f.putCert(names, notAfter)
	f.wait(f.key(f.keys.Cert, names[0]), rev)
	return der
}

// watched lists the folders the cache follows with a watch each.
func watched(keys acme.Keys) []string {
	out := []string{keys.Root + "/challenges/", keys.Root + "/orders/", keys.Root + "/state/", keys.Root + "/requests/"}
	for i := range acme.CertShards {
		out = append(out, fmt.Sprintf("%s/certs/%x/", keys.Root, i))
	}
	return out
}

// sync waits until the cache has applied every write made before: it
// writes a key the cache ignores into every followed folder and waits
// for each (a delete reports no revision on every backend).
func (f *fixture) sync() {
	f.t.Helper()
	for _, prefix := range watched(f.keys) {
		f.putWait(prefix+"_sync/marker", []byte(time.Now().String()))
	}
}

// served returns the DER of the leaf GetCertificate serves for name, nil
// for none.
func (f *fixture) served(name string) []byte {
	f.t.Helper()
	cert, err := f.c.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
	if err != nil {
		f.t.Fatal(err)
	}
	if cert == nil {
		return nil
	}
	return cert.Certificate[0]
}

// metric returns the value of the counter or gauge name whose labels
// include the given name/value pairs.
func (f *fixture) metric(name string, labels ...string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}) {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	f.t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestCache(t *testing.T) {
	for _, b := range backendtest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Client(t)
			t.Run("Certificates", func(t *testing.T) { testCertificates(t, s) })
			t.Run("NotAfterGauge", func(t *testing.T) { testNotAfterGauge(t, s) })
			t.Run("ChallengeLag", func(t *testing.T) { testChallengeLag(t, s) })
			t.Run("Damaged", func(t *testing.T) { testDamaged(t, s) })
			t.Run("InitialState", func(t *testing.T) { testInitialState(t, s) })
			t.Run("Resync", func(t *testing.T) { testResync(t, s) })
			t.Run("Records", func(t *testing.T) { testRecords(t, s) })
			t.Run("Revisions", func(t *testing.T) { testRevisions(t, s) })
			t.Run("BusyFolder", func(t *testing.T) { testBusyFolder(t, s) })
			t.Run("HTTP01", func(t *testing.T) { testHTTP01(t, s) })
			t.Run("HTTP01Miss", func(t *testing.T) { testHTTP01Miss(t, s) })
			t.Run("TLSALPN01", func(t *testing.T) { testTLSALPN01(t, s) })
		})
	}
}

func testCertificates(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	later := time.Now().Add(60 * 24 * time.Hour)
	sooner := time.Now().Add(20 * 24 * time.Hour)

	exact := f.certWait([]string{"a.example.com"}, sooner)
	wild := f.certWait([]string{"*.example.com", "example.com"}, later)
	for _, tc := range []struct {
		name string
		want []byte
	}{
		{"a.example.com", exact}, // exact beats a wildcard expiring later
		{"A.Example.COM.", exact},
		{"b.example.com", wild},
		{"example.com", wild},
		{"x.b.example.com", nil}, // a wildcard covers one label
		{"example.org", nil},
		{"", nil},
	} {
		if got := f.served(tc.name); !bytes.Equal(got, tc.want) {
			t.Errorf("%q: served the wrong certificate (%d bytes), want %d bytes", tc.name, len(got), len(tc.want))
		}
	}
	rec, pair, ok := f.c.Cert("a.example.com")
	if !ok || !bytes.Equal(pair.Certificate[0], exact) {
		t.Fatal("Cert does not return the served pair")
	}
	if !slices.Equal(rec.Domains, []string{"a.example.com"}) || !rec.NotAfter.Equal(sooner) || rec.KeyType != "EC256" || rec.Node != "test" {
		t.Fatalf("Cert record = %+v", rec)
	}
	if rec.Certificate != "" || rec.PrivateKey.Data != "" || rec.PrivateKey.KeyID != f.kr.ActiveID() {
		t.Fatal("the kept record holds the PEM or the sealed key, or lost the key id")
	}
	if e := f.c.Snapshot().Certs["a.example.com"]; e == nil || e.Key != f.key(f.keys.Cert, "a.example.com") || e.Revision == 0 {
		t.Fatalf("snapshot entry = %+v", e)
	}

	// Two certificates claim shared.example.com: the later expiry wins,
	// whichever arrives first, and the other takes over when it goes.
	long := f.certWait([]string{"d.example.com", "shared.example.com"}, later)
	short := f.certWait([]string{"c.example.com", "shared.example.com"}, sooner)
	if !bytes.Equal(f.served("shared.example.com"), long) {
		t.Fatal("the certificate expiring sooner is served")
	}
	f.del(f.key(f.keys.Cert, "d.example.com"))
	f.sync()
	if !bytes.Equal(f.served("shared.example.com"), short) {
		t.Fatal("the remaining certificate is not served once the other is deleted")
	}
	if !bytes.Equal(f.served("d.example.com"), wild) { // the wildcard covers it
		t.Fatal("a deleted certificate is still served")
	}
	// A renewal replaces it; a renewal dropping a name gives it up.
	renewed := f.certWait([]string{"c.example.com", "shared.example.com"}, later)
	if !bytes.Equal(f.served("shared.example.com"), renewed) || !bytes.Equal(f.served("c.example.com"), renewed) {
		t.Fatal("the renewed certificate is not served")
	}
	_ = f.certWait([]string{"c.example.com"}, later)
	if !bytes.Equal(f.served("shared.example.com"), wild) {
		t.Fatal("a name dropped by a renewal is still served")
	}
	// Deleting the exact certificate leaves the wildcard.
	f.del(f.key(f.keys.Cert, "a.example.com"))
	f.sync()
	if !bytes.Equal(f.served("a.example.com"), wild) {
		t.Fatal("the wildcard is not served once the exact certificate is deleted")
	}
	if _, _, ok := f.c.Cert("a.example.com"); ok {
		t.Fatal("Cert returns a deleted certificate")
	}

	// A record naming more than its certificate covers serves only what
	// the certificate covers.
	key := f.key(f.keys.Cert, "m.example.org")
	certPEM, keyPEM, der := selfSigned(t, []string{"m.example.org"}, later)
	sealed, err := f.kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f.putWait(key, acme.CertRecord{Version: acme.RecordVersion, Domains: []string{"m.example.org", "n.example.org"},
		Certificate: string(certPEM), PrivateKey: sealed})
	if !bytes.Equal(f.served("m.example.org"), der) || f.served("n.example.org") != nil {
		t.Fatal("a name the certificate does not cover is served")
	}

	// The gauges count by expiry.
	_ = f.certWait([]string{"old.example.com"}, time.Now().Add(-time.Hour))
	for bucket, want := range map[string]float64{"expired": 1, "7d": 0, "30d": 0, "later": 3} {
		if got := f.metric("tollgate_acme_certificates", "expires", bucket); got != want {
			t.Errorf("certificates{expires=%q} = %v, want %v", bucket, got, want)
		}
	}
	if age := f.metric("tollgate_acme_last_sync_age_seconds"); age < 0 || age > testTimeout.Seconds() {
		t.Errorf("last sync age %v s", age)
	}
}

func testDamaged(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	key := f.key(f.keys.Cert, "a.example.com")
	good := f.certWait([]string{"a.example.com"}, time.Now().Add(time.Hour))

	valid, _ := certRecord(t, f.kr, key, []string{"a.example.com"}, time.Now().Add(time.Hour))
	var rec acme.CertRecord
	if err := json.Unmarshal(valid, &rec); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := certRecord(t, parseKeyring(t, newKey(t)), key, []string{"a.example.com"}, time.Now().Add(time.Hour))
	copied, _ := certRecord(t, f.kr, f.key(f.keys.Cert, "b.example.com"), []string{"a.example.com"}, time.Now().Add(time.Hour))
	damaged := rec
	raw, _ := base64.StdEncoding.DecodeString(rec.PrivateKey.Data)
	raw[len(raw)/2] ^= 0x40
	damaged.PrivateKey.Data = base64.StdEncoding.EncodeToString(raw)
	noCert := rec
	noCert.Certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	wrongVersion := rec
	wrongVersion.Version = 99

	for i, bad := range []any{
		[]byte("{not json"),
		otherKey, // sealed under a key the keyring lacks
		copied,   // sealed for another key
		damaged,  // ciphertext damaged
		noCert,   // certificate damaged
		wrongVersion,
	} {
		f.putWait(key, bad)
		if !bytes.Equal(f.served("a.example.com"), good) {
			t.Fatalf("bad record %d replaced the good certificate", i)
		}
		if got := f.metric("tollgate_acme_records_rejected_total", "kind", "cert"); got != float64(i+1) {
			t.Fatalf("after bad record %d: rejected{kind=cert} = %v, want %d", i, got, i+1)
		}
	}
	// A bad record for a new key serves nothing; the good one is repaired.
	f.putWait(f.key(f.keys.Cert, "new.example.com"), []byte("[]"))
	if f.served("new.example.com") != nil {
		t.Fatal("a bad record is served")
	}
	f.putWait(key, valid)
	if bytes.Equal(f.served("a.example.com"), good) {
		t.Fatal("a good record did not replace the previous one")
	}
	// Other kinds too keep their last good record.
	orderKey := f.key(f.keys.Order, "a.example.com")
	f.putWait(orderKey, acme.OrderRecord{Domains: []string{"a.example.com"}})
	f.putWait(orderKey, []byte(`{"domains":"not a list"}`))
	if o := f.c.Snapshot().Orders["a.example.com"]; o == nil || o.Domains[0] != "a.example.com" {
		t.Fatal("a bad order record replaced the good one")
	}
	f.putWait(f.key(f.keys.HTTP01, "tok"), acme.ChallengeRecord{Domain: "a.example.com"})
	for kind, want := range map[string]float64{"order": 1, "http-01": 1, "state": 0} {
		if got := f.metric("tollgate_acme_records_rejected_total", "kind", kind); got != want {
			t.Errorf("rejected{kind=%q} = %v, want %v", kind, got, want)
		}
	}
}

// testInitialState: records written before the cache starts come with
// the first Resync, a damaged one among them.
func testInitialState(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s)
	names := []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com", "e.example.com"}
	ders := map[string][]byte{}
	for _, n := range names {
		_, ders[n] = f.putCert([]string{n, "www." + n}, time.Now().Add(time.Hour))
	}
	f.put(f.key(f.keys.Cert, "bad.example.com"), []byte("{"))
	account, err := f.keys.Account("https://ca.test/dir", "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f.put(account, []byte("{}")) // accounts are not held
	f.put(f.key(f.keys.TLSALPN01, "a.example.com"), acme.ChallengeRecord{Domain: "a.example.com", KeyAuth: "ka"})
	f.start()
	for _, n := range names {
		if !bytes.Equal(f.served("www."+n), ders[n]) {
			t.Errorf("%s is not served after the first resync", n)
		}
	}
	if f.served("bad.example.com") != nil || len(f.c.Snapshot().Certs) != len(names) {
		t.Fatalf("holds %d certificates, want %d", len(f.c.Snapshot().Certs), len(names))
	}
	if got := f.metric("tollgate_acme_records_rejected_total", "kind", "cert"); got != 1 {
		t.Fatalf("rejected{kind=cert} = %v, want 1", got)
	}
	if cert, err := f.c.ChallengeCertificate(&tls.ClientHelloInfo{ServerName: "a.example.com"}); cert == nil || err != nil {
		t.Fatalf("TLS-ALPN-01 answer of the initial state: %v, %v", cert, err)
	}
}

// testResync: a Run started again resyncs over the view it left: an
// unchanged certificate is not decoded again, a damaged one keeps the
// previous pair, a deleted one goes.
func testResync(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	f.putCert([]string{"same.example.com"}, time.Now().Add(time.Hour))
	f.putCert([]string{"gone.example.com"}, time.Now().Add(time.Hour))
	_, good := f.putCert([]string{"bad.example.com"}, time.Now().Add(time.Hour))
	f.put(f.key(f.keys.Order, "bad.example.com"), acme.OrderRecord{Domains: []string{"bad.example.com"}})
	f.sync()
	_, samePair, _ := f.c.Cert("same.example.com")

	f.stop()
	f.del(f.key(f.keys.Cert, "gone.example.com"))
	f.put(f.key(f.keys.Cert, "bad.example.com"), []byte("{"))
	f.put(f.key(f.keys.Order, "bad.example.com"), []byte("{"))
	f.run()
	f.sync()

	if _, pair, ok := f.c.Cert("same.example.com"); !ok || pair != samePair {
		t.Fatal("an unchanged certificate was decoded again")
	}
	if f.served("gone.example.com") != nil {
		t.Fatal("a certificate deleted while the cache was stopped is served")
	}
	if !bytes.Equal(f.served("bad.example.com"), good) {
		t.Fatal("a damaged record replaced the good certificate on resync")
	}
	if f.c.Snapshot().Orders["bad.example.com"] == nil {
		t.Fatal("a damaged order record replaced the good one on resync")
	}
	for kind, want := range map[string]float64{"cert": 1, "order": 1} {
		if got := f.metric("tollgate_acme_records_rejected_total", "kind", kind); got != want {
			t.Errorf("rejected{kind=%q} = %v, want %v", kind, got, want)
		}
	}
}

// testRecords: orders, states and requests follow the store.
func testRecords(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	f.putWait(f.key(f.keys.Order, "a.example.com"), acme.OrderRecord{Domains: []string{"a.example.com"}, Token: 7})
	f.putWait(f.key(f.keys.State, "a.example.com"), acme.DomainState{Failures: 2, LastError: "rate limited"})
	f.putWait(f.key(f.keys.Request, "new.example.com"), acme.RequestRecord{Name: "new.example.com", Node: "n1"})
	v := f.c.Snapshot()
	if o := v.Orders["a.example.com"]; o == nil || o.Token != 7 {
		t.Fatalf("order = %+v", o)
	}
	if st := v.States["a.example.com"]; st == nil || st.Failures != 2 || st.LastError != "rate limited" {
		t.Fatalf("state = %+v", st)
	}
	if r := v.Requests["new.example.com"]; r == nil || r.Node != "n1" {
		t.Fatalf("request = %+v", r)
	}
	f.del(f.key(f.keys.Order, "a.example.com"))
	f.del(f.key(f.keys.Request, "new.example.com"))
	f.sync()
	v2 := f.c.Snapshot()
	if len(v2.Orders) != 0 || len(v2.Requests) != 0 || len(v2.States) != 1 {
		t.Fatalf("after deletes: %d orders, %d requests, %d states; want 0, 0, 1", len(v2.Orders), len(v2.Requests), len(v2.States))
	}
	// Views are immutable: the earlier one is unchanged.
	if v.Orders["a.example.com"] == nil || v.Requests["new.example.com"] == nil {
		t.Fatal("a published view was modified")
	}
}

// testRevisions: a batch across folders reaches each folder's watch,
// WaitKey follows each key's folder, and ChallengeRevision and OnApplied
// report the challenge folder's position.
func testRevisions(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	certKey, orderKey := f.key(f.keys.Cert, "a.example.com"), f.key(f.keys.Order, "a.example.com")
	stateKey := f.key(f.keys.State, "a.example.com")
	f.putWait(orderKey, acme.OrderRecord{Domains: []string{"a.example.com"}})

	b, der := certRecord(t, f.kr, certKey, []string{"a.example.com"}, time.Now().Add(time.Hour))
	rev, err := f.s.Apply(f.ctx, nil, kvstore.PutOp(certKey, b), kvstore.DeleteOp(orderKey),
		kvstore.PutOp(stateKey, []byte(`{"failures":0}`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{certKey, orderKey, stateKey} {
		f.wait(k, rev)
	}
	v := f.c.Snapshot()
	if !bytes.Equal(f.served("a.example.com"), der) || v.Orders["a.example.com"] != nil || v.States["a.example.com"] == nil {
		t.Fatalf("view after waiting for each key of revision %d does not hold the batch", rev)
	}

	// The challenge folder's position is the one reported.
	chKey := f.key(f.keys.HTTP01, "tok")
	chRev := f.put(chKey, acme.ChallengeRecord{Domain: "a.example.com", Token: "tok", KeyAuth: "tok.x"})
	f.wait(chKey, chRev)
	if got := f.c.ChallengeRevision(); got < chRev {
		t.Fatalf("ChallengeRevision() = %d after WaitKey(%d)", got, chRev)
	}
	deadline := time.After(testTimeout)
	for seen := int64(0); seen < chRev; {
		select {
		case seen = <-f.applied:
		case <-deadline:
			t.Fatalf("OnApplied did not report revision %d", chRev)
		}
	}

	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := f.c.WaitKey(ctx, certKey, rev+1_000_000); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitKey with a canceled context: %v", err)
	}
	if err := f.c.WaitKey(ctx, certKey, rev); err != nil {
		t.Fatalf("WaitKey of a revision reached: %v", err)
	}
	account, err := f.keys.Account("https://ca.test/dir", "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.WaitKey(f.ctx, account, 1); err == nil {
		t.Fatal("WaitKey of an account key, which the cache does not follow: no error")
	}
}

// testBusyFolder: a folder written to without pause (here on-demand
// requests) does not hold back the position of the others: a challenge
// answer is confirmed while the writes go on.
func testBusyFolder(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := f.key(f.keys.Request, fmt.Sprintf("r%d-%d.example.com", w, i%50))
				_, _ = kvstore.Put(ctx, f.s, key, []byte(`{"name":"x"}`))
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the writes under way
	chKey := f.key(f.keys.HTTP01, "busy")
	f.wait(chKey, f.put(chKey, acme.ChallengeRecord{Domain: "a.example.com", Token: "busy", KeyAuth: "busy.x"}))
}

// servers serves the cache's certificates and challenges on a plain and
// a TLS entry point of the router.
type servers struct {
	http, https string
}

func serveRouter(t *testing.T, c *acme.Cache) servers {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(`
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
`))
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(router.Config{})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	srv, err := router.Listen(router.ServersConfig{Config: cfg, Router: rt, Certs: c, Challenges: c})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		rt.Close()
	})
	return servers{http: srv.Addr("web").String(), https: srv.Addr("websecure").String()}
}

// challenge asks for an HTTP-01 answer at addr with the given Host.
func challenge(t *testing.T, addr, host, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/.well-known/acme-challenge/"+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: testTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func testHTTP01(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	srv := serveRouter(t, f.c)
	const token, keyAuth = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumbprint"
	f.putWait(f.key(f.keys.HTTP01, token), acme.ChallengeRecord{Domain: "A.example.com", Token: token, KeyAuth: keyAuth})

	for _, host := range []string{"a.example.com", "A.EXAMPLE.COM:80", "a.example.com."} {
		code, ctype, body := challenge(t, srv.http, host, token)
		if code != http.StatusOK || ctype != "text/plain" || body != keyAuth {
			t.Fatalf("Host %s: got %d %s %q, want 200 text/plain with the key authorization", host, code, ctype, body)
		}
	}
	for _, tc := range []struct{ host, token string }{
		{"b.example.com", token},          // another name
		{"a.example.com", "unknown"},      // scanner noise, no order
		{"a.example.com", token + ".x"},   // not base64url
		{"a.example.com", "x/" + token},   // two segments
		{"a.example.com", ""},             // no token
		{"a.example.com", "%2e%2e%2fetc"}, // escaped traversal
	} {
		if code, _, body := challenge(t, srv.http, tc.host, tc.token); code != http.StatusNotFound || strings.Contains(body, keyAuth) {
			t.Errorf("Host %s, token %q: got %d %q, want 404", tc.host, tc.token, code, body)
		}
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "http-01", "result", "answered"); got != 3 {
		t.Errorf("answered = %v, want 3", got)
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "http-01", "result", "missing"); got != 6 {
		t.Errorf("missing = %v, want 6", got)
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "http-01", "result", "store"); got != 0 {
		t.Errorf("store = %v, want 0: no order is in flight", got)
	}
	if got, want := f.answers(), []string{"a.example.com", "a.example.com", "a.example.com"}; !slices.Equal(got, want) {
		t.Errorf("OnAnswered: got %q, want %q (the answered requests only)", got, want)
	}

	// HEAD works; other methods are refused.
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "http://a.example.com/.well-known/acme-challenge/"+token, nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d with %d bytes", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	f.c.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://a.example.com/.well-known/acme-challenge/"+token, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}

	f.del(f.key(f.keys.HTTP01, token))
	f.sync()
	if code, _, _ := challenge(t, srv.http, "a.example.com", token); code != http.StatusNotFound {
		t.Fatalf("a deleted answer: %d, want 404", code)
	}
}

// testHTTP01Miss: while an order is in flight, an answer not yet in
// memory is read from the store.
func testHTTP01Miss(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	const token, keyAuth = "tok-1", "tok-1.thumb"
	f.putWait(f.key(f.keys.Order, "a.example.com"), acme.OrderRecord{Domains: []string{"a.example.com", "*.w.example.com"}})

	// The cache running: the answer is served whether the watch or the
	// store read brings it.
	f.put(f.key(f.keys.HTTP01, token), acme.ChallengeRecord{Domain: "a.example.com", Token: token, KeyAuth: keyAuth})
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://a.example.com/.well-known/acme-challenge/"+token, nil))
	if rec.Code != http.StatusOK || rec.Body.String() != keyAuth {
		t.Fatalf("got %d %q, want 200 with the key authorization", rec.Code, rec.Body.String())
	}

	// The cache stopped, so that only the store read can find it.
	f.stop()
	const token2, keyAuth2 = "tok-2", "tok-2.thumb"
	f.put(f.key(f.keys.HTTP01, token2), acme.ChallengeRecord{Domain: "a.example.com", Token: token2, KeyAuth: keyAuth2})
	f.put(f.key(f.keys.HTTP01, "tok-3"), acme.ChallengeRecord{Domain: "x.w.example.com", Token: "tok-3", KeyAuth: "k3"})
	for _, tc := range []struct {
		host, token string
		code        int
	}{
		{"a.example.com", token2, http.StatusOK},
		{"b.example.com", token2, http.StatusNotFound},    // no order for the host
		{"a.example.com", "tok-9", http.StatusNotFound},   // not in the store either
		{"x.w.example.com", "tok-3", http.StatusNotFound}, // a wildcard order is not validated by HTTP-01
	} {
		rec := httptest.NewRecorder()
		f.c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/.well-known/acme-challenge/"+tc.token, nil))
		if rec.Code != tc.code || (tc.code == http.StatusOK && rec.Body.String() != keyAuth2) {
			t.Errorf("Host %s, token %s: got %d %q, want %d", tc.host, tc.token, rec.Code, rec.Body.String(), tc.code)
		}
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "http-01", "result", "store"); got < 1 {
		t.Fatalf("store = %v, want at least 1", got)
	}
	if got, want := f.answers(), []string{"a.example.com", "a.example.com"}; !slices.Equal(got, want) {
		t.Errorf("OnAnswered: got %q, want %q (answers read from the store count too)", got, want)
	}
}

// handshake dials addr for name offering protos and returns the
// connection's state.
func handshake(t *testing.T, addr, name string, protos ...string) (tls.ConnectionState, error) {
	t.Helper()
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: testTimeout},
		Config:    &tls.Config{ServerName: name, NextProtos: protos, InsecureSkipVerify: true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

// checkALPNCert checks that cert answers the TLS-ALPN-01 challenge of
// name with keyAuth (RFC 8737 §3).
func checkALPNCert(t *testing.T, cert *x509.Certificate, name, keyAuth string) {
	t.Helper()
	if !slices.Equal(cert.DNSNames, []string{name}) {
		t.Fatalf("names %v, want [%s]", cert.DNSNames, name)
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidACMEIdentifier) {
			continue
		}
		var digest []byte
		if _, err := asn1.Unmarshal(ext.Value, &digest); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(keyAuth))
		if !ext.Critical || !bytes.Equal(digest, sum[:]) {
			t.Fatalf("acmeIdentifier critical=%v, digest %x, want critical and %x", ext.Critical, digest, sum)
		}
		return
	}
	t.Fatal("no acmeIdentifier extension")
}

func testTLSALPN01(t *testing.T, s kvstore.Store) {
	f := newFixture(t, s).start()
	srv := serveRouter(t, f.c)
	const keyAuth = "tok.thumbprint"
	_, der := f.putCert([]string{"a.example.com"}, time.Now().Add(time.Hour))
	f.putWait(f.key(f.keys.TLSALPN01, "a.example.com"), acme.ChallengeRecord{Domain: "a.example.com", Token: "tok", KeyAuth: keyAuth})

	state, err := handshake(t, srv.https, "a.example.com", router.ACMETLSProto)
	if err != nil {
		t.Fatal(err)
	}
	if state.NegotiatedProtocol != router.ACMETLSProto {
		t.Fatalf("negotiated %q, want %s", state.NegotiatedProtocol, router.ACMETLSProto)
	}
	first := state.PeerCertificates[0]
	checkALPNCert(t, first, "a.example.com", keyAuth)
	// Built once: the second handshake gets the same certificate.
	state, err = handshake(t, srv.https, "A.Example.com", router.ACMETLSProto)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state.PeerCertificates[0].Raw, first.Raw) {
		t.Fatal("the validation certificate was built again")
	}
	// An ordinary handshake gets the certificate.
	state, err = handshake(t, srv.https, "a.example.com", "h2", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state.PeerCertificates[0].Raw, der) {
		t.Fatal("an ordinary handshake did not get the stored certificate")
	}
	// No answer for the name: the validation handshake fails.
	if _, err := handshake(t, srv.https, "b.example.com", router.ACMETLSProto); err == nil {
		t.Fatal("a validation handshake without an answer succeeded")
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "tls-alpn-01", "result", "answered"); got != 2 {
		t.Errorf("answered = %v, want 2", got)
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "tls-alpn-01", "result", "missing"); got != 1 {
		t.Errorf("missing = %v, want 1", got)
	}
	if got, want := f.answers(), []string{"a.example.com", "a.example.com"}; !slices.Equal(got, want) {
		t.Errorf("OnAnswered: got %q, want %q (validation handshakes only)", got, want)
	}

	// While an order is in flight, an answer not in memory is read from
	// the store (the cache stopped so that only the read can find it).
	f.putWait(f.key(f.keys.Order, "c.example.com"), acme.OrderRecord{Domains: []string{"c.example.com"}})
	f.stop()
	f.put(f.key(f.keys.TLSALPN01, "c.example.com"), acme.ChallengeRecord{Domain: "c.example.com", KeyAuth: "c.ka"})
	f.put(f.key(f.keys.TLSALPN01, "d.example.com"), acme.ChallengeRecord{Domain: "d.example.com", KeyAuth: "d.ka"})
	state, err = handshake(t, srv.https, "c.example.com", router.ACMETLSProto)
	if err != nil {
		t.Fatal(err)
	}
	checkALPNCert(t, state.PeerCertificates[0], "c.example.com", "c.ka")
	if _, err := handshake(t, srv.https, "d.example.com", router.ACMETLSProto); err == nil {
		t.Fatal("an answer was read from the store without an order in flight")
	}
	if got := f.metric("tollgate_acme_challenge_requests_total", "type", "tls-alpn-01", "result", "store"); got != 1 {
		t.Errorf("store = %v, want 1", got)
	}
	if got, want := f.answers(), []string{"a.example.com", "a.example.com", "c.example.com"}; !slices.Equal(got, want) {
		t.Errorf("OnAnswered: got %q, want %q", got, want)
	}
}

func TestNewCacheErrors(t *testing.T) {
	s := backendtest.Embedded(t).Client(t)
	kr := parseKeyring(t, newKey(t))
	keys := acme.NewKeys("tollgate")
	for name, cfg := range map[string]acme.CacheConfig{
		"no store":         {Keys: keys, Keyring: kr},
		"no keys":          {Store: s, Keyring: kr},
		"no keyring":       {Store: s, Keys: keys},
		"negative timeout": {Store: s, Keys: keys, Keyring: kr, MissTimeout: -time.Second},
		"bad prefix":       {Store: s, Keys: acme.NewKeys("a//b"), Keyring: kr},
	} {
		if _, err := acme.NewCache(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunTwice(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	if err := f.c.Run(context.Background()); err == nil {
		t.Fatal("a second Run started")
	}
}

func TestOrderDone(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := acme.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.OrderDone(false, nil)
	m.OrderDone(true, nil)
	m.OrderDone(true, errors.New("rate limited"))
	f := &fixture{t: t, reg: reg}
	for _, tc := range []struct {
		name, result string
		want         float64
	}{
		{"tollgate_acme_orders_total", "success", 2},
		{"tollgate_acme_orders_total", "failure", 1},
		{"tollgate_acme_renewals_total", "success", 1},
		{"tollgate_acme_renewals_total", "failure", 1},
	} {
		if got := f.metric(tc.name, "result", tc.result); got != tc.want {
			t.Errorf("%s{result=%q} = %v, want %v", tc.name, tc.result, got, tc.want)
		}
	}
	if got := f.metric("tollgate_acme_order_failures_total", "reason", "other"); got != 1 {
		t.Errorf("tollgate_acme_order_failures_total{reason=\"other\"} = %v, want 1", got)
	}
	var nilMetrics *acme.Metrics
	nilMetrics.OrderDone(true, nil) // counts nothing, does not panic
	if _, err := acme.NewMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

// issuer is a CA that signs leaves, so that records carry a realistic
// chain (leaf and intermediate).
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Intermediate E9", Organization: []string{"Test CA"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &issuer{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// record returns a certificate record for names signed by the issuer.
func (is *issuer) record(t testing.TB, kr *acme.Keyring, key string, names []string, serial int64) []byte {
	t.Helper()
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(90 * 24 * time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.cert, &leafKey.PublicKey, is.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	sealed, err := kr.Seal(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), is.pem...)
	b, err := json.MarshalIndent(acme.CertRecord{
		Version: acme.RecordVersion, Domains: names, NotBefore: tmpl.NotBefore, NotAfter: notAfter,
		Issuer: is.cert.Subject.CommonName, Serial: fmt.Sprintf("%x", serial), KeyType: "EC256",
		CA: "https://ca.test/dir", CertURL: "https://ca.test/cert/" + fmt.Sprint(serial),
		Node: "bench", Token: 1, Written: time.Now(), Certificate: string(chain), PrivateKey: sealed,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkResync measures the first Resync of a store holding 10,000
// certificates (1,000 with -short), and the heap the cache keeps for
// them.
func BenchmarkResync(b *testing.B) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	s, err := embedded.Open(embedded.Config{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys, kr := acme.NewKeys("bench"), parseKeyring(b, newKey(b))
	is := newIssuer(b)
	ctx := context.Background()
	var ops []kvstore.Op
	for i := range n {
		main := fmt.Sprintf("site%05d.example.com", i)
		key, err := keys.Cert(main)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, kvstore.PutOp(key, is.record(b, kr, key, []string{main, "www." + main}, int64(i+2))))
		if len(ops) == 64 || i == n-1 {
			if _, err := s.Apply(ctx, nil, ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	var ms runtime.MemStats
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		c, err := acme.NewCache(acme.CacheConfig{Store: s, Keys: keys, Keyring: kr})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- c.Run(runCtx) }()
		<-c.Ready()
		b.StopTimer()
		if got := len(c.Snapshot().Certs); got != n {
			b.Fatalf("holds %d certificates, want %d", got, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/float64(n), "heap-B/cert")
		runtime.KeepAlive(c)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
