package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

func serveCmd(a *app) *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve [--config FILE] [--kv URL] [--prefix P] [--node-id ID]",
		Short: "run a replica",
		Long: `Runs a replica. With --config FILE it serves that file and reloads it when
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

Exit codes: 0 stopped cleanly, 1 failure while running, 2 bad command
line (a malformed --kv included), 3 invalid configuration (a malformed
[store] endpoint or a missing encryption key included), 4 store
unreachable at start.`,
		Example: `  tollgate serve --config examples/quickstart.toml
  tollgate serve --kv consul://consul:8500 --prefix tollgate
  tollgate serve --kv etcd://etcd-0.etcd:2379 --node-id "$POD_NAME"
  TOLLGATE_KV=consul://consul:8500 TOLLGATE_LOG_FORMAT=json tollgate serve`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			log, err := newLogger(a.stderr, a.logFormat, a.logLevel)
			if err != nil {
				return fail(exitUsage, err)
			}
			detach := libraryLogs.attach(log)
			defer detach()
			err = serve(ctx, a.now, f, a.stderr, log)
			if err == nil {
				return nil
			}
			// A replica's every line is a record of its log, its last
			// error included.
			ee := &exitError{code: exitFailure, err: err}
			errors.As(err, &ee)
			logExit(log, "serve", ee.code, ee.err)
			return &exitError{code: ee.code, err: ee.err, quiet: true}
		}),
	}
	f.register(c.Flags(), true)
	c.Flags().StringVar(&f.nodeID, "node-id", "", "this replica's `id` in the cluster (default: the host name)")
	return c
}
