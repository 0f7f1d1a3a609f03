package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// envScreenshots, set to 1, makes TestConsulUI copy its screenshots to
// docs/.
const envScreenshots = "TOLLGATE_UPDATE_SCREENSHOTS"

// chromium finds Debian's chromium, failing the test with how to install
// it when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install Debian's chromium package (apt-get install chromium); .ci/run does")
	return ""
}

// browse loads url in headless Chromium, lets the page's scripts run, and
// returns the DOM; with shot set it also saves a screenshot there.
func browse(t *testing.T, bin, url, shot string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,900", "--virtual-time-budget=15000",
	}
	dom, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	if shot != "" {
		args[8] = "--user-data-dir=" + t.TempDir()
		if out, err := exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
			t.Fatalf("chromium --screenshot %s: %v\n%s", url, err, out)
		}
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil || len(b) < 10_000 {
			t.Fatalf("screenshot of %s: %d bytes, %v", url, len(b), err)
		}
	}
	return string(dom)
}

// TestConsulUI: an operator reads tollgate's state in the Consul UI. A
// replica on Consul obtains a certificate; headless Chromium then shows
// tollgate's folders, the certificate's key in its shard, and the record:
// JSON with the PEM chain readable and the private key encrypted.
func TestConsulUI(t *testing.T) {
	bin := chromium(t)
	consul := testserver.Consul(t)
	c := newCluster(t, "consul://"+consul.Addr, "tollgate", 1)
	name := names("ui", 1)[0]
	c.configure("[acme.httpChallenge]\nentryPoint = \"web\"\n", []string{name})
	c.start()
	c.waitCerts([]string{name}, 3*time.Minute, nil)
	shard := acme.CertShard(name)
	ui := "http://" + consul.Addr + "/ui/dc1/kv/"
	shots := t.TempDir()

	dom := browse(t, bin, ui+"tollgate/acme/", filepath.Join(shots, "consul-ui-acme.png"))
	for _, want := range []string{"accounts/", "certs/"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the Consul UI's listing of tollgate/acme/ lacks %q", want)
		}
	}
	if dom := browse(t, bin, ui+"tollgate/acme/certs/"+shard+"/", ""); !strings.Contains(dom, name) {
		t.Errorf("the Consul UI's listing of tollgate/acme/certs/%s/ lacks %s", shard, name)
	}
	dom = browse(t, bin, ui+"tollgate/acme/certs/"+shard+"/"+name+"/edit", filepath.Join(shots, "consul-ui-certificate.png"))
	for _, want := range []string{`"domains"`, name, `"notAfter"`, "BEGIN CERTIFICATE", `"privateKey"`, acme.AlgXChaCha, `"kid"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the certificate record in the Consul UI lacks %q", want)
		}
	}
	if strings.Contains(dom, "PRIVATE KEY") {
		t.Error("the Consul UI shows a private key in clear")
	}
	if t.Failed() {
		t.Logf("screenshots in %s", shots)
	}
	if os.Getenv(envScreenshots) == "1" && !t.Failed() {
		for _, f := range []string{"consul-ui-acme.png", "consul-ui-certificate.png"} {
			b, err := os.ReadFile(filepath.Join(shots, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
