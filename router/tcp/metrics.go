package tcp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of TCP routing, registered on the
// registry given to NewMetrics (the router's).
type Metrics struct {
	connections *prometheus.CounterVec
	open        *prometheus.GaugeVec
	bytes       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	refused     *prometheus.CounterVec
	dialErrors  *prometheus.CounterVec
	unrouted    *prometheus.CounterVec
}

// Reasons a connection is closed before a TCP router or HTTP takes it,
// the reason label of tollgate_tcp_unrouted_connections_total.
const (
	// ReasonTimeout: the client sent too little to route on within the
	// entry point's readHeaderTimeout.
	ReasonTimeout = "timeout"
	// ReasonNoRouter: a TLS connection no TCP router takes, on an entry
	// point that does not serve HTTPS.
	ReasonNoRouter = "no_router"
	// ReasonError: the client closed the connection, or reading from it
	// failed, before it could be routed.
	ReasonError = "error"
)

// NewMetrics registers the TCP metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tcp_connections_total", Help: "TCP connections a TCP router took, by entry point and router.",
		}, []string{"entrypoint", "router"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_tcp_open_connections", Help: "TCP connections open, by entry point and router.",
		}, []string{"entrypoint", "router"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tcp_bytes_total", Help: "Bytes proxied by TCP routers, by entry point, router and direction (in: from the client to the server; out: from the server to the client).",
		}, []string{"entrypoint", "router", "direction"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tollgate_tcp_connection_duration_seconds", Help: "How long TCP connections taken by a TCP router stayed open, by entry point and router.",
			Buckets: []float64{0.1, 1, 10, 60, 600, 3600},
		}, []string{"entrypoint", "router"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tcp_refused_connections_total", Help: "TCP connections closed by a middleware (ipAllowList, inFlightConn), by entry point, router and middleware.",
		}, []string{"entrypoint", "router", "middleware"}),
		dialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tcp_dial_failures_total", Help: "Failed connections (or TLS handshakes) to the servers of a TCP service, by service.",
		}, []string{"service"}),
		unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tcp_unrouted_connections_total", Help: "Connections closed before a TCP router or HTTP took them, by entry point and reason (timeout, no_router, error).",
		}, []string{"entrypoint", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.open, m.bytes, m.duration, m.refused, m.dialErrors, m.unrouted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Unrouted counts a connection closed before it was routed.
func (m *Metrics) Unrouted(entryPoint, reason string) {
	if m != nil {
		m.unrouted.WithLabelValues(entryPoint, reason).Inc()
	}
}

// routeMetrics are the series of one router on one entry point, resolved
// once at Build.
type routeMetrics struct {
	connections, bytesIn, bytesOut prometheus.Counter
	open                           prometheus.Gauge
	duration                       prometheus.Observer
	m                              *Metrics
	entryPoint, router             string
}

func (m *Metrics) route(entryPoint, router string) *routeMetrics {
	if m == nil {
		return nil
	}
	return &routeMetrics{
		connections: m.connections.WithLabelValues(entryPoint, router),
		bytesIn:     m.bytes.WithLabelValues(entryPoint, router, "in"),
		bytesOut:    m.bytes.WithLabelValues(entryPoint, router, "out"),
		open:        m.open.WithLabelValues(entryPoint, router),
		duration:    m.duration.WithLabelValues(entryPoint, router),
		m:           m, entryPoint: entryPoint, router: router,
	}
}

func (rm *routeMetrics) refused(middleware string) {
	if rm != nil {
		rm.m.refused.WithLabelValues(rm.entryPoint, rm.router, middleware).Inc()
	}
}

func (m *Metrics) dialFailed(service string) {
	if m != nil {
		m.dialErrors.WithLabelValues(service).Inc()
	}
}
