package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// devtools drives headless Chromium through the DevTools protocol over
// --remote-debugging-pipe: JSON messages ending in a NUL byte, written
// to the browser's fd 3 and read from its fd 4.
type devtools struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       *os.File
	r       *bufio.Reader
	stderr  *testserver.Buffer
	mu      sync.Mutex
	id      int
	session string
	// problems are the page's uncaught exceptions and console errors
	// (a Content-Security-Policy violation is one), seen among the
	// events.
	problems []string
}

// startBrowser starts headless Chromium with one page attached.
func startBrowser(t *testing.T) *devtools {
	t.Helper()
	bin := chromium(t)
	toBrowser, ourWrite, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourRead, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devtools{t: t, w: ourWrite, r: bufio.NewReader(ourRead), stderr: &testserver.Buffer{}}
	d.cmd = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,900", "--remote-debugging-pipe", "about:blank")
	d.cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	t.Cleanup(func() {
		ourWrite.Close()
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		ourRead.Close()
	})
	var target struct{ TargetID string }
	d.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	d.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	d.session = attached.SessionID
	d.call(d.session, "Runtime.enable", nil, nil)
	d.call(d.session, "Emulation.setFocusEmulationEnabled", map[string]any{"enabled": true}, nil)
	d.call(d.session, "Log.enable", nil, nil)
	return d
}

