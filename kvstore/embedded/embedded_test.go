package embedded_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
	"github.com/tollgate-proxy/tollgate/kvstore/kvstoretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is one state file; "restarting" it closes and reopens the Store.
type cluster struct {
	t    *testing.T // owns the cluster; the Store lives as long as it
	path string
	s    *embedded.Store
}

func (c *cluster) Client(t *testing.T) kvstore.Store {
	if c.s != nil {
		// The suite's Close test closes the Store behind the cluster.
		if _, err := c.s.Get(t.Context(), "probe"); errors.Is(err, kvstore.ErrClosed) {
			c.s = nil
		}
	}
	if c.s == nil {
		c.open(t)
	}
	return c.s
}

func (c *cluster) open(t *testing.T) {
	t.Helper()
	s, err := embedded.Open(embedded.Config{Path: c.path})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	c.s = s
	c.t.Cleanup(func() { s.Close() })
}

func (c *cluster) Stop(t *testing.T) {
	if c.s != nil {
		if err := c.s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		c.s = nil
	}
}

func (c *cluster) Start(t *testing.T) bool { c.open(t); return false }

func (c *cluster) Restart(t *testing.T) bool { c.Stop(t); return c.Start(t) }

func (c *cluster) Compact(t *testing.T, rev int64) bool {
	c.Client(t).(*embedded.Store).Compact(rev)
	return true
}

func TestConformance(t *testing.T) {
	kvstoretest.Run(t, kvstoretest.Harness{
		NewCluster: func(t *testing.T) kvstoretest.Cluster {
			return &cluster{t: t, path: filepath.Join(t.TempDir(), "state.db")}
		},
	})
}

func TestSecondProcessRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := embedded.Open(embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A second open in this process stands in for a second process: bbolt
	// locks the file per open file description.
	_, err = embedded.Open(embedded.Config{Path: path, LockTimeout: 50e6})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: got %v, want an error naming %s as locked", err, path)
	}
}

func TestBadPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "state.db")
	_, err := embedded.Open(embedded.Config{Path: path})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open in a missing directory: got %v, want an error naming %s", err, path)
	}
}

func TestOrphanLockKeysRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := embedded.Open(embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(t.Context(), "leader", kvstore.LockOptions{Value: []byte("me")})
	if err != nil {
		t.Fatal(err)
	}
	// Copy the file while the lock is held, as a crash would leave it.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(crashed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = l.Release(t.Context())
	s.Close()

	s, err = embedded.Open(embedded.Config{Path: crashed})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), "leader"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("lock key of a dead process after reopen: got %v, want ErrNotFound", err)
	}
	l2, err := s.Lock(t.Context(), "leader", kvstore.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token() <= l.Token() {
		t.Fatalf("token after reopen: got %d, want > %d", l2.Token(), l.Token())
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, path, err string
	}{
		{in: "file:///var/lib/tollgate/state.db", path: "/var/lib/tollgate/state.db"},
		{in: "file://localhost/state.db", path: "/state.db"},
		{in: "file:state.db", path: "state.db"},
		{in: "file://host/state.db", err: `host "host"`},
		{in: "file:///x.db?mode=ro", err: "only a path"},
		{in: "file://", err: "no path"},
		{in: "consul://x", err: "scheme must be file"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := embedded.ParseURL(u)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got error %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.err == "" && cfg.Path != tc.path:
			t.Errorf("%s: got path %q, want %q", tc.in, cfg.Path, tc.path)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := embedded.Open(embedded.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	kvstoretest.Bench(b, kvstoretest.BenchTarget{
		// One Store per file: every "client" shares it, and closing is
		// left to the deferred Close above.
		Client: func(*testing.B) kvstore.Store { return unclosable{s} },
	})
}

// unclosable lets Bench close its clients without closing the shared Store.
type unclosable struct{ kvstore.Store }

func (unclosable) Close() error { return nil }
