package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// demoName is the name the demo obtains a certificate for; Pebble's DNS
// server answers 127.0.0.1 for it, as for every name.
const demoName = "demo.tollgate.test"

var errUsage = errors.New("bad usage")

type options struct {
	cluster   bool
	kv        string
	dir       string
	check     bool
	freePorts bool
	out       io.Writer
}

// replica is one tollgate process.
type replica struct {
	id               string
	web, secure, api int
	config, logPath  string
	cmd              *exec.Cmd
	done             chan struct{}
}

// run starts everything, proves HTTPS, prints the commands, and waits for
// ctx (or returns at once with check).
func run(ctx context.Context, o options) (err error) {
	if o.cluster && o.kv != "etcd" && o.kv != "consul" {
		return fmt.Errorf("%w: --kv must be etcd or consul, not %q", errUsage, o.kv)
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tollgate-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	r := &runner{dir: dir, log: io.Discard}
	defer r.close()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = errors.New(f.msg)
		}
	}()
	say := func(format string, args ...any) { fmt.Fprintf(o.out, format+"\n", args...) }

	say("building tollgate…")
	bin := filepath.Join(dir, "tollgate")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tollgate-proxy/tollgate/cmd/tollgate").CombinedOutput(); err != nil {
		return fmt.Errorf("build tollgate: %v\n%s", err, out)
	}

	// The public ports: the replica's own in a single-node demo, the load
	// balancers' in a cluster.
	httpPort, httpsPort := 8000, 8443
	if o.freePorts {
		ports := testserver.FreePorts(r, 2)
		httpPort, httpsPort = ports[0], ports[1]
	}
	for _, p := range []int{httpPort, httpsPort} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d is taken (%v): stop what uses it, or run with --free-ports", p, err)
		}
		ln.Close()
	}

	say("starting the Pebble test CA and its DNS server…")
	pebble := testserver.StartPebble(r, testserver.PebbleOptions{HTTPPort: httpPort, TLSPort: httpsPort})
	roots := filepath.Join(dir, "pebble-roots.pem")
	pool := pebble.IssuerRoots(r)
	if err := writeRoots(ctx, pebble, roots); err != nil {
		return err
	}

	backend, err := startBackend(r)
	if err != nil {
		return err
	}
	say("demo backend on http://%s", backend)

	keyFile := filepath.Join(dir, "encryption-key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}

	endpoint := "file:" + filepath.Join(dir, "state.db")
	n := 1
	if o.cluster {
		n = 3
		say("starting %s…", o.kv)
		switch o.kv {
		case "etcd":
			endpoint = "etcd://" + testserver.Etcd(r).Addr
		case "consul":
			srv := testserver.Consul(r)
			endpoint = "consul://" + srv.Addr
			say("Consul UI: http://%s/ui/dc1/kv/demo/", srv.Addr)
		}
	}
	var replicas []*replica
	for i := range n {
		rp := &replica{id: fmt.Sprintf("r%d", i+1)}
		if o.cluster {
			ports := testserver.FreePorts(r, 3)
			rp.web, rp.secure, rp.api = ports[0], ports[1], ports[2]
		} else {
			rp.web, rp.secure, rp.api = httpPort, httpsPort, testserver.FreePort(r)
		}
		rp.config = filepath.Join(dir, rp.id+".toml")
		rp.logPath = filepath.Join(dir, rp.id+".log")
		cfg := replicaConfig(endpoint, rp, backend, pebble.Directory(), pebble.CACertFile(), keyFile, httpsPort)
		if err := os.WriteFile(rp.config, []byte(cfg), 0o644); err != nil {
			return err
		}
		replicas = append(replicas, rp)
	}
	if o.cluster {
		var webs, secures []string
		for _, rp := range replicas {
			webs = append(webs, fmt.Sprintf("127.0.0.1:%d", rp.web))
			secures = append(secures, fmt.Sprintf("127.0.0.1:%d", rp.secure))
		}
		testserver.NewBalancer(r, httpPort, webs...)
		testserver.NewBalancer(r, httpsPort, secures...)
		say("round-robin load balancers: HTTP 127.0.0.1:%d, HTTPS 127.0.0.1:%d", httpPort, httpsPort)
	}
	for _, rp := range replicas {
		if err := rp.start(r, bin); err != nil {
			return err
		}
	}
	for _, rp := range replicas {
		if err := rp.waitReady(ctx); err != nil {
			return err
		}
		say("replica %s ready (pid %d): HTTP :%d, HTTPS :%d, API http://127.0.0.1:%d (log %s)", rp.id, rp.cmd.Process.Pid, rp.web, rp.secure, rp.api, rp.logPath)
	}

	say("obtaining a certificate for %s from Pebble…", demoName)
	public := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	serial, body, err := waitHTTPS(ctx, public, pool, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("%w; replica logs: %s", err, replicas[0].logPath)
	}
	say("HTTPS works: certificate serial %s, the backend answered %q", serial, strings.TrimSpace(body))
	if o.cluster {
		for _, rp := range replicas {
			s, _, err := waitHTTPS(ctx, fmt.Sprintf("127.0.0.1:%d", rp.secure), pool, time.Minute)
			if err != nil {
				return fmt.Errorf("replica %s: %w", rp.id, err)
			}
			say("replica %s serves the same certificate: serial %s", rp.id, s)
		}
		out, _ := exec.CommandContext(ctx, bin, "cluster", "status", "--kv", endpoint, "--prefix", "demo").CombinedOutput()
		say("\n$ tollgate cluster status --kv %s --prefix demo\n%s", endpoint, out)
	}

	say("\nTry it:")
	say("  curl --cacert %s --resolve %s:%d:127.0.0.1 https://%s:%d/", roots, demoName, httpsPort, demoName, httpsPort)
	say("  curl -L --cacert %s --resolve %s:%d:127.0.0.1 --resolve %s:%d:127.0.0.1 http://%s:%d/   # HTTP redirects to HTTPS", roots, demoName, httpPort, demoName, httpsPort, demoName, httpPort)
	say("  curl http://127.0.0.1:%d/ready", replicas[0].api)
	if o.cluster {
		say("  %s cluster status --kv %s --prefix demo", bin, endpoint)
		say("  %s certs list --kv %s --prefix demo", bin, endpoint)
		say("Run the first command a few times: the answer names the replica that served it.")
		say("Stop the leader (kill the process named in cluster status) and watch another take over.")
	}
	if o.check {
		return checkCurl(ctx, roots, httpPort, httpsPort)
	}
	say("\nRunning until Ctrl-C. Files: %s", dir)
	<-ctx.Done()
	say("stopping…")
	return nil
}

