package acme

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
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
	// noARI holds the CA URLs found to offer no ARI.
	noARI sync.Map
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
	done := make(chan result, 64) // at most 64 orders run at once
	inflight := map[string]bool{}
	held := map[string]time.Time{}
	// Re-plan whenever the shared state changes (on-demand requests,
	// records written by operators).
	wg.Go(func() { m.follow(ctx) })

	var acct *account
	var acctFor string
	retryAt := time.Time{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := time.Now().Add(time.Hour)
		cfg := m.conf.Load()
		if cfg != nil && cfg.ACME != nil && time.Now().After(retryAt) {
			if fp := accountFingerprint(cfg.ACME); acct == nil || fp != acctFor {
				a, err := m.loadAccount(ctx, term, cfg.ACME, func(u registration.User) (*lego.Client, error) {
					return m.newClient(ctx, cfg.ACME, u)
				})
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					log.Error("no ACME account; retrying in a minute", "err", err)
					retryAt = time.Now().Add(time.Minute)
					next = retryAt
				} else {
					acct, acctFor = a, fp
				}
			}
			if acct != nil {
				next = m.plan(ctx, term, cfg, acct, inflight, held, done, &wg)
			}
		}
		timer.Reset(time.Until(next))
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
	inflight map[string]bool, held map[string]time.Time, done chan<- result, wg *sync.WaitGroup) time.Time {
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
			done <- result{main: w.Main(), hold: m.order(ctx, term, cfg, acct, w, why)}
		})
	}
	// Renewal windows, with whatever workers are left.
	if _, no := m.noARI.Load(caURL(cfg.ACME)); no {
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
			m.refreshARI(ctx, term, cfg.ACME, acct, w.Main(), m.log)
			// Whatever came of it, the next check is a minute away at
			// least: the view may not show the stored answer yet.
			done <- result{main: w.Main(), ari: true, hold: time.Now().Add(time.Minute)}
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

// renewAt is when to renew r: when a third of its lifetime remains, or
// earlier at the moment chosen in the CA's ARI window (a window that
// reaches up to expiry, or past, is not followed to its end).
func renewAt(r *CertRecord) time.Time {
	at := r.NotAfter.Add(-r.NotAfter.Sub(r.NotBefore) / 3)
	if r.ARI != nil && !r.ARI.RenewAt.IsZero() && r.ARI.RenewAt.Before(at) {
		return r.ARI.RenewAt
	}
	return at
}

// order obtains w and stores it, or records the failure. When it places
// no order it returns when to consider w again; else the zero time.
func (m *Manager) order(ctx context.Context, term *leader.Term, cfg *config.Config, acct *account, w Want, why string) time.Time {
	skip, retry := time.Now().Add(time.Minute), time.Now().Add(10*time.Second)
	log := m.log.With("domain", w.Main(), "reason", why)
	keys := m.cfg.Keys
	certKey, err := keys.Cert(w.Main())
	if err != nil {
		log.Error("certificate not ordered", "err", err)
		return time.Now().Add(time.Hour)
	}
	orderKey, _ := keys.Order(w.Main())
	stateKey, _ := keys.State(w.Main())

	// The view may lag behind the store (a new leader's cache catching
	// up): confirm with consistent reads before ordering.
	var prev *CertRecord
	if kv, err := m.cfg.Store.Get(ctx, certKey); err == nil {
		var usable bool
		if prev, usable = storedCert(m.cfg.Keyring, kv); usable && sameNames(prev.Domains, w.Domains) && renewAt(prev).After(time.Now()) {
			return skip // stored already; this replica's view lags
		}
	} else if !errors.Is(err, kvstore.ErrNotFound) {
		log.Warn("certificate not ordered: store unavailable", "err", err)
		return retry
	}
	var state DomainState
	if kv, err := m.cfg.Store.Get(ctx, stateKey); err == nil {
		_ = decodeJSON(kv.Value, &state)
		if state.GaveUp || state.NextAttempt.After(time.Now()) {
			return skip
		}
	}

	ord, _ := json.Marshal(OrderRecord{Domains: w.Domains, Node: m.cfg.Node, Token: term.Token(), Started: time.Now().UTC()})
	if _, err := term.Apply(ctx, kvstore.PutOp(orderKey, ord)); err != nil {
		log.Warn("certificate not ordered", "err", err)
		return retry
	}
	renewal := prev != nil
	log.Info("ordering certificate", "names", w.Domains, "source", w.Source)
	start := time.Now()
	rec, err := m.obtain(ctx, term, cfg.ACME, acct, w, certKey, m.replaces(cfg.ACME, prev))
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("order abandoned: leadership ended", "err", err)
			return retry
		}
		m.cfg.Metrics.OrderDone(renewal, err)
		m.failed(ctx, term, log, w, state, stateKey, orderKey, err)
		return time.Time{}
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
		log.Error("certificate obtained but not stored; it will be ordered again", "err", err)
		return retry
	}
	m.cfg.Metrics.OrderDone(renewal, nil)
	log.Info("certificate stored", "serial", rec.Serial, "not_after", rec.NotAfter, "took", time.Since(start).Round(time.Millisecond))
	// Plan again only once this replica's own view has the record.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = m.cfg.Cache.WaitKey(wctx, certKey, rev)
	cancel()
	return time.Time{}
}

