package router

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics, registered on the registry
// given to NewMetrics (never the global one).
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	connections *prometheus.GaugeVec
	handshakes  *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	provided    *providedCollector
	servers     *serversCollector
	// proxyProtocol counts PROXY protocol outcomes (proxyin.go).
	proxyProtocol *prometheus.CounterVec
}

// NewMetrics registers the router's metrics on reg. buckets are the
// latency histogram's bounds in seconds; nil means 0.1, 0.3, 1.2, 5.
func NewMetrics(reg prometheus.Registerer, buckets []float64) (*Metrics, error) {
	if len(buckets) == 0 {
		buckets = []float64{0.1, 0.3, 1.2, 5}
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_http_requests_total", Help: "HTTP requests by entry point, router, service and status code.",
		}, []string{"entrypoint", "router", "service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tollgate_http_request_duration_seconds", Help: "Time to serve a request, by router and service.", Buckets: buckets,
		}, []string{"router", "service"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_open_connections", Help: "Open client connections by entry point.",
		}, []string{"entrypoint"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tls_handshakes_total", Help: "Completed TLS handshakes by entry point.",
		}, []string{"entrypoint"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_config_reloads_total", Help: "Configuration reloads applied (result=success) or refused (result=failure).",
		}, []string{"result"}),
		provided: newProvidedCollector(),
		servers:  newServersCollector(),

		proxyProtocol: newProxyCounter(),
	}
	// Both results exist from the start: increase() over a series that
	// appears with its first reload, at 1, would miss that reload.
	for _, result := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(result)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connections, m.handshakes, m.reloads, m.provided, m.servers, m.proxyProtocol} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// watch makes tollgate_tls_certs_not_after{source="provided"} report
// rt's provided certificates, and tollgate_service_server_up rt's
// servers; the last Router given wins.
func (m *Metrics) watch(rt *Router) {
	if m != nil {
		m.provided.rt.Store(rt)
		m.servers.rt.Store(rt)
	}
}

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(ok bool) {
	if m == nil {
		return
	}
	result := "success"
	if !ok {
		result = "failure"
	}
	m.reloads.WithLabelValues(result).Inc()
}

// reqInfo collects, while a request is served, what the access log and
// the metrics report.
type reqInfo struct {
	router, service string
}

type infoKey struct{}

func infoOf(r *http.Request) *reqInfo {
	i, _ := r.Context().Value(infoKey{}).(*reqInfo)
	return i
}

// recorder records the status and size of a response while passing
// through Flush, Hijack and Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// recordStatus records a status that is not sent (499).
func (w *recorder) recordStatus(code int) { w.status = code }

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observed wraps an entry point's handler with the access log and the
// request metrics.
func observed(entryPoint string, next http.Handler, m *Metrics, access *slog.Logger) http.Handler {
	if m == nil && access == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
		elapsed := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if m != nil {
			m.requests.WithLabelValues(entryPoint, info.router, info.service, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(info.router, info.service).Observe(elapsed.Seconds())
		}
		if access != nil {
			access.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", r.Header.Get(RequestIDHeader)),
				slog.String("entry_point", entryPoint),
				slog.String("router", info.router),
				slog.String("service", info.service),
				slog.String("method", r.Method),
				slog.String("host", r.Host),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
				slog.Int64("bytes", rec.bytes),
				slog.String("client", r.RemoteAddr),
			)
		}
	})
}

// connState counts open connections and TLS handshakes of an entry point.
func connState(entryPoint string, m *Metrics) func(net.Conn, http.ConnState) {
	if m == nil {
		return nil
	}
	open := m.connections.WithLabelValues(entryPoint)
	return func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Inc()
		case http.StateClosed, http.StateHijacked:
			open.Dec()
		}
	}
}
