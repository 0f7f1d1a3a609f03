package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

func TestMain(m *testing.M) {
	if os.Getenv(envMain) != "" {
		main()
	}
	if os.Getenv(envLibraryLines) != "" {
		writeLibraryLines()
		os.Exit(0)
	}
	// A DNS provider SDK that lego links in starts a logger goroutine at
	// init; it is not ours to stop.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/baidubce/bce-sdk-go/util/log.NewLogger.func1"))
}

// tollgate runs one command in process and returns its exit code and
// output.
func tollgate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut testserver.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const invalidConfig = "[entryPoints.web]\naddress = \":80\"\n[http.routers.a]\nrule = \"Path(`/`)\"\nservice = \"missing\"\n"

func TestUsageAndCheck(t *testing.T) {
	bad := writeFile(t, "bad.toml", invalidConfig)
	conflict := writeFile(t, "conflict.toml", strings.ReplaceAll(`[entryPoints.websecure]
address = ":443"
  [entryPoints.websecure.http.tls]
[tls.options.mtls.clientAuth]
clientAuthType = "RequireAnyClientCert"
[http.routers.a]
rule = "Host(~a.example.com~)"
service = "s"
  [http.routers.a.tls]
[http.routers.b]
rule = "Host(~a.example.com~) && PathPrefix(~/admin~)"
service = "s"
  [http.routers.b.tls]
  options = "mtls"
[[http.services.s.loadBalancer.servers]]
url = "http://127.0.0.1:9"
`, "~", "`"))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"no command", nil, exitUsage, "Usage:"},
		{"unknown command", []string{"launch"}, exitUsage, `unknown command "launch"`},
		{"help", []string{"help"}, exitOK, "Usage:"},
		{"check valid", []string{"check", "--config", "../../examples/single-node.toml", "--skip-files"}, exitOK, "is valid"},
		{"check invalid", []string{"check", "--config", bad}, exitInvalid, bad + ":5:1: http.routers.a.service: service \"missing\" is not defined"},
		{"check router conflict", []string{"check", "--config", conflict}, exitInvalid, conflict + ":14:3: http.routers.b.tls.options: routers a and b both serve a.example.com on entry point websecure with different TLS options"},
		{"check missing file", []string{"check", "--config", "/nonexistent/tollgate.toml"}, exitInvalid, "no such file"},
		{"check without --config", []string{"check"}, exitUsage, "--config is required"},
		{"unknown flag", []string{"storeconfig", "--konfig", "x"}, exitUsage, "unknown flag: --konfig\n\nDid you mean this?\n\t--config\n"},
		{"stray argument", []string{"check", "--config", bad, "extra"}, exitUsage, `unexpected argument "extra"`},
		{"storeconfig invalid", []string{"storeconfig", "--config", bad, "--kv", "consul://127.0.0.1:1"}, exitInvalid, "is not defined"},
		{"serve without source", []string{"serve"}, exitUsage, "give --config FILE"},
		{"storeconfig without store", []string{"storeconfig", "--config", "../../examples/dns-wildcard.toml"}, exitUsage, "give --kv URL or set endpoint in [store]"},
		{"bad prefix", []string{"storeconfig", "--config", "../../examples/dns-wildcard.toml", "--kv", "consul://127.0.0.1:1", "--prefix", "a//b"}, exitUsage, "empty segment"},
		{"nested prefix", []string{"serve", "--kv", "consul://127.0.0.1:1", "--prefix", "tollgate/config/v3"}, exitUsage, "lies inside the configuration versions"},
		{"serve empty prefix segment", []string{"serve", "--kv", "consul://127.0.0.1:1", "--prefix", "a//b"}, exitUsage, "empty segment"},
		{"serve http endpoint", []string{"serve", "--kv", "http://127.0.0.1:8500"}, exitUsage, "write consul://127.0.0.1:8500"},
		{"serve endpoint without scheme", []string{"serve", "--kv", "127.0.0.1:8500"}, exitUsage, "write consul://127.0.0.1:8500"},
		{"storeconfig unknown parameter", []string{"storeconfig", "--config", "../../examples/dns-wildcard.toml", "--kv", "consul://127.0.0.1:1?datacenter=dc1"}, exitUsage, `unknown parameter "datacenter"`},
		{"status malformed endpoint", []string{"cluster", "status", "--kv", "etcd://10.0.0.1:2379x"}, exitUsage, "invalid port"},
		{"certs missing token file", []string{"certs", "list", "--kv", "consul://127.0.0.1:1?token_file=/nonexistent/token"}, exitUsage, "ACL token file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.output) {
				t.Fatalf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", code, tc.code, stdout, stderr, tc.output)
			}
		})
	}
}

