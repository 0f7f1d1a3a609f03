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
	"github.com/tollgate-proxy/tollgate/provider/gateway"
	"github.com/tollgate-proxy/tollgate/provider/kubernetes"
	"github.com/tollgate-proxy/tollgate/router"
)

// serve runs a replica: it loads the configuration from a file or from
// the store, serves the entry points, applies every configuration change,
// and drains on SIGTERM.
func serve(ctx, now context.Context, f serveFlags, stderr io.Writer, log *slog.Logger) error {
	if f.config == "" && f.kv == "" {
		return fail(exitUsage, errors.New("give --config FILE to run from a file, or --kv URL to follow the configuration in a store"))
	}
	// The first line says which build runs as which node. Until [log]
	// is read, lines are held, to come out in the format it names.
	sw := logSwitchOf(log)
	sw.hold()
	defer sw.release()
	logStart(log, nodeID(f.nodeID))
	raiseOpenFilesLimit(log)
	var initial *config.Snapshot
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = loadConfigWith(f.config, config.LoadOptions{ReadFiles: true}); err != nil {
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
		return openError(err, f.kv != "")
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
		wc.File, wc.ReadFiles = f.config, true
	}
	sw.configure(initial.Config.Log)
	loaded := []any{"source", initial.Source, "store", backend.Redact(endpoint),
		"routers", count(initial.Config.HTTP, func(h *config.HTTP) int { return len(h.Routers) })}
	// TCP routers, which few configurations have, only when there are some.
	if n := count(initial.Config.TCP, func(t *config.TCP) int { return len(t.Routers) }); n > 0 {
		loaded = append(loaded, "tcp_routers", n)
	}
	log.Info("configuration loaded", loaded...)
	cl, err := joinCluster(st, prefix, f.nodeID, log)
	if err != nil {
		return fail(exitUsage, err)
	}
	return run2(ctx, now, initial, wc, log, stderr, cl, st, prefix)
}

// run2 serves until ctx is done, then drains.
func run2(ctx, now context.Context, initial *config.Snapshot, wc config.WatchConfig, log *slog.Logger, stderr io.Writer,
	cl *cluster, st kvstore.Store, prefix string) error {
	cfg := initial.Config
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
	reg.MustRegister(cl.collector(), buildInfoCollector())
	// This replica's recent events, for /api/events and the dashboard.
	events := router.NewEvents(0)
	rt := router.New(router.Config{Logger: log, Metrics: metrics, AccessLog: access, Events: events})
	defer rt.Close()
	if err := rt.Apply(cfg); err != nil {
		return fail(exitInvalid, err)
	}
	cs, err := newCerts(st, prefix, cfg, cl, reg, events, log)
	if err != nil {
		return err
	}
	ops := &router.Ops{}
	// The API shows the certificates and the cluster as the store holds
	// them, the same views as certs list and cluster status.
	insp := &storeInspector{st: st, prefix: prefix, configuration: initial.Source, now: time.Now}
	if cfg.ACME != nil {
		insp.kr, _ = loadKeyring(cfg.ACME) // newCerts refused a key that does not load
	}
	// The listeners keep the entry points they start with until a restart.
	api := router.APIOptions{BaseProvider: "file", Inspector: insp, Events: events, EntryPoints: cfg.EntryPoints}
	if wc.File == "" {
		api.BaseProvider = "store"
	}
	extra, err := opsEndpoints(cfg, ops, rt, reg, api)
	if err != nil {
		return fail(exitInvalid, err)
	}
	sc := router.ServersConfig{Config: cfg, Router: rt, Extra: extra, Logger: log, Metrics: metrics}
	if cs != nil {
		sc.Certs, sc.Challenges = cs.onDemand, cs.cache
	}
	servers, err := router.Listen(sc)
	if err != nil {
		return fail(exitFailure, err)
	}
	// The file or store configuration and the providers' meet in sources:
	// a merge the router refuses is refused, and the last good one stays.
	sources := config.NewSources(cfg, func(c *config.Config) error {
		if err := rt.Apply(c); err != nil {
			return err
		}
		if cs != nil {
			cs.setConfig(c)
		}
		return nil
	})
	wc.Initial, wc.Logger = initial, log
	wc.OnSnapshot = func(s *config.Snapshot) error { return sources.SetBase(s.Config) }
	wc.OnReject = func(err error) { events.Record(router.EventConfigRejected, err.Error()) }
	wc.OnRecover = func() {
		events.Record(router.EventConfigRecovered, "the rejected change was undone; the configuration in force stays")
	}
	w, err := config.NewWatcher(wc)
	if err != nil {
		return err
	}
	reg.MustRegister(watchCollector(w))
	kube, err := newKubernetes(cfg, sources, cl.node, reg, log)
	if err != nil {
		return err
	}
	gw, err := newGateway(cfg, sources, cl.node, reg, log)
	if err != nil {
		return err
	}
	return runParts(ctx, now, replica{
		lifecycle: initial.Config.Lifecycle, entryPoints: cfg.EntryPoints,
		servers: servers, ops: ops, watcher: w, cluster: cl, certs: cs, kube: kube,
		kubeLeader:    kubernetes.ElectorLeadership(cl.elector, prefix+"/"+kubernetes.StatusTermKey),
		gateway:       gw,
		gatewayLeader: kubernetes.ElectorLeadership(cl.elector, prefix+"/"+gateway.StatusTermKey),
	}, log)
}

