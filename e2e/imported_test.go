package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestImportedCertificatesKept: certificates imported from Traefik (an
// acme.json) that the cluster's CA did not issue are served and not
// ordered again: the CA's renewal information does not know them, which
// never means "renew now"; they renew at two thirds of their lifetime.
func TestImportedCertificatesKept(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "imported", 2)
	all := names("i", 3)
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
	roots, file := traefikACMEJSON(t, all, time.Now().Add(-10*24*time.Hour), time.Now().Add(80*24*time.Hour))
	code, out := tollgateCmd(t, "certs", "import", "--from-acme-json", file, "--config", c.replicas[0].configFile)
	if code != 0 {
		t.Fatalf("certs import: exit %d\n%s", code, out)
	}
	c.start()
	deadline := time.Now().Add(time.Minute)
	for {
		asked := 0
		for _, rec := range c.certs() {
			if rec.ARI != nil && rec.ARI.Failures > 0 {
				asked++
			}
		}
		if asked == len(all) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewal information asked for %d of %d imported certificates after a minute", asked, len(all))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // time for a wrongly planned order
	for _, n := range all {
		if o := c.pebble.Orders()[n]; o != 0 {
			t.Errorf("%s: %d orders for an imported certificate with 80 of 90 days left, want 0", n, o)
		}
	}
	for name, rec := range c.certs() {
		if want := rec.NotAfter.Add(-rec.NotAfter.Sub(rec.NotBefore) / 3); !rec.RenewAt().Equal(want) {
			t.Errorf("%s: renewal at %s, want %s", name, rec.RenewAt(), want)
		}
		t.Logf("%s: ARI %s", name, rec.ARI.LastError)
	}
	for _, r := range c.replicas {
		for _, n := range all {
			if _, err := handshake(fmt.Sprintf("127.0.0.1:%d", r.https), n, roots); err != nil {
				t.Errorf("replica %s does not serve the imported certificate of %s: %v", r.id, n, err)
			}
		}
	}
}

// traefikACMEJSON writes a Traefik v2 acme.json with one resolver holding
// a certificate for each name, from a CA made here, and returns the CA's
// pool and the file.
func traefikACMEJSON(t *testing.T, names []string, notBefore, notAfter time.Time) (*x509.CertPool, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Old CA"},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	type entry struct {
		Domain struct {
			Main string `json:"main"`
		} `json:"domain"`
		Certificate []byte `json:"certificate"`
		Key         []byte `json:"key"`
		Store       string `json:"Store"`
	}
	var entries []entry
	for i, n := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(100 + i)), Subject: pkix.Name{CommonName: n}, DNSNames: []string{n},
			NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		var e entry
		e.Domain.Main = n
		e.Certificate = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
		e.Key = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		e.Store = "default"
		entries = append(entries, e)
	}
	doc := map[string]any{"le": map[string]any{"Account": nil, "Certificates": entries}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acme.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return pool, file
}

// TestLeaderPaused: a leader paused (SIGSTOP) past its lock's TTL with
// orders in flight loses leadership; the next leader resumes the orders it
// recorded, and when the paused one wakes its writes are fenced: no name
// is ordered twice or gets two certificates.
func TestLeaderPaused(t *testing.T) {
	c := newCluster(t, "etcd://"+etcdAddr(t), "paused", 3)
	all := names("p", 8)
	c.configure("concurrentOrders = 4\n[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
	c.start()
	deadline := time.Now().Add(2 * time.Minute)
	var paused *replica
	var token int64
	for paused == nil {
		if time.Now().After(deadline) {
			t.Fatal("no leader with orders in flight to pause")
		}
		if info, l := c.leaderInfo(); l != nil && time.Since(info.Since) > 1500*time.Millisecond && c.ordersInFlight() > 0 {
			t.Logf("pausing leader %s (term %d) with %d order(s) in flight", l.id, info.Token, c.ordersInFlight())
			if err := l.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			paused, token = l, info.Token
			// A load balancer's health check takes a stopped replica
			// out; the test's balancers have none.
			var httpAddrs, tlsAddrs []string
			for _, r := range c.replicas {
				if r != paused {
					httpAddrs = append(httpAddrs, fmt.Sprintf("127.0.0.1:%d", r.http))
					tlsAddrs = append(tlsAddrs, fmt.Sprintf("127.0.0.1:%d", r.https))
				}
			}
			c.httpLB.SetBackends(httpAddrs...)
			c.tlsLB.SetBackends(tlsAddrs...)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resumed := false
	cont := func() {
		if !resumed {
			resumed = true
			_ = paused.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(cont)
	// Another replica takes over once the paused one's lease expires.
	for {
		if info, l := c.leaderInfo(); l != nil && info.Token != token {
			t.Logf("replica %s leads (term %d)", l.id, info.Token)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader while the old one is paused")
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := c.waitCerts(all, 3*time.Minute, nil)
	cont()
	time.Sleep(5 * time.Second) // the paused leader wakes and finds its term over
	if after := c.certs(); len(after) != len(all) {
		t.Fatalf("%d certificates after the paused leader woke, want %d", len(after), len(all))
	}
	for n, rec := range c.certs() {
		if rec.Serial != got[n].Serial {
			t.Errorf("%s: the woken leader replaced the certificate (serial %s, was %s)", n, rec.Serial, got[n].Serial)
		}
	}
	failed := c.failedOrders()
	orders, issued := c.pebble.Orders(), c.pebble.Certificates()
	// Every order beyond the first is explained by a failed attempt; a
	// failed attempt need not have placed one (the paused leader's can
	// fail on the way to the CA).
	for _, n := range all {
		if extra := orders[n] - 1; extra < 0 || extra > failed[n] || issued[n] != 1 {
			t.Errorf("%s: %d orders (%d failed attempts) and %d certificates at the CA, want 1 order plus at most one per failed attempt, and 1 certificate", n, orders[n], failed[n], issued[n])
		}
	}
	t.Logf("orders %v; certificates %v", orders, issued)
}
