package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	legolog "github.com/go-acme/lego/v4/log"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// replicaProcess is a replica run as its own process (this test binary
// running main), with its standard error captured whole: what libraries
// write through their process-wide loggers included.
type replicaProcess struct {
	name   string
	cmd    *exec.Cmd
	log    *testserver.Buffer
	exited chan struct{}
	code   int
}

func startProcess(t *testing.T, name string, args ...string) *replicaProcess {
	t.Helper()
	p := &replicaProcess{name: name, log: &testserver.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envLogFormat+"=") && !strings.HasPrefix(kv, envLogLevel+"=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, envMain+"=1")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// records returns the complete lines written so far that parse as JSON.
func (p *replicaProcess) records() []map[string]any {
	var recs []map[string]any
	for line := range strings.Lines(p.log.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

// waitFor waits until the replica logs a record that match accepts.
func (p *replicaProcess) waitFor(t *testing.T, what string, match func(map[string]any) bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range p.records() {
			if match(r) {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited with %d before %s:\n%s", p.name, p.code, what, p.log)
		default:
		}
	}
	t.Fatalf("%s: no %s within a minute:\n%s", p.name, what, p.log)
}

// wait waits for the replica to exit and returns its exit code.
func (p *replicaProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(time.Minute):
		t.Fatalf("%s still running a minute after it was stopped:\n%s", p.name, p.log)
		return 0
	}
}

func msgIs(msg string) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["msg"] == msg }
}

const jsonReplicaConfig = `
[log]
format = "json"
level = "debug"
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.api]
address = "127.0.0.1:0"
[api]
[lifecycle]
drainDelay = "100ms"
graceTimeout = "2s"
[http.routers.all]
rule = "PathPrefix(` + "`/`" + `)"
entryPoints = ["web"]
service = "b"
[[http.services.b.loadBalancer.servers]]
url = "http://127.0.0.1:9"
`

// TestJSONLogFromStartToExit: with [log] format = "json", every line two
// replicas on etcd write — from start, through a configuration reload and
// a leader failover, to SIGTERM — is a JSON record, and so is every line
// of a replica that fails at start, its fatal error included. The first
// line says which build runs as which node; the reload logs what changed;
// durations are Go duration strings.
func TestJSONLogFromStartToExit(t *testing.T) {
	etcd := testserver.Etcd(t)
	endpoint := "etcd://" + etcd.Addr
	cfg := writeFile(t, "json.toml", jsonReplicaConfig)
	if code, _, stderr := tollgate(t, "storeconfig", "--config", cfg, "--kv", endpoint, "--prefix", "logs"); code != exitOK {
		t.Fatalf("storeconfig: exit %d:\n%s", code, stderr)
	}
	var rs []*replicaProcess
	for _, id := range []string{"r1", "r2"} {
		rs = append(rs, startProcess(t, id, "serve", "--kv", endpoint, "--prefix", "logs", "--node-id", id))
	}
	for _, r := range rs {
		r.waitFor(t, "api listening", func(m map[string]any) bool { return m["msg"] == "listening" && m["entry_point"] == "api" })
	}
	var leader, other *replicaProcess
	for deadline := time.Now().Add(time.Minute); leader == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader within a minute")
		}
		for i, r := range rs {
			if findRecord(r.records(), "leading") != nil {
				leader, other = r, rs[1-i]
			}
		}
	}

	// The API of a replica that follows the store names its routers
	// @store, and shows the cluster as the store holds it.
	var apiAddr string
	for _, m := range leader.records() {
		if m["msg"] == "listening" && m["entry_point"] == "api" {
			apiAddr, _ = m["address"].(string)
		}
	}
	var router struct {
		Name, Provider, Status string
	}
	getJSON(t, "http://"+apiAddr+"/api/http/routers/all@store", &router)
	if router.Name != "all@store" || router.Provider != "store" || router.Status != "enabled" {
		t.Errorf("/api/http/routers/all@store = %+v", router)
	}
	var cluster struct {
		Leader struct{ Node string }
		Nodes  []struct{ ID string }
	}
	getJSON(t, "http://"+apiAddr+"/api/cluster", &cluster)
	if cluster.Leader.Node != leader.name || len(cluster.Nodes) != 2 {
		t.Errorf("/api/cluster = %+v, want leader %s and 2 nodes", cluster, leader.name)
	}

	// A reload: one router more.
	next := writeFile(t, "next.toml", jsonReplicaConfig+"[http.routers.added]\nrule = \"Path(`/new`)\"\nservice = \"b\"\n")
	if code, _, stderr := tollgate(t, "storeconfig", "--config", next, "--kv", endpoint, "--prefix", "logs"); code != exitOK {
		t.Fatalf("storeconfig: exit %d:\n%s", code, stderr)
	}
	for _, r := range rs {
		r.waitFor(t, "the reload summary", func(m map[string]any) bool {
			routers, _ := m["routers"].(map[string]any)
			names, _ := routers["added_names"].([]any)
			return m["msg"] == "configuration applied" && routers["added"] == float64(1) && len(names) == 1 && names[0] == "added"
		})
	}

	// A failover: the leader stops, the other replica takes over.
	if err := leader.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := leader.wait(t); code != exitOK {
		t.Fatalf("%s: exit %d:\n%s", leader.name, code, leader.log)
	}
	other.waitFor(t, "leadership after the failover", msgIs("leading"))
	if err := other.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := other.wait(t); code != exitOK {
		t.Fatalf("%s: exit %d:\n%s", other.name, code, other.log)
	}

	// A replica whose entry point's port is taken fails at start.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	fatalCfg := writeFile(t, "fatal.toml", fmt.Sprintf("[store]\nendpoint = %q\nprefix = \"fatal\"\n", endpoint)+
		strings.Replace(jsonReplicaConfig, "[entryPoints.web]\naddress = \"127.0.0.1:0\"", fmt.Sprintf("[entryPoints.web]\naddress = %q", taken.Addr().String()), 1))
	fatal := startProcess(t, "r3", "serve", "--config", fatalCfg, "--node-id", "r3")
	if code := fatal.wait(t); code != exitFailure {
		t.Fatalf("a replica whose port is taken: exit %d, want %d:\n%s", code, exitFailure, fatal.log)
	}

	for _, r := range []*replicaProcess{leader, other, fatal} {
		recs := jsonLines(t, r.name, r.log.String())
		first := recs[0]
		if first["msg"] != "starting" || first["node"] != r.name || first["version"] == nil || first["commit"] == nil || first["go_version"] == nil {
			t.Errorf("%s: first line %v, want msg starting with version, commit, go_version and node %s", r.name, first, r.name)
		}
		t.Logf("%s: %d JSON lines", r.name, len(recs))
	}
	for _, r := range []*replicaProcess{leader, other} {
		drain := findRecord(r.records(), "draining: readiness fails, still serving")
		if drain == nil || drain["for"] != "100ms" {
			t.Errorf("%s: drain line %v, want \"for\":\"100ms\"", r.name, drain)
		}
		if findRecord(r.records(), "stopped") == nil {
			t.Errorf("%s: no stopped line:\n%s", r.name, r.log)
		}
	}
	recs := fatal.records()
	last := recs[len(recs)-1]
	if last["level"] != "ERROR" || last["exit_code"] != float64(exitFailure) || !strings.Contains(fmt.Sprint(last["err"]), taken.Addr().String()) {
		t.Errorf("the fatal line: %v", last)
	}
}

