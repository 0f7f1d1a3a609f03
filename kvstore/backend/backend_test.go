package backend_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOpen opens each backend from its URL against a real server and
// round-trips a value.
func TestOpen(t *testing.T) {
	consul := testserver.Consul(t)
	etcd := testserver.Etcd(t)
	for _, endpoint := range []string{
		"file://" + filepath.Join(t.TempDir(), "state.db"),
		"consul://" + consul.Addr,
		"etcd://" + etcd.Addr,
	} {
		t.Run(strings.SplitN(endpoint, ":", 2)[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			s, err := backend.Open(ctx, endpoint, backend.Options{})
			if err != nil {
				t.Fatalf("open %s: %v", endpoint, err)
			}
			defer s.Close()
			rev, err := kvstore.Put(ctx, s, "backend/test", []byte("v"))
			if err != nil {
				t.Fatal(err)
			}
			kv, err := s.Get(ctx, "backend/test")
			if err != nil || string(kv.Value) != "v" || kv.Revision != rev {
				t.Fatalf("get: got %q@%d, %v; want %q@%d", kv.Value, kv.Revision, err, "v", rev)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	port := testserver.FreePort(t)
	for _, tc := range []struct {
		endpoint string
		want     []string
	}{
		{"redis://127.0.0.1:6379", []string{`unknown scheme "redis"`, "file, consul, etcd"}},
		{"127.0.0.1:8500", []string{"127.0.0.1:8500"}},
		{"consul://127.0.0.1:" + itoa(port), []string{"127.0.0.1:" + itoa(port)}},
		{"etcd://127.0.0.1:" + itoa(port), []string{"127.0.0.1:" + itoa(port)}},
		{"file:///nonexistent-dir/state.db", []string{"/nonexistent-dir/state.db"}},
		{"file://host/state.db", []string{"host"}},
		{"etcd://root:hunter2@10.0.0.1:2379x", []string{"invalid port", "REDACTED@10.0.0.1:2379x"}},
		{"consul://x:s3cr%zzet@127.0.0.1", []string{"REDACTED@127.0.0.1"}},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		s, err := backend.Open(ctx, tc.endpoint, backend.Options{})
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("open %s: got a store, want an error", tc.endpoint)
			continue
		}
		if s != nil {
			t.Errorf("open %s: got a non-nil store with error %v", tc.endpoint, err)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("open %s: error %q repeats the password", tc.endpoint, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("open %s: error %q does not mention %q", tc.endpoint, err, w)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
