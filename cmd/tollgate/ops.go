package main

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/dashboard"
	"github.com/tollgate-proxy/tollgate/router"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// opsEndpoints puts /ping, /ready, the API and (with [api] dashboard) the
// dashboard on the API's entry point and /metrics on the metrics entry
// point. api carries what the API shows beyond the router: the base
// provider, the Inspector and the events; the build and start time are
// filled in here. With [api] users or usersFile, the API and the
// dashboard ask for basic authentication, checked by the basicAuth
// middleware's code (the users file read here, once); /ping, /ready and
// /metrics stay open for probes and scrapers.
func opsEndpoints(cfg *config.Config, ops *router.Ops, rt *router.Router, reg *prometheus.Registry, api router.APIOptions) (map[string]http.Handler, error) {
	muxes := map[string]*router.OpsMux{}
	mux := func(ep string) *router.OpsMux {
		if muxes[ep] == nil {
			muxes[ep] = &router.OpsMux{}
		}
		return muxes[ep]
	}
	apiEP := "api"
	if a := cfg.API; a != nil {
		apiEP = cmp.Or(a.EntryPoint, "api")
		m := mux(apiEP)
		m.Handle("/ping", ops)
		m.Handle("/ready", ops)
		v, commit := buildCommit()
		api.Version, api.Commit, api.Start = v, commit, time.Now()
		// The API and the dashboard, behind one gate when there are users.
		inner := &router.OpsMux{}
		paths := []string{"/api/"}
		inner.Handle("/api/", rt.APIHandler(api))
		if a.Dashboard {
			d := dashboard.Handler()
			inner.Handle(dashboard.Path, d)
			inner.Handle(dashboard.Prefix, d)
			paths = append(paths, dashboard.Path, dashboard.Prefix)
		}
		var h http.Handler = inner
		if auth := a.Auth(); auth != nil {
			gate, err := middleware.NewBasicAuth(inner, auth)
			if err != nil {
				return nil, fmt.Errorf("api: %w", err)
			}
			h = gate
		}
		for _, p := range paths {
			m.Handle(p, h)
		}
	}
	if m := cfg.Metrics; m != nil && m.Prometheus != nil {
		mux(cmp.Or(m.Prometheus.EntryPoint, apiEP)).Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	out := map[string]http.Handler{}
	for ep, m := range muxes {
		out[ep] = m
	}
	return out, nil
}

// watchCollector exports the configuration watcher's counters.
func watchCollector(w *config.Watcher) prometheus.Collector {
	return collectorFuncs{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tollgate_config_watch_rejected_total",
			Help: "Configuration changes rejected as invalid or refused by the router; the last good configuration stayed in force.",
		}, func() float64 { return float64(w.Stats().Failures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_config_restart_pending",
			Help: "Number of changed keys that take effect only after a restart.",
		}, func() float64 { return float64(len(w.Stats().RestartPending)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was taken (Unix seconds): at start, then at each successful reload.",
		}, func() float64 { return float64(w.Stats().LastSuccess.UnixNano()) / 1e9 }),
	}
}

// collectorFuncs is a group of collectors registered as one.
type collectorFuncs []prometheus.Collector

func (c collectorFuncs) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c {
		x.Describe(ch)
	}
}

func (c collectorFuncs) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c {
		x.Collect(ch)
	}
}

// accessLogger opens the access log [accessLog] asks for, or returns nil.
func accessLogger(a *config.AccessLog) (*slog.Logger, func(), error) {
	if a == nil {
		return nil, func() {}, nil
	}
	var w io.Writer = os.Stdout
	closeFn := func() {}
	if a.FilePath != "" {
		f, err := os.OpenFile(a.FilePath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("access log: %w", err)
		}
		w, closeFn = f, func() { f.Close() }
	}
	if a.Format == "text" {
		return slog.New(slog.NewTextHandler(w, nil)), closeFn, nil
	}
	return slog.New(slog.NewJSONHandler(w, nil)), closeFn, nil
}
