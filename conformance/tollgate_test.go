package conformance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// envBinary names a tollgate binary to run instead of building one.
const envBinary = "TOLLGATE_CONFORMANCE_BINARY"

// buildTollgate builds cmd/tollgate of the enclosing repository into the
// test's directory, or returns the binary envBinary names.
func buildTollgate(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(envBinary); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v", envBinary, err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tollgate")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tollgate: %v\n%s", err, out)
	}
	return bin
}

// tollgate is one tollgate process serving the Gateway API.
type tollgate struct {
	cmd  *exec.Cmd
	log  *testserver.Buffer
	done chan struct{}
}

// startTollgate runs bin with the Gateway API provider following kube with
// the bearer token in tokenFile, the listener ports 80 and 443 served at gatewayIP (443 with
// TLS), gatewayIP written into the Gateways' status, and waits until it
// is ready.
func startTollgate(t *testing.T, bin string, kube *testserver.Kube, tokenFile, controller string) *tollgate {
	t.Helper()
	dir := t.TempDir()
	api := testserver.FreePort(t)
	cfg := fmt.Sprintf(`[store]
endpoint = "file://%s"

[entryPoints.web]
address = %q

[entryPoints.websecure]
address = %q
  [entryPoints.websecure.http.tls]

[entryPoints.api]
address = "127.0.0.1:%d"

[api]

[log]
level = "debug"

[lifecycle]
drainDelay = "10ms"
graceTimeout = "2s"

[providers.kubernetesGateway]
endpoint = %q
tokenFile = %q
caFile = %q
controllerName = %q
entryPoints = { "80" = "web", "443" = "websecure" }
  [providers.kubernetesGateway.statusAddress]
  ip = %q
`, filepath.Join(dir, "state.db"),
		net.JoinHostPort(gatewayIP.String(), "80"), net.JoinHostPort(gatewayIP.String(), "443"), api,
		kube.URL, tokenFile, kube.CAFile, controller, gatewayIP.String())
	file := filepath.Join(dir, "tollgate.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := &tollgate{log: &testserver.Buffer{}, done: make(chan struct{})}
	tg.cmd = exec.Command(bin, "serve", "--config", file, "--node-id", "conformance")
	tg.cmd.Stdout, tg.cmd.Stderr = tg.log, tg.log
	tg.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tg.cmd.Start(); err != nil {
		t.Fatalf("start tollgate: %v", err)
	}
	go func() { _ = tg.cmd.Wait(); close(tg.done) }()
	t.Cleanup(func() {
		_ = tg.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tg.done:
		case <-time.After(30 * time.Second):
			_ = tg.cmd.Process.Kill()
			<-tg.done
		}
		if p := os.Getenv(envTollgateLog); p != "" {
			if err := os.WriteFile(p, []byte(tg.log.String()), 0o644); err != nil {
				t.Errorf("write tollgate's log: %v", err)
			}
		}
	})
	ready := "http://127.0.0.1:" + strconv.Itoa(api) + "/ready"
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return tg
			}
		}
		select {
		case <-tg.done:
			t.Fatalf("tollgate exited:\n%s", tg.log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("tollgate not ready after a minute:\n%s", tail(tg.log.String(), 80))
	return nil
}

// envTollgateLog names a file tollgate's log is written to at the end.
const envTollgateLog = "TOLLGATE_CONFORMANCE_TOLLGATE_LOG"

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
