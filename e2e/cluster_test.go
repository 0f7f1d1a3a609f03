package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/leader"
)

// binary builds tollgate once per test run.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tollgate-e2e-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tollgate")
	out, err := exec.Command("go", "build", "-o", path, "../cmd/tollgate").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return path, nil
})

// cluster is a store, a CA, load balancers and tollgate replicas.
type cluster struct {
	t        *testing.T
	endpoint string
	prefix   string
	pebble   *testserver.Pebble
	httpLB   *testserver.Balancer
	tlsLB    *testserver.Balancer
	keyFile  string
	store    kvstore.Store
	replicas []*replica
	// extra is appended to every replica's configuration.
	extra string
	// env is added to every replica's environment.
	env []string
}

// replica is one tollgate process.
type replica struct {
	id               string
	http, https, api int
	configFile       string
	cmd              *exec.Cmd
	log              *testserver.Buffer
	// past holds the logs of the replica's earlier processes.
	past strings.Builder
	done chan struct{}
}

func newCluster(t *testing.T, endpoint, prefix string, n int) *cluster {
	t.Helper()
	return newClusterWith(t, endpoint, prefix, n, testserver.PebbleOptions{})
}

func newClusterWith(t *testing.T, endpoint, prefix string, n int, po testserver.PebbleOptions) *cluster {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	_ = bin
	lbPorts := testserver.FreePorts(t, 2)
	c := &cluster{t: t, endpoint: endpoint, prefix: prefix}
	po.HTTPPort, po.TLSPort = lbPorts[0], lbPorts[1]
	c.pebble = testserver.StartPebble(t, po)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c.keyFile = filepath.Join(t.TempDir(), "encryption-key")
	if err := os.WriteFile(c.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.store, err = backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	var httpAddrs, tlsAddrs []string
	for i := range n {
		ports := testserver.FreePorts(t, 3)
		r := &replica{id: fmt.Sprintf("r%d", i+1), http: ports[0], https: ports[1], api: ports[2],
			configFile: filepath.Join(t.TempDir(), "tollgate.toml")}
		c.replicas = append(c.replicas, r)
		httpAddrs = append(httpAddrs, fmt.Sprintf("127.0.0.1:%d", r.http))
		tlsAddrs = append(tlsAddrs, fmt.Sprintf("127.0.0.1:%d", r.https))
	}
	c.httpLB = testserver.NewBalancer(t, lbPorts[0], httpAddrs...)
	c.tlsLB = testserver.NewBalancer(t, lbPorts[1], tlsAddrs...)
	return c
}

// configure writes every replica's configuration: the challenge
// sections given and one [[acme.domains]] per name.
func (c *cluster) configure(challenges string, names []string) {
	c.t.Helper()
	var domains strings.Builder
	for _, n := range names {
		fmt.Fprintf(&domains, "\n[[acme.domains]]\nmain = %q\n", n)
	}
	for _, r := range c.replicas {
		cfg := fmt.Sprintf(`[store]
endpoint = %q
prefix = %q

[entryPoints.web]
address = "127.0.0.1:%d"

[entryPoints.websecure]
address = "127.0.0.1:%d"
  [entryPoints.websecure.http.tls]

[entryPoints.api]
address = "127.0.0.1:%d"

[api]

[lifecycle]
drainDelay = "10ms"
graceTimeout = "2s"

[acme]
email = "e2e@tollgate.test"
caServer = %q
caCertificates = [%q]
encryptionKeyFile = %q
%s
%s
%s
`, c.endpoint, c.prefix, r.http, r.https, r.api, c.pebble.Directory(), c.pebble.CACertFile(), c.keyFile, challenges, domains.String(), c.extra)
		tmp := r.configFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			c.t.Fatal(err)
		}
		if err := os.Rename(tmp, r.configFile); err != nil {
			c.t.Fatal(err)
		}
	}
}

// start starts every replica that is not running and waits until each is
// ready.
func (c *cluster) start() {
	c.t.Helper()
	bin, _ := binary()
	for _, r := range c.replicas {
		if r.cmd != nil {
			continue
		}
		if r.log != nil {
			r.past.WriteString(r.log.String())
		}
		r.log = &testserver.Buffer{}
		r.cmd = exec.Command(bin, "serve", "--config", r.configFile, "--node-id", r.id)
		r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
		r.cmd.Env = append(os.Environ(), c.env...)
		if err := r.cmd.Start(); err != nil {
			c.t.Fatal(err)
		}
		r.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
		c.t.Cleanup(func() { c.stop(r, syscall.SIGTERM) })
	}
	for _, r := range c.replicas {
		c.waitReady(r)
	}
}

