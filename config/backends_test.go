package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
)

// storeBackend hands out clients of one store.
type storeBackend struct {
	name   string
	client func(t *testing.T) kvstore.Store
}

// backends lists the stores the tests run against: the embedded one and
// fresh Consul and etcd servers.
func backends(t *testing.T) []storeBackend {
	consul, etcd := testserver.Consul(t), testserver.Etcd(t)
	return []storeBackend{embeddedBackend(t), networkBackend("consul://" + consul.Addr), networkBackend("etcd://" + etcd.Addr)}
}

func embeddedBackend(t *testing.T) storeBackend {
	s, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return storeBackend{name: "embedded", client: func(*testing.T) kvstore.Store { return s }}
}

func networkBackend(endpoint string) storeBackend {
	name, _, _ := strings.Cut(endpoint, ":")
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

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// generated returns a valid configuration with n routers, each with its
// own service, whose values all carry tag, so that two configurations
// with different tags differ in every router.
func generated(t testing.TB, n int, tag string) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("[entryPoints.web]\naddress = \":80\"\n[entryPoints.api]\naddress = \"127.0.0.1:8080\"\n[api]\n")
	for i := range n {
		fmt.Fprintf(&b, "[http.routers.r%d]\nrule = \"Host(`r%d.%s.example.com`)\"\nservice = \"s%d\"\nentryPoints = [\"web\"]\n", i, i, tag, i)
		fmt.Fprintf(&b, "[[http.services.s%d.loadBalancer.servers]]\nurl = \"http://%s-%d.internal:8080\"\n", i, tag, i)
	}
	cfg, err := Parse(tag+".toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
