package acme

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// Leadership is how the manager learns that this replica leads;
// *leader.Elector satisfies it.
type Leadership interface {
	// Await blocks until this replica leads and returns the term.
	Await(ctx context.Context) (*leader.Term, error)
}

// ManagerConfig configures a Manager. Zero durations take the defaults
// named on each field.
type ManagerConfig struct {
	// Store holds the ACME state. Required.
	Store kvstore.Store
	// Keys are the state's keys. Required.
	Keys Keys
	// Keyring seals private keys. Required.
	Keyring *Keyring
	// Cache is this replica's view of the state. Required.
	Cache *Cache
	// Leadership tells when this replica leads. Required.
	Leadership Leadership
	// RegistryPrefix is where the live replicas are listed (the node
	// registry); the leader waits for them to apply each challenge. Empty
	// means it does not wait.
	RegistryPrefix string
	// Node is this replica's id, recorded in what it writes.
	Node string
	// Logger receives orders, renewals and failures. Nil discards them.
	Logger *slog.Logger
	// Metrics counts orders. Nil counts nothing.
	Metrics *Metrics
	// OnOrder, when set, is told of every finished order, as Metrics
	// counts them: the certificate's names, whether it renewed one, and
	// the error (nil on success). It must not block.
	OnOrder func(names []string, renewal bool, err error)
	// PropagationTimeout bounds the wait for replicas to apply a
	// challenge. Zero means 10s.
	PropagationTimeout time.Duration
	// Workers is how many orders run at once when the configuration's
	// acme.concurrentOrders is zero. Zero means 4.
	Workers int
	// BackoffBase is the wait after a first failure, doubled after each
	// further one up to BackoffMax. Zero means one minute.
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts. Zero means 24 hours.
	BackoffMax time.Duration
	// MaxFailures is how many failures in a row make the leader give a
	// domain up until its state key is deleted. Zero means 12.
	MaxFailures int
	// Getenv reads the EAB HMAC key from its environment variable. Nil means
	// os.Getenv.
	Getenv func(string) string
}

// Manager obtains and renews certificates while this replica leads. It
// watches nothing itself: it plans from the Cache's view, and confirms
// with a consistent read before each order.
type Manager struct {
	cfg  ManagerConfig
	log  *slog.Logger
	conf atomic.Pointer[config.Config]
	wake chan struct{}
	// ariEndpoints holds, by CA directory URL, the directory's
	// renewalInfo URL ("" for a CA without ARI), as last fetched.
	ariEndpoints sync.Map
}

// NewManager checks cfg and returns a Manager; Run runs it.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("acme manager: no store")
	case cfg.Keys.Root == "":
		return nil, errors.New("acme manager: no keys")
	case cfg.Keyring == nil:
		return nil, errors.New("acme manager: no keyring")
	case cfg.Cache == nil:
		return nil, errors.New("acme manager: no cache")
	case cfg.Leadership == nil:
		return nil, errors.New("acme manager: no leadership")
	}
	if cfg.PropagationTimeout == 0 {
		cfg.PropagationTimeout = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = time.Minute
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 24 * time.Hour
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 12
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log, wake: make(chan struct{}, 1)}, nil
}

func (m *Manager) getenv(name string) string { return m.cfg.Getenv(name) }

// SetConfig gives the manager a new configuration; the leader re-plans at
// once.
func (m *Manager) SetConfig(cfg *config.Config) {
	m.conf.Store(cfg)
	m.poke()
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run leads ACME whenever this replica is elected, until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		term, err := m.cfg.Leadership.Await(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("acme manager: %w", err)
		}
		m.lead(ctx, term)
		select {
		case <-term.Done():
		case <-ctx.Done():
		}
	}
	return nil
}

// result is what an order worker reports: the certificate's main name
// and, when the worker placed no order, when to plan it again at the
// earliest (so that a view that disagrees with the store does not make
// the planner spin).
type result struct {
	main string
	hold time.Time
	ari  bool // a renewal-information check, held apart from orders
	// rejected is the account the CA refused, if it did.
	rejected *account
}

// heldKey is the key in the held map of main's orders or ARI checks.
func heldKey(main string, ari bool) string {
	if ari {
		return "ari " + main
	}
	return main
}

