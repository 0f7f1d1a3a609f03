package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestClientLogger: the etcd client's zap lines reach the store's slog
// logger, its warnings at debug and its errors as warnings, with their
// fields.
func TestClientLogger(t *testing.T) {
	var buf testserver.Buffer
	zl := clientLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	zl.With(zap.String("member", "m1")).Warn("retrying", zap.Error(errors.New("down")), zap.Int("attempt", 2))
	zl.Error("failed")
	var got []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("want 2 records:\n%s", buf.String())
	}
	if r := got[0]; r["level"] != "DEBUG" || r["msg"] != "retrying" || r["member"] != "m1" || r["error"] != "down" || r["attempt"] != float64(2) || r["library"] != "etcd-client" {
		t.Errorf("warning: %v", r)
	}
	if r := got[1]; r["level"] != "WARN" {
		t.Errorf("error: %v", r)
	}

	var quiet testserver.Buffer
	clientLogger(slog.New(slog.NewJSONHandler(&quiet, nil))).Warn("retrying")
	if quiet.String() != "" {
		t.Errorf("a client warning at level info:\n%s", quiet.String())
	}
}

// TestClientLoggerWhileDown: requests to a stopped etcd make the client
// log its retries through the store's logger.
func TestClientLoggerWhileDown(t *testing.T) {
	srv := testserver.Etcd(t)
	var buf testserver.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(t.Context(), Config{Endpoints: []string{srv.Addr}, RequestTimeout: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Stop(t)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(buf.String(), `"library":"etcd-client"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no line of the etcd client while its server is down:\n%s", buf.String())
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, _ = s.Get(ctx, "down/key", kvstore.Stale)
		cancel()
	}
}
