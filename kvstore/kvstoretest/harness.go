// Package kvstoretest is the conformance suite every kvstore backend passes,
// run unchanged against real servers: Run(t, harness).
package kvstoretest

import (
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Harness adapts one backend to the suite.
type Harness struct {
	// NewCluster starts a fresh, empty server (or store file) that lives
	// until the end of t.
	NewCluster func(t *testing.T) Cluster
	// Unreachable returns a Store configured for an endpoint where nothing
	// listens, or the error opening it gave; the suite checks that its
	// operations fail within a bounded time and name the endpoint. Nil for
	// backends without a network endpoint.
	Unreachable func(t *testing.T) (endpoint string, s kvstore.Store, err error)
}

// Cluster is one running backend.
type Cluster interface {
	// Client returns a new client Store of the cluster, closed at the end
	// of t. Backends that allow one Store per process (embedded) return
	// the same one each time.
	Client(t *testing.T) kvstore.Store
	// Restart stops the server and starts it again with its data, blocking
	// until it answers. It returns whether Stores obtained from Client
	// before the restart stay usable (true for network backends; false for
	// embedded, whose restart is closing and reopening the file).
	Restart(t *testing.T) (clientsSurvive bool)
	// Stop and Start split Restart for tests that act during the outage;
	// Start returns what Restart does.
	Stop(t *testing.T)
	Start(t *testing.T) (clientsSurvive bool)
	// Compact discards the history before rev so that a watch from an
	// older revision cannot resume exactly. Nil-safe: backends without
	// history return false.
	Compact(t *testing.T, rev int64) (supported bool)
}

// ServerCluster is the Cluster of a network backend whose server is a
// testserver.Server: clients survive its restarts.
type ServerCluster struct {
	Server *testserver.Server
	// Open returns a new client of Server, closed at the end of t.
	Open func(t *testing.T) kvstore.Store
	// CompactHistory discards the server's history before rev; nil for
	// backends that keep none.
	CompactHistory func(t *testing.T, rev int64)
}

// Client implements Cluster.
func (c *ServerCluster) Client(t *testing.T) kvstore.Store { return c.Open(t) }

// Restart implements Cluster.
func (c *ServerCluster) Restart(t *testing.T) bool { c.Server.Restart(t); return true }

// Stop implements Cluster.
func (c *ServerCluster) Stop(t *testing.T) { c.Server.Stop(t) }

// Start implements Cluster.
func (c *ServerCluster) Start(t *testing.T) bool { c.Server.Start(t); return true }

// Compact implements Cluster.
func (c *ServerCluster) Compact(t *testing.T, rev int64) bool {
	if c.CompactHistory == nil {
		return false
	}
	c.CompactHistory(t, rev)
	return true
}
