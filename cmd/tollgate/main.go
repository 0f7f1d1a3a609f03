// Command tollgate is a reverse proxy that runs as a cluster of identical
// replicas sharing ACME state through a key/value store.
//
// Run "tollgate help" for the commands and "tollgate COMMAND -h" for
// each command's flags, examples and exit codes. Every flag may also be
// given in the environment as TOLLGATE_<FLAG>.
//
// Exit codes: 0 success, 1 other failure, 2 bad command line, 3 invalid
// configuration, 4 store unreachable or failing, 5 conflict with another
// writer of the configuration.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInvalid  = 3
	exitStore    = 4
	exitConflict = 5
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
	// quiet: the command already said what went wrong.
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	routeLibraryLogs(libraryLogs)
	stop, now, release := signals()
	code := runUntil(stop, now, os.Args[1:], os.Stdout, os.Stderr)
	release()
	os.Exit(code)
}

// signals returns a context that ends at the first SIGTERM or Ctrl-C
// (stop: serve drains) and one that ends at the second (now: serve cuts
// its drain short), and a function that stops listening for them.
func signals() (stop, now context.Context, release func()) {
	stop, stopCancel := context.WithCancel(context.Background())
	now, nowCancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, cancel := range []context.CancelFunc{stopCancel, nowCancel} {
			select {
			case <-ch:
				cancel()
			case <-done:
				return
			}
		}
	})
	return stop, now, func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
		stopCancel()
		nowCancel()
	}
}

// run executes one command and returns its exit code; it stops as on a
// first SIGTERM when ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runUntil(ctx, context.Background(), args, stdout, stderr)
}

// runUntil executes one command and returns its exit code. Long-running
// commands stop when stop ends, and stop at once when now ends.
func runUntil(stop, now context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(&app{stop: stop, now: now, stdout: stdout, stderr: stderr}, args)
}
