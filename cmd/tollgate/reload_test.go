package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeReloadRefusedByRouter changes the file serve follows to a
// configuration that validation accepts and the router refuses (a users
// file, or a CA file of a serversTransport, that does not exist): the
// change is counted as rejected, logged with the router's reason, and the
// last good configuration keeps serving.
func TestServeReloadRefusedByRouter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func(doc, missing string) string
	}{
		{"usersFile", func(doc, missing string) string {
			return strings.Replace(doc, `service = "b"`, `service = "b"`+"\nmiddlewares = [\"auth\"]", 1) +
				fmt.Sprintf("[http.middlewares.auth.basicAuth]\nusersFile = %q\n", missing)
		}},
		{"serversTransport", func(doc, missing string) string {
			return strings.Replace(doc, "[[http.services.b.loadBalancer.servers]]", "[http.services.b.loadBalancer]\nserversTransport = \"tls\"\n[[http.services.b.loadBalancer.servers]]", 1) +
				fmt.Sprintf("[http.serversTransports.tls]\nrootCAs = [%q]\n", missing)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testServeReloadRefused(t, tc.refuse) })
	}
}

func testServeReloadRefused(t *testing.T, refuse func(doc, missing string) string) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(backend.Close)
	doc := fmt.Sprintf(`[store]
endpoint = %q
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.api]
address = "127.0.0.1:0"
[api]
[metrics.prometheus]
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
entryPoints = ["web"]
service = "b"
[[http.services.b.loadBalancer.servers]]
url = %q
`, "file:"+filepath.Join(t.TempDir(), "state.db"), backend.URL)
	cfgFile := writeFile(t, "reload.toml", doc)
	s, addrs := startServe(t, "--config", cfgFile)
	web, api := "http://"+addrs["web"], "http://"+addrs["api"]
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(web + "/"); code != http.StatusOK {
		t.Fatalf("before the change: GET / = %d, want 200", code)
	}

	missing := filepath.Join(t.TempDir(), "no-such-users")
	refused := refuse(doc, missing)
	tmp := cfgFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(refused), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, cfgFile); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, m := get(api + "/metrics"); strings.Contains(m, "tollgate_config_watch_rejected_total 1") {
			break
		}
		if time.Now().After(deadline) {
			_, m := get(api + "/metrics")
			t.Fatalf("the refused change was not counted; metrics:\n%s\nlog:\n%s", grepLines(m, "tollgate_config"), s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := s.log.String(); !strings.Contains(log, "configuration change rejected") || !strings.Contains(log, "no-such-users") {
		t.Fatalf("the refusal and its reason are not logged:\n%s", log)
	}
	if strings.Contains(s.log.String(), "configuration reloaded") {
		t.Fatalf("the refused change was reported as reloaded:\n%s", s.log.String())
	}
	if code, body := get(web + "/"); code != http.StatusOK || body != "ok" {
		t.Fatalf("after the refused change: GET / = %d %q, want the last good configuration's 200", code, body)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}