// TestCheckFiles: check reads what serve reads before it starts (the
// encryption key, the store endpoint and the files it names) and refuses
// what serve would refuse. --skip-files reads no file but still parses
// the endpoint.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, "key", base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n")
	short := writeFile(t, "short", base64.StdEncoding.EncodeToString(make([]byte, 16))+"\n")
	token := writeFile(t, "token", "t0ken\n")
	missing := filepath.Join(dir, "missing")
	withACME := func(keyLine string) string {
		return writeFile(t, "acme.toml", fmt.Sprintf(`[entryPoints.web]
address = ":80"
[entryPoints.websecure]
address = ":443"
  [entryPoints.websecure.http.tls]
[acme]
email = "ops@example.com"
%s
  [acme.httpChallenge]
  entryPoint = "web"
`, keyLine))
	}
	withStore := func(endpoint string) string {
		return writeFile(t, "store.toml", fmt.Sprintf("[store]\nendpoint = %q\n[entryPoints.web]\naddress = \":80\"\n", endpoint))
	}
	withKube := func(lines string) string {
		return writeFile(t, "kube.toml", "[entryPoints.web]\naddress = \":80\"\n[providers.kubernetesIngress]\nendpoint = \"https://127.0.0.1:6443\"\n"+lines)
	}
	withGateway := func(lines string) string {
		return writeFile(t, "gateway.toml", "[entryPoints.web]\naddress = \":80\"\n[providers.kubernetesGateway]\nendpoint = \"https://127.0.0.1:6443\"\n"+lines)
	}
	empty := writeFile(t, "empty", "\n")
	const env = "TOLLGATE_TEST_CHECK_KEY"
	t.Setenv(env, "")
	for _, tc := range []struct {
		name   string
		config string
		code   int
		output string
	}{
		{"key file", withACME(fmt.Sprintf("encryptionKeyFile = %q", key)), exitOK, "is valid"},
		{"key file missing", withACME(fmt.Sprintf("encryptionKeyFile = %q", missing)), exitInvalid, "acme: encryption key file: open " + missing + ": no such file"},
		{"key of 16 bytes", withACME(fmt.Sprintf("encryptionKeyFile = %q", short)), exitInvalid, "decodes to 16 bytes, need 32"},
		{"key variable unset", withACME(fmt.Sprintf("encryptionKeyEnv = %q", env)), exitInvalid, env + " is empty or not set"},
		{"token file", withStore("consul://127.0.0.1:8500?token_file=" + token), exitOK, "is valid"},
		{"token file missing", withStore("consul://127.0.0.1:8500?token_file=" + missing), exitInvalid, "store.endpoint: consul endpoint consul://127.0.0.1:8500: read ACL token file"},
		{"CA file missing", withStore("etcd://127.0.0.1:2379?tls=true&ca_file=" + missing), exitInvalid, "read CA file"},
		{"unknown parameter", withStore("consul://127.0.0.1:8500?datacenter=dc1"), exitInvalid, `unknown parameter "datacenter"`},
		{"several Consul hosts", withStore("consul://10.0.0.1:8500,10.0.0.2:8500"), exitInvalid, "several hosts are not supported"},
		{"kubernetes token file", withKube(fmt.Sprintf("tokenFile = %q\n", token)), exitOK, "is valid"},
		{"kubernetes token file missing", withKube(fmt.Sprintf("tokenFile = %q\n", missing)), exitInvalid, "providers.kubernetesIngress.tokenFile: open " + missing},
		{"kubernetes token file empty", withKube(fmt.Sprintf("tokenFile = %q\n", empty)), exitInvalid, "is empty; it must hold the bearer token"},
		{"kubernetes CA file not PEM", withKube(fmt.Sprintf("caFile = %q\n", token)), exitInvalid, "holds no PEM certificate"},
		{"gateway token file", withGateway(fmt.Sprintf("tokenFile = %q\n", token)), exitOK, "is valid"},
		{"gateway token file missing", withGateway(fmt.Sprintf("tokenFile = %q\n", missing)), exitInvalid, "providers.kubernetesGateway.tokenFile: open " + missing},
		{"gateway CA file not PEM", withGateway(fmt.Sprintf("caFile = %q\n", token)), exitInvalid, "providers.kubernetesGateway.caFile: " + token + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, "check", "--config", tc.config)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.output) {
				t.Fatalf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", code, tc.code, stdout, stderr, tc.output)
			}
			if strings.Contains(stdout+stderr, "t0ken") {
				t.Fatalf("the output repeats the token:\n%s%s", stdout, stderr)
			}
			if tc.code != exitOK {
				// --skip-files reads no file but still parses the endpoint.
				wellFormed := !strings.Contains(tc.name, "parameter") && !strings.Contains(tc.name, "hosts")
				if code, _, stderr := tollgate(t, "check", "--config", tc.config, "--skip-files"); (code == exitOK) != wellFormed {
					t.Fatalf("--skip-files: exit %d:\n%s", code, stderr)
				}
			}
		})
	}
}

