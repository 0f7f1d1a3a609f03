package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"time"

	"github.com/spf13/pflag"

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
	if errors.Is(err, backend.ErrLocked) {
		return nil, fail(exitStore, fmt.Errorf("the embedded store %s is %w: %s", embeddedPath(endpoint), errStoreInUse, storeInUseHint))
	}
	if err != nil && f.kv == "" && cfg == nil && errors.Is(err, fs.ErrNotExist) {
		return nil, fail(exitStore, fmt.Errorf("the embedded default store %s does not exist: give --kv URL (consul://HOST:PORT, etcd://HOST:PORT, file:///PATH) or --config FILE naming the store", embeddedPath(endpoint)))
	}
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

// embeddedPath is the file of an embedded store endpoint.
func embeddedPath(endpoint string) string {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return backend.Redact(endpoint)
	case u.Opaque != "":
		return u.Opaque // file:relative/path
	}
	return u.Path
}

// inspectFlags are the flags of the commands that read the views: the
// store's, or --api's.
type inspectFlags struct {
	commonFlags
	api    string
	output outputFlag
}

func (f *inspectFlags) register(fs *pflag.FlagSet) {
	f.commonFlags.register(fs, true)
	fs.StringVar(&f.api, "api", "", "read from a running replica's API at `URL` (http://HOST:PORT, its [api] entry point) instead of the store, such as while it holds the embedded store")
	f.output.register(fs)
}

// source is where an inspecting command reads from.
type source struct {
	inspector
	// t is the store opened, nil when reading an API.
	t *target
}

func (s *source) Close() {
	if s.t != nil {
		s.t.Close()
	}
}

// openInspector opens what f names: --api's replica, else the store. A
// store held by a running replica whose configuration (--config) has an
// [api] section is read through that API on loopback, said on stderr.
func openInspector(ctx context.Context, f inspectFlags, stderr io.Writer) (*source, error) {
	if err := f.output.check(); err != nil {
		return nil, err
	}
	if f.api != "" {
		if f.kv != "" || f.prefix != "" {
			return nil, fail(exitUsage, errors.New("--api reads a replica's API: give it without --kv and --prefix"))
		}
		a, err := newAPIInspector(f.api)
		if err != nil {
			return nil, fail(exitUsage, err)
		}
		return &source{inspector: a}, nil
	}
	t, err := openTarget(ctx, f.commonFlags, false)
	if errors.Is(err, errStoreInUse) && f.config != "" {
		if base, ok := apiOf(f.config); ok {
			fmt.Fprintf(stderr, "the embedded store is in use by a running replica: reading its API at %s ([api] of %s) instead\n", base, f.config)
			a, aerr := newAPIInspector(base)
			if aerr != nil {
				return nil, fail(exitInvalid, aerr)
			}
			return &source{inspector: a}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	kr, note := checkKeyring(t)
	si := &storeInspector{st: t.st, prefix: t.prefix, kr: kr, configuration: configurationLine(t, f.config), now: time.Now}
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	return &source{inspector: si, t: t}, nil
}

// apiOf is the loopback URL of the [api] entry point of the configuration
// in file; false when it has no [api] section.
func apiOf(file string) (string, bool) {
	cfg, err := loadConfig(file)
	if err != nil || cfg.API == nil {
		return "", false
	}
	ep := cfg.EntryPoints[cmp.Or(cfg.API.EntryPoint, "api")]
	if ep == nil {
		return "", false
	}
	host, port, err := net.SplitHostPort(ep.Address)
	if err != nil {
		return "", false
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), true
}

// configurationLine says where the configuration in force comes from, for
// cluster status.
func configurationLine(t *target, file string) string {
	switch {
	case file != "":
		return "from " + file + " (not read from the store)"
	case t.cfg != nil:
		return t.source
	}
	return "none published (replicas started with --config use their file)"
}
