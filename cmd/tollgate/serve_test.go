package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/embedded"
)

// envMain makes the test binary run main, for tests of signal handling.
const envMain = "TOLLGATE_TEST_RUN_MAIN"

// replicaConfig is a configuration on the embedded store in dir with the
// entry points web and api (/ready) on free ports, and extra appended.
func replicaConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return writeFile(t, "replica.toml", fmt.Sprintf(`
[store]
endpoint = %q
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.api]
address = "127.0.0.1:0"
[api]
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
entryPoints = ["web"]
service = "b"
[[http.services.b.loadBalancer.servers]]
url = "http://127.0.0.1:9"
%s`, "file:"+filepath.Join(dir, "state.db"), extra))
}

func getStatus(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitExit waits generously for serve to end and returns its exit code.
func waitExit(t *testing.T, s *started, what string) int {
	t.Helper()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(time.Minute):
		t.Fatalf("serve still running a minute after %s:\n%s", what, s.log.String())
		return 0
	}
}

// TestServeEntryPointDies: when an entry point's listener fails, serve
// fails readiness and ends with exit 1 and the entry point's error, while
// another entry point still serves (Kubernetes restarts the replica).
func TestServeEntryPointDies(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("breaks the listener through /proc")
	}
	cfg := replicaConfig(t, t.TempDir(), "[lifecycle]\ndrainDelay = \"1h\"\n")
	s, addrs := startServe(t, "--config", cfg)
	if got := getStatus("http://" + addrs["api"] + "/ready"); got != http.StatusOK {
		t.Fatalf("/ready = %d, want 200", got)
	}
	shutdownListener(t, addrs["web"])
	if code := waitExit(t, s, "its web listener failed"); code != exitFailure {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailure, s.log.String())
	}
	if log := s.log.String(); !strings.Contains(log, `level=ERROR msg="tollgate serve failed" err="entry points: entry point web:`) || !strings.Contains(log, "exit_code=1") {
		t.Fatalf("no clear message naming the entry point:\n%s", log)
	}
	if got := getStatus("http://" + addrs["api"] + "/ready"); got == http.StatusOK {
		t.Fatal("/ready still 200 after serve ended")
	}
}

// shutdownListener makes the listening socket at addr fail, as a listener
// that dies does: shutdown(2) on it wakes Accept with an error that is not
// temporary.
func shutdownListener(t *testing.T, addr string) {
	t.Helper()
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	inode := ""
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // LISTEN
				continue
			}
			if _, p, ok := strings.Cut(fields[1], ":"); ok && p == fmt.Sprintf("%04X", port) {
				inode = fields[9]
			}
		}
		f.Close()
	}
	if inode == "" {
		t.Fatalf("no listening socket on port %d", port)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); link == "socket:["+inode+"]" {
			fd, _ := strconv.Atoi(e.Name())
			if err := syscall.Shutdown(fd, syscall.SHUT_RDWR); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			return
		}
	}
	t.Fatalf("socket %s of port %d not among this process's files", inode, port)
}

// TestServeStoreClosed: when the store is closed under a running replica
// (its watches end for good, nothing can be locked), the parts that use it
// — the certificate cache, the configuration watch, the elector, the
// registry — fail, and serve ends with a clear error and readiness failed,
// instead of logging and serving stale state behind a 200 /ready. Which
// part reports first varies; TestParts checks that any one suffices.
func TestServeStoreClosed(t *testing.T) {
	key := writeFile(t, "key", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	acmeSection := fmt.Sprintf(`[acme]
email = "ops@example.com"
caServer = "https://127.0.0.1:1/dir"
encryptionKeyFile = %q
  [acme.httpChallenge]
  entryPoint = "web"
`, key)
	for _, tc := range []struct {
		name      string
		fromStore bool   // the configuration is followed in the store
		extra     string // appended to the configuration
	}{
		{"ACME state in the store", false, acmeSection},
		{"configuration in the store", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := replicaConfig(t, dir, tc.extra+"[lifecycle]\ndrainDelay = \"1h\"\n")
			cfg, err := config.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			st, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "state.db")})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			initial := &config.Snapshot{Config: cfg, Source: path}
			wc := config.WatchConfig{File: path}
			if tc.fromStore {
				if _, err := config.Publish(t.Context(), st, cfg, config.PublishOptions{Prefix: "p"}); err != nil {
					t.Fatal(err)
				}
				if initial, err = config.Load(t.Context(), st, "p"); err != nil {
					t.Fatal(err)
				}
				wc = config.WatchConfig{Store: st, Prefix: "p"}
			}
			log := &testserver.Buffer{}
			lg := slog.New(slog.NewTextHandler(log, nil))
			cl, err := joinCluster(st, "p", "n1", lg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { done <- run2(ctx, context.Background(), initial, wc, lg, log, cl, st, "p") }()
			api := waitListening(t, log, "api")
			for deadline := time.Now().Add(time.Minute); getStatus("http://"+api+"/ready") != http.StatusOK; {
				if time.Now().After(deadline) {
					t.Fatalf("not ready within a minute:\n%s", log)
				}
				time.Sleep(20 * time.Millisecond)
			}
			st.Close()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				cancel()
				<-done
				t.Fatalf("serve still running a minute after its store was closed; /ready = %d:\n%s", getStatus("http://"+api+"/ready"), log)
			}
			t.Logf("serve: %v", err)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitFailure || !errors.Is(err, kvstore.ErrClosed) {
				t.Fatalf("serve returned %v, want exit %d with an error wrapping ErrClosed", err, exitFailure)
			}
			if !strings.Contains(log.String(), "a part of the replica failed; stopping") {
				t.Fatalf("no clear message:\n%s", log)
			}
			if got := getStatus("http://" + api + "/ready"); got == http.StatusOK {
				t.Fatal("/ready still 200 after serve ended")
			}
		})
	}
}