// replicaConfig is one replica's configuration.
func replicaConfig(endpoint string, rp *replica, backend, directory, caFile, keyFile string, httpsPort int) string {
	return fmt.Sprintf(`# A tollgate demo replica (see demo/).
[store]
endpoint = %q
prefix = "demo"

[entryPoints.web]
address = "127.0.0.1:%d"

[entryPoints.websecure]
address = "127.0.0.1:%d"
  [entryPoints.websecure.http.tls]

[entryPoints.api]
address = "127.0.0.1:%d"

[api]

[lifecycle]
drainDelay = "10ms"
graceTimeout = "2s"

[http.routers.demo]
rule = "Host(`+"`%[5]s`"+`)"
entryPoints = ["websecure"]
middlewares = ["replica"]
service = "backend"
  [http.routers.demo.tls]

# Plain HTTP answers with a redirect to HTTPS on the port clients use
# (the load balancer's in a cluster).
[http.routers.demo-http]
rule = "Host(`+"`%[5]s`"+`)"
entryPoints = ["web"]
middlewares = ["to-https"]
service = "backend"

[http.middlewares.to-https.redirectScheme]
scheme = "https"
port = "%[11]d"
permanent = true

[http.middlewares.replica.headers.customRequestHeaders]
X-Tollgate-Replica = %[6]q

[[http.services.backend.loadBalancer.servers]]
url = "http://%[7]s"

[acme]
email = "demo@tollgate.test"
caServer = %[8]q
caCertificates = [%[9]q]
encryptionKeyFile = %[10]q
onHostRule = true
  [acme.httpChallenge]
  entryPoint = "web"
`, endpoint, rp.web, rp.secure, rp.api, demoName, rp.id, backend, directory, caFile, keyFile, httpsPort)
}

func (rp *replica) start(r *runner, bin string) error {
	logf, err := os.Create(rp.logPath)
	if err != nil {
		return err
	}
	rp.cmd = exec.Command(bin, "serve", "--config", rp.config, "--node-id", rp.id)
	rp.cmd.Stdout, rp.cmd.Stderr = logf, logf
	rp.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := rp.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start replica %s: %w", rp.id, err)
	}
	rp.done = make(chan struct{})
	go func() { _ = rp.cmd.Wait(); logf.Close(); close(rp.done) }()
	r.Cleanup(func() {
		_ = rp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-rp.done:
		case <-time.After(10 * time.Second):
			_ = rp.cmd.Process.Kill()
			<-rp.done
		}
	})
	return nil
}

func (rp *replica) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", rp.api)
	for time.Now().Before(deadline) {
		select {
		case <-rp.done:
			return fmt.Errorf("replica %s exited; its log: %s\n%s", rp.id, rp.logPath, tailFile(rp.logPath))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("replica %s not ready after a minute; its log: %s\n%s", rp.id, rp.logPath, tailFile(rp.logPath))
}

// waitHTTPS requests https://demoName/ at addr until a certificate that
// pool trusts is served, and returns its serial and the body.
func waitHTTPS(ctx context.Context, addr string, pool *x509.CertPool, timeout time.Duration) (serial, body string, err error) {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: demoName, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get("https://" + demoName + "/")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return fmt.Sprintf("%x", resp.TLS.PeerCertificates[0].SerialNumber), string(b), nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return "", "", fmt.Errorf("no trusted certificate served for %s at %s after %s: %v", demoName, addr, timeout, last)
}

// checkCurl runs the printed curl command, when curl is installed.
func checkCurl(ctx context.Context, roots string, httpPort, httpsPort int) error {
	if _, err := exec.LookPath("curl"); err != nil {
		return nil
	}
	for _, args := range [][]string{
		{"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", demoName, httpsPort), fmt.Sprintf("https://%s:%d/", demoName, httpsPort)},
		{"-L", "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", demoName, httpPort), "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", demoName, httpsPort), fmt.Sprintf("http://%s:%d/", demoName, httpPort)},
	} {
		out, err := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--fail", "--cacert", roots}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("the printed curl command %v failed: %v\n%s", args, err, out)
		}
		if !bytes.Contains(out, []byte("tollgate demo backend")) {
			return fmt.Errorf("the printed curl command %v got %q", args, out)
		}
	}
	return nil
}

// startBackend serves the demo backend on a free port.
func startBackend(r *runner) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "Hello from the tollgate demo backend: %s %s reached it through replica %s\n",
			req.Method, req.Host, req.Header.Get("X-Tollgate-Replica"))
	})}
	go func() { _ = srv.Serve(ln) }()
	r.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), nil
}

// writeRoots saves the roots Pebble issues under, for curl --cacert.
func writeRoots(ctx context.Context, p *testserver.Pebble, path string) error {
	pem, err := p.IssuerRootsPEM(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem, 0o644)
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