// call sends one command (to the page's session unless session is "-"
// for the browser) and decodes its result into out, skipping events.
func (d *devtools) call(session, method string, params map[string]any, out any) {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.id++
	msg := map[string]any{"id": d.id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	if _, err := d.w.Write(append(b, 0)); err != nil {
		d.t.Fatalf("devtools %s: %v\n%s", method, err, d.stderr.String())
	}
	done := make(chan struct{})
	timer := time.AfterFunc(time.Minute, func() { _ = d.cmd.Process.Kill(); close(done) })
	defer timer.Stop()
	for {
		line, err := d.r.ReadBytes(0)
		if err != nil {
			select {
			case <-done:
				d.t.Fatalf("devtools %s: no answer within a minute", method)
			default:
			}
			d.t.Fatalf("devtools %s: %v\n%s", method, err, d.stderr.String())
		}
		var reply struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(bytes.TrimSuffix(line, []byte{0}), &reply); err != nil {
			d.t.Fatalf("devtools %s: %v", method, err)
		}
		if reply.ID != d.id {
			d.event(reply.Method, reply.Params)
			continue
		}
		if reply.Error != nil {
			d.t.Fatalf("devtools %s: %s", method, reply.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(reply.Result, out); err != nil {
				d.t.Fatalf("devtools %s: %v", method, err)
			}
		}
		return
	}
}

// event keeps the page's exceptions and console errors.
func (d *devtools) event(method string, params json.RawMessage) {
	switch method {
	case "Runtime.exceptionThrown":
		d.problems = append(d.problems, "exception: "+string(params))
	case "Log.entryAdded":
		var e struct {
			Entry struct{ Level, Source, Text, URL string }
		}
		if json.Unmarshal(params, &e) == nil && e.Entry.Level == "error" {
			d.problems = append(d.problems, fmt.Sprintf("%s error: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case "Runtime.consoleAPICalled":
		var e struct{ Type string }
		if json.Unmarshal(params, &e) == nil && e.Type == "error" {
			d.problems = append(d.problems, "console.error: "+string(params))
		}
	}
}

// eval evaluates a JavaScript expression in the page and returns its
// value as a string ("" for null or undefined).
func (d *devtools) eval(expr string) string {
	d.t.Helper()
	v, err := d.tryEval(expr)
	if err != nil {
		d.t.Fatal(err)
	}
	return v
}

// tryEval is eval, returning an exception the expression threw as an
// error.
func (d *devtools) tryEval(expr string) (string, error) {
	d.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails any `json:"exceptionDetails"`
	}
	d.call(d.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		return "", fmt.Errorf("evaluate %s: %v", expr, res.ExceptionDetails)
	}
	if res.Result.Value == nil {
		return "", nil
	}
	return fmt.Sprint(res.Result.Value), nil
}

// waitFor polls expr until ok accepts its value, and returns it. An
// expression that throws (the page still loading) is polled again.
func (d *devtools) waitFor(what, expr string, ok func(string) bool, timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := d.tryEval(expr)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			page, _ := d.tryEval("document.body.innerText")
			d.t.Fatalf("the dashboard did not show %s within %s; last %q (%v); page text:\n%s", what, timeout, v, err, page)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// text returns the text of the first element matching a CSS selector.
func (d *devtools) text(selector string) string {
	d.t.Helper()
	b, _ := json.Marshal(selector)
	return d.eval(fmt.Sprintf("(document.querySelector(%s) || {}).textContent", b))
}

// key presses a key: "Tab" or "Enter".
func (d *devtools) key(name string) {
	d.t.Helper()
	codes := map[string]int{"Tab": 9, "Enter": 13}
	down := map[string]any{"type": "keyDown", "key": name, "code": name, "windowsVirtualKeyCode": codes[name]}
	if name == "Enter" {
		down["text"] = "\r"
	}
	d.call(d.session, "Input.dispatchKeyEvent", down, nil)
	d.call(d.session, "Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": name, "code": name, "windowsVirtualKeyCode": codes[name]}, nil)
}

func (d *devtools) navigate(url string) {
	d.t.Helper()
	d.call(d.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// screenshot saves the page as a PNG.
func (d *devtools) screenshot(path string) {
	d.t.Helper()
	var shot struct{ Data string }
	d.call(d.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	b, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil || len(b) < 10_000 {
		d.t.Fatalf("screenshot %s: %d bytes, %v", path, len(b), err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// addA makes the test DNS server answer name with addr, for the CA.
func addA(t *testing.T, p *testserver.Pebble, name, addr string) {
	t.Helper()
	for _, host := range []string{name, name + "."} {
		body, _ := json.Marshal(map[string]any{"host": host, "addresses": []string{addr}})
		resp, err := http.Post(p.DNSManagement()+"/add-a", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("add-a %s: %s", host, resp.Status)
		}
	}
}

// TestDashboard: three replicas on Consul with Pebble serve the
// dashboard; headless Chromium loads every page of the leader's and
// finds the leader, the replicas in sync, each certificate's serial and
// expiry, a certificate the CA cannot validate shown as failing, the
// servers' health and the leader's events. A certificate renewed with
// "certs renew" while the page is open appears without a reload. The
// tabs work from the keyboard with a visible focus. The
// page throws no exception and logs no error: a Content-Security-Policy
// violation would be one.
func TestDashboard(t *testing.T) {
	consul := testserver.Consul(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer backend.Close()
	c := newCluster(t, "consul://"+consul.Addr, "dash", 3)
	dead := testserver.FreePorts(t, 1)[0]
	c.extra = fmt.Sprintf(`
[http.routers.app]
rule = "Host(`+"`app.tollgate.test`"+`)"
entryPoints = ["web"]
service = "app"

[http.services.app.loadBalancer]
  [[http.services.app.loadBalancer.servers]]
  url = %q
  [[http.services.app.loadBalancer.servers]]
  url = "http://127.0.0.1:%d"
  [http.services.app.loadBalancer.healthCheck]
  path = "/"
  interval = "1s"
  timeout = "500ms"
`, backend.URL, dead)
	good := names("dash", 2)
	failing := "fail01.tollgate.test"
	// The CA looks the failing name up at an address where nothing
	// listens: its validation fails.
	addA(t, c.pebble, failing, "127.0.0.2")
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", append(append([]string{}, good...), failing))
	for _, r := range c.replicas {
		b, err := os.ReadFile(r.configFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.configFile, bytes.Replace(b, []byte("[api]\n"), []byte("[api]\ndashboard = true\n"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.start()
	certs := c.waitCerts(good, 3*time.Minute, nil)
	lead := c.leader()
	base := fmt.Sprintf("http://127.0.0.1:%d/dashboard/", lead.api)
	shots := t.TempDir()
	d := startBrowser(t)

	// Overview: the counts and the entry points.
	d.navigate(base)
	d.waitFor("the overview", "document.body.dataset.drawn", func(v string) bool { return v == "overview" }, time.Minute)
	d.waitFor("the router count", `(document.querySelector('[data-count="routers"] .big') || {}).textContent`,
		func(v string) bool { return v == "1" }, time.Minute)
	for _, ep := range []string{"web", "websecure", "api"} {
		if got := d.text(fmt.Sprintf(`[data-entrypoint=%q] td`, ep)); !strings.Contains(got, "127.0.0.1:") {
			t.Errorf("entry point %s: address %q", ep, got)
		}
	}
	d.screenshot(filepath.Join(shots, "dashboard-overview.png"))

	// With the keyboard: Tab reaches the skip link, then the tabs, each
	// with a visible focus; Enter on "Cluster" opens it and moves the
	// focus to its heading.
	focused := `(document.activeElement.textContent || "") + (document.activeElement.matches(":focus-visible") ? " (visible)" : "")`
	for _, want := range []string{"Skip to content (visible)", "Overview (visible)", "Cluster (visible)"} {
		d.key("Tab")
		if got := d.eval(focused); got != want {
			t.Fatalf("after Tab the focus is on %q, want %q", got, want)
		}
	}
	d.key("Enter")
	d.waitFor("the cluster tab opened", `location.hash + " " + document.activeElement.id`,
		func(v string) bool { return v == "#cluster h-cluster" }, time.Minute)

	// Cluster: the leader, three replicas in sync.
	d.waitFor("the leader", `(document.querySelector('[data-field="leader"] dd') || {}).textContent`,
		func(v string) bool { return v == lead.id }, time.Minute)
	d.waitFor("three replicas in sync", `[...document.querySelectorAll('#nodes tbody tr[data-node]')].filter(r => r.textContent.includes("in sync")).length`,
		func(v string) bool { return v == "3" }, time.Minute)
	if got := d.text(fmt.Sprintf(`[data-node=%q]`, lead.id)); !strings.Contains(got, "leader") {
		t.Errorf("the leader's row says %q", got)
	}
	// The certificates were issued, so the CA's validation requests
	// reached at least one replica, which shows them answered.
	d.waitFor("a replica that answered the CA's validation requests",
		`[...document.querySelectorAll('#nodes [data-field="answered"]')].filter(td => Number(td.dataset.value) > 0).length`,
		func(v string) bool { return v != "" && v != "0" }, time.Minute)
	d.screenshot(filepath.Join(shots, "dashboard-cluster.png"))

	// Certificates: serials and expiry; the failing name as failing,
	// with its error and next attempt.
	d.eval(`location.hash = "#certificates"`)
	d.eval(`window.loadedOnce = "yes"`) // gone if the page reloads
	for _, n := range good {
		sel := fmt.Sprintf(`[data-cert=%q] [data-field="serial"]`, n)
		d.waitFor(n+"'s serial", fmt.Sprintf("(document.querySelector(%q) || {}).textContent", sel),
			func(v string) bool { return v == certs[n].Serial }, time.Minute)
		exp := d.eval(fmt.Sprintf(`document.querySelector('[data-cert=%q] [data-field="notAfter"]').dataset.value`, n))
		if at, err := time.Parse(time.RFC3339, exp); err != nil || !at.Equal(certs[n].NotAfter) {
			t.Errorf("%s: expiry %q, want %s", n, exp, certs[n].NotAfter)
		}
		if got := d.text(fmt.Sprintf(`[data-cert=%q] [data-field="notAfter"]`, n)); !strings.Contains(got, "days left") {
			t.Errorf("%s: expiry cell %q lacks the days left", n, got)
		}
	}
	d.waitFor(failing+" failing", fmt.Sprintf(`(document.querySelector('[data-cert=%q]') || {dataset: {}}).dataset.status`, failing),
		func(v string) bool { return v == "failing" }, 3*time.Minute)
	if got := d.text(fmt.Sprintf(`[data-cert=%q] [data-field="lastError"]`, failing)); got == "" {
		t.Errorf("%s: no last error shown", failing)
	}
	if got := d.text(fmt.Sprintf(`[data-cert=%q] [data-field="nextAttempt"]`, failing)); !strings.Contains(got, "in ") {
		t.Errorf("%s: next attempt %q", failing, got)
	}
	// The filter: only failing certificates.
	d.eval(`document.getElementById("cert-status").value = "failing"; document.getElementById("cert-status").dispatchEvent(new Event("change"))`)
	if got := d.eval(`document.querySelectorAll("#certificates tbody tr[data-cert]").length`); got != "1" {
		t.Errorf("the failing filter shows %s rows, want 1", got)
	}
	d.screenshot(filepath.Join(shots, "dashboard-certificates-failing.png"))
	d.eval(`document.getElementById("cert-status").value = ""; document.getElementById("cert-status").dispatchEvent(new Event("change"))`)
	d.screenshot(filepath.Join(shots, "dashboard-certificates.png"))

	// A renewal while the page is open appears without a reload.
	old := certs[good[0]]
	if code, out := tollgateCmd(t, "certs", "renew", "--config", c.replicas[0].configFile, good[0]); code != 0 {
		t.Fatalf("certs renew: exit %d\n%s", code, out)
	}
	renewed := c.waitSerial(good[0], old.Serial, 2*time.Minute)
	sel := fmt.Sprintf(`[data-cert=%q] [data-field="serial"]`, good[0])
	d.waitFor("the renewed serial", fmt.Sprintf("(document.querySelector(%q) || {}).textContent", sel),
		func(v string) bool { return v == renewed.Serial }, time.Minute)
	exp := d.eval(fmt.Sprintf(`document.querySelector('[data-cert=%q] [data-field="notAfter"]').dataset.value`, good[0]))
	if at, err := time.Parse(time.RFC3339, exp); err != nil || !at.Equal(renewed.NotAfter) {
		t.Errorf("after the renewal the expiry is %q, want %s", exp, renewed.NotAfter)
	}
	if d.eval("window.loadedOnce") != "yes" {
		t.Error("the page was reloaded to show the renewal")
	}
	t.Logf("renewed %s: serial %s → %s shown without reload", good[0], old.Serial, renewed.Serial)

	// HTTP: the router, and the service's servers' health.
	d.eval(`location.hash = "#http"`)
	d.waitFor("the router", `(document.querySelector('[data-router="app@file"] [data-field="status"]') || {}).textContent`,
		func(v string) bool { return strings.HasPrefix(v, "enabled") }, time.Minute)
	d.waitFor("the live server UP", fmt.Sprintf(`(document.querySelector('[data-service="app@file"] [data-server=%q]') || {}).textContent`, backend.URL),
		func(v string) bool { return strings.HasPrefix(v, "UP") }, time.Minute)
	d.waitFor("the dead server DOWN", fmt.Sprintf(`(document.querySelector('[data-service="app@file"] [data-server="http://127.0.0.1:%d"]') || {}).textContent`, dead),
		func(v string) bool { return strings.HasPrefix(v, "DOWN") }, time.Minute)
	d.screenshot(filepath.Join(shots, "dashboard-http.png"))

	// Events: the leader's configuration applied and its orders.
	d.eval(`location.hash = "#events"`)
	for _, kind := range []string{"configApplied", "certificateOrdered", "certificateOrderFailed"} {
		d.waitFor("a "+kind+" event", fmt.Sprintf(`document.querySelectorAll('#events tr[data-kind=%q]').length`, kind),
			func(v string) bool { return v != "" && v != "0" }, time.Minute)
	}
	if got := d.text(`#events tr[data-kind="certificateOrderFailed"]`); !strings.Contains(got, failing) {
		t.Errorf("the failed order's event %q does not name %s", got, failing)
	}
	d.screenshot(filepath.Join(shots, "dashboard-events.png"))

	// The dark scheme.
	d.call(d.session, "Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": "dark"}}}, nil)
	d.eval(`location.hash = "#certificates"`)
	d.waitFor("the certificates again", "document.body.dataset.drawn", func(v string) bool { return v == "certificates" }, time.Minute)
	d.screenshot(filepath.Join(shots, "dashboard-dark.png"))

	d.mu.Lock()
	for _, p := range d.problems {
		t.Errorf("the page reported %s", p)
	}
	d.mu.Unlock()
	if t.Failed() {
		t.Logf("screenshots in %s", shots)
	}
	if os.Getenv(envScreenshots) == "1" && !t.Failed() {
		files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
