package router

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// flipServer is a backend whose /health answers with the status held in
// code, and counts the health checks in checks.
type flipServer struct {
	*httptest.Server
	code   atomic.Int32
	checks atomic.Int32
}

func newFlipServer(t *testing.T) *flipServer {
	t.Helper()
	f := &flipServer{}
	f.code.Store(http.StatusOK)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			f.checks.Add(1)
			w.WriteHeader(int(f.code.Load()))
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(f.Close)
	return f
}

// serverUp returns tollgate_service_server_up's series in reg as
// "service|url" with their values.
func serverUp(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return gaugeSeries(t, reg, "tollgate_service_server_up", "service", "url")
}

// logLines decodes the JSON log lines in buf whose msg is msg.
func logLines(t *testing.T, buf *testserver.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withUser returns u with userinfo that must never be shown.
func withUser(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("admin", "hunter2")
	return u.String()
}

// TestServerUpActive checks tollgate_service_server_up and the health
// log lines against real backends whose health endpoint flips, and that a
// server a reload removes leaves no series.
func TestServerUpActive(t *testing.T) {
	a, flip := newFlipServer(t), newFlipServer(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testserver.Buffer{}
	rt := New(Config{Metrics: m, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	defer rt.Close()
	const check = `
[http.services.s.loadBalancer.healthCheck]
path = "/health"
interval = "500ms"
timeout = "450ms"
`
	flipURL := withUser(t, flip.URL)
	twoServers := parseConfig(t, fmt.Sprintf(catchAll+check+`
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.s.loadBalancer.servers]]
url = %q
`, a.URL, flipURL))
	if err := rt.Apply(twoServers); err != nil {
		t.Fatal(err)
	}
	both := func(va, vflip float64) map[string]float64 {
		return map[string]float64{"s|" + a.URL: va, "s|" + flip.URL: vflip}
	}
	if got, want := serverUp(t, reg), both(1, 1); !maps.Equal(got, want) {
		t.Fatalf("series = %v, want %v", got, want)
	}

	flip.code.Store(http.StatusServiceUnavailable)
	waitFor(t, "the flipped server down", func() bool { return maps.Equal(serverUp(t, reg), both(1, 0)) })
	waitFor(t, "the down line", func() bool { return len(logLines(t, logs, "server down")) > 0 })
	downLines := func() []map[string]any {
		var out []map[string]any
		for _, l := range logLines(t, logs, "server down") {
			if l["url"] == flip.URL {
				out = append(out, l)
			}
		}
		return out
	}
	down := downLines()
	if len(down) != 1 {
		t.Fatalf("%d down lines, want 1 (one per change): %v", len(down), down)
	}
	want := map[string]any{"level": "WARN", "service": "s", "url": flip.URL, "check": "active", "reason": "status 503, want 2xx or 3xx"}
	for k, v := range want {
		if down[0][k] != v {
			t.Errorf("down line %s = %v, want %v", k, down[0][k], v)
		}
	}

	// A reload that keeps the server keeps it down, and does not log
	// its failure again when the new configuration's checks run (the
	// second check starts once the first is done).
	if err := rt.Apply(twoServers); err != nil {
		t.Fatal(err)
	}
	if got, want := serverUp(t, reg), both(1, 0); !maps.Equal(got, want) {
		t.Fatalf("right after a reload: series = %v, want %v", got, want)
	}
	seen := flip.checks.Load()
	waitFor(t, "two checks after the reload", func() bool { return flip.checks.Load() >= seen+2 })
	if down := downLines(); len(down) != 1 {
		t.Fatalf("after a reload: %d down lines, want 1 (one per change): %v", len(down), down)
	}

	flip.code.Store(http.StatusOK)
	waitFor(t, "the flipped server up", func() bool { return maps.Equal(serverUp(t, reg), both(1, 1)) })
	waitFor(t, "the up line", func() bool { return len(logLines(t, logs, "server up")) > 0 })
	var up []map[string]any
	for _, l := range logLines(t, logs, "server up") {
		if l["url"] == flip.URL {
			up = append(up, l)
		}
	}
	if len(up) != 1 || up[0]["level"] != "INFO" || up[0]["service"] != "s" || up[0]["check"] != "active" {
		t.Fatalf("up lines %v: want one at INFO for %s", up, flip.URL)
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "admin") {
		t.Fatalf("the log shows the userinfo: %s", logs)
	}

	// A reload that removes the flipped server removes its series.
	if err := rt.Apply(parseConfig(t, fmt.Sprintf(catchAll+check+`
[[http.services.s.loadBalancer.servers]]
url = %q
`, a.URL))); err != nil {
		t.Fatal(err)
	}
	if got, want := serverUp(t, reg), map[string]float64{"s|" + a.URL: 1}; !maps.Equal(got, want) {
		t.Fatalf("after the reload: series = %v, want %v", got, want)
	}
	rt.Close()
	if got := serverUp(t, reg); len(got) != 0 {
		t.Fatalf("after Close: series = %v, want none", got)
	}
}

// TestHealthReasons checks the reason of a down line for a refused
// connection, a timeout and an unexpected configured status.
func TestHealthReasons(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	moved := newFlipServer(t)
	moved.code.Store(http.StatusFound)
	dead := deadServerURL(t)
	logs := &testserver.Buffer{}
	rt := New(Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	defer rt.Close()
	svc := func(name, u, extra string) string {
		return fmt.Sprintf(`
[http.services.%s.loadBalancer.healthCheck]
path = "/health"
interval = "1s"
timeout = "100ms"
%s
[[http.services.%s.loadBalancer.servers]]
url = %q
`, name, extra, name, u)
	}
	if err := rt.Apply(parseConfig(t, "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n"+svc("dead", dead, "")+svc("slow", slow.URL, "")+svc("moved", moved.URL, "status = 200"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three down lines", func() bool { return len(logLines(t, logs, "server down")) == 3 })
	reasons := map[string]string{}
	for _, l := range logLines(t, logs, "server down") {
		reasons[l["service"].(string)], _ = l["reason"].(string)
	}
	for name, want := range map[string]string{"dead": "connection refused", "slow": "no answer within the timeout of 100ms", "moved": "status 302, want 200"} {
		if !strings.Contains(reasons[name], want) {
			t.Errorf("%s: reason %q, want it to say %q", name, reasons[name], want)
		}
	}
}

// TestServerUpPassive: a server passive health checking ejects is down
// while ejected, logged with the failure that ejected it, and up (logged
// once) when the ejection runs out.
func TestServerUpPassive(t *testing.T) {
	a := newFlipServer(t)
	dead := deadServerURL(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testserver.Buffer{}
	rt := New(Config{Metrics: m, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	defer rt.Close()
	cfg := parseConfig(t, fmt.Sprintf(catchAll+`
[http.services.s.loadBalancer.passiveHealthCheck]
maxFailedAttempts = 1
failureWindow = "1s"
[[http.services.s.loadBalancer.servers]]
url = %q
[[http.services.s.loadBalancer.servers]]
url = %q
`, a.URL, dead))
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	h := rt.Handler("web")
	send := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code
	}
	for i := 0; send() != http.StatusBadGateway; i++ {
		if i == 2 {
			t.Fatal("no request went to the dead server")
		}
	}
	if got, want := serverUp(t, reg), map[string]float64{"s|" + a.URL: 1, "s|" + dead: 0}; !maps.Equal(got, want) {
		t.Fatalf("series = %v, want %v", got, want)
	}
	// A reload keeps the ejection.
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := serverUp(t, reg), map[string]float64{"s|" + a.URL: 1, "s|" + dead: 0}; !maps.Equal(got, want) {
		t.Fatalf("after a reload: series = %v, want %v", got, want)
	}
	h = rt.Handler("web")
	down := logLines(t, logs, "server down")
	if len(down) != 1 || down[0]["check"] != "passive" || down[0]["url"] != dead ||
		!strings.Contains(down[0]["reason"].(string), "1 consecutive failed requests, the last:") ||
		!strings.Contains(down[0]["reason"].(string), "connection refused") {
		t.Fatalf("down lines %v: want one for %s, passive, with the refused connection", down, dead)
	}
	waitFor(t, "the ejection to end", func() bool {
		send()
		return len(logLines(t, logs, "server up")) > 0
	})
	up := logLines(t, logs, "server up")
	if len(up) != 1 || up[0]["check"] != "passive" || up[0]["reason"] != "ejection ended" || up[0]["url"] != dead {
		t.Fatalf("up lines %v: want one for %s, passive, ejection ended", up, dead)
	}
}