// obtain runs one order with lego.
func (m *Manager) obtain(ctx context.Context, term *leader.Term, a *config.ACME, acct *account, w Want, certKey, replaces string) (*CertRecord, error) {
	client, err := m.newClient(ctx, a, acct)
	if err != nil {
		return nil, err
	}
	if a.HTTPChallenge != nil {
		if err := client.Challenge.SetHTTP01Provider(&solver{m: m, ctx: ctx, term: term, kind: kindHTTP01}); err != nil {
			return nil, err
		}
	}
	if a.TLSChallenge != nil {
		if err := client.Challenge.SetTLSALPN01Provider(&solver{m: m, ctx: ctx, term: term, kind: kindTLSALPN01}); err != nil {
			return nil, err
		}
	}
	if a.DNSChallenge != nil {
		if err := m.setDNS(client, a.DNSChallenge); err != nil {
			return nil, err
		}
	}
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: w.Domains, Bundle: true, ReplacesCertID: replaces})
	if err != nil && replaces != "" && ctx.Err() == nil {
		// The CA may refuse to replace a certificate twice, as when a
		// leader died after ordering the replacement: order afresh.
		m.log.Info("renewal as a replacement refused; ordering without it", "domain", w.Main(), "err", err)
		res, err = client.Certificate.Obtain(certificate.ObtainRequest{Domains: w.Domains, Bundle: true})
	}
	if err != nil {
		return nil, err
	}
	leaf, err := parseLeaf(res.Certificate)
	if err != nil {
		return nil, fmt.Errorf("CA returned an unreadable certificate: %w", err)
	}
	if _, err := tls.X509KeyPair(res.Certificate, res.PrivateKey); err != nil {
		return nil, fmt.Errorf("CA returned a certificate that does not match its key: %w", err)
	}
	sealed, err := m.cfg.Keyring.Seal(certKey, res.PrivateKey)
	if err != nil {
		return nil, err
	}
	var ari *ARIState
	if _, no := m.noARI.Load(caURL(a)); !no {
		ari, err = askARI(client, leaf, time.Now())
		if errors.Is(err, errNoARI) {
			m.noARI.Store(caURL(a), true)
		}
	}
	return &CertRecord{
		ARI:     ari,
		Version: RecordVersion, Domains: w.Domains,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		Issuer: leaf.Issuer.CommonName, Serial: hex.EncodeToString(leaf.SerialNumber.Bytes()),
		KeyType: keyTypeName(a.KeyType), CA: caURL(a), CertURL: res.CertURL,
		Node: m.cfg.Node, Token: term.Token(), Written: time.Now().UTC(),
		Certificate: string(res.Certificate), PrivateKey: sealed,
	}, nil
}

// replaces names the certificate a renewal replaces, for CAs with ARI
// (RFC 9773, which exempts such orders from some rate limits); "" when
// there is none.
func (m *Manager) replaces(a *config.ACME, prev *CertRecord) string {
	if prev == nil || prev.CA != caURL(a) {
		return ""
	}
	if _, no := m.noARI.Load(caURL(a)); no {
		return ""
	}
	leaf, err := parseLeaf([]byte(prev.Certificate))
	if err != nil {
		return ""
	}
	id, err := certificate.MakeARICertID(leaf)
	if err != nil {
		return ""
	}
	return id
}

// failed records a failed order: the failure count, the error and when
// to try again, honouring a rate limit's Retry-After.
func (m *Manager) failed(ctx context.Context, term *leader.Term, log *slog.Logger, w Want, st DomainState, stateKey, orderKey string, cause error) {
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
	if _, err := term.Apply(ctx, kvstore.PutOp(stateKey, b), kvstore.DeleteOp(orderKey)); err != nil {
		log.Warn("failure state not stored", "err", err)
	}
	if st.GaveUp {
		log.Error("certificate order failed; giving up until the state key is deleted", "failures", st.Failures, "state_key", stateKey, "err", cause)
		return
	}
	log.Warn("certificate order failed", "failures", st.Failures, "retry_at", st.NextAttempt, "err", cause)
}

// newClient builds a lego client for user whose requests all end when ctx
// does, so that a leader that steps down stops talking to the CA at once.
func (m *Manager) newClient(ctx context.Context, a *config.ACME, user registration.User) (*lego.Client, error) {
	lc := lego.NewConfig(user)
	lc.CADirURL = caURL(a)
	lc.UserAgent = "tollgate"
	lc.Certificate.KeyType = legoKeyType(a.KeyType)
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
	lc.HTTPClient = &http.Client{Timeout: time.Minute, Transport: ctxTransport{ctx: ctx, base: tr}}
	return lego.NewClient(lc)
}

// ctxTransport ends every request when ctx ends.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(r.WithContext(t.ctx))
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
