package acme_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
	"github.com/tollgate-proxy/tollgate/leader"
)

// ca is a Pebble CA with the HTTP-01 answers of the replicas under test
// served on the port Pebble validates against.
type ca struct {
	t      *testing.T
	pebble *testserver.Pebble
	// serve is the cache whose answers are served; failHTTP makes every
	// validation fail.
	serve    atomic.Pointer[acme.Cache]
	failHTTP atomic.Bool
}

func newCA(t *testing.T) *ca {
	t.Helper()
	port := testserver.FreePorts(t, 1)[0]
	c := &ca{t: t}
	c.pebble = testserver.StartPebble(t, testserver.PebbleOptions{HTTPPort: port})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cache := c.serve.Load()
		if cache == nil || c.failHTTP.Load() {
			http.NotFound(w, r)
			return
		}
		cache.ServeHTTP(w, r)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return c
}

// cluster is replicas of one store prefix: each an elector, a cache and a
// manager, all in this process and on one store.
type cluster struct {
	t    *testing.T
	ca   *ca
	st   kvstore.Store
	keys acme.Keys
	kr   *acme.Keyring
	pfx  string
	cfg  *config.Config
	log  *testserver.Buffer
}

func newTestCluster(t *testing.T, c *ca, st kvstore.Store, names ...string) *cluster {
	t.Helper()
	pfx := strings.NewReplacer("/", "-", "#", "-").Replace(t.Name())
	cl := &cluster{t: t, ca: c, st: st, keys: acme.NewKeys(pfx), kr: parseKeyring(t, newKey(t)), pfx: pfx, log: &testserver.Buffer{}}
	a := &config.ACME{
		Email: "ops@tollgate.test", CAServer: c.pebble.Directory(), CACertificates: []string{c.pebble.CACertFile()},
		HTTPChallenge: &config.HTTPChallenge{EntryPoint: "web"},
	}
	for _, n := range names {
		a.Domains = append(a.Domains, config.Domain{Main: n})
	}
	cl.cfg = &config.Config{ACME: a}
	return cl
}

// replica is one member of a cluster.
type replica struct {
	id      string
	cache   *acme.Cache
	elector *leader.Elector
	mgr     *acme.Manager
	stop    func()
}

// start runs a replica until stop or the end of the test; the ca serves
// its cache's answers.
func (cl *cluster) start(id string, tune func(*acme.ManagerConfig)) *replica {
	cl.t.Helper()
	lg := slog.New(slog.NewTextHandler(cl.log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
	cache, err := acme.NewCache(acme.CacheConfig{Store: cl.st, Keys: cl.keys, Keyring: cl.kr, Logger: lg})
	if err != nil {
		cl.t.Fatal(err)
	}
	el, err := leader.New(leader.Config{Store: cl.st, Key: cl.pfx + "/leader", Node: leader.Node{ID: id}, TTL: 2 * time.Second, Logger: lg})
	if err != nil {
		cl.t.Fatal(err)
	}
	mc := acme.ManagerConfig{Store: cl.st, Keys: cl.keys, Keyring: cl.kr, Cache: cache, Leadership: el,
		RegistryPrefix: cl.pfx + "/nodes", Node: id, Logger: lg, BackoffBase: time.Hour}
	if tune != nil {
		tune(&mc)
	}
	mgr, err := acme.NewManager(mc)
	if err != nil {
		cl.t.Fatal(err)
	}
	mgr.SetConfig(cl.cfg)
	r := &replica{id: id, cache: cache, elector: el, mgr: mgr}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{cache.Run, el.Run, mgr.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				cl.t.Errorf("replica %s: %v", id, err)
			}
		})
	}
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	cl.t.Cleanup(r.stop)
	cl.ca.serve.Store(cache)
	return r
}

// record reads main's certificate record; nil when there is none.
func (cl *cluster) record(main string) *acme.CertRecord {
	cl.t.Helper()
	key, err := cl.keys.Cert(main)
	if err != nil {
		cl.t.Fatal(err)
	}
	kv, err := cl.st.Get(context.Background(), key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		cl.t.Fatal(err)
	}
	rec, err := acme.DecodeCert(kv.Value)
	if err != nil {
		cl.t.Fatal(err)
	}
	return rec
}

