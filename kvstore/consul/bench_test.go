package consul

import (
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/kvstoretest"
)

// BenchmarkStore runs the shared kvstore benchmarks against a local Consul
// server agent, reporting the client's and the server's CPU time per
// operation.
func BenchmarkStore(b *testing.B) {
	srv := testserver.Consul(b)
	kvstoretest.Bench(b, kvstoretest.BenchTarget{
		Client:    func(b *testing.B) kvstore.Store { return newClient(b, srv, Config{}) },
		ServerCPU: srv.CPUTime,
	})
}
