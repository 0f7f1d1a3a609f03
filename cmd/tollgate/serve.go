package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
	"github.com/tollgate-proxy/tollgate/router"
)

// serve runs a replica: it loads the configuration from a file or from
// the store, serves the entry points, applies every configuration change,
// and drains on SIGTERM.
func serve(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	var f serveFlags
	fs := newFlagSet("serve", serveHelp, stderr)
	f.register(fs, true)
	fs.StringVar(&f.nodeID, "node-id", "", "this replica's `id` in the cluster (default: the host name)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.config == "" && f.kv == "" {
		fs.Usage()
		return fail(exitUsage, errors.New("give --config FILE to run from a file, or --kv URL to follow the configuration in a store"))
	}
	raiseOpenFilesLimit(log)
	var initial *config.Snapshot
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = loadConfig(f.config); err != nil {
			return err
		}
		initial = &config.Snapshot{Config: cfg, Source: f.config}
	}
	endpoint, prefix := storeOf(cfg, f.commonFlags)
	if err := config.CheckPrefix(prefix); err != nil {
		return fail(exitUsage, err)
	}
	st, err := backend.Open(ctx, endpoint, backend.Options{Logger: log})
	if err != nil {
		return fail(exitStore, err)
	}
	defer st.Close()
	wc := config.WatchConfig{Logger: log}
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
	log.Info("configuration loaded", "source", initial.Source, "store", backend.Redact(endpoint),
		"routers", count(initial.Config.HTTP, func(h *config.HTTP) int { return len(h.Routers) }))
	cl, err := joinCluster(st, prefix, f.nodeID, log)
	if err != nil {
		return fail(exitUsage, err)
	}
	return run2(ctx, initial, wc, log, stderr, cl, st, prefix)
}

// run2 serves until ctx is done, then drains.
func run2(ctx context.Context, initial *config.Snapshot, wc config.WatchConfig, log *slog.Logger, stderr io.Writer,
	cl *cluster, st kvstore.Store, prefix string) error {
	cfg := initial.Config
	log = configuredLogger(cfg.Log, log, stderr)
	access, closeAccess, err := accessLogger(cfg.AccessLog)
	if err != nil {
		return fail(exitFailure, err)
	}
	defer closeAccess()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var buckets []float64
	if cfg.Metrics != nil && cfg.Metrics.Prometheus != nil {
		buckets = cfg.Metrics.Prometheus.Buckets
	}
	metrics, err := router.NewMetrics(reg, buckets)
	if err != nil {
		return fail(exitFailure, err)
	}
	reg.MustRegister(cl.collector())
	rt := router.New(router.Config{Logger: log, Metrics: metrics, AccessLog: access})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		return fail(exitInvalid, err)
	}
	cs, err := newCerts(st, prefix, cfg, cl, reg, log)
	if err != nil {
		return err
	}
	ops := &router.Ops{}
	extra := opsEndpoints(cfg, ops, rt, reg)
	sc := router.ServersConfig{Config: cfg, Router: rt, Extra: extra, Logger: log, Metrics: metrics}
	if cs != nil {
		sc.Certs, sc.Challenges = cs.onDemand, cs.cache
	}
	servers, err := router.Listen(sc)
	if err != nil {
		return fail(exitFailure, err)
	}
	wc.Initial, wc.Logger = initial, log
	wc.OnSnapshot = func(s *config.Snapshot) error {
		// A configuration the router refuses is refused: the watcher
		// keeps the last good one current and counts the rejection.
		if err := rt.Apply(s.Config); err != nil {
			return err
		}
		if cs != nil {
			cs.setConfig(s.Config)
		}
		return nil
	}
	w, err := config.NewWatcher(wc)
	if err != nil {
		return err
	}
	reg.MustRegister(watchCollector(w))
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.Run(watchCtx) }()
	stopCluster := cl.start(context.WithoutCancel(ctx))
	stopCerts := func() {}
	if cs != nil {
		stopCerts = cs.start(context.WithoutCancel(ctx), log)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- servers.Serve() }()
	if cs != nil {
		// Ready once every stored certificate is in memory.
		select {
		case <-cs.cache.Ready():
		case <-ctx.Done():
		}
	}
	ops.SetReady(true)
	for name := range cfg.EntryPoints {
		log.Info("listening", "entry_point", name, "address", servers.Addr(name).String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}
	drain(initial.Config.Lifecycle, ops, servers, log, serveErr == nil)
	stopCerts()
	stopCluster()
	stopWatch()
	if err := <-watchDone; err != nil {
		log.Error("configuration watch failed", "err", err)
	}
	if serveErr == nil {
		serveErr = <-serveDone
	}
	if serveErr != nil {
		return fail(exitFailure, serveErr)
	}
	log.Info("stopped")
	return nil
}

// drain fails readiness at once, keeps serving for the drain delay so
// load balancers stop sending, then stops accepting and waits up to the
// grace timeout for requests in flight.
func drain(lc *config.Lifecycle, ops *router.Ops, servers *router.Servers, log *slog.Logger, wait bool) {
	var l config.Lifecycle
	if lc != nil {
		l = *lc
	}
	delay, grace := cmp.Or(l.DrainDelay.Std(), 5*time.Second), cmp.Or(l.GraceTimeout.Std(), 10*time.Second)
	ops.SetReady(false)
	if wait {
		log.Info("draining: readiness fails, still serving", "for", delay)
		time.Sleep(delay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := servers.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at the end of the grace timeout were cut", "grace_timeout", grace, "err", err)
	}
}

func count[T any](v *T, n func(*T) int) int {
	if v == nil {
		return 0
	}
	return n(v)
}
