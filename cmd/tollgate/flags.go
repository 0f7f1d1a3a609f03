package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// commonFlags are the flags every command that reads a configuration
// shares.
type commonFlags struct {
	config string
	kv     string
	prefix string
}

// Help texts: the synopsis, what the command does, examples and exit codes.
const (
	serveHelp = `serve [--config FILE] [--kv URL] [--prefix P] [--node-id ID]

Runs a replica. With --config FILE it serves that file and reloads it when
it changes; with --kv URL alone it serves the configuration "tollgate
storeconfig" published in the store and follows its changes. Every replica
joins the cluster in the store: it campaigns for the leadership (the
leader orders certificates), registers itself, and serves every
certificate from memory. SIGTERM or Ctrl-C drains and stops it: it leaves
the leader campaign at once (resigning if it leads), fails readiness and
keeps serving for [lifecycle] drainDelay, then for up to graceTimeout; a
second SIGTERM or Ctrl-C ends the drain at once. A part of the replica
that fails (an entry point's listener, a watch whose store was closed)
stops it with exit 1 and a message naming the part.

Examples:
  tollgate serve --config examples/quickstart.toml
  tollgate serve --kv consul://consul:8500 --prefix tollgate
  tollgate serve --kv etcd://etcd-0.etcd:2379 --node-id "$POD_NAME"

Exit codes: 0 stopped cleanly, 1 failure while running, 2 bad command
line (a malformed --kv included), 3 invalid configuration (a malformed
[store] endpoint or a missing encryption key included), 4 store
unreachable at start.`

	storeconfigHelp = `storeconfig --config FILE [--kv URL] [--prefix P] [--dry-run]

Validates FILE and publishes it into the store as a new version, switched
to atomically: replicas see the old or the new configuration, never a mix.
Prints one line per changed key (secrets as (hidden)). Writes nothing when
nothing changed or the file is invalid.

Examples:
  tollgate storeconfig --config cluster.toml --kv consul://consul:8500 --dry-run
  tollgate storeconfig --config cluster.toml --kv consul://consul:8500

Exit codes: 0 published or nothing to change, 2 bad command line, 3
invalid configuration, 4 store unreachable or failing, 5 another
storeconfig held the lock past --lock-timeout or wrote meanwhile.`

	checkHelp = `check --config FILE [--skip-files]

Validates FILE as serve would, and prints each problem with its file, line
and column. Reads the files the configuration names as serve does at
start: the encryption key (file or environment variable, 32 bytes) and the
store endpoint's token, password, CA and client certificate files. Touches
no store. --skip-files checks the file alone, away from those secrets.

Examples:
  tollgate check --config cluster.toml
  tollgate check --config cluster.toml --skip-files

Exit codes: 0 valid, 2 bad command line, 3 invalid configuration (or a
file it names missing or wrong).`
)

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tollgate %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func (c *commonFlags) register(fs *flag.FlagSet, store bool) {
	fs.StringVar(&c.config, "config", "", "TOML configuration `file`")
	if store {
		fs.StringVar(&c.kv, "kv", "", "store endpoint `URL` (file:///…, consul://host:port, etcd://host:port); overrides [store] endpoint")
		fs.StringVar(&c.prefix, "prefix", "", "key `prefix` in the store; overrides [store] prefix (default \"tollgate\")")
	}
}

// parse parses args and maps flag errors to the usage exit code.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fail(exitOK, errHelp)
		}
		return fail(exitUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fail(exitUsage, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}