// putImported stores a certificate for name from another CA, with 80 of
// its 90 days left, as import stores it: the configured CA named, no ARI
// state.
func (cl *cluster) putImported(name string) *acme.CertRecord {
	cl.t.Helper()
	key, _ := cl.keys.Cert(name)
	b, _ := certRecord(cl.t, cl.kr, key, []string{name}, time.Now().Add(80*24*time.Hour))
	var rec acme.CertRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		cl.t.Fatal(err)
	}
	rec.CA = cl.cfg.ACME.CAServer
	b, _ = json.Marshal(rec)
	if _, err := kvstore.Put(context.Background(), cl.st, key, b); err != nil {
		cl.t.Fatal(err)
	}
	return &rec
}

// update rewrites main's record as an operator would (no fence).
func (cl *cluster) update(main string, edit func(*acme.CertRecord)) {
	cl.t.Helper()
	rec := cl.record(main)
	edit(rec)
	key, _ := cl.keys.Cert(main)
	b, _ := json.Marshal(rec)
	if _, err := kvstore.Put(context.Background(), cl.st, key, b); err != nil {
		cl.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func (cl *cluster) waitFor(what string, timeout time.Duration, cond func() bool) {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			cl.t.Fatalf("%s: not after %s; log:\n%s", what, timeout, tailLines(cl.log.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestARIFailureNeverRenews: a renewal-information answer that is an
// error (400, 404, 500 with a problem document), not JSON, or a window
// without both ends or that ends before it starts never makes the leader
// renew; the certificate keeps renewing at two thirds of its lifetime and
// the query is asked again later. Today's lego decodes such bodies into a
// zero window, which reads as "renew now".
func TestARIFailureNeverRenews(t *testing.T) {
	problem := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"type":"urn:ietf:params:acme:error:malformed","detail":"no such certificate","status":%d}`, status)
		})
	}
	body := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(s))
		})
	}
	now := time.Now().UTC()
	cases := map[string]http.Handler{
		"400":          problem(400),
		"404":          problem(404),
		"500":          problem(500),
		"garbage":      body("<html>maintenance</html>"),
		"empty-window": body(`{"suggestedWindow":{}}`),
		"no-end":       body(fmt.Sprintf(`{"suggestedWindow":{"start":%q}}`, now.Add(-time.Hour).Format(time.RFC3339))),
		"reversed":     body(fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`, now.Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339))),
	}
	var names []string
	for name := range cases {
		names = append(names, name+".ari.tollgate.test")
	}
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, names...)
	cl.start("r1", nil)
	cl.waitFor("first certificates", 2*time.Minute, func() bool {
		for _, n := range names {
			if cl.record(n) == nil {
				return false
			}
		}
		return true
	})
	// Each certificate's renewal information is answered by its case.
	first := map[string]*acme.CertRecord{}
	byID := map[string]http.Handler{}
	for name, h := range cases {
		n := name + ".ari.tollgate.test"
		r := cl.record(n)
		if r.ARI == nil || r.ARI.RenewAt.IsZero() {
			t.Fatalf("%s: Pebble's window not recorded at issuance: %+v", n, r.ARI)
		}
		first[n] = r
		byID[ariCertID(t, r)] = h
	}
	c.pebble.SetRenewalInfo(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if h := byID[id]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "unexpected certificate", http.StatusTeapot)
	}))
	// Ask again now, keeping the window Pebble gave.
	for _, n := range names {
		cl.update(n, func(r *acme.CertRecord) { r.ARI.CheckAgain = time.Now().Add(-time.Second) })
	}
	cl.waitFor("the failed queries recorded", time.Minute, func() bool {
		for _, n := range names {
			if r := cl.record(n); r.ARI == nil || r.ARI.Failures != 1 {
				return false
			}
		}
		return true
	})
	// Give a wrongly planned order time to happen, then count.
	time.Sleep(2 * time.Second)
	for _, n := range names {
		r := cl.record(n)
		if r.Serial != first[n].Serial {
			t.Errorf("%s: the certificate was renewed (serial %s, was %s)", n, r.Serial, first[n].Serial)
		}
		if !r.ARI.CheckAgain.After(time.Now().Add(30 * time.Minute)) {
			t.Errorf("%s: asked again at %s, want an hour or more later", n, r.ARI.CheckAgain)
		}
		if got, want := r.RenewAt(), first[n].RenewAt(); !got.Equal(want) {
			t.Errorf("%s: renewal moved from %s to %s", n, want, got)
		}
		if o := c.pebble.Orders()[n]; o != 1 {
			t.Errorf("%s: %d orders, want 1 (no renewal)", n, o)
		}
		t.Logf("%s: %s", n, r.ARI.LastError)
	}
}