// checkPair is the router's check of a certificate a provider supplies.
func checkPair(kp config.KeyPair) error {
	_, err := router.ParseKeyPair(kp)
	return err
}

// newKubernetes builds the Kubernetes Ingress provider when the
// configuration enables it; nil when it does not.
func newKubernetes(cfg *config.Config, sources *config.Sources, node string, reg prometheus.Registerer, log *slog.Logger) (*kubernetes.Provider, error) {
	if cfg.Providers == nil || cfg.Providers.KubernetesIngress == nil {
		return nil, nil
	}
	p, err := kubernetes.New(kubernetes.Config{
		Settings:  cfg.Providers.KubernetesIngress,
		Sink:      sources,
		Base:      cfg,
		CheckPair: checkPair,
		// The API server refuses field managers over 128 bytes.
		FieldManager: truncate("tollgate-"+node, 128),
		Registerer:   reg,
		Logger:       log,
	})
	if err != nil {
		return nil, fail(exitInvalid, err)
	}
	sources.OnRefused(func(provider string, refused []config.Refusal) {
		if provider == kubernetes.ProviderName {
			p.Refused(refused)
		}
	})
	return p, nil
}

// newGateway builds the Kubernetes Gateway API provider when the
// configuration enables it; nil when it does not.
func newGateway(cfg *config.Config, sources *config.Sources, node string, reg prometheus.Registerer, log *slog.Logger) (*gateway.Provider, error) {
	if cfg.Providers == nil || cfg.Providers.KubernetesGateway == nil {
		return nil, nil
	}
	p, err := gateway.New(gateway.Config{
		Settings:     cfg.Providers.KubernetesGateway,
		Sink:         sources,
		Base:         cfg,
		CheckPair:    checkPair,
		FieldManager: truncate("tollgate-"+node, 128),
		Registerer:   reg,
		Logger:       log,
	})
	if err != nil {
		return nil, fail(exitInvalid, err)
	}
	sources.OnRefused(func(provider string, refused []config.Refusal) {
		if provider == gateway.ProviderName {
			p.Refused(refused)
		}
	})
	return p, nil
}

// replica is what runParts runs.
type replica struct {
	lifecycle   *config.Lifecycle
	entryPoints map[string]*config.EntryPoint
	servers     *router.Servers
	ops         *router.Ops
	watcher     *config.Watcher
	cluster     *cluster
	certs       *certs               // nil without [acme]
	kube        *kubernetes.Provider // nil without providers.kubernetesIngress
	kubeLeader  kubernetes.Leadership
	// gateway is nil without providers.kubernetesGateway.
	gateway       *gateway.Provider
	gatewayLeader kubernetes.Leadership
}

