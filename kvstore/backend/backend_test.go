package backend_test

import (
	"context"
	"errors"
	"os"
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

// TestCheck refuses endpoints that are wrong as written, with ErrEndpoint
// and a hint, without contacting any server.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(token, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spaces := filepath.Join(dir, "spaces") // etcd keeps a password's spaces
	if err := os.WriteFile(spaces, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	t.Setenv("ETCD_PASSWORD", "") // so that a user without a password has none
	for _, tc := range []struct {
		endpoint string
		want     string // "" means valid
	}{
		{"consul://127.0.0.1:8500", ""},
		{"consul://127.0.0.1:8500?token_file=" + token, ""},
		{"file:///nonexistent-dir/state.db", ""},
		{"etcd://10.0.0.1:2379,10.0.0.2:2379", ""},
		{"http://consul:8500", "write consul://consul:8500"},
		{"https://consul:8501", "write consul://consul:8501?tls=true"},
		{"http://etcd-0:2379", "write etcd://etcd-0:2379"},
		{"consul-server:8500", "write consul://consul-server:8500"},
		{"127.0.0.1:8500", "write consul://127.0.0.1:8500"},
		{"redis://127.0.0.1:6379", "use one of file, consul, etcd"},
		{"consul://127.0.0.1:8500?datacenter=dc1", `unknown parameter "datacenter"`},
		{"etcd://10.0.0.1:2379?timeout=5s", `"timeout"`},
		{"consul://127.0.0.1:8500?token_file=" + missing, "no such file"},
		{"consul://127.0.0.1:8500?token_file=" + empty, "is empty"},
		{"consul://127.0.0.1:8500?tls=true&ca_file=" + missing, "read CA file"},
		{"etcd://u@10.0.0.1:2379?password_file=" + missing, "no such file"},
		{"etcd://u@10.0.0.1:2379?password_file=" + spaces, ""},
		{"etcd://u@10.0.0.1:2379", `user "u" has no password`},
		{"etcd://10.0.0.1:2379?password_file=" + token, "no username"},
		{"etcd://10.0.0.1:2379?tls=true&cert_file=" + missing + "&key_file=" + missing, "client certificate"},
		{"file://host/state.db", `host "host" given`},
	} {
		err := backend.Check(tc.endpoint, backend.Options{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("check %s: %v, want no error", tc.endpoint, err)
		case tc.want == "":
		case err == nil:
			t.Errorf("check %s: no error, want one mentioning %q", tc.endpoint, tc.want)
		case !errors.Is(err, backend.ErrEndpoint) || !strings.Contains(err.Error(), tc.want):
			t.Errorf("check %s: %v (ErrEndpoint: %t), want ErrEndpoint mentioning %q", tc.endpoint, err, errors.Is(err, backend.ErrEndpoint), tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-token") {
			t.Errorf("check %s: error %q repeats the token", tc.endpoint, err)
		}
	}
	// A token given as an option makes the file irrelevant.
	if err := backend.Check("consul://127.0.0.1:8500?token_file="+missing, backend.Options{ConsulToken: "t"}); err != nil {
		t.Errorf("check with a token option: %v", err)
	}
}
