package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
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

// TestServeAPIAuth: with [api] users and usersFile, the API and the
// dashboard answer 401 with a challenge without credentials or with a
// wrong password, and 200 to a user of either; /ping and /ready stay
// open. check refuses a users file that cannot be read, and so does
// serve.
func TestServeAPIAuth(t *testing.T) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	usersFile := writeFile(t, "users", "# operators\nfile-user:"+hash("from-file")+"\n")
	cfg := replicaConfig(t, t.TempDir(), "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf("[api]\ndashboard = true\nusers = [%q]\nusersFile = %q\n", "admin:"+hash("wonderland"), usersFile)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "[api]\n", auth, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := tollgate(t, "check", "--config", cfg); code != exitOK {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	_, addrs := startServe(t, "--config", cfg)
	api := "http://" + addrs["api"]
	get := func(path, user, pass string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		c := http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/api/overview", "/api/events", "/dashboard/", "/dashboard", "/dashboard/app.js"} {
		for _, bad := range [][2]string{{"", ""}, {"admin", "wrong"}, {"nobody", "wonderland"}} {
			if resp := get(path, bad[0], bad[1]); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("%s as %q: %d, challenge %q; want 401 with a challenge", path, bad[0], resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
		for _, good := range [][2]string{{"admin", "wonderland"}, {"file-user", "from-file"}} {
			want := http.StatusOK
			if path == "/dashboard" {
				want = http.StatusMovedPermanently
			}
			if resp := get(path, good[0], good[1]); resp.StatusCode != want {
				t.Errorf("%s as %s: %d, want %d", path, good[0], resp.StatusCode, want)
			}
		}
	}
	for _, path := range []string{"/ping", "/ready"} {
		if resp := get(path, "", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s without credentials: %d, want 200", path, resp.StatusCode)
		}
	}

	// A users file that cannot be read (on a store of its own: the
	// replica above holds its file).
	cfg = replicaConfig(t, t.TempDir(), "")
	if b, err = os.ReadFile(cfg); err != nil {
		t.Fatal(err)
	}
	missing := strings.Replace(string(b), "[api]\n", fmt.Sprintf("[api]\nusersFile = %q\n", usersFile+".missing"), 1)
	if err := os.WriteFile(cfg, []byte(missing), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tollgate(t, "check", "--config", cfg); code != exitInvalid || !strings.Contains(errOut, "api: basic auth: reading users file") {
		t.Fatalf("check with a missing users file: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := tollgate(t, "serve", "--config", cfg); code != exitInvalid || !strings.Contains(errOut, "api: basic auth: reading users file") {
		t.Fatalf("serve with a missing users file: exit %d\n%s", code, errOut)
	}
}