// runParts runs the replica's parts under one owner until ctx is done
// (SIGTERM) or a part fails. On SIGTERM the replica stops campaigning at
// once (resigning if it leads: a draining replica must not take or keep
// the leadership), fails readiness, keeps serving for the drain delay and
// then for the grace timeout; now (a second SIGTERM) cuts both short. A
// part that fails ends the replica at once, without a drain delay, with
// the part's error: Kubernetes restarts it.
func runParts(ctx, now context.Context, r replica, log *slog.Logger) error {
	p := newParts(ctx, log)
	// The entry points and the elector stop before the other parts.
	serveCtx, stopServing := context.WithCancel(p.Context())
	defer stopServing()
	campaignCtx, stopCampaign := context.WithCancel(p.Context())
	defer stopCampaign()
	p.run("configuration watch", nil, r.watcher.Run)
	p.run("leader election", campaignCtx, r.cluster.elector.Run)
	p.run("node registry", nil, r.cluster.registry.Run)
	if r.certs != nil {
		p.run("certificate cache", nil, r.certs.cache.Run)
		p.run("certificate manager", nil, r.certs.manager.Run)
	}
	if r.kube != nil {
		p.run("kubernetes provider", nil, r.kube.Run)
		p.run("kubernetes status", campaignCtx, func(ctx context.Context) error { return r.kube.RunLeader(ctx, r.kubeLeader) })
	}
	if r.gateway != nil {
		p.run("kubernetes gateway provider", nil, r.gateway.Run)
		p.run("kubernetes gateway status", campaignCtx, func(ctx context.Context) error { return r.gateway.RunLeader(ctx, r.gatewayLeader) })
	}
	p.run("entry points", serveCtx, func(context.Context) error { return r.servers.Serve() })

	if r.certs != nil {
		// Ready once every stored certificate is in memory.
		select {
		case <-r.certs.cache.Ready():
		case <-ctx.Done():
		case <-p.Context().Done():
		}
	}
	if r.kube != nil {
		// Ready once the Ingresses' routes are in force: a replica
		// without them would answer 404 to everything they route.
		select {
		case <-r.kube.Ready():
		case <-ctx.Done():
		case <-p.Context().Done():
		}
	}
	if r.gateway != nil {
		// Ready once the Gateway API routes are in force.
		select {
		case <-r.gateway.Ready():
		case <-ctx.Done():
		case <-p.Context().Done():
		}
	}
	r.ops.SetReady(ctx.Err() == nil && p.Context().Err() == nil)
	for name := range r.entryPoints {
		log.Info("listening", "entry_point", name, "address", r.servers.Addr(name).String())
	}
	select {
	case <-ctx.Done():
	case <-p.Context().Done():
	}
	r.ops.SetReady(false)
	failed := p.Context().Err() != nil
	stopCampaign()
	if !failed {
		drain(now, p.Context(), r.lifecycle, log)
	}
	stopServing()
	shutdown(now, r.lifecycle, r.servers, log)
	if err := p.stop(); err != nil {
		return fail(exitFailure, err)
	}
	log.Info("stopped")
	return nil
}

// drain keeps serving, with readiness failing, for the drain delay so
// that load balancers stop sending; now or failed cut it short.
func drain(now, failed context.Context, lc *config.Lifecycle, log *slog.Logger) {
	delay, _ := lifecycle(lc)
	log.Info("draining: readiness fails, still serving", "for", delay)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-now.Done():
		log.Warn("second signal: the drain ends now")
	case <-failed.Done():
	}
}

// shutdown stops accepting and waits up to the grace timeout for requests
// in flight; now cuts the wait short.
func shutdown(now context.Context, lc *config.Lifecycle, servers *router.Servers, log *slog.Logger) {
	_, grace := lifecycle(lc)
	ctx, cancel := context.WithTimeout(now, grace)
	defer cancel()
	if err := servers.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at the end of the grace timeout were cut", "grace_timeout", grace, "err", err)
	}
}

// lifecycle returns the drain delay and the grace timeout.
func lifecycle(lc *config.Lifecycle) (delay, grace time.Duration) {
	var l config.Lifecycle
	if lc != nil {
		l = *lc
	}
	return cmp.Or(l.DrainDelay.Std(), 5*time.Second), cmp.Or(l.GraceTimeout.Std(), 10*time.Second)
}

func count[T any](v *T, n func(*T) int) int {
	if v == nil {
		return 0
	}
	return n(v)
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
