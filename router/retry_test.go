package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// TestRetryNextServer checks the contract between the Retry middleware
// and the load balancer: a GET whose server refuses the connection is
// sent to the next server instead of failing.
func TestRetryNextServer(t *testing.T) {
	a := backendServer(t, "a")
	deadURL := deadServerURL(t)
	r := serveConfig(t, fmt.Sprintf(catchAll+`
middlewares = ["retry"]
[http.middlewares.retry.retry]
attempts = 2
initialInterval = "1ms"
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.s.loadBalancer.servers]]
url = %q
`, deadURL, a.URL))
	for i := range 6 {
		resp, body := get(t, http.DefaultClient, r.url("web")+"/", "", nil)
		if resp.StatusCode != http.StatusOK || body != "a" {
			t.Fatalf("request %d: got %d %q, want 200 from a after a retry", i, resp.StatusCode, body)
		}
	}
}

// TestAccessLogAndClientGone checks the access log record and that a
// client leaving before the backend answers is logged as 499.
func TestAccessLogAndClientGone(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(backend.Close)
	cfg := parseConfig(t, fmt.Sprintf(catchAll+`
[[http.services.s.loadBalancer.servers]]
url = %q
`, backend.URL))
	var logBuf testserver.Buffer
	rt := New(Config{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler("web"))
	defer srv.Close()

	get(t, http.DefaultClient, srv.URL+"/fast", "", http.Header{"X-Request-Id": {"req-1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the slow request did not time out on the client")
	}
	var records []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(records) < 2 && time.Now().Before(deadline) {
		records = records[:0]
		for line := range strings.Lines(logBuf.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil {
				records = append(records, rec)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(records) != 2 {
		t.Fatalf("access log has %d records, want 2:\n%s", len(records), logBuf.String())
	}
	first := records[0]
	for k, want := range map[string]any{"request_id": "req-1", "router": "all", "service": "s", "status": float64(200), "bytes": float64(5), "path": "/fast"} {
		if first[k] != want {
			t.Errorf("access log %s = %v, want %v", k, first[k], want)
		}
	}
	if got := records[1]["status"]; got != float64(StatusClientClosedRequest) {
		t.Errorf("a request whose client left is logged with status %v, want 499", got)
	}
	if bytes.Contains([]byte(logBuf.String()), []byte("Authorization")) {
		t.Error("the access log contains header values")
	}
}
