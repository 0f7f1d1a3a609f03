// Command tollgate is a reverse proxy that runs as a cluster of identical
// replicas sharing ACME state through a key/value store.
//
// Run "tollgate help" for the commands and "tollgate COMMAND -h" for
// each command's flags, examples and exit codes.
//
// Exit codes: 0 success, 1 other failure, 2 bad command line, 3 invalid
// configuration, 4 store unreachable or failing, 5 conflict with another
// writer of the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
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
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error) error { return &exitError{code: code, err: err} }

const usage = `tollgate — a clustered reverse proxy with shared ACME state

Usage: tollgate COMMAND [flags]

Commands:
  serve          run a replica
  storeconfig    publish a configuration file into the store
  check          validate a configuration file
  certs          list|show|renew|revoke|delete|import certificates
  cluster status the leader, the replicas and their sync state
  kv             ls|get tollgate's keys in the store (no private keys)
  keys rotate    re-encrypt the stored private keys under a new key
  migrate        convert a Traefik 1.x configuration
  version        print the version

Every command that reads the store takes --kv URL (file:///path,
consul://host:port, etcd://host:port) and --prefix P, or --config FILE whose
[store] section names them; without either it uses the embedded default.

Examples:
  tollgate serve --config examples/quickstart.toml
  tollgate storeconfig --config cluster.toml --kv consul://consul:8500
  tollgate serve --kv consul://consul:8500
  tollgate cluster status --kv consul://consul:8500
  tollgate certs list --kv consul://consul:8500

Run "tollgate COMMAND -h" for a command's flags, examples and exit codes.

Exit codes: 0 success, 1 other failure, 2 bad command line, 3 invalid
configuration, 4 store unreachable or failing, 5 conflict with another
writer of the configuration.
`

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
	ctx := stop
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	log, err := newLogger(stderr, os.Getenv(envLogFormat), os.Getenv(envLogLevel))
	if err != nil {
		fmt.Fprintf(stderr, "tollgate: %s/%s: %v\n", envLogFormat, envLogLevel, err)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		detach := libraryLogs.attach(log)
		defer detach()
		err = serve(ctx, now, args[1:], stderr, log)
	case "storeconfig":
		err = storeconfig(ctx, args[1:], stdout, stderr)
	case "check":
		err = check(args[1:], stdout, stderr)
	case "keys":
		err = keysCmd(ctx, args[1:], stdout, stderr)
	case "certs":
		err = certsCmd(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = clusterCmd(ctx, args[1:], stdout, stderr)
	case "kv":
		err = kvCmd(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		err = versionCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "tollgate: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: exitFailure, err: err}
	}
	if ee.err != errHelp && args[0] == "serve" {
		// A replica's every line is a record of its log.
		logExit(log, args[0], ee.code, ee.err)
	} else if ee.err != errHelp {
		fmt.Fprintf(stderr, "tollgate %s: %v\n", args[0], ee.err)
	}
	return ee.code
}

// errHelp ends a command whose flags asked for help; the usage was printed.
var errHelp = errors.New("help requested")
