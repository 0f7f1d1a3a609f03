package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// runner gives the servers of internal/testserver what they need of a
// test (testserver.TB) in a program: temporary directories under one
// folder, cleanups run at the end in reverse order, and a fatal error
// that unwinds to run.
type runner struct {
	dir string
	log io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	n        int
}

// fatal is the panic value of runner.Fatalf; run recovers it.
type fatal struct{ msg string }

func (r *runner) Helper() {}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *runner) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *runner) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	panic(fatal{fmt.Sprintf(format, args...)})
}

func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(r.log, format+"\n", args...) }

func (r *runner) TempDir() string {
	r.mu.Lock()
	r.n++
	d := filepath.Join(r.dir, fmt.Sprintf("tmp%03d", r.n))
	r.mu.Unlock()
	if err := os.MkdirAll(d, 0o700); err != nil {
		r.Fatalf("%v", err)
	}
	return d
}

// close runs the cleanups, the last registered first.
func (r *runner) close() {
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}
