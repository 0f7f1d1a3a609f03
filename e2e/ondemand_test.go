package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestOnDemand: a handshake for a name nobody configured asks the ask
// URL; an allowed name is ordered once by the leader, whichever replica
// the handshake reached, and then served; a refused name is never
// requested.
func TestOnDemand(t *testing.T) {
	var asks atomic.Int64
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asks.Add(1)
		if strings.HasPrefix(r.URL.Query().Get("domain"), "yes") {
			return
		}
		http.Error(w, "not ours", http.StatusForbidden)
	}))
	defer ask.Close()
	c := newCluster(t, "etcd://"+etcdAddr(t), "ondemand", 3)
	c.configure(fmt.Sprintf("[acme.tlsChallenge]\n[acme.onDemand]\nask = %q\n", ask.URL), nil)
	c.start()
	roots := c.pebble.IssuerRoots(t)

	yes, no := "yes01.tollgate.test", "no01.tollgate.test"
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := handshake(c.tlsLB.Addr(), yes, roots)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served after 2 minutes: %v", yes, err)
		}
	}
	c.checkServed(c.certs(), []string{yes})
	for range 5 {
		if _, err := handshake(c.tlsLB.Addr(), no, roots); err == nil {
			t.Fatalf("%s served a valid certificate", no)
		}
	}
	key := c.prefix + "/acme/requests/" + no
	if _, err := c.store.Get(context.Background(), key); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("a refused name was requested: %v", err)
	}
	if o := c.pebble.Orders(); o[yes] != 1 || o[no] != 0 {
		t.Fatalf("orders: %v; want %s once and %s never", o, yes, no)
	}
	t.Logf("ask URL asked %d times for 2 names over 3 replicas", asks.Load())
}

// TestOnDemandFlood (issue 14, A9): 5,000 handshakes for names the ask
// URL refuses, from one client network (127.1.0.0/24), while another
// network (127.2.0.0/24) keeps asking a replica for allowed names: the
// allowed names are issued and served during the flood, and the flood is
// summarized in the log, not logged a line a handshake.
func TestOnDemandFlood(t *testing.T) {
	var asksDenied, asksAllowed atomic.Int64
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Query().Get("domain"), "yes") {
			asksAllowed.Add(1)
			return
		}
		asksDenied.Add(1)
		http.Error(w, "not ours", http.StatusForbidden)
	}))
	defer ask.Close()
	c := newCluster(t, "etcd://"+etcdAddr(t), "flood", 2)
	c.extra = "[metrics.prometheus]\n"
	c.configure(fmt.Sprintf("[acme.tlsChallenge]\n[acme.onDemand]\nask = %q\n", ask.URL), nil)
	c.start()
	roots := c.pebble.IssuerRoots(t)
	addr := fmt.Sprintf("127.0.0.1:%d", c.replicas[0].https)

	// The flood: 5,000 made-up names, paced over about 40 seconds so that
	// the allowed names have time to be issued while it lasts.
	const flood = 5000
	pace := rate.NewLimiter(125, 16)
	var next, floodDone atomic.Int64
	var floodWG sync.WaitGroup
	for range 16 {
		floodWG.Go(func() {
			for i := next.Add(1); i <= flood; i = next.Add(1) {
				_ = pace.Wait(context.Background())
				_, _ = handshakeFrom("127.1.0.1", addr, fmt.Sprintf("flood%05d.tollgate.test", i), nil)
				floodDone.Add(1)
			}
		})
	}
	flooding := make(chan struct{})
	go func() { floodWG.Wait(); close(flooding) }()
	time.Sleep(2 * time.Second) // the flood under way

	// The allowed client: each name handshaken again and again while the
	// flood lasts; a handshake counts as served when the chain verifies
	// for the name (the default certificate does not).
	allowed := names("yes", 10)
	var total, served atomic.Int64
	firstServed := make([]atomic.Bool, len(allowed))
	var allowedWG sync.WaitGroup
	for i, name := range allowed {
		allowedWG.Go(func() {
			for {
				select {
				case <-flooding:
					return
				case <-time.After(200 * time.Millisecond):
				}
				_, err := handshakeFrom("127.2.0.1", addr, name, roots)
				select {
				case <-flooding:
					return // finished after the flood: not counted
				default:
				}
				total.Add(1)
				if err == nil {
					served.Add(1)
					firstServed[i].Store(true)
				}
			}
		})
	}
	allowedWG.Wait()
	<-flooding

	var logLines, summaries int
	for _, r := range c.replicas {
		for _, line := range strings.Split(r.log.String(), "\n") {
			if !strings.Contains(line, `msg="on-demand`) {
				continue
			}
			logLines++
			if strings.Contains(line, "on-demand handshakes served the default certificate") {
				summaries++
			}
		}
	}
	t.Logf("metrics of %s:\n%s", c.replicas[0].id, onDemandMetrics(t, c.replicas[0]))
	t.Logf("flood of %d handshakes: allowed handshakes served their certificate %d of %d; asks: %d denied, %d allowed; %d on-demand log lines (%d summaries)",
		floodDone.Load(), served.Load(), total.Load(), asksDenied.Load(), asksAllowed.Load(), logLines, summaries)
	for i, name := range allowed {
		if !firstServed[i].Load() {
			t.Errorf("%s never served its certificate during the flood", name)
		}
	}
	if served.Load()*10 < total.Load()*8 {
		t.Errorf("allowed handshakes served their certificate %d of %d during the flood, want 80%% at least", served.Load(), total.Load())
	}
	if logLines > 100 {
		t.Errorf("%d on-demand log lines for a flood of %d handshakes, want a summary", logLines, flood)
	}
}

// handshakeFrom is handshake from the loopback address src; with roots
// nil it does not verify the chain.
func handshakeFrom(src, addr, name string, roots *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots,
		InsecureSkipVerify: roots == nil, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	return fmt.Sprintf("%x", leaf.SerialNumber.Bytes()), nil
}

// onDemandMetrics returns r's on-demand metrics.
func onDemandMetrics(t *testing.T, r *replica) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.api))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "tollgate_acme_ondemand_") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