func (c *cluster) waitReady(r *replica) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", r.api))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.done:
			c.t.Fatalf("replica %s exited:\n%s", r.id, r.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.t.Fatalf("replica %s not ready after a minute:\n%s", r.id, r.log.String())
}

// stop signals r and waits for it to exit.
func (c *cluster) stop(r *replica, sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	if c.t.Failed() {
		c.t.Logf("log of %s:\n%s", r.id, tail(r.log.String(), 60))
	}
	r.cmd = nil
}

// failedOrders counts, by domain, the orders the replicas logged as
// failed.
func (c *cluster) failedOrders() map[string]int {
	re := regexp.MustCompile(`msg="certificate order failed" domain=(\S+)`)
	n := map[string]int{}
	for _, r := range c.replicas {
		if r.log == nil {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(r.past.String()+r.log.String(), -1) {
			n[m[1]]++
		}
	}
	return n
}

// leader returns the replica that holds the leader lock.
func (c *cluster) leader() *replica {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		kv, err := c.store.Get(context.Background(), c.prefix+"/"+leader.DefaultKey)
		if err == nil {
			var info leader.Info
			if json.Unmarshal(kv.Value, &info) == nil {
				for _, r := range c.replicas {
					if r.id == info.ID && r.cmd != nil {
						return r
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no leader after a minute")
	return nil
}

// certs returns the certificate records in the store by main domain.
func (c *cluster) certs() map[string]*acme.CertRecord {
	c.t.Helper()
	l, err := c.store.List(context.Background(), c.prefix+"/acme/certs/")
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]*acme.CertRecord{}
	for _, kv := range l.KVs {
		rec, err := acme.DecodeCert(kv.Value)
		if err != nil {
			c.t.Fatalf("%s: %v", kv.Key, err)
		}
		if rec.PrivateKey.Alg != acme.AlgXChaCha || strings.Contains(rec.PrivateKey.Data, "PRIVATE KEY") {
			c.t.Fatalf("%s: private key not encrypted", kv.Key)
		}
		if !strings.Contains(rec.Certificate, "BEGIN CERTIFICATE") {
			c.t.Fatalf("%s: no PEM chain in clear", kv.Key)
		}
		out[rec.Domains[0]] = rec
	}
	return out
}

// waitCerts waits until every name has a certificate in the store, and
// calls during(n) with the count each time it grows.
func (c *cluster) waitCerts(names []string, timeout time.Duration, during func(n int)) map[string]*acme.CertRecord {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		got := c.certs()
		n := 0
		for _, name := range names {
			if got[name] != nil {
				n++
			}
		}
		if n == len(names) {
			return got
		}
		if n != last && during != nil {
			during(n)
		}
		last = n
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, r := range c.replicas {
				if r.log != nil {
					fmt.Fprintf(&logs, "--- %s\n%s\n", r.id, tail(r.log.String(), 40))
				}
			}
			c.t.Fatalf("%d of %d certificates after %s\n%s", n, len(names), timeout, logs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkServed checks that every running replica serves every name a
// certificate the CA issued for it, with the serial stored.
func (c *cluster) checkServed(want map[string]*acme.CertRecord, names []string) {
	c.t.Helper()
	roots := c.pebble.IssuerRoots(c.t)
	for _, r := range c.replicas {
		if r.cmd == nil {
			continue
		}
		for _, name := range names {
			var last string
			deadline := time.Now().Add(30 * time.Second)
			for {
				serial, err := handshake(fmt.Sprintf("127.0.0.1:%d", r.https), name, roots)
				if err == nil && serial == want[name].Serial {
					break
				}
				last = fmt.Sprintf("serial %q (stored %q), err %v", serial, want[name].Serial, err)
				if time.Now().After(deadline) {
					c.t.Fatalf("replica %s does not serve %s: %s", r.id, name, last)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// handshake connects to addr with SNI name, verifies the chain against
// roots and returns the leaf's serial in hex.
func handshake(addr, name string, roots *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	return fmt.Sprintf("%x", leaf.SerialNumber.Bytes()), nil
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d.tollgate.test", prefix, i+1)
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func etcdAddr(t *testing.T) string { return testserver.Etcd(t).Addr }

func pebbleShortLived() testserver.PebbleOptions {
	return testserver.PebbleOptions{CertValidity: 90 * time.Second}
}

// stores starts a Consul and an etcd server.
func stores(t *testing.T) map[string]string {
	return map[string]string{
		"consul": "consul://" + testserver.Consul(t).Addr,
		"etcd":   "etcd://" + testserver.Etcd(t).Addr,
	}
}

// TestClusterIssuance: three replicas behind round-robin load balancers
// obtain 20 certificates by HTTP-01 and 20 by TLS-ALPN-01, whichever
// replica the CA's validation reaches; every replica serves every
// certificate; each name is ordered once.
func TestClusterIssuance(t *testing.T) {
	for name, endpoint := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, endpoint, "e2e", 3)
			httpNames, tlsNames := names("h", 20), names("t", 20)
			c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", httpNames)
			c.start()
			got := c.waitCerts(httpNames, 5*time.Minute, nil)
			c.checkServed(got, httpNames)

			all := append(slices.Clone(httpNames), tlsNames...)
			c.configure("[acme.tlsChallenge]\n", all)
			got = c.waitCerts(all, 5*time.Minute, nil)
			c.checkServed(got, all)

			orders := c.pebble.Orders()
			for _, n := range all {
				if orders[n] != 1 {
					t.Errorf("%s ordered %d times, want 1", n, orders[n])
				}
			}
		})
	}
}

// TestLeaderKilled: with 20 names and 4 orders at a time, the leader is
// SIGKILLed five times while orders are in flight, and restarted each
// time; the next leader resumes the orders the killed one recorded. Every
// name is issued; counted at Pebble, a kill costs at most one order placed
// again (one placed but not yet recorded when the leader died), and no
// name gets a second certificate.
func TestLeaderKilled(t *testing.T) {
	for name, endpoint := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, endpoint, "kill", 3)
			all := names("k", 20)
			c.configure("concurrentOrders = 4\n[acme.httpChallenge]\nentryPoint = \"web\"\n", all)
			c.start()
			const kills = 5
			killed := 0
			var lastToken int64
			deadline := time.Now().Add(6 * time.Minute)
			for killed < kills {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d kills with orders in flight before the deadline", killed, kills)
				}
				if n := len(c.certs()); n == len(all) {
					t.Fatalf("all names issued after %d of %d kills", killed, kills)
				}
				info, l := c.leaderInfo()
				// Kill a leader that has led for a moment (resuming or
				// placing orders) while orders are recorded.
				if l != nil && info.Token != lastToken && time.Since(info.Since) > time.Second && c.ordersInFlight() > 0 {
					t.Logf("kill %d: leader %s (term %d) with %d order(s) in flight, %d of %d issued",
						killed+1, l.id, info.Token, c.ordersInFlight(), len(c.certs()), len(all))
					c.stop(l, syscall.SIGKILL)
					killed++
					lastToken = info.Token
					c.start()
				}
				time.Sleep(50 * time.Millisecond)
			}
			got := c.waitCerts(all, 5*time.Minute, nil)
			c.checkServed(got, all)
			// An order the CA failed (a validation that met a
			// transient error, say) is retried; that is not a
			// duplicate.
			failed := c.failedOrders()
			orders, issued := c.pebble.Orders(), c.pebble.Certificates()
			extra, dupCerts := 0, 0
			for _, n := range all {
				extra += max(orders[n]-1-failed[n], 0)
				dupCerts += max(issued[n]-1, 0)
			}
			t.Logf("%d kills: %d orders placed again, %d duplicate certificates; orders %v; certificates %v; failed %v",
				kills, extra, dupCerts, orders, issued, failed)
			if extra > kills {
				t.Errorf("%d orders placed again in %d kills, want at most one a kill", extra, kills)
			}
			if dupCerts != 0 {
				t.Errorf("%d duplicate certificates, want 0", dupCerts)
			}
		})
	}
}

// leaderInfo returns the leader record and its running replica; nil when
// no running replica leads.
func (c *cluster) leaderInfo() (leader.Info, *replica) {
	var info leader.Info
	kv, err := c.store.Get(context.Background(), c.prefix+"/"+leader.DefaultKey)
	if err != nil || json.Unmarshal(kv.Value, &info) != nil {
		return info, nil
	}
	for _, r := range c.replicas {
		if r.id == info.ID && r.cmd != nil {
			return info, r
		}
	}
	return info, nil
}

// ordersInFlight counts the order records in the store.
func (c *cluster) ordersInFlight() int {
	l, err := c.store.List(context.Background(), c.prefix+"/acme/orders/")
	if err != nil {
		return 0
	}
	return len(l.KVs)
}
