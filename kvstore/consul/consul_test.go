package consul

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/kvstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newCluster(t *testing.T) kvstoretest.Cluster {
	srv := testserver.Consul(t)
	// No CompactHistory: Consul keeps no history a watch could resume from.
	return &kvstoretest.ServerCluster{
		Server: srv,
		Open:   func(t *testing.T) kvstore.Store { return newClient(t, srv, Config{}) },
	}
}

// newClient opens a Store on srv, closed at the end of t. cfg's Address is
// filled in.
func newClient(t testing.TB, srv *testserver.Server, cfg Config) *Store {
	t.Helper()
	cfg.Address = srv.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("open consul store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func unreachable(t *testing.T) (string, kvstore.Store, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t))
	endpoint := "consul://" + addr
	s, err := New(t.Context(), Config{Endpoint: endpoint, Address: addr, RequestTimeout: 3 * time.Second})
	if err != nil {
		return endpoint, nil, err
	}
	return endpoint, s, nil
}

func TestConformance(t *testing.T) {
	kvstoretest.Run(t, kvstoretest.Harness{NewCluster: newCluster, Unreachable: unreachable})
}