// ariCertID is the renewal-information id of r's certificate.
func ariCertID(t *testing.T, r *acme.CertRecord) string {
	t.Helper()
	blk, _ := pem.Decode([]byte(r.Certificate))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	id, err := certificate.MakeARICertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestARIUnknownCertificate: a certificate the CA did not issue (imported,
// or from the CA used before) is not renewed early because the CA's ARI
// endpoint does not know it: its renewal stays at two thirds of its
// lifetime. Today the leader renewed such certificates at once.
func TestARIUnknownCertificate(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "imported.tollgate.test")
	cl.putImported("imported.tollgate.test")
	cl.start("r1", nil)
	cl.waitFor("the failed query recorded", 30*time.Second, func() bool {
		r := cl.record("imported.tollgate.test")
		return r.ARI != nil && r.ARI.Failures > 0
	})
	time.Sleep(2 * time.Second)
	if n := c.pebble.Orders()["imported.tollgate.test"]; n != 0 {
		t.Fatalf("%d orders for a certificate with 80 of 90 days left, want 0", n)
	}
	r := cl.record("imported.tollgate.test")
	if want := r.NotAfter.Add(-r.NotAfter.Sub(r.NotBefore) / 3); !r.RenewAt().Equal(want) {
		t.Fatalf("renewal at %s, want %s (two thirds of the lifetime)", r.RenewAt(), want)
	}
	t.Logf("ARI state: failures %d, ask again %s, error %q", r.ARI.Failures, r.ARI.CheckAgain, r.ARI.LastError)
}

// TestFailedRenewalOrderedOnce: a renewal whose validation fails costs
// one order, not a second one placed without the "replaces" field. (The
// renewal adds a name, so that Pebble cannot reuse an earlier
// authorization.)
func TestFailedRenewalOrderedOnce(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "renew.tollgate.test")
	r1 := cl.start("r1", nil)
	cl.waitFor("first certificate", time.Minute, func() bool { return cl.record("renew.tollgate.test") != nil })
	c.failHTTP.Store(true)
	cfg := *cl.cfg
	a := *cfg.ACME
	a.Domains = []config.Domain{{Main: "renew.tollgate.test", SANs: []string{"www.renew.tollgate.test"}}}
	cfg.ACME = &a
	r1.mgr.SetConfig(&cfg)
	stateKey, _ := cl.keys.State("renew.tollgate.test")
	cl.waitFor("the failure recorded", time.Minute, func() bool {
		_, err := st.Get(context.Background(), stateKey)
		return err == nil
	})
	time.Sleep(time.Second)
	if n := c.pebble.Orders()["www.renew.tollgate.test"]; n != 1 {
		t.Fatalf("%d orders with the new name, want 1 (one failed renewal)", n)
	}
	if strings.Contains(cl.log.String(), "replacement refused") {
		t.Fatal("the log blames a refused replacement for a failed validation")
	}
}

// TestRenewalWhenReplacementsFail: a CA that fails every order naming the
// certificate it replaces (a 500, as Pebble answers for a certificate
// whose order it cannot find) fails the first renewal in the CA's window
// once; the retry is a plain order, and renews.
func TestRenewalWhenReplacementsFail(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "replaced.tollgate.test")
	cl.start("r1", func(mc *acme.ManagerConfig) { mc.BackoffBase = time.Second })
	cl.waitFor("first certificate", time.Minute, func() bool { return cl.record("replaced.tollgate.test") != nil })
	first := cl.record("replaced.tollgate.test")
	if first.ARI == nil || first.ARI.RenewAt.IsZero() {
		t.Fatalf("Pebble's window not recorded at issuance: %+v", first.ARI)
	}
	c.pebble.RefuseReplacements(true)
	// The CA's window has come: the renewal names the certificate.
	cl.update("replaced.tollgate.test", func(r *acme.CertRecord) {
		now := time.Now()
		r.ARI.WindowStart, r.ARI.WindowEnd = now.Add(-time.Hour), now.Add(time.Hour)
		r.ARI.RenewAt, r.ARI.CheckAgain = now.Add(-time.Second), now.Add(time.Hour)
	})
	cl.waitFor("the renewal", time.Minute, func() bool {
		r := cl.record("replaced.tollgate.test")
		return r != nil && r.Serial != first.Serial
	})
	if got := strings.Count(cl.log.String(), "renewing without naming the certificate it replaces"); got != 1 {
		t.Errorf("%d plain retries logged, want 1:\n%s", got, cl.log)
	}
}