// waitListening waits for serve's log to show the entry point listening
// and returns its address.
func waitListening(t *testing.T, log *testserver.Buffer, entryPoint string) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for line := range strings.Lines(log.String()) {
			if strings.Contains(line, "msg=listening") && strings.Contains(line, "entry_point="+entryPoint+" ") {
				_, addr, _ := strings.Cut(line, "address=")
				return strings.TrimSpace(addr)
			}
		}
	}
	t.Fatalf("entry point %s not listening within a minute:\n%s", entryPoint, log)
	return ""
}

// TestSecondSignalEndsDrain runs the real main: the first SIGTERM starts a
// drain of an hour (readiness fails, traffic still served), the second
// ends it at once.
func TestSecondSignalEndsDrain(t *testing.T) {
	cfg := replicaConfig(t, t.TempDir(), "[lifecycle]\ndrainDelay = \"1h\"\n")
	log := &testserver.Buffer{}
	cmd := exec.Command(os.Args[0], "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), envMain+"=1")
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	api := waitListening(t, log, "api")
	web := waitListening(t, log, "web")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); getStatus("http://"+api+"/ready") != http.StatusServiceUnavailable; {
		if time.Now().After(deadline) {
			t.Fatalf("/ready did not fail after SIGTERM:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := getStatus("http://" + web + "/"); got == 0 {
		t.Fatal("the first SIGTERM stopped serving traffic before the drain delay")
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the first SIGTERM ended serve (%v) during an hour's drain delay:\n%s", err, log)
	case <-time.After(200 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("serve ended with %v after the second SIGTERM:\n%s", err, log)
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve still draining a minute after the second SIGTERM:\n%s", log)
	}
	if !strings.Contains(log.String(), "second signal: the drain ends now") {
		t.Fatalf("the log does not say why the drain ended:\n%s", log)
	}
}

// replicaProc is a serve command the test runs in process, with its own
// first and second signal.
type replicaProc struct {
	id        string
	log       *testserver.Buffer
	stop, now context.CancelFunc
	done      chan int
}

func startReplica(t *testing.T, id string, args ...string) *replicaProc {
	t.Helper()
	stopCtx, stop := context.WithCancel(context.Background())
	nowCtx, now := context.WithCancel(context.Background())
	r := &replicaProc{id: id, log: &testserver.Buffer{}, stop: stop, now: now, done: make(chan int, 1)}
	var out testserver.Buffer
	go func() {
		r.done <- runUntil(stopCtx, nowCtx, append([]string{"serve", "--node-id", id}, args...), &out, r.log)
	}()
	t.Cleanup(func() {
		stop()
		now()
		<-r.done
	})
	waitListening(t, r.log, "api")
	return r
}

// terms counts the leadership terms the replica began.
func (r *replicaProc) terms() int { return strings.Count(r.log.String(), "msg=leading ") }

// TestScaleDownHandsOverOnce scales four replicas down to one: two
// replicas that do not lead get SIGTERM, then the leader, each draining
// for an hour. Draining replicas stop campaigning at once and a draining
// leader resigns at once, so stopping the others changes nothing and
// stopping the leader hands the leadership over exactly once, at once, to
// the one replica that stays — never to a draining one.
func TestScaleDownHandsOverOnce(t *testing.T) {
	consul := testserver.Consul(t)
	endpoint := "consul://" + consul.Addr
	cfg := replicaConfig(t, t.TempDir(), "[lifecycle]\ndrainDelay = \"1h\"\n")
	if code, _, stderr := tollgate(t, "storeconfig", "--config", cfg, "--kv", endpoint, "--prefix", "scale"); code != exitOK {
		t.Fatalf("storeconfig: exit %d:\n%s", code, stderr)
	}
	var rs []*replicaProc
	for i := range 4 {
		rs = append(rs, startReplica(t, fmt.Sprintf("r%d", i), "--kv", endpoint, "--prefix", "scale"))
	}
	total := func() int {
		n := 0
		for _, r := range rs {
			n += r.terms()
		}
		return n
	}
	var leader *replicaProc
	for deadline := time.Now().Add(time.Minute); leader == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader within a minute")
		}
		for _, r := range rs {
			if r.terms() > 0 {
				leader = r
			}
		}
	}
	var others []*replicaProc
	for _, r := range rs {
		if r != leader {
			others = append(others, r)
		}
	}
	stays := others[2]
	stopped := map[*replicaProc]int{} // terms begun before its SIGTERM
	sigterm := func(r *replicaProc) {
		stopped[r] = r.terms()
		r.stop()
	}
	before := total()
	sigterm(others[0])
	sigterm(others[1])
	time.Sleep(2 * time.Second) // room for a wrong hand-over to show
	if n := total() - before; n != 0 {
		t.Fatalf("stopping two replicas that do not lead began %d terms, want 0", n)
	}
	sigterm(leader)
	for deadline := time.Now().Add(30 * time.Second); stays.terms() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s, the replica that stays, does not lead 30s after the leader %s got SIGTERM (its drain lasts an hour); terms begun since: %d",
				stays.id, leader.id, total()-before)
		}
	}
	time.Sleep(2 * time.Second) // room for a wrong hand-over to show
	for r := range stopped {
		r.now() // a second SIGTERM ends the drain
		if code := <-r.done; code != exitOK {
			t.Fatalf("%s: exit %d:\n%s", r.id, code, r.log.String())
		}
		r.done <- exitOK // for the cleanup
	}
	handOvers := total() - before
	t.Logf("leader %s stopped after two other replicas: %d hand-over(s), to %s", leader.id, handOvers, stays.id)
	for r, n := range stopped {
		if r.terms() != n {
			t.Errorf("%s began a term while draining", r.id)
		}
	}
	if handOvers != 1 || stays.terms() != 1 {
		t.Fatalf("%d hand-overs, want exactly 1, to %s", handOvers, stays.id)
	}
	if !strings.Contains(leader.log.String(), "reason=resigned") {
		t.Fatalf("the leader did not resign:\n%s", leader.log.String())
	}
}

