package embedded_test

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
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
	if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), path) {
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

func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := embedded.Open(embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := kvstore.Put(t.Context(), s, "k/"+strconv.Itoa(i), bytes.Repeat([]byte("v"), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A file cut short, as a full disk or an interrupted copy leaves it:
	// Open either fails naming the file as damaged, or finds what is left
	// readable. Neither may crash.
	for n := 100; n < len(b); n += 4096 * 3 {
		cut := filepath.Join(t.TempDir(), "cut.db")
		if err := os.WriteFile(cut, b[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := embedded.Open(embedded.Config{Path: cut})
		if err != nil {
			if !strings.Contains(err.Error(), cut) || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("open of a file cut to %d bytes: got %q, want it to name the file as damaged", n, err)
			}
			continue
		}
		if _, err := s.List(t.Context(), ""); err != nil {
			t.Errorf("list of a file cut to %d bytes that opened: %v", n, err)
		}
		s.Close()
	}
}

func TestDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := embedded.Open(embedded.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kvstore.Put(t.Context(), s, "certs/a", []byte("good")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("kv")).Put([]byte("certs/b"), []byte("garbage"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = embedded.Open(embedded.Config{Path: path})
	if err != nil {
		t.Fatalf("open with one damaged record: %v", err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), "certs/b"); err == nil || errors.Is(err, kvstore.ErrNotFound) || !strings.Contains(err.Error(), "certs/b") {
		t.Fatalf("get of a damaged record: got %v, want an error naming it", err)
	}
	if kv, err := s.Get(t.Context(), "certs/a"); err != nil || string(kv.Value) != "good" {
		t.Fatalf("get of an intact record next to a damaged one: got %q, %v", kv.Value, err)
	}
	// A watch over the damaged record waits for it to be repaired.
	ch, err := s.Watch(t.Context(), "certs/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kvstore.Put(t.Context(), s, "certs/b", []byte("repaired")); err != nil {
		t.Fatalf("overwrite of a damaged record: %v", err)
	}
	ev := <-ch
	if ev.Type != kvstore.EventResync || len(ev.Snapshot) != 2 || string(ev.Snapshot[1].Value) != "repaired" {
		t.Fatalf("first event after repair: got %s with %d entries, want a resync with both", ev.Type, len(ev.Snapshot))
	}
}