// stickRegistry lists a replica that never applies anything, so that the
// leader waits its PropagationTimeout after writing each challenge answer:
// a window in which its orders are placed and recorded but not validated.
func (cl *cluster) stickRegistry() (unstick func()) {
	cl.t.Helper()
	key := cl.pfx + "/nodes/stuck"
	b, _ := json.Marshal(leader.NodeRecord{Node: leader.Node{ID: "stuck"}, Started: time.Now()})
	if _, err := kvstore.Put(context.Background(), cl.st, key, b); err != nil {
		cl.t.Fatal(err)
	}
	return func() {
		if _, err := cl.st.Apply(context.Background(), nil, kvstore.DeleteOp(key)); err != nil {
			cl.t.Fatal(err)
		}
	}
}

// orderRecord reads main's order record; nil when there is none.
func (cl *cluster) orderRecord(main string) *acme.OrderRecord {
	cl.t.Helper()
	key, _ := cl.keys.Order(main)
	kv, err := cl.st.Get(context.Background(), key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		cl.t.Fatal(err)
	}
	var o acme.OrderRecord
	if err := json.Unmarshal(kv.Value, &o); err != nil {
		cl.t.Fatal(err)
	}
	return &o
}

// TestOrderResumed: a leader that stops with orders placed but not
// validated leaves them recorded (URL and sealed key, before validation),
// and the next leader completes those orders instead of placing new ones:
// one order and one certificate per name at the CA.
func TestOrderResumed(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	names := []string{"a.resume.tollgate.test", "b.resume.tollgate.test", "c.resume.tollgate.test", "d.resume.tollgate.test"}
	cl := newTestCluster(t, c, st, names...)
	unstick := cl.stickRegistry()
	r1 := cl.start("r1", func(mc *acme.ManagerConfig) { mc.PropagationTimeout = time.Minute })
	cl.waitFor("every order recorded", time.Minute, func() bool {
		for _, n := range names {
			if o := cl.orderRecord(n); o == nil || o.URL == "" || o.Key == nil {
				return false
			}
		}
		return true
	})
	placed := map[string]string{}
	for _, n := range names {
		placed[n] = cl.orderRecord(n).URL
	}
	r1.stop()
	for _, n := range names {
		if o := cl.orderRecord(n); o == nil || o.URL != placed[n] {
			t.Fatalf("%s: the stopped leader's order record is gone or changed: %+v", n, o)
		}
	}
	unstick()
	cl.start("r2", nil)
	cl.waitFor("every certificate", 2*time.Minute, func() bool {
		for _, n := range names {
			if cl.record(n) == nil {
				return false
			}
		}
		return true
	})
	orders, certs := c.pebble.Orders(), c.pebble.Certificates()
	for _, n := range names {
		if orders[n] != 1 || certs[n] != 1 {
			t.Errorf("%s: %d orders and %d certificates at the CA, want 1 and 1", n, orders[n], certs[n])
		}
		if o := cl.orderRecord(n); o != nil {
			t.Errorf("%s: order record left after issuance: %+v", n, o)
		}
	}
	if got := strings.Count(cl.log.String(), `msg="resuming the order an earlier attempt placed"`); got != len(names) {
		t.Errorf("%d orders resumed, want %d", got, len(names))
	}
}

