package acme

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a challenge request, as counted in
// tollgate_acme_challenge_requests_total.
const (
	// resultAnswered: answered from memory.
	resultAnswered = "answered"
	// resultMissing: no answer (404, or a failed TLS-ALPN-01 handshake).
	resultMissing = "missing"
	// resultStore: answered after a consistent store read, the answer not
	// having reached memory yet.
	resultStore = "store"
)

// Answers of the ask URL, as counted in tollgate_acme_ondemand_asks_total.
const (
	askAllowed = "allowed"
	askDenied  = "denied"
	askFailed  = "failed"
)

// Causes of failed orders, as counted in
// tollgate_acme_order_failures_total; failureReason derives them from the
// error.
const (
	// failRateLimited: the CA refused for a rate limit (rateLimited).
	failRateLimited = "rate_limited"
	// failValidation: a challenge failed (unauthorized, caa, dns,
	// connection, incorrectResponse, tls): the CA could not reach the
	// answer, or read another one.
	failValidation = "validation"
	// failRejectedIdentifier: the CA will not issue for the name
	// (rejectedIdentifier, unsupportedIdentifier).
	failRejectedIdentifier = "rejected_identifier"
	// failCAError: the CA failed (serverInternal, badNonce, any 5xx).
	failCAError = "ca_error"
	// failAccount: the CA refused the account (accountDoesNotExist, a
	// deactivated or unauthorized account).
	failAccount = "account"
	// failUnreachable: no answer from the CA (a network error or a
	// timeout).
	failUnreachable = "unreachable"
	// failStore: the store did not take the order or the certificate.
	failStore = "store"
	// failOther: anything else.
	failOther = "other"
)

// failureReasons are every value failureReason returns, pre-created.
var failureReasons = [...]string{failRateLimited, failValidation, failRejectedIdentifier, failCAError, failAccount, failUnreachable, failStore, failOther}

// failureReason is the cause of a failed order, for
// tollgate_acme_order_failures_total: from the ACME problem the CA sent
// (RFC 8555, section 6.7) when there is one, else from the error.
func failureReason(err error) string {
	switch {
	case errors.Is(err, errAccountRejected):
		return failAccount
	case errors.Is(err, errNotStored):
		return failStore
	}
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) {
		return problemReason(p)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return failUnreachable
	}
	return failOther
}

// problemReason classifies an ACME problem; a compound one by its first
// subproblem that says more than "other".
func problemReason(p *legoacme.ProblemDetails) string {
	typ, _ := strings.CutPrefix(p.Type, "urn:ietf:params:acme:error:")
	switch typ {
	case "rateLimited":
		return failRateLimited
	case "caa", "dns", "connection", "incorrectResponse", "tls":
		return failValidation
	case "unauthorized":
		// Also the answer to a request signed by a deactivated
		// account: its detail speaks of the account.
		if strings.Contains(strings.ToLower(p.Detail), "account") {
			return failAccount
		}
		return failValidation
	case "rejectedIdentifier", "unsupportedIdentifier":
		return failRejectedIdentifier
	case "accountDoesNotExist":
		return failAccount
	case "badNonce", "serverInternal":
		return failCAError
	case "compound":
		for _, sp := range p.SubProblems {
			if r := problemReason(&legoacme.ProblemDetails{Type: sp.Type, Detail: sp.Detail}); r != failOther {
				return r
			}
		}
	}
	if p.HTTPStatus >= http.StatusInternalServerError {
		return failCAError
	}
	return failOther
}

// Metrics are the ACME Prometheus metrics, registered on the registry
// given to NewMetrics (never the global one). A nil *Metrics counts
// nothing.
type Metrics struct {
	orders     *prometheus.CounterVec
	renewals   *prometheus.CounterVec
	failures   *prometheus.CounterVec
	challenges *prometheus.CounterVec
	rejects    *prometheus.CounterVec
	refused    *prometheus.CounterVec
	asks       *prometheus.CounterVec
	state      *stateCollector
	// ariFailures counts renewal-information queries that failed.
	ariFailures prometheus.Counter
}

