package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestUnusableRecords (issue 14, A7): certificate records that decode but
// cannot be served (the key sealed for another name, a chain that is not
// the key's), and garbage or truncated ones, written while the replicas
// run and while they are stopped. Each name is reported failing by
// cluster status, certs list and the replicas' metrics, replicas that
// were running keep serving the last good certificate, restarted ones
// become ready, and the leader orders each name once more (counted at
// Pebble) when the backoff recorded in its state allows it.
func TestUnusableRecords(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "unusable", 2)
	c.extra = "\n[metrics.prometheus]\n"
	running, restarted := names("run", 4), names("rst", 4)
	all := append(append([]string{}, running...), restarted...)
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
	c.start()
	good := c.waitCerts(all, 4*time.Minute, nil)
	c.checkServed(good, all)
	cfg := c.replicas[0].configFile
	roots := c.pebble.IssuerRoots(t)

	// Damage the records of names while the replicas run, with a failure
	// state that holds the leader back for a while so that what is
	// reported meanwhile can be checked.
	next := c.damage(running, good)
	c.checkFailing(cfg, running)
	orders := c.pebble.Orders()
	for _, r := range c.replicas {
		for _, n := range running {
			if !c.damaged(n, good) {
				t.Logf("%s was issued again before it could be checked", n)
				continue
			}
			if orders[n] != 1 && time.Now().Before(next) {
				t.Errorf("%s ordered again (%d orders) before its next attempt", n, orders[n])
			}
			if v := scrapeUnusable(t, r.api, n); v != 1 {
				t.Errorf("replica %s: tollgate_acme_certificates_unusable{domain=%q} = %v, want 1", r.id, n, v)
			}
			// The last good certificate is still served.
			serial, err := handshake(fmt.Sprintf("127.0.0.1:%d", r.https), n, roots)
			if err != nil || serial != good[n].Serial {
				t.Errorf("replica %s serves %s: serial %q (good %q), err %v", r.id, n, serial, good[n].Serial, err)
			}
		}
	}
	for _, n := range running {
		c.waitReissued(n, good, 2*time.Minute)
	}

	// Damage the others while every replica is stopped: the restarted
	// replicas have nothing to serve for them, yet become ready.
	for _, r := range c.replicas {
		c.stop(r, syscall.SIGTERM)
	}
	c.damage(restarted, good)
	c.checkFailing(cfg, restarted)
	c.start()
	for _, r := range c.replicas {
		for _, n := range restarted {
			if !c.damaged(n, good) {
				t.Logf("%s was issued again before it could be checked", n)
				continue
			}
			if v := scrapeUnusable(t, r.api, n); v != 1 {
				t.Errorf("replica %s: tollgate_acme_certificates_unusable{domain=%q} = %v, want 1", r.id, n, v)
			}
		}
	}
	for _, n := range restarted {
		c.waitReissued(n, good, 2*time.Minute)
	}

	now := c.certs()
	c.checkServed(now, all)
	for _, r := range c.replicas {
		for _, n := range all {
			if v := scrapeUnusable(t, r.api, n); v != 0 {
				t.Errorf("replica %s: %s still unusable after it was issued again", r.id, n)
			}
		}
	}
	code, out := tollgateCmd(t, "cluster", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "0 name(s) failing") {
		t.Errorf("cluster status once every name is issued again: exit %d\n%s", code, out)
	}
	orders = c.pebble.Orders()
	failed := c.failedOrders()
	for _, n := range all {
		if orders[n]-failed[n] != 2 {
			t.Errorf("%s ordered %d times (%d failed), want 2: the first issue and one after the damage", n, orders[n], failed[n])
		}
	}
}