// TestAccountRejected: when the CA no longer knows the stored account (a
// CA that lost it, here a restarted Pebble), the leader registers a new one
// once and orders with it; and an account record deleted by an operator is
// registered again within the same term.
func TestAccountRejected(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "one.acct.tollgate.test")
	r1 := cl.start("r1", nil)
	cl.waitFor("first certificate", time.Minute, func() bool { return cl.record("one.acct.tollgate.test") != nil })
	acctKey, err := cl.keys.Account(c.pebble.Directory(), "ops@tollgate.test")
	if err != nil {
		t.Fatal(err)
	}
	uri := func() string {
		kv, err := st.Get(context.Background(), acctKey)
		if err != nil {
			return ""
		}
		var a acme.AccountRecord
		_ = json.Unmarshal(kv.Value, &a)
		return a.URI
	}
	first := uri()
	// Pebble forgets every account and order.
	c.pebble.Stop(t)
	c.pebble.Start(t)
	addName := func(n string) {
		cfg := *cl.cfg
		a := *cfg.ACME
		a.Domains = append(append([]config.Domain(nil), a.Domains...), config.Domain{Main: n})
		cfg.ACME = &a
		cl.cfg = &cfg
		r1.mgr.SetConfig(&cfg)
	}
	addName("two.acct.tollgate.test")
	cl.waitFor("a certificate with a new account", time.Minute, func() bool { return cl.record("two.acct.tollgate.test") != nil })
	second := uri()
	if second == "" || second == first {
		t.Fatalf("account record %q after the CA rejected %q; want a new account", second, first)
	}
	stateKey, _ := cl.keys.State("two.acct.tollgate.test")
	if _, err := st.Get(context.Background(), stateKey); !errors.Is(err, kvstore.ErrNotFound) {
		t.Errorf("the name has a failure state (err %v): the account's rejection counted as its failure", err)
	}
	// An operator deletes the account record: the leader registers again.
	if _, err := st.Apply(context.Background(), nil, kvstore.DeleteOp(acctKey)); err != nil {
		t.Fatal(err)
	}
	addName("three.acct.tollgate.test")
	cl.waitFor("a certificate after the account record was deleted", time.Minute, func() bool {
		return cl.record("three.acct.tollgate.test") != nil
	})
	if third := uri(); third == "" || third == second {
		t.Fatalf("account record %q after deletion; want a newly registered account", third)
	}
	if n := strings.Count(cl.log.String(), `msg="ACME account registered"`); n != 3 {
		t.Errorf("%d accounts registered, want 3", n)
	}
}

// TestManyWorkersStop: with more orders in flight than any buffer, a
// leader that stops waits for its workers and returns; none blocks
// handing over its result.
func TestManyWorkersStop(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	var names []string
	for i := range 70 {
		names = append(names, fmt.Sprintf("w%02d.workers.tollgate.test", i))
	}
	cl := newTestCluster(t, c, st, names...)
	cl.cfg.ACME.ConcurrentOrders = len(names)
	cl.stickRegistry()
	r1 := cl.start("r1", func(mc *acme.ManagerConfig) { mc.PropagationTimeout = 5 * time.Minute })
	cl.waitFor("every order recorded", 3*time.Minute, func() bool {
		for _, n := range names {
			if o := cl.orderRecord(n); o == nil || o.URL == "" {
				return false
			}
		}
		return true
	})
	stopped := make(chan struct{})
	go func() { r1.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatalf("the replica did not stop with %d orders in flight", len(names))
	}
}

// failingStateWrites is a store whose writes of failure states fail while
// fail is set.
type failingStateWrites struct {
	kvstore.Store
	fail atomic.Bool
}

func (s *failingStateWrites) Apply(ctx context.Context, f kvstore.Lock, ops ...kvstore.Op) (int64, error) {
	if s.fail.Load() {
		for _, op := range ops {
			if strings.Contains(op.Key, "/acme/state/") {
				return 0, errors.New("injected: state write refused")
			}
		}
	}
	return s.Store.Apply(ctx, f, ops...)
}

