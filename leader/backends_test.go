package leader_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// backends lists the stores the in-process tests run against: the
// embedded one and fresh Consul and etcd servers.
func backends(t *testing.T) []storeBackend {
	consul, etcd := testserver.Consul(t), testserver.Etcd(t)
	return []storeBackend{
		embeddedBackend(t),
		networkBackend("consul", "consul://"+consul.Addr),
		networkBackend("etcd", "etcd://"+etcd.Addr),
	}
}

// networkBackend gives each caller a client of its own, closed with its
// test.
func networkBackend(name, endpoint string) storeBackend {
	return storeBackend{name: name, client: func(t *testing.T) kvstore.Store {
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
