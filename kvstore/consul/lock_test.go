package consul

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestLockSession checks the session behind a lock on the real agent: no
// health checks (so an agent restart does not end the lock; Consul attaches
// serfHealth unless told otherwise), the configured lock-delay, the TTL
// rounded up to Consul's minimum, and behavior "delete".
func TestLockSession(t *testing.T) {
	srv := testserver.Consul(t)
	s := newClient(t, srv, Config{LockDelay: 3 * time.Second})
	ctx := t.Context()
	l, err := s.Lock(ctx, "test/session/lock", kvstore.LockOptions{TTL: 2 * time.Second, Value: []byte("me")})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer l.Release(context.Background())

	pair, _, err := s.client.KV().Get("test/session/lock", nil)
	if err != nil || pair == nil {
		t.Fatalf("get lock key: %v, %v", pair, err)
	}
	if pair.Session == "" || string(pair.Value) != "me" {
		t.Fatalf("lock key: session %q, value %q; want a session and value %q", pair.Session, pair.Value, "me")
	}
	if got := int64(pair.ModifyIndex); got != l.Token() {
		t.Errorf("token: got %d, want the key's ModifyIndex %d", l.Token(), got)
	}
	se, _, err := s.client.Session().Info(pair.Session, nil)
	if err != nil || se == nil {
		t.Fatalf("session info: %v, %v", se, err)
	}
	if len(se.NodeChecks) != 0 || len(se.Checks) != 0 || len(se.ServiceChecks) != 0 {
		t.Errorf("session checks: got node %q, checks %q, service %v; want none", se.NodeChecks, se.Checks, se.ServiceChecks)
	}
	if se.LockDelay != 3*time.Second {
		t.Errorf("lock delay: got %v, want 3s", se.LockDelay)
	}
	if se.TTL != "10s" {
		t.Errorf("TTL: got %q, want %q (rounded up to Consul's minimum)", se.TTL, "10s")
	}
	if se.Behavior != api.SessionBehaviorDelete {
		t.Errorf("behavior: got %q, want %q", se.Behavior, api.SessionBehaviorDelete)
	}

	if err := l.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if se, _, err := s.client.Session().Info(pair.Session, nil); err != nil || se != nil {
		t.Errorf("session after release: got %v, %v; want destroyed", se, err)
	}
	if pair, _, err := s.client.KV().Get("test/session/lock", nil); err != nil || pair != nil {
		t.Errorf("lock key after release: got %v, %v; want deleted", pair, err)
	}
}

func TestSessionTTL(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
		err      bool
	}{
		{0, 15 * time.Second, false},
		{time.Second, 10 * time.Second, false},
		{10 * time.Second, 10 * time.Second, false},
		{10*time.Second + time.Millisecond, 11 * time.Second, false},
		{90 * time.Second, 90 * time.Second, false},
		{24 * time.Hour, 24 * time.Hour, false},
		{24*time.Hour + time.Second, 0, true},
		{-time.Second, 0, true},
	} {
		got, err := sessionTTL(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("sessionTTL(%v): got %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestFencedBatchOps checks the operations a fence and conditional deletes
// add: a batch Limits accepts can still be too large for Consul once
// expanded, and is then refused before anything is sent.
func TestFencedBatchOps(t *testing.T) {
	srv := testserver.Consul(t)
	s := newClient(t, srv, Config{})
	ctx := t.Context()
	l, err := s.Lock(ctx, "test/fenced/lock", kvstore.LockOptions{})
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer l.Release(context.Background())

	ops := make([]kvstore.Op, s.Limits().MaxTxnOps+1)
	for i := range ops {
		ops[i] = kvstore.PutOp("test/fenced/k"+strconv.Itoa(i), []byte("v"))
	}
	if _, err := s.Apply(ctx, l, ops[:len(ops)-1]...); err != nil {
		t.Fatalf("fenced batch of MaxTxnOps (%d) ops: %v", len(ops)-1, err)
	}
	_, err = s.Apply(ctx, l, ops...)
	if !errors.Is(err, kvstore.ErrTxnTooLarge) {
		t.Fatalf("fenced batch of %d ops: got %v, want ErrTxnTooLarge", len(ops), err)
	}
	dels := make([]kvstore.Op, 65)
	for i := range dels {
		dels[i] = kvstore.DeleteIfOp("test/fenced/k"+strconv.Itoa(i), 1)
	}
	if _, err := s.Apply(ctx, nil, dels...); !errors.Is(err, kvstore.ErrTxnTooLarge) {
		t.Fatalf("65 conditional deletes: got %v, want ErrTxnTooLarge", err)
	}
}

// TestTokenNotInErrors checks that the ACL token appears in no error.
func TestTokenNotInErrors(t *testing.T) {
	const token = "secret-token-4f1c"
	addr := "127.0.0.1:" + strconv.Itoa(testserver.FreePort(t))
	_, err := New(t.Context(), Config{Address: addr, Token: token, RequestTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("New against a closed port: got nil error")
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("error reveals the token: %v", err)
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/token"
	if err := os.WriteFile(file, []byte(" from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tokenEnv, "from-env")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"flag wins", Config{Token: "from-flag", TokenFile: file}, "from-flag"},
		{"file before env", Config{TokenFile: file}, "from-file"},
		{"env last", Config{}, "from-env"},
	} {
		got, err := resolveToken(tc.cfg)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := resolveToken(Config{TokenFile: dir + "/missing"}); err == nil {
		t.Error("missing token file: got nil error")
	}
}