// NewMetrics registers the ACME metrics on reg. The certificate gauges
// report the state of the Cache created with these Metrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_orders_total", Help: "Certificate orders completed by this replica, renewals included, by result (success or failure).",
		}, []string{"result"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_renewals_total", Help: "Certificate orders that renewed a certificate already held, by result (success or failure).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_order_failures_total",
			Help: "Certificate orders that failed (renewals included), by cause: rate_limited, validation (a challenge failed), rejected_identifier (the CA will not issue for the name), ca_error (serverInternal, badNonce, 5xx), account (the CA refused the account), unreachable (no answer from the CA), store (the store did not take the order or the certificate), other.",
		}, []string{"reason"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_challenge_requests_total",
			Help: "ACME validation requests by challenge type and result: answered from memory, answered after a store read, or missing.",
		}, []string{"type", "result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_records_rejected_total",
			Help: "Records in the store that did not decode or open, by kind; the previous record, if any, stays in use (for certificates, see tollgate_acme_certificates_unusable).",
		}, []string{"kind"}),
		ariFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_acme_ari_failures_total",
			Help: "Renewal-information (ARI) queries that failed (an error status, an unusable window, no answer); the certificate keeps its own schedule and the query is repeated with backoff.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_ondemand_refused_total",
			Help: "Handshakes for names without a certificate that on-demand TLS served the default certificate, by reason: denied, rate_limited, busy, ask_failed, not_issued.",
		}, []string{"reason"}),
		asks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_acme_ondemand_asks_total",
			Help: "Asks of the on-demand ask URL made by this replica, by answer: allowed, denied, or failed (no answer in time, or 5xx).",
		}, []string{"result"}),
		state: &stateCollector{
			certs: prometheus.NewDesc("tollgate_acme_certificates",
				"Certificates held, by time left until they expire (expired, 7d, 30d, later).", []string{"expires"}, nil),
			unusable: prometheus.NewDesc("tollgate_acme_certificates_unusable",
				"1 for each main domain whose newest stored certificate record cannot be served (it does not decode, its key does not open or does not match its chain...): the name is failing, the certificate held before, if any, is still served, and the leader orders it again.", []string{"domain"}, nil),
			// The router reports the same metric with source="provided":
			// a registry takes the two only with the same help and label
			// names, and different constant labels.
			notAfter: prometheus.NewDesc("tollgate_tls_certs_not_after",
				"Expiry (NotAfter, Unix seconds) of each certificate served, by source (acme: held from the ACME store; provided: from a provider, such as a Kubernetes TLS Secret), one series per certificate: a renewal replaces its series.",
				[]string{"cn", "sans", "serial"}, prometheus.Labels{"source": "acme"}),
			age: prometheus.NewDesc("tollgate_acme_last_sync_age_seconds",
				"Seconds since the ACME cache last applied a change from the store (or, before its first, since it was created).", nil, nil),
			applied: prometheus.NewDesc("tollgate_acme_applied_revision",
				"The store revision up to which this replica has applied every change to the ACME challenge answers (the one it reports in the node registry).", nil, nil),
			lag: prometheus.NewDesc("tollgate_acme_challenge_lag_revisions",
				"How far this replica's applied revision is behind the newest challenge answer in the store (read at scrape time), 0 when it has applied every one; absent when the store did not answer.", nil, nil),
		},
	}
	for _, result := range []string{"success", "failure"} {
		m.orders.WithLabelValues(result)
		m.renewals.WithLabelValues(result)
	}
	for _, reason := range failureReasons {
		m.failures.WithLabelValues(reason)
	}
	for _, typ := range []string{kindHTTP01, kindTLSALPN01} {
		for _, result := range []string{resultAnswered, resultMissing, resultStore} {
			m.challenges.WithLabelValues(typ, result)
		}
	}
	for _, kind := range []string{kindCert, kindOrder, kindState, kindRequest, kindHTTP01, kindTLSALPN01} {
		m.rejects.WithLabelValues(kind)
	}
	for r := refusedDenied; r < numRefusals; r++ {
		m.refused.WithLabelValues(r.String())
	}
	for _, result := range []string{askAllowed, askDenied, askFailed} {
		m.asks.WithLabelValues(result)
	}
	for _, c := range []prometheus.Collector{m.orders, m.renewals, m.failures, m.challenges, m.rejects, m.refused, m.asks, m.ariFailures, m.state} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// OrderDone counts a finished order: every order in