// lead plans and places orders until the term ends or runCtx is done;
// every worker has stopped when it returns.
func (m *Manager) lead(runCtx context.Context, term *leader.Term) {
	ctx, cancel := context.WithCancelCause(term.Context())
	defer cancel(nil)
	defer context.AfterFunc(runCtx, func() { cancel(errors.New("shutting down")) })()
	log := m.log.With("term", term.Token())
	select {
	case <-m.cfg.Cache.Ready():
	case <-ctx.Done():
		return
	}
	log.Info("leading certificate orders")
	m.sweepChallenges(ctx, term)

	var wg sync.WaitGroup
	defer wg.Wait()
	// Workers hand their result over or, once the term is over, drop it:
	// the loop below no longer reads, and nothing must block wg.Wait.
	done := make(chan result)
	report := func(r result) {
		select {
		case done <- r:
		case <-ctx.Done():
		}
	}
	inflight := map[string]bool{}
	held := map[string]time.Time{}
	// Re-plan whenever the shared state changes (on-demand requests,
	// records written by operators).
	wg.Go(func() { m.follow(ctx) })

	accts := &accounts{m: m, term: term, log: log}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := time.Now().Add(time.Hour)
		if cfg := m.conf.Load(); cfg != nil && cfg.ACME != nil {
			acct, retry := accts.get(ctx, cfg.ACME)
			if ctx.Err() != nil {
				return
			}
			if acct != nil {
				next = m.plan(ctx, term, cfg, acct, inflight, held, report, &wg)
			}
			// A promised retry is kept whatever else wakes the loop.
			if !retry.IsZero() {
				next = minTime(next, retry)
			}
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			log.Info("no longer leading certificate orders", "cause", context.Cause(ctx))
			return
		case <-m.wake:
		case r := <-done:
			delete(inflight, r.main)
			if k := heldKey(r.main, r.ari); r.hold.IsZero() {
				delete(held, k)
			} else {
				held[k] = r.hold
			}
			if r.rejected != nil {
				accts.rejected(r.rejected)
			}
		case <-timer.C:
		}
	}
}

// follow pokes the planner after every change under the ACME prefix.
func (m *Manager) follow(ctx context.Context) {
	for {
		select {
		case <-m.cfg.Cache.Changed():
			m.poke()
		case <-ctx.Done():
			return
		}
	}
}

// plan starts an order for every wanted certificate that is due and not
// in flight, as far as workers are free, and returns when to plan again.
func (m *Manager) plan(ctx context.Context, term *leader.Term, cfg *config.Config, acct *account,
	inflight map[string]bool, held map[string]time.Time, report func(result), wg *sync.WaitGroup) time.Time {
	view := m.cfg.Cache.Snapshot()
	requested := make([]string, 0, len(view.Requests))
	for name := range view.Requests {
		requested = append(requested, name)
	}
	slices.Sort(requested)
	now := time.Now()
	wants := Wanted(cfg, requested)
	next := m.collect(ctx, term, cfg, view, wants, now, m.log)
	for _, w := range wants {
		if inflight[w.Main()] {
			continue
		}
		if h, ok := held[w.Main()]; ok && now.Before(h) {
			next = minTime(next, h)
			continue
		}
		at, why := m.due(view, w, now)
		if at.After(now) {
			next = minTime(next, at)
			continue
		}
		if len(inflight) >= cmp.Or(cfg.ACME.ConcurrentOrders, m.cfg.Workers) {
			break // a worker's result wakes the planner
		}
		inflight[w.Main()] = true
		wg.Go(func() {
			hold, rejected := m.order(ctx, term, cfg, acct, w, why)
			r := result{main: w.Main(), hold: hold}
			if rejected {
				r.rejected = acct
			}
			report(r)
		})
	}
	// Renewal windows, with whatever workers are left.
	if m.noARI(caURL(cfg.ACME)) {
		return next
	}
	for _, w := range wants {
		e := view.Certs[w.Main()]
		if e == nil || e.Record == nil || inflight[w.Main()] || e.Record.CA != caURL(cfg.ACME) {
			continue
		}
		if !ariDue(e.Record, now) {
			next = minTime(next, e.Record.ARI.CheckAgain)
			continue
		}
		if h, ok := held[heldKey(w.Main(), true)]; ok && now.Before(h) {
			next = minTime(next, h)
			continue
		}
		if len(inflight) >= cmp.Or(cfg.ACME.ConcurrentOrders, m.cfg.Workers) {
			break
		}
		inflight[w.Main()] = true
		wg.Go(func() {
			m.checkARI(ctx, term, cfg.ACME, acct, w.Main())
			// Whatever came of it, the next check is a minute away at
			// least: the view may not show the stored answer yet.
			report(result{main: w.Main(), ari: true, hold: time.Now().Add(time.Minute)})
		})
	}
	return next
}

