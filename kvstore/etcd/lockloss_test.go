package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestLockLostBeforeTakeover cuts a lock holder off from etcd and lets a
// second client wait for the lock: by the time the server has expired
// the first holder's lease and the second client holds the lock, the
// first holder's Done must be closed already. It does not measure time:
// it checks the order of the two events.
func TestLockLostBeforeTakeover(t *testing.T) {
	srv := testserver.Etcd(t)
	b := newStore(t, srv.Addr)
	for _, tc := range []struct {
		name string
		drop bool
	}{
		{"stalled", false},
		{"dropped", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := testserver.NewProxy(t, srv.Addr)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			a, err := New(ctx, Config{Endpoints: []string{proxy.Addr()},
				DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.Close() })
			key := "loss/" + tc.name
			la, err := a.Lock(ctx, key, kvstore.LockOptions{TTL: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			proxy.Freeze(tc.drop)
			lb, err := b.Lock(ctx, key, kvstore.LockOptions{TTL: 3 * time.Second})
			if err != nil {
				t.Fatalf("second holder: %v", err)
			}
			defer lb.Release(ctx)
			select {
			case <-la.Done():
			default:
				t.Fatal("second holder acquired the lock while the first holder's Done was still open")
			}
			if lb.Token() <= la.Token() {
				t.Fatalf("tokens: second holder %d, first %d; want strictly greater", lb.Token(), la.Token())
			}
		})
	}
}
