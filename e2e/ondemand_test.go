package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