// due says when w needs an order and why.
func (m *Manager) due(view *View, w Want, now time.Time) (time.Time, string) {
	at, why := view.orderDue(w, now)
	if st := view.States[w.Main()]; st != nil && st.Failures > 0 {
		if st.GaveUp {
			return now.Add(100 * 365 * 24 * time.Hour), "gave up"
		}
		at = maxTime(at, st.NextAttempt)
	}
	return at, why
}

// order obtains w and stores it, or records the failure. It returns when
// to consider w again (the zero time: at once), and whether the CA
// rejected the account.
func (m *Manager) order(ctx context.Context, term *leader.Term, cfg *config.Config, acct *account, w Want, why string) (hold time.Time, rejected bool) {
	skip, retry := time.Now().Add(time.Minute), time.Now().Add(10*time.Second)
	log := m.log.With("domain", w.Main(), "reason", why)
	keys := m.cfg.Keys
	certKey, err := keys.Cert(w.Main())
	if err != nil {
		log.Error("certificate not ordered", "err", err)
		return time.Now().Add(time.Hour), false
	}
	orderKey, _ := keys.Order(w.Main())
	stateKey, _ := keys.State(w.Main())

	// The view may lag behind the store (a new leader's cache catching
	// up): confirm with consistent reads before ordering.
	var prev *CertRecord
	replaces := "" // the certificate this order replaces, if the CA is to be told
	if kv, err := m.cfg.Store.Get(ctx, certKey); err == nil {
		var usable bool
		if prev, usable = storedCert(m.cfg.Keyring, kv); usable && sameNames(prev.Domains, w.Domains) && prev.RenewAt().After(time.Now()) {
			return skip, false // stored already; this replica's view lags
		}
		if usable {
			// An unusable record's chain may not be what the CA issued.
			replaces = m.replaces(cfg.ACME, prev)
		}
	} else if !errors.Is(err, kvstore.ErrNotFound) {
		log.Warn("certificate not ordered: store unavailable", "err", err)
		return retry, false
	}
	var state DomainState
	if kv, err := m.cfg.Store.Get(ctx, stateKey); err == nil {
		if derr := decodeJSON(kv.Value, &state); derr != nil {
			// Its backoff is unknown: never a reason to order at once.
			log.Error("failure state unreadable; not ordering for an hour, delete the key to order at once",
				"state_key", stateKey, "err", derr)
			return time.Now().Add(time.Hour), false
		}
		if state.GaveUp || state.NextAttempt.After(time.Now()) {
			return skip, false
		}
	} else if !errors.Is(err, kvstore.ErrNotFound) {
		log.Warn("certificate not ordered: store unavailable", "err", err)
		return retry, false
	}
	if replaces != "" && state.Failures > 0 {
		// The last attempt failed, and a CA may fail every order that
		// names the certificate it replaces (one it cannot find, an error
		// of its own): naming it only spares rate limits, so the retry
		// is a plain order, which renews whatever the CA's ARI state.
		log.Info("renewing without naming the certificate it replaces: the last attempt failed", "failures", state.Failures)
		replaces = ""
	}
	var recorded *OrderRecord
	if kv, err := m.cfg.Store.Get(ctx, orderKey); err == nil {
		var o OrderRecord
		if derr := decodeJSON(kv.Value, &o); derr == nil {
			recorded = &o
		} else {
			log.Warn("recorded order unreadable; ordering anew", "order_key", orderKey, "err", derr)
		}
	} else if !errors.Is(err, kvstore.ErrNotFound) {
		log.Warn("certificate not ordered: store unavailable", "err", err)
		return retry, false
	}

	renewal := prev != nil
	log.Info("ordering certificate", "names", w.Domains, "source", w.Source)
	start := time.Now()
	rec, dead, err := m.obtain(ctx, term, cfg.ACME, acct, w, certKey, orderKey, recorded, replaces, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("order abandoned: leadership ended; the next leader resumes it", "err", err)
			return retry, false
		}
		m.orderDone(w.Domains, renewal, err)
		if errors.Is(err, errAccountRejected) {
			// Not the name's failure: the leader registers a new
			// account and orders again.
			log.Error("certificate not ordered: the CA rejected the account", "err", err)
			return time.Time{}, true
		}
		return m.failed(ctx, term, log, state, stateKey, orderKey, dead, err), false
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	// A certificate the CA issued counts against its limits: a store
	// error gets a few more tries while this replica leads.
	var rev int64
	for attempt := 0; ; attempt++ {
		rev, err = term.Apply(ctx, kvstore.PutOp(certKey, b), kvstore.DeleteOp(orderKey), kvstore.DeleteOp(stateKey))
		if err == nil || errors.Is(err, kvstore.ErrFenced) || ctx.Err() != nil || attempt == 4 {
			break
		}
		log.Warn("certificate obtained, store write failed; trying again", "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second << attempt):
		}
	}
	if err != nil {
		// The order stays recorded: the next attempt downloads the same
		// certificate instead of ordering another. When leadership ended,
		// the next leader does, and this order is not counted (as when
		// it is abandoned above).
		if ctx.Err() == nil && !errors.Is(err, kvstore.ErrFenced) {
			m.orderDone(w.Domains, renewal, fmt.Errorf("certificate %w: %w", errNotStored, err))
		}
		log.Error("certificate obtained but not stored; the next attempt fetches it again", "err", err)
		return retry, false
	}
	m.orderDone(w.Domains, renewal, nil)
	log.Info("certificate stored", "serial", rec.Serial, "not_after", rec.NotAfter, "took", time.Since(start).Round(time.Millisecond))
	// Plan again only once this replica's own view has the record.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = m.cfg.Cache.WaitKey(wctx, certKey, rev)
	cancel()
	return time.Time{}, false
}

