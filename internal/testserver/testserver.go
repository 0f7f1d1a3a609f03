// Package testserver starts the real servers tollgate's tests run against
// (a Consul server agent, an etcd member, the Pebble ACME CA, a Kubernetes
// API server) on free 127.0.0.1 ports with their own temporary data
// directories. A server can be
// stopped and started again mid-test with the same data directory and ports,
// for outage tests, and is stopped when the test ends.
//
// The binaries come from `make testdeps`, which builds pinned versions into
// Dir(). A missing binary fails the test; it never skips.
package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is what the servers need of a test: testing.TB satisfies it, and a
// program that is not a test (the demo) provides its own.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
}

// EnvDir overrides where the test binaries are looked up.
const EnvDir = "TOLLGATE_TESTDEPS"

// Dir is where `make testdeps` puts the binaries:
// $TOLLGATE_TESTDEPS, or ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/testdeps.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "tollgate", "testdeps")
}

// Binary returns the path of a test binary, failing t if it is missing.
func Binary(t TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found at %s: run make testdeps (or set %s to where it is)", name, p, EnvDir)
	}
	return p
}

// Server is one running (or stopped) server process.
type Server struct {
	name    string
	bin     string
	args    []string
	dataDir string
	logPath string
	ready   func(ctx context.Context) error
	// startTimeout bounds the wait for ready; zero means 60s.
	startTimeout time.Duration
	// Addr is the client address, "127.0.0.1:port".
	Addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// DataDir is the server's data directory, kept across Stop and Start.
func (s *Server) DataDir() string { return s.dataDir }

// start launches the process and waits until it answers.
func (s *Server) start(t TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		t.Fatalf("%s already running", s.name)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("%s log: %v", s.name, err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", s.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	timeout := s.startTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	var lastErr error
	for {
		select {
		case <-done:
			t.Fatalf("%s exited during start-up; log:\n%s", s.name, s.logTail())
		case <-ctx.Done():
			t.Fatalf("%s did not become ready within %v (%v); log:\n%s", s.name, timeout, lastErr, s.logTail())
		case <-ticker.C:
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		lastErr = s.ready(rctx)
		rcancel()
		if lastErr == nil {
			return
		}
	}
}

// Start starts a stopped server again with the same data directory and
// ports, and waits until it answers.
func (s *Server) Start(t TB) {
	t.Helper()
	s.start(t)
}

// Stop stops the server gracefully (SIGTERM, then SIGKILL after 10s).
func (s *Server) Stop(t TB) { t.Helper(); s.stop(t, syscall.SIGTERM) }

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill(t TB) { t.Helper(); s.stop(t, syscall.SIGKILL) }

func (s *Server) stop(t TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart stops the server and starts it again.
func (s *Server) Restart(t TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Log returns the server's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *Server) logTail() string {
	b := []byte(s.Log())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// launch prepares a Server, starts it, and stops it at test cleanup,
// printing its log if the test failed.
func launch(t TB, s *Server) *Server {
	t.Helper()
	s.logPath = filepath.Join(s.dataDir, "..", s.name+".log")
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("%s log tail:\n%s", s.name, s.logTail())
		}
	})
	s.start(t)
	return s
}

// httpReady returns a readiness probe that GETs url and accepts a response
// with the given status whose body contains want.
func httpReady(url string, status int, want string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		if resp.StatusCode != status || !bytes.Contains(buf.Bytes(), []byte(want)) {
			return errors.New(fmt.Sprint(resp.Status, ": ", buf.String()))
		}
		return nil
	}
}

func dataDir(t TB, name string) string {
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// CPUTime is the user and system CPU time the running server process has
// used, read from /proc; 0 when it is not running or /proc is unavailable.
func (s *Server) CPUTime() time.Duration {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
