// Package backendtest gives the tests of packages built on kvstore one
// store of each backend — the embedded one and fresh Consul and etcd
// servers — so that they run unchanged against all three.
package backendtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
)

// Backend hands out clients of one store.
type Backend struct {
	// Name is "embedded", "consul" or "etcd", for subtest names.
	Name string
	// Client returns a client of the store, closed at the end of t. The
	// embedded store, which one process opens once, returns the same
	// Store every time.
	Client func(t *testing.T) kvstore.Store
}

// All returns the embedded store and fresh Consul and etcd servers, all
// living until the end of t.
func All(t *testing.T) []Backend {
	consul, etcd := testserver.Consul(t), testserver.Etcd(t)
	return []Backend{Embedded(t), Network("consul", "consul://"+consul.Addr), Network("etcd", "etcd://"+etcd.Addr)}
}

// Embedded returns a fresh embedded store in a temporary directory.
func Embedded(t *testing.T) Backend {
	s, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return Backend{Name: "embedded", Client: func(*testing.T) kvstore.Store { return s }}
}

// Network returns a backend whose clients are opened on endpoint, each
// closed at the end of the test that asked for it.
func Network(name, endpoint string) Backend {
	return Backend{Name: name, Client: func(t *testing.T) kvstore.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := backend.Open(ctx, endpoint, backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
}