// orderDone counts a finished order and tells OnOrder.
func (m *Manager) orderDone(names []string, renewal bool, err error) {
	m.cfg.Metrics.OrderDone(renewal, err)
	if m.cfg.OnOrder != nil {
		m.cfg.OnOrder(slices.Clone(names), renewal, err)
	}
}

// failed records a failed order: the failure count, the error and when
// to try again, honouring a rate limit's Retry-After. The order's record
// goes with it when the order cannot be completed (dead), and stays for
// the next attempt to resume otherwise. It returns when to try again,
// which the leader keeps in memory as well, so that a state it could not
// store does not mean an order at once.
func (m *Manager) failed(ctx context.Context, term *leader.Term, log *slog.Logger, st DomainState, stateKey, orderKey string, dead bool, cause error) time.Time {
	now := time.Now().UTC()
	st.Failures++
	st.LastError = truncate(cause.Error(), 2000)
	st.LastAttempt = now
	delay := m.cfg.BackoffBase << min(st.Failures-1, 30)
	if delay <= 0 || delay > m.cfg.BackoffMax {
		delay = m.cfg.BackoffMax
	}
	if ra := retryAfter(cause, now); ra > delay {
		delay = ra
	}
	st.NextAttempt = now.Add(delay)
	st.GaveUp = st.Failures >= m.cfg.MaxFailures
	b, _ := json.MarshalIndent(st, "", "  ")
	ops := []kvstore.Op{kvstore.PutOp(stateKey, b)}
	if dead {
		ops = append(ops, kvstore.DeleteOp(orderKey))
	}
	if _, err := term.Apply(ctx, ops...); err != nil {
		log.Warn("failure state not stored; holding the name back in memory", "err", err)
	}
	if st.GaveUp {
		log.Error("certificate order failed; giving up until the state key is deleted", "failures", st.Failures, "state_key", stateKey, "err", cause)
		return now.Add(100 * 365 * 24 * time.Hour)
	}
	log.Warn("certificate order failed", "failures", st.Failures, "retry_at", st.NextAttempt, "err", cause)
	return st.NextAttempt
}

