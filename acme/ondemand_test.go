package acme_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend/backendtest"
)

// askServer allows names starting with "ok" and counts the asks.
func askServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var asks atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asks.Add(1)
		if !strings.HasPrefix(r.URL.Query().Get("domain"), "ok") {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	t.Cleanup(s.Close)
	return s, &asks
}

func onDemandConfig(ask string) *config.Config {
	return &config.Config{ACME: &config.ACME{OnDemand: &config.OnDemand{Ask: ask}}}
}

func newOnDemand(t *testing.T, f *fixture, cfg acme.OnDemandConfig) *acme.OnDemand {
	t.Helper()
	cfg.Cache, cfg.Store, cfg.Keys, cfg.Node = f.c, f.s, f.keys, "test-node"
	od, err := acme.NewOnDemand(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return od
}

// TestOnDemand: an allowed name is requested in the store and the waiting
// handshake gets the certificate once it is written; a refused name is
// neither requested nor waited for; answers are kept.
func TestOnDemand(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	ask, asks := askServer(t)
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: testTimeout})
	hello := func(name string) *tls.ClientHelloInfo { return &tls.ClientHelloInfo{ServerName: name} }

	// Off without an ask URL.
	if c, err := od.GetCertificate(hello("ok.example.com")); c != nil || err != nil || asks.Load() != 0 {
		t.Fatalf("on-demand answered while off: %v %v, %d asks", c, err, asks.Load())
	}
	od.SetConfig(onDemandConfig(ask.URL))

	// The "leader": writes the certificate once the request appears.
	requestKey := f.key(f.keys.Request, "ok.example.com")
	var leaderDER []byte
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(f.ctx, testTimeout)
		defer cancel()
		for ctx.Err() == nil {
			if _, err := f.s.Get(ctx, requestKey); err == nil {
				_, leaderDER = f.putCert([]string{"ok.example.com"}, time.Now().Add(90*24*time.Hour))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	c, err := od.GetCertificate(hello("ok.example.com"))
	wg.Wait()
	if err != nil || c == nil || !bytes.Equal(c.Certificate[0], leaderDER) {
		t.Fatalf("the waiting handshake did not get the new certificate: %v, %v", c, err)
	}

	if c, err := od.GetCertificate(hello("no.example.com")); c != nil || err != nil {
		t.Fatalf("a refused name was served: %v %v", c, err)
	}
	if _, err := f.s.Get(f.ctx, f.key(f.keys.Request, "no.example.com")); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("a refused name was requested: %v", err)
	}
	before := asks.Load()
	for range 3 {
		_, _ = od.GetCertificate(hello("no.example.com"))
	}
	if asks.Load() != before {
		t.Fatalf("a refusal was not kept: %d more asks", asks.Load()-before)
	}
	for _, bad := range []string{"", "localhost", "127.0.0.1", "*.example.com", "a..b.example.com", "é.example.com"} {
		if c, _ := od.GetCertificate(hello(bad)); c != nil {
			t.Fatalf("%q served", bad)
		}
	}
	if asks.Load() != before {
		t.Fatal("names that cannot have a certificate were asked about")
	}
}

// TestOnDemandLimits: asks beyond the rate are refused without asking
// (one client network gets half the burst, the rest is kept for others),
// and a handshake waits no longer than Wait.
func TestOnDemandLimits(t *testing.T) {
	f := newFixture(t, backendtest.Embedded(t).Client(t)).start()
	ask, asks := askServer(t)
	od := newOnDemand(t, f, acme.OnDemandConfig{Wait: 200 * time.Millisecond, AsksPerSecond: 0.001, AskBurst: 4})
	od.SetConfig(onDemandConfig(ask.URL))
	for _, n := range []string{"ok1.example.com", "ok2.example.com", "ok3.example.com", "ok4.example.com"} {
		if c, err := od.GetCertificate(&tls.ClientHelloInfo{ServerName: n}); c != nil || err != nil {
			t.Fatalf("%s: %v %v with nobody ordering", n, c, err)
		}
	}
	if n := asks.Load(); n != 2 {
		t.Fatalf("%d asks, want half the burst of 4", n)
	}
}

// FuzzOnDemandName: a server name from a client either fails the
// hostname check or makes a valid request key.
func FuzzOnDemandName(f *testing.F) {
	for _, s := range []string{"example.com", "a.b.example.com", "xn--bcher-kva.example", "", ".", "a/b.example.com", "..", "*.x.y", "a b.c"} {
		f.Add(s)
	}
	keys := acme.NewKeys("tollgate")
	f.Fuzz(func(t *testing.T, name string) {
		if config.CheckHostname(name) != nil {
			return
		}
		if _, err := keys.Request(name); err != nil {
			t.Fatalf("%q passed the hostname check but is no key segment: %v", name, err)
		}
	})
}