// TestFailureStateKept: neither a failure state the leader could not
// store nor one that does not decode lets it order again at once.
func TestFailureStateKept(t *testing.T) {
	c := newCA(t)
	st := &failingStateWrites{Store: backendtest.Embedded(t).Client(t)}
	st.fail.Store(true)
	c.failHTTP.Store(true)
	cl := newTestCluster(t, c, st, "unwritable.state.tollgate.test", "corrupt.state.tollgate.test")
	stateKey, _ := cl.keys.State("corrupt.state.tollgate.test")
	if _, err := kvstore.Put(context.Background(), st.Store, stateKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	cl.start("r1", nil)
	cl.waitFor("the failed order", time.Minute, func() bool {
		return strings.Contains(cl.log.String(), `msg="failure state not stored; holding the name back in memory"`)
	})
	// The leader re-plans on every store change and on a timer: give it
	// time to order again if it would.
	time.Sleep(5 * time.Second)
	orders := c.pebble.Orders()
	if n := orders["unwritable.state.tollgate.test"]; n != 1 {
		t.Errorf("%d orders after a failure whose state was not stored, want 1", n)
	}
	if n := orders["corrupt.state.tollgate.test"]; n != 0 {
		t.Errorf("%d orders for a name whose failure state does not decode, want 0", n)
	}
	if !strings.Contains(cl.log.String(), `msg="failure state unreadable; not ordering for an hour, delete the key to order at once"`) {
		t.Error("the unreadable failure state was not reported")
	}
}

// TestAccountRetryKept: after a failed account load the leader tries
// again when it said it would, even when something else woke it first.
func TestAccountRetryKept(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "retry.acct.tollgate.test")
	c.pebble.Stop(t)
	r1 := cl.start("r1", func(mc *acme.ManagerConfig) { mc.BackoffBase = 3 * time.Second })
	cl.waitFor("the failed account load", time.Minute, func() bool {
		return strings.Contains(cl.log.String(), `msg="no ACME account; orders wait for it"`)
	})
	stateKey, err := cl.keys.AccountState()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.Get(context.Background(), stateKey)
	if err != nil {
		t.Fatalf("the account failure is not recorded for cluster status: %v", err)
	}
	var s acme.DomainState
	if err := json.Unmarshal(kv.Value, &s); err != nil || s.Failures != 1 || s.NextAttempt.IsZero() || s.LastError == "" {
		t.Fatalf("account failure state %+v (err %v)", s, err)
	}
	// Something else wakes the leader before the retry is due (a
	// configuration reload), and then nothing does.
	r1.mgr.SetConfig(cl.cfg)
	c.pebble.Start(t)
	cl.waitFor("a certificate after the retry", time.Minute, func() bool { return cl.record("retry.acct.tollgate.test") != nil })
	if _, err := st.Get(context.Background(), stateKey); !errors.Is(err, kvstore.ErrNotFound) {
		t.Errorf("the account failure state is still there after success (err %v)", err)
	}
}

// TestImportedRenewed: a certificate the CA did not issue is renewed,
// when due, with one plain order: no "replaces" naming a certificate the
// CA does not know.
func TestImportedRenewed(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "renew-imported.tollgate.test")
	rec := cl.putImported("renew-imported.tollgate.test")
	if _, err := acme.RequestRenewal(context.Background(), st, cl.keys, "renew-imported.tollgate.test"); err != nil {
		t.Fatal(err)
	}
	cl.start("r1", nil)
	cl.waitFor("the renewed certificate", time.Minute, func() bool {
		r := cl.record("renew-imported.tollgate.test")
		return r != nil && r.Serial != rec.Serial
	})
	if n := c.pebble.Orders()["renew-imported.tollgate.test"]; n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
}

// TestReplacementRefused: when the CA refuses a new order because it does
// not know the certificate named as replaced (a record whose window came
// from elsewhere), no order exists yet and the leader orders without the
// replacement: one order, one new certificate.
func TestReplacementRefused(t *testing.T) {
	c := newCA(t)
	st := backendtest.Embedded(t).Client(t)
	cl := newTestCluster(t, c, st, "refused-replacement.tollgate.test")
	cl.putImported("refused-replacement.tollgate.test")
	now := time.Now().UTC()
	cl.update("refused-replacement.tollgate.test", func(r *acme.CertRecord) {
		r.ARI = &acme.ARIState{WindowStart: now.Add(-time.Hour), WindowEnd: now.Add(time.Hour), RenewAt: now.Add(-time.Minute),
			CheckAgain: now.Add(time.Hour), CheckedAt: now}
	})
	old := cl.record("refused-replacement.tollgate.test")
	cl.start("r1", nil)
	cl.waitFor("the renewed certificate", time.Minute, func() bool {
		r := cl.record("refused-replacement.tollgate.test")
		return r != nil && r.Serial != old.Serial
	})
	if n := c.pebble.Orders()["refused-replacement.tollgate.test"]; n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	if !strings.Contains(cl.log.String(), "the CA refused the replacement of the certificate held; ordering without it") {
		t.Error("the refused replacement was not logged")
	}
}