// checkARI asks the CA for the renewal window of main's certificate, at
// the renewalInfo URL remembered from the CA's directory (fetched only
// when none is).
func (m *Manager) checkARI(ctx context.Context, term *leader.Term, a *config.ACME, acct *account, main string) {
	endpoint, known := m.ariEndpoint(caURL(a))
	hc, err := m.httpClient(ctx, a)
	if err == nil && !known {
		var core *api.Core
		if core, hc, err = m.newCore(ctx, a, acct); err == nil {
			endpoint = core.GetDirectory().RenewalInfo
		}
	}
	if err != nil {
		m.log.Debug("renewal information not asked: CA unreachable", "domain", main, "err", err)
		return
	}
	m.refreshARI(ctx, term, a, ariClient{endpoint: endpoint, http: hc}, main, m.log)
}

// ariEndpoint returns the renewalInfo URL of the CA directory ca, and
// whether it is known; "" when the CA offers no ARI.
func (m *Manager) ariEndpoint(ca string) (string, bool) {
	v, ok := m.ariEndpoints.Load(ca)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// noARI reports whether the CA directory ca is known to offer no ARI.
func (m *Manager) noARI(ca string) bool {
	endpoint, known := m.ariEndpoint(ca)
	return known && endpoint == ""
}

// httpClient is the client for the CA: its requests all end when ctx
// does, so that a leader that steps down stops talking to the CA at once.
func (m *Manager) httpClient(ctx context.Context, a *config.ACME) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(a.CACertificates) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range a.CACertificates {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("acme.caCertificates: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("acme.caCertificates: %s holds no PEM certificate", f)
			}
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: ctxTransport{ctx: ctx, base: tr, timeout: time.Minute}}, nil
}

// newClient builds a lego client for user (registration), over
// httpClient.
func (m *Manager) newClient(ctx context.Context, a *config.ACME, user registration.User) (*lego.Client, error) {
	hc, err := m.httpClient(ctx, a)
	if err != nil {
		return nil, err
	}
	lc := lego.NewConfig(user)
	lc.CADirURL = caURL(a)
	lc.UserAgent = "tollgate"
	lc.Certificate.KeyType = legoKeyType(a.KeyType)
	lc.HTTPClient = hc
	return lego.NewClient(lc)
}

// ctxTransport ends every request when ctx ends, and bounds each to
// timeout. (A context, not http.Client.Timeout: lego leaves some bodies
// unread and unclosed, and the client's timer keeps a goroutine for each
// until it fires.)
type ctxTransport struct {
	ctx     context.Context
	base    http.RoundTripper
	timeout time.Duration
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases its request's context once read to the end or
// closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.cancel()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// sweepChallenges deletes the challenge answers earlier leaders left.
func (m *Manager) sweepChallenges(ctx context.Context, term *leader.Term) {
	l, err := m.cfg.Store.List(ctx, m.cfg.Keys.Root+"/"+dirChallenges+"/")
	if err != nil || len(l.KVs) == 0 {
		return
	}
	ops := make([]kvstore.Op, 0, len(l.KVs))
	for _, kv := range l.KVs {
		ops = append(ops, kvstore.DeleteOp(kv.Key))
	}
	for chunk := range slices.Chunk(ops, 32) {
		if _, err := term.Apply(ctx, chunk...); err != nil {
			m.log.Warn("stale challenges not deleted", "err", err)
			return
		}
	}
}

func accountFingerprint(a *config.ACME) string {
	fp := caURL(a) + "\x00" + a.Email
	if a.EAB != nil {
		fp += "\x00" + a.EAB.KID
	}
	return fp
}

func legoKeyType(s string) certcrypto.KeyType {
	switch s {
	case "EC384":
		return certcrypto.EC384
	case "RSA2048":
		return certcrypto.RSA2048
	case "RSA3072":
		return certcrypto.RSA3072
	case "RSA4096":
		return certcrypto.RSA4096
	case "RSA8192":
		return certcrypto.RSA8192
	}
	return certcrypto.EC256
}

func keyTypeName(s string) string {
	if s == "" {
		return "EC256"
	}
	return s
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