func TestStoreconfig(t *testing.T) {
	consul, etcd := testserver.Consul(t), testserver.Etcd(t)
	for _, endpoint := range []string{"consul://" + consul.Addr, "etcd://" + etcd.Addr, "file:" + filepath.Join(t.TempDir(), "state.db")} {
		name, _, _ := strings.Cut(endpoint, ":")
		t.Run(name, func(t *testing.T) { testStoreconfig(t, endpoint) })
	}
}

func testStoreconfig(t *testing.T, endpoint string) {
	const example = "../../examples/cluster-consul.toml"
	step := func(want int, wantOut string, args ...string) string {
		t.Helper()
		args = append([]string{"storeconfig", "--kv", endpoint, "--prefix", "cli"}, args...)
		code, stdout, stderr := tollgate(t, args...)
		if code != want || !strings.Contains(stdout, wantOut) {
			t.Fatalf("tollgate %s: exit %d, want %d; stdout:\n%s\nstderr:\n%s\nwant stdout to contain %q",
				strings.Join(args, " "), code, want, stdout, stderr, wantOut)
		}
		return stdout
	}
	out := step(exitOK, "nothing written", "--config", example, "--dry-run")
	if !strings.Contains(out, `+ http/routers/api/rule = "Host(`+"`api.example.com`"+`) && PathPrefix(`+"`/v1`"+`)"`) {
		t.Fatalf("dry run does not list the api router's rule:\n%s", out)
	}
	step(exitOK, "cli/config/v1 is live (was none)", "--config", example)
	step(exitOK, "no changes: cli/config/v1 already holds", "--config", example)
	changed := writeFile(t, "changed.toml", strings.Replace(mustRead(t, example), "burst = 200", "burst = 300", 1))
	out = step(exitOK, "nothing written", "--config", changed, "--dry-run")
	if !strings.Contains(out, `~ http/middlewares/api-ratelimit/rate-limit/burst = "300" (was "200")`) {
		t.Fatalf("dry run does not show the change:\n%s", out)
	}
	step(exitOK, "deleted old version cli/config/v1", "--config", changed)
	step(exitInvalid, "", "--config", writeFile(t, "bad.toml", invalidConfig))
}

func TestStoreconfigUnreachable(t *testing.T) {
	for _, endpoint := range []string{
		fmt.Sprintf("consul://127.0.0.1:%d", testserver.FreePort(t)),
		fmt.Sprintf("etcd://127.0.0.1:%d", testserver.FreePort(t)),
	} {
		code, _, stderr := tollgate(t, "storeconfig", "--config", "../../examples/cluster-consul.toml", "--kv", endpoint)
		if code != exitStore {
			t.Fatalf("%s: exit %d, want %d; stderr:\n%s", endpoint, code, exitStore, stderr)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServe starts serve from a file on the embedded store and from a
// store, and stops it as SIGTERM would.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	quick := strings.NewReplacer(
		`endpoint = "file:tollgate-state.db"`, fmt.Sprintf("endpoint = %q", "file:"+filepath.Join(dir, "state.db")),
		"127.0.0.1:8000", "127.0.0.1:0", "127.0.0.1:8080", "127.0.0.1:0",
	).Replace(mustRead(t, "../../examples/quickstart.toml"))
	cfgFile := writeFile(t, "quick.toml", quick+"\n[lifecycle]\ndrainDelay = \"50ms\"\n")
	serveUntilLoaded(t, "serve", "--config", cfgFile)

	consul := testserver.Consul(t)
	code, _, stderr := tollgate(t, "serve", "--kv", "consul://"+consul.Addr, "--prefix", "empty")
	if code != exitInvalid || !strings.Contains(stderr, "no configuration in the store") {
		t.Fatalf("serve on an empty store: exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, stderr := tollgate(t, "storeconfig", "--config", cfgFile, "--kv", "consul://"+consul.Addr); code != exitOK {
		t.Fatalf("storeconfig: exit %d: %s", code, stderr)
	}
	serveUntilLoaded(t, "serve", "--kv", "consul://"+consul.Addr)
}

func serveUntilLoaded(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testserver.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(errOut.String(), "configuration loaded") {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d:\n%s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("serve did not load its configuration:\n%s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve stopped with exit %d:\n%s", code, errOut.String())
	}
}

// started is a serve command running in the test.
type started struct {
	cancel context.CancelFunc
	done   chan int
	log    *testserver.Buffer
}

// startServe runs serve until it listens and returns the entry points'
// addresses.
func startServe(t *testing.T, args ...string) (*started, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, done: make(chan int, 1), log: &testserver.Buffer{}}
	var out testserver.Buffer
	go func() { s.done <- run(ctx, append([]string{"serve"}, args...), &out, s.log) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), "msg=listening") && strings.Count(s.log.String(), "msg=listening") == strings.Count(mustRead(t, args[1]), "address =") {
			break
		}
		select {
		case code := <-s.done:
			s.done <- code // for the cleanup
			t.Fatalf("serve exited with %d:\n%s", code, s.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	addrs := map[string]string{}
	for line := range strings.Lines(s.log.String()) {
		if !strings.Contains(line, "msg=listening") {
			continue
		}
		var ep, addr string
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "entry_point="); ok {
				ep = v
			}
			if v, ok := strings.CutPrefix(f, "address="); ok {
				addr = v
			}
		}
		addrs[ep] = addr
	}
	return s, addrs
}

