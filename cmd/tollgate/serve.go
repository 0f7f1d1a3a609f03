package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// serve runs a replica: it loads the configuration from a file or from
// the store and follows its changes until it is told to stop.
func serve(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	var f commonFlags
	fs := newFlagSet("serve", "serve [--config FILE] [--kv URL] [--prefix P]", stderr)
	f.register(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.config == "" && f.kv == "" {
		fs.Usage()
		return fail(exitUsage, errors.New("give --config FILE to run from a file, or --kv URL to follow the configuration in a store"))
	}
	var initial *config.Snapshot
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return err
		}
		initial = &config.Snapshot{Config: cfg, Source: f.config}
	}
	endpoint, prefix := storeOf(cfg, f)
	if err := config.CheckPrefix(prefix); err != nil {
		return fail(exitUsage, err)
	}
	st, err := backend.Open(ctx, endpoint, backend.Options{Logger: log})
	if err != nil {
		return fail(exitStore, err)
	}
	defer st.Close()
	wc := config.WatchConfig{Logger: log, OnSnapshot: func(s *config.Snapshot) {}}
	if initial == nil {
		initial, err = config.Load(ctx, st, prefix)
		if err != nil {
			var ce *config.Error
			if errors.As(err, &ce) || errors.Is(err, config.ErrNoConfig) {
				return fail(exitInvalid, err)
			}
			return fail(exitStore, err)
		}
		wc.Store, wc.Prefix = st, prefix
	} else {
		wc.File = f.config
	}
	wc.Initial = initial
	w, err := config.NewWatcher(wc)
	if err != nil {
		return err
	}
	log.Info("configuration loaded", "source", initial.Source, "store", backend.Redact(endpoint),
		"routers", count(initial.Config.HTTP, func(h *config.HTTP) int { return len(h.Routers) }))
	if err := w.Run(ctx); err != nil {
		return fail(exitStore, fmt.Errorf("follow the configuration: %w", err))
	}
	log.Info("stopped")
	return nil
}

func count[T any](v *T, n func(*T) int) int {
	if v == nil {
		return 0
	}
	return n(v)
}
