package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRenewal: with certificates that live 90 seconds, the leader renews
// each before it expires, every replica serves the new one, and a
// connection opened before the renewal keeps working after it.
func TestRenewal(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer backend.Close()
	c := newClusterWith(t, "etcd://"+etcdAddr(t), "renew", 3, pebbleShortLived())
	c.extra = fmt.Sprintf(`
[http.routers.app]
rule = "PathPrefix(`+"`/`"+`)"
service = "app"
  [http.routers.app.tls]

[http.services.app.loadBalancer]
  [[http.services.app.loadBalancer.servers]]
  url = %q
`, backend.URL)
	all := names("r", 2)
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
	c.start()
	first := c.waitCerts(all, 3*time.Minute, nil)
	c.checkServed(first, all)

	// A keep-alive connection to the first replica, opened on the first
	// certificate.
	r := c.replicas[0]
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.https), &tls.Config{ServerName: all[0], RootCAs: c.pebble.IssuerRoots(t), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	get := func() {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", all[0])
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("request on the connection opened before the renewal: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request on the old connection: %s", resp.Status)
		}
	}
	get()

	deadline := time.Now().Add(3 * time.Minute)
	var renewed map[string]*recordPair
	for {
		renewed = map[string]*recordPair{}
		now := c.certs()
		for _, n := range all {
			if now[n].Serial != first[n].Serial {
				renewed[n] = &recordPair{old: first[n].NotAfter, newFrom: now[n].NotBefore, written: now[n].Written}
			}
		}
		if len(renewed) == len(all) {
			c.checkServed(now, all)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d renewed after 3 minutes", len(renewed), len(all))
		}
		get() // the connection stays usable throughout
		time.Sleep(time.Second)
	}
	for n, p := range renewed {
		if !p.written.Before(p.old) {
			t.Errorf("%s renewed at %s, after the old certificate expired at %s", n, p.written, p.old)
		}
		t.Logf("%s renewed at %s, %s before the old one expired", n, p.written.Format(time.TimeOnly), p.old.Sub(p.written).Round(time.Second))
	}
	get()
}

type recordPair struct{ old, newFrom, written time.Time }