// TestServeDrain sends a slow request, then stops serve as SIGTERM does:
// /ready fails at once, the slow request completes, and requests during
// the drain delay are still served.
func TestServeDrain(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprint(w, "done")
	}))
	t.Cleanup(backend.Close)
	cfgFile := writeFile(t, "drain.toml", fmt.Sprintf(`
[store]
endpoint = %q
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.api]
address = "127.0.0.1:0"
[api]
[metrics.prometheus]
[lifecycle]
drainDelay = "1s"
graceTimeout = "10s"
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
entryPoints = ["web"]
service = "b"
[[http.services.b.loadBalancer.servers]]
url = %q
[http.middlewares.auth.basicAuth]
users = ["admin:$2y$05$SECRETSECRETSECRETSECRE"]
[http.middlewares.hdr.headers.customRequestHeaders]
Authorization = "Bearer SECRET"
X-Plain = "visible"
`, "file:"+filepath.Join(t.TempDir(), "state.db"), backend.URL))
	started := time.Now()
	s, addrs := startServe(t, "--config", cfgFile)
	web, api := "http://"+addrs["web"], "http://"+addrs["api"]
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(api + "/ready"); got != http.StatusOK {
		t.Fatalf("/ready = %d before shutdown, want 200", got)
	}
	if got := status(web + "/fast"); got != http.StatusOK {
		t.Fatalf("routed request = %d, want 200", got)
	}
	for _, path := range []string{"/metrics", "/api/http/services", "/api/http/routers"} {
		if got := status(api + path); got != http.StatusOK {
			t.Fatalf("%s = %d, want 200", path, got)
		}
	}
	// The API shows middlewares without their secrets.
	if resp, err := http.Get(api + "/api/http/middlewares"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body := string(b); resp.StatusCode != http.StatusOK || strings.Contains(body, "SECRET") || !strings.Contains(body, "(hidden)") || !strings.Contains(body, "visible") {
			t.Fatalf("/api/http/middlewares = %d:\n%s", resp.StatusCode, body)
		}
	}
	metrics := func() string {
		resp, err := http.Get(api + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(metrics(), "tollgate_leader 1"); {
		if time.Now().After(deadline) {
			t.Fatalf("a single replica did not become leader; metrics:\n%s", metrics())
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := metrics()
	if !strings.Contains(m, `tollgate_http_requests_total{code="200",entrypoint="web",router="all",service="b"} 1`) {
		t.Fatalf("request metrics missing:\n%s", m)
	}
	checkOpsMetrics(t, m, started)
	slow := make(chan int, 1)
	go func() { slow <- status(web + "/slow") }()
	time.Sleep(100 * time.Millisecond) // let the slow request reach the backend
	s.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for status(api+"/ready") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/ready did not fail after shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := status(web + "/fast"); got != http.StatusOK {
		t.Fatalf("a request during the drain delay got %d, want 200", got)
	}
	close(release)
	if got := <-slow; got != http.StatusOK {
		t.Fatalf("the request in flight at shutdown got %d, want 200", got)
	}
	if code := <-s.done; code != exitOK {
		t.Fatalf("serve exited with %d:\n%s", code, s.log.String())
	}
	s.done <- exitOK // for the cleanup
}