// TestParts: the first part to fail, or to return before it was asked to
// stop, ends every part; its error, named, is the owner's.
func TestParts(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		part func(context.Context) error
		want error
	}{
		{"fails", func(context.Context) error { return boom }, boom},
		{"stops on its own", func(context.Context) error { return nil }, errStoppedEarly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newParts(context.Background(), slog.New(slog.DiscardHandler))
			waiting := func(ctx context.Context) error { <-ctx.Done(); return nil }
			p.run("waiting", nil, waiting)
			p.run("failing", nil, tc.part)
			select {
			case <-p.Context().Done():
			case <-time.After(time.Minute):
				t.Fatal("a failed part did not end the others' context")
			}
			if err := p.stop(); !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "failing: ") {
				t.Fatalf("stop: %v, want %v named after the part", err, tc.want)
			}
		})
	}
	p := newParts(context.Background(), slog.New(slog.DiscardHandler))
	early, stopEarly := context.WithCancel(p.Context())
	p.run("stopped first", early, func(ctx context.Context) error { <-ctx.Done(); return nil })
	stopEarly()
	if err := p.stop(); err != nil {
		t.Fatalf("parts that stop when asked: %v", err)
	}
}

// TestServeLoadedLine: the configuration loaded line counts the HTTP
// routers, and the TCP routers when there are some.
func TestServeLoadedLine(t *testing.T) {
	tcp := "[tcp.routers.t1]\nrule = \"HostSNI(`*`)\"\nentryPoints = [\"web\"]\nservice = \"banner\"\n" +
		"[tcp.routers.t2]\nrule = \"ClientIP(`10.0.0.0/8`)\"\nentryPoints = [\"web\"]\nservice = \"banner\"\n" +
		// Written without spaces: startServe counts the entry points by
		// "address =".
		"[[tcp.services.banner.loadBalancer.servers]]\naddress=\"127.0.0.1:9\"\n"
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"http", "", "routers=1\n"},
		{"tcp", tcp, "routers=1 tcp_routers=2\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServe(t, "--config", replicaConfig(t, t.TempDir(), "[lifecycle]\ndrainDelay = \"0s\"\n"+tt.extra))
			var line string
			for l := range strings.Lines(s.log.String()) {
				if strings.Contains(l, `msg="configuration loaded"`) {
					line = l
				}
			}
			if !strings.HasSuffix(line, tt.want) {
				t.Errorf("configuration loaded line %q, want it to end with %q", line, tt.want)
			}
		})
	}
}