// tollgate_acme_orders_total, renewals also in
// tollgate_acme_renewals_total, and a failure's cause in
// tollgate_acme_order_failures_total. err nil means success.
func (m *Metrics) OrderDone(renewal bool, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.orders.WithLabelValues(result).Inc()
	if err != nil {
		m.failures.WithLabelValues(failureReason(err)).Inc()
	}
	if renewal {
		m.renewals.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) challenge(typ, result string) {
	if m == nil {
		return
	}
	m.challenges.WithLabelValues(typ, result).Inc()
}

func (m *Metrics) rejected(kind string) {
	if m == nil {
		return
	}
	m.rejects.WithLabelValues(kind).Inc()
}

func (m *Metrics) onDemandRefused(reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(reason).Inc()
}

func (m *Metrics) onDemandAsk(result string) {
	if m == nil {
		return
	}
	m.asks.WithLabelValues(result).Inc()
}

// watch makes the gauges report c's state; the last Cache given wins.
func (m *Metrics) watch(c *Cache) {
	if m == nil {
		return
	}
	m.state.cache.Store(c)
}

// stateCollector computes the gauges of the cache's state at scrape time.
type stateCollector struct {
	certs, unusable, notAfter, age *prometheus.Desc
	applied, lag                   *prometheus.Desc
	cache                          atomic.Pointer[Cache]
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.certs
	ch <- s.unusable
	ch <- s.notAfter
	ch <- s.age
	ch <- s.applied
	ch <- s.lag
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c := s.cache.Load()
	if c == nil {
		return
	}
	// A certificate is in the first bucket whose bound its time left does
	// not pass.
	labels := [...]string{"expired", "7d", "30d", "later"}
	bounds := [...]time.Duration{0, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	var counts [len(labels)]int
	now := time.Now()
	v := c.Snapshot()
	for domain := range v.Unusable {
		ch <- prometheus.MustNewConstMetric(s.unusable, prometheus.GaugeValue, 1, domain)
	}
	// The same certificate stored under two names is one series (a
	// duplicate would fail the whole scrape).
	type series struct{ cn, sans, serial string }
	seen := make(map[series]bool, len(v.Certs))
	for _, e := range v.Certs {
		if k := (series{e.cn, e.sans, e.serial}); !seen[k] {
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(s.notAfter, prometheus.GaugeValue, float64(e.notAfter.Unix()), e.cn, e.sans, e.serial)
		}
		left := e.notAfter.Sub(now)
		i := 0
		for i < len(bounds) && left > bounds[i] {
			i++
		}
		counts[i]++
	}
	for i, label := range labels {
		ch <- prometheus.MustNewConstMetric(s.certs, prometheus.GaugeValue, float64(counts[i]), label)
	}

	last := c.created
	if ns := c.lastSync.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, now.Sub(last).Seconds())

	// The newest answer is read first: an applied revision taken after
	// it can only be closer to it.
	newest, err := c.newestChallenge()
	applied := c.ChallengeRevision()
	ch <- prometheus.MustNewConstMetric(s.applied, prometheus.GaugeValue, float64(applied))
	if err == nil {
		ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, float64(max(0, newest-applied)))
	}
}

// ARIFailed counts a failed renewal-information query.
func (m *Metrics) ARIFailed() {
	if m != nil {
		m.ariFailures.Inc()
	}
}
