package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// storeconfigFlags are storeconfig's flags.
type storeconfigFlags struct {
	commonFlags
	dryRun      bool
	lockTimeout time.Duration
}

func storeconfigCmd(a *app) *cobra.Command {
	var f storeconfigFlags
	c := &cobra.Command{
		Use:   "storeconfig --config FILE [--kv URL] [--prefix P] [--dry-run]",
		Short: "publish a configuration file into the store",
		Long: `Validates FILE and publishes it into the store as a new version, switched
to atomically: replicas see the old or the new configuration, never a mix.
Prints one line per changed key (secrets as (hidden)). Writes nothing when
nothing changed or the file is invalid.

Exit codes: 0 published or nothing to change, 2 bad command line, 3
invalid configuration, 4 store unreachable or failing, 5 another
storeconfig held the lock past --lock-timeout or wrote meanwhile.`,
		Example: `  tollgate storeconfig --config cluster.toml --kv consul://consul:8500 --dry-run
  tollgate storeconfig --config cluster.toml --kv consul://consul:8500`,
		Args: argsRange(0, 0),
		RunE: runE(func(ctx context.Context, _ []string) error {
			return storeconfig(ctx, f, a.stdout, a.stderr)
		}),
	}
	f.register(c.Flags(), true)
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the changes without writing anything")
	c.Flags().DurationVar(&f.lockTimeout, "lock-timeout", time.Minute, "how long to wait for another storeconfig to finish")
	return c
}

// storeconfig publishes a configuration file to the store.
func storeconfig(ctx context.Context, f storeconfigFlags, stdout, stderr io.Writer) error {
	if f.config == "" {
		return fail(exitUsage, errors.New("--config is required"))
	}
	cfg, err := loadRoutableConfig(f.config, config.LoadOptions{})
	if err != nil {
		return err
	}
	if f.kv == "" && (cfg.Store == nil || cfg.Store.Endpoint == "") {
		return fail(exitUsage, errors.New("name the store to publish to: give --kv URL or set endpoint in [store]"))
	}
	endpoint, prefix := storeOf(cfg, f.commonFlags)
	if err := config.CheckPrefix(prefix); err != nil {
		return fail(exitUsage, err)
	}
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		return openError(err, f.kv != "")
	}
	defer st.Close()
	res, err := config.Publish(ctx, st, cfg, config.PublishOptions{Prefix: prefix, DryRun: f.dryRun, LockTimeout: f.lockTimeout})
	if res != nil {
		report(stdout, f.config, prefix, res, f.dryRun, err)
	}
	if res != nil && res.PruneError != nil {
		fmt.Fprintf(stderr, "tollgate storeconfig: warning: %v; readers ignore it and the next storeconfig deletes it\n", res.PruneError)
	}
	var ce *config.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return fail(exitInvalid, err)
	case errors.Is(err, config.ErrPublishConflict), errors.Is(err, config.ErrLockTimeout):
		return fail(exitConflict, err)
	default:
		return fail(exitStore, err)
	}
}

// loadConfig reads and validates a file; a file that cannot be read is
// invalid input as much as one that does not validate.
func loadConfig(path string) (*config.Config, error) {
	return loadConfigWith(path, config.LoadOptions{})
}

// loadConfigWith is loadConfig with options: with ReadFiles, a
// certificate or CA file that cannot be used is a problem at the key that
// names it.
func loadConfigWith(path string, o config.LoadOptions) (*config.Config, error) {
	cfg, err := config.LoadFileWith(path, o)
	if err != nil {
		return nil, fail(exitInvalid, err)
	}
	return cfg, nil
}

// storeOf picks the endpoint and prefix: flags first, then [store], then
// the defaults.
func storeOf(cfg *config.Config, f commonFlags) (endpoint, prefix string) {
	var s config.Store
	if cfg != nil && cfg.Store != nil {
		s = *cfg.Store
	}
	return cmp.Or(f.kv, s.Endpoint, config.DefaultStoreEndpoint), cmp.Or(f.prefix, s.Prefix, config.DefaultPrefix)
}

func report(w io.Writer, file, prefix string, res *config.PublishResult, dryRun bool, err error) {
	root := prefix + "/config"
	for _, c := range res.Changes {
		fmt.Fprintln(w, c)
	}
	switch {
	case err != nil && !res.Applied:
		fmt.Fprintf(w, "%d change(s) not applied: %s/%s is still live\n", len(res.Changes), root, cmp.Or(res.From, "(none)"))
		return
	case len(res.Changes) == 0 && len(res.Pruned) == 0:
		fmt.Fprintf(w, "no changes: %s/%s already holds %s\n", root, res.From, file)
		return
	case dryRun && len(res.Changes) > 0:
		fmt.Fprintf(w, "dry run: %d change(s); %s would go live as %s/%s; nothing written\n", len(res.Changes), file, root, res.To)
	case dryRun:
		fmt.Fprintf(w, "dry run: no changes to %s/%s\n", root, res.From)
	case res.To != res.From:
		fmt.Fprintf(w, "%d change(s): %s/%s is live (was %s)\n", len(res.Changes), root, res.To, cmp.Or(res.From, "none"))
	default:
		fmt.Fprintf(w, "no changes: %s/%s already holds %s\n", root, res.From, file)
	}
	for _, v := range res.Pruned {
		if dryRun {
			fmt.Fprintf(w, "would delete old version %s/%s\n", root, v)
		} else {
			fmt.Fprintf(w, "deleted old version %s/%s\n", root, v)
		}
	}
}
