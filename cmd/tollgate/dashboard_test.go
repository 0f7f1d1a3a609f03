package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServeDashboard: with [api] dashboard = true, serve puts the
// dashboard on the API's entry point next to /api/events, which lists the
// configuration applied at start and, once the file turns invalid, the
// rejected change; without it, /dashboard/ is not served.
func TestServeDashboard(t *testing.T) {
	cfg := replicaConfig(t, t.TempDir(), "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withDashboard := strings.Replace(string(b), "[api]\n", "[api]\ndashboard = true\n", 1)
	if err := os.WriteFile(cfg, []byte(withDashboard), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addrs := startServe(t, "--config", cfg)
	api := "http://" + addrs["api"]
	c := http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(api + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/dashboard/" {
		t.Fatalf("/dashboard = %d to %q, want a redirect to /dashboard/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get(api + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" || !strings.Contains(string(page), "tollgate dashboard") {
		t.Fatalf("/dashboard/ = %d, CSP %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), page)
	}

	events := func() []map[string]string {
		t.Helper()
		resp, err := c.Get(api + "/api/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/api/events = %d: %v", resp.StatusCode, err)
		}
		return out
	}
	if ev := events(); len(ev) != 1 || ev[0]["kind"] != "configApplied" || !strings.Contains(ev[0]["message"], "routers: 1 added (all)") {
		t.Fatalf("events at start = %v, want the configuration applied", ev)
	}
	if err := os.WriteFile(cfg, []byte(withDashboard+"[http.routers.broken]\nrule = \"Path(`/x`)\"\nservice = \"nowhere\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ev := events()
		if len(ev) == 2 && ev[0]["kind"] == "configRejected" && strings.Contains(ev[0]["message"], "nowhere") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rejection among the events: %v", ev)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Without dashboard = true there is no dashboard.
	_, addrs = startServe(t, "--config", replicaConfig(t, t.TempDir(), ""))
	if got := getStatus("http://" + addrs["api"] + "/dashboard/"); got != http.StatusNotFound {
		t.Fatalf("/dashboard/ without [api] dashboard = %d, want 404", got)
	}
}