// envLibraryLines makes the test binary route the libraries' loggers as
// main does, attach a JSON logger, and write a line through each.
const envLibraryLines = "TOLLGATE_TEST_LIBRARY_LINES"

// writeLibraryLines is what the test binary does under envLibraryLines.
func writeLibraryLines() {
	routeLibraryLogs(libraryLogs)
	log, err := newLogger(os.Stderr, "json", "debug")
	if err != nil {
		panic(err)
	}
	defer libraryLogs.attach(log)()
	stdlog.Print("from the standard log package")
	slog.Info("from slog's default logger")
	klog.ErrorS(errors.New("boom"), "from klog", "resource", "ingresses")
	klog.Info("from klog at info")
	legolog.Infof("from lego")
	grpclog.Error("from grpc")
	grpclog.Warning("from grpc at warning")
}

// TestLibraryLines: the lines of the libraries that log through their own
// process-wide loggers come out in the replica's format, at a level that
// fits.
func TestLibraryLines(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envLibraryLines+"=1")
	var stderr testserver.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v:\n%s", err, stderr.String())
	}
	recs := jsonLines(t, "library lines", stderr.String())
	want := map[string][2]string{ // msg: level, library
		"from the standard log package": {"INFO", ""},
		"from slog's default logger":    {"INFO", ""},
		"from klog":                     {"ERROR", "client-go"},
		"from klog at info":             {"INFO", "client-go"},
		"[INFO] from lego":              {"DEBUG", "lego"},
		"from grpc":                     {"ERROR", "grpc"},
		"from grpc at warning":          {"DEBUG", "grpc"},
	}
	for msg, w := range want {
		r := findRecord(recs, msg)
		if r == nil {
			t.Errorf("no record %q in:\n%s", msg, stderr.String())
			continue
		}
		if lib, _ := r["library"].(string); r["level"] != w[0] || lib != w[1] {
			t.Errorf("%q: level %v library %q, want %s %q", msg, r["level"], lib, w[0], w[1])
		}
	}
	if r := findRecord(recs, "from klog"); r != nil && (r["err"] == nil || r["resource"] != "ingresses") {
		t.Errorf("klog's error and key/value pairs lost: %v", r)
	}
}

// getJSON decodes the JSON answer of a GET of url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}
