package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// target is the store an operations command works on, with the
// configuration it found.
type target struct {
	st       kvstore.Store
	endpoint string // redacted
	prefix   string
	// cfg is --config's file, else the configuration published in the
	// store; nil when the store holds none and none was needed.
	cfg    *config.Config
	source string
}

// openTarget opens the store the flags name (--kv, else --config's
// [store], else the embedded default) and finds the configuration. With
// needConfig, a store without a published configuration is an error.
func openTarget(ctx context.Context, f commonFlags, needConfig bool) (*target, error) {
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return nil, err
		}
	}
	endpoint, prefix := storeOf(cfg, f)
	if err := config.CheckPrefix(prefix); err != nil {
		return nil, fail(exitUsage, err)
	}
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		return nil, openError(fmt.Errorf("open the store %s: %w", backend.Redact(endpoint), err), f.kv != "")
	}
	t := &target{st: st, endpoint: backend.Redact(endpoint), prefix: prefix, cfg: cfg, source: f.config}
	if cfg != nil {
		return t, nil
	}
	t.cfg, t.source, err = loadPublished(ctx, st, t.endpoint, prefix, "give --config FILE instead")
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, config.ErrNoConfig) && !needConfig:
		return t, nil
	}
	st.Close()
	return nil, err
}

// loadPublished reads the configuration published in st under prefix,
// and where it came from. endpoint (redacted) and hint, which says what to
// do instead, go into the error when there is none or it is invalid
// (exitInvalid); a failing store gives exitStore.
func loadPublished(ctx context.Context, st kvstore.Store, endpoint, prefix, hint string) (*config.Config, string, error) {
	snap, err := config.Load(ctx, st, prefix)
	if err == nil {
		return snap.Config, snap.Source, nil
	}
	var ce *config.Error
	if errors.As(err, &ce) || errors.Is(err, config.ErrNoConfig) {
		return nil, "", fail(exitInvalid, fmt.Errorf("configuration in %s under %q: %w; %s", endpoint, prefix, err, hint))
	}
	return nil, "", fail(exitStore, err)
}

func (t *target) Close() { t.st.Close() }

// openError marks an error of backend.Open with its exit code: an endpoint
// wrong as written is a bad command line when a flag gave it (exitUsage)
// and an invalid configuration when a file's [store] did (exitInvalid);
// any other error is the store failing (exitStore).
func openError(err error, fromFlag bool) error {
	switch {
	case !errors.Is(err, backend.ErrEndpoint):
		return fail(exitStore, err)
	case fromFlag:
		return fail(exitUsage, err)
	}
	return fail(exitInvalid, err)
}

// storeErr marks err, from the store, with the store exit code.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return fail(exitStore, err)
}

// parseArgs parses args, flags and between min and max positional
// arguments in any order, and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, fail(exitOK, errHelp)
			}
			return nil, fail(exitUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < min || len(pos) > max {
		fs.Usage()
		switch {
		case max == 0:
			return nil, fail(exitUsage, fmt.Errorf("unexpected argument %q", pos[0]))
		case len(pos) < min:
			return nil, fail(exitUsage, errors.New("missing argument"))
		}
		return nil, fail(exitUsage, fmt.Errorf("unexpected argument %q", pos[max]))
	}
	return pos, nil
}
