package e2e

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestStoreOutage: the store is stopped for 60 seconds while clients
// keep handshaking through the load balancer: not one handshake for a
// known name fails. Names added meanwhile are issued once it is back.
func TestStoreOutage(t *testing.T) {
	consul := testserver.Consul(t)
	c := newCluster(t, "consul://"+consul.Addr, "outage", 3)
	known, later := names("o", 5), names("n", 3)
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", known)
	c.start()
	c.checkServed(c.waitCerts(known, 3*time.Minute, nil), known)

	roots := c.pebble.IssuerRoots(t)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				name := known[rand.IntN(len(known))]
				d := &net.Dialer{Timeout: 5 * time.Second}
				conn, err := tls.DialWithDialer(d, "tcp", c.tlsLB.Addr(), &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12})
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", name, err))
				} else {
					ok.Add(1)
					conn.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	consul.Stop(t)
	t.Log("store stopped")
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", append(slices.Clone(known), later...))
	time.Sleep(60 * time.Second)
	during := ok.Load()
	consul.Start(t)
	t.Log("store started again")
	c.waitCerts(later, 3*time.Minute, nil)
	close(stop)
	wg.Wait()
	t.Logf("%d handshakes succeeded (%d while the store was down), %d failed", ok.Load(), during, failed.Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d handshakes failed; first: %v", n, firstErr.Load())
	}
	c.checkServed(c.certs(), append(slices.Clone(known), later...))
}