// damage replaces the certificate records of names (four of them) with,
// in turn: one whose private key is sealed for another name, one whose
// chain is not its key's, garbage and a truncated record; and writes each
// a failure state whose next attempt is 45 seconds away, which it returns.
func (c *cluster) damage(names []string, good map[string]*acme.CertRecord) time.Time {
	c.t.Helper()
	keys := acme.NewKeys(c.prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := time.Now().Add(45 * time.Second)
	var ops []kvstore.Op
	for i, n := range names {
		key, _ := keys.Cert(n)
		rec := *good[n]
		var b []byte
		switch i % 4 {
		case 0: // the key of another name
			rec.PrivateKey = good[names[(i+1)%len(names)]].PrivateKey
			b, _ = json.Marshal(rec)
		case 1: // a chain for the name, of another key
			cert, _, _ := selfSignedPEM(c.t, n) // a key nobody keeps
			rec.Certificate = string(cert)
			b, _ = json.Marshal(rec)
		case 2: // garbage
			b = make([]byte, 300)
			_, _ = rand.Read(b)
		case 3: // truncated
			full, _ := json.Marshal(rec)
			b = full[:len(full)*2/3]
		}
		stateKey, _ := keys.State(n)
		st, _ := json.Marshal(acme.DomainState{Failures: 1, LastError: "test", LastAttempt: time.Now(), NextAttempt: next})
		ops = append(ops, kvstore.PutOp(key, b), kvstore.PutOp(stateKey, st))
	}
	if _, err := c.store.Apply(ctx, nil, ops...); err != nil {
		c.t.Fatal(err)
	}
	return next
}

// checkFailing checks that cluster status and certs list report every
// name of names failing for its unusable record, and that neither prints
// anything of a sealed key.
func (c *cluster) checkFailing(cfg string, names []string) {
	c.t.Helper()
	code, out := tollgateCmd(c.t, "cluster", "status", "--config", cfg)
	if code > 1 || !strings.Contains(out, fmt.Sprintf("(%d with an unusable record)", len(names))) {
		c.t.Errorf("cluster status: exit %d\n%s", code, out)
	}
	code, out = tollgateCmd(c.t, "certs", "list", "--config", cfg)
	if code != 0 {
		c.t.Errorf("certs list: exit %d\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") && !strings.Contains(line, "stored record unusable") {
				c.t.Errorf("certs list does not report %s failing:\n%s", n, line)
			}
		}
	}
	for _, n := range names {
		code, out = tollgateCmd(c.t, "certs", "show", "--config", cfg, n)
		if code != 0 || !strings.Contains(out, "stored record unusable") || strings.Contains(out, "PRIVATE KEY") {
			c.t.Errorf("certs show %s: exit %d\n%s", n, code, out)
		}
		if rec := c.stored(n); rec != nil && rec.PrivateKey.Data != "" && strings.Contains(out, rec.PrivateKey.Data[:16]) {
			c.t.Errorf("certs show %s prints the sealed key:\n%s", n, out)
		}
	}
}

// damaged reports whether name's stored record is still the damaged one
// (garbage, or a record of the good serial).
func (c *cluster) damaged(name string, good map[string]*acme.CertRecord) bool {
	rec := c.stored(name)
	return rec == nil || rec.Serial == good[name].Serial
}

// waitReissued waits until name's stored record decodes and has a serial
// other than good's.
func (c *cluster) waitReissued(name string, good map[string]*acme.CertRecord, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for c.damaged(name, good) {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not issued again after %s", name, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stored returns the record stored for name if it decodes.
func (c *cluster) stored(name string) *acme.CertRecord {
	key, _ := acme.NewKeys(c.prefix).Cert(name)
	kv, err := c.store.Get(context.Background(), key)
	if err != nil {
		return nil
	}
	rec, _ := acme.DecodeCert(kv.Value)
	return rec
}

// scrapeUnusable returns tollgate_acme_certificates_unusable{domain} of
// the replica whose API listens on port; 0 when it is not reported.
func scrapeUnusable(t *testing.T, port int, domain string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := fmt.Sprintf("tollgate_acme_certificates_unusable{domain=%q} ", domain)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}
