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

// cluster is one Consul server agent for the conformance suite.
type cluster struct {
	srv *testserver.Server
}

func newCluster(t *testing.T) kvstoretest.Cluster {
	return &cluster{srv: testserver.Consul(t)}
}

func (c *cluster) Client(t *testing.T) kvstore.Store { return newClient(t, c.srv, Config{}) }

func (c *cluster) Restart(t *testing.T) bool { c.srv.Restart(t); return true }

func (c *cluster) Stop(t *testing.T) { c.srv.Stop(t) }

func (c *cluster) Start(t *testing.T) bool { c.srv.Start(t); return true }

// Compact reports false: Consul keeps no history a watch could resume from.
func (c *cluster) Compact(*testing.T, int64) bool { return false }

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
