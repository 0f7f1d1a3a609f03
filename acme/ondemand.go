package acme

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// OnDemandConfig configures OnDemand. Zero values take the defaults
// named on each field.
type OnDemandConfig struct {
	// Cache serves the certificates; OnDemand counts in its Metrics.
	// Required.
	Cache *Cache
	// Store and Keys are where requests are recorded. Required.
	Store kvstore.Store
	Keys  Keys
	// Node is this replica's id, recorded in requests.
	Node string
	// Logger receives allowed asks, failed writes and, at most once a
	// minute, a summary of the handshakes served the default
	// certificate. Nil discards them.
	Logger *slog.Logger
	// Client asks the ask URL. Nil means http.DefaultTransport; every ask
	// is bounded by AskTimeout whatever the client's own timeout.
	Client *http.Client
	// Wait bounds how long a handshake for an allowed name waits for its
	// new certificate before it is served the default one. Zero means
	// 8s: keep it below the entry point's handshake deadline
	// (readHeaderTimeout, 10s by default), past which the handshake fails
	// anyway.
	Wait time.Duration
	// AskTimeout bounds one ask of the ask URL; RequestTimeout bounds the
	// store write that records an allowed name. Both are also bounded by
	// Wait and by the handshake's context. Zero means 2s each.
	AskTimeout, RequestTimeout time.Duration
	// AsksPerSecond and AskBurst bound the asks about names never allowed
	// before, shared fairly among the client networks asking (see
	// budget). Names allowed before are asked again on a budget of their
	// own, as large. Zero means 5 per second, bursts of 10.
	AsksPerSecond float64
	AskBurst      int
	// Allowed and Denied are how long an answer of the ask URL is kept.
	// Zero means an hour and five minutes.
	Allowed, Denied time.Duration
	// MaxDenied bounds the refusals kept; beyond it the oldest is
	// forgotten first. Zero means 10,000.
	MaxDenied int
	// MaxAsking bounds the names being asked about at once; a handshake
	// for one more name never allowed before is served the default
	// certificate without asking. Zero means 16.
	MaxAsking int
	// Now tells the time. Nil means time.Now.
	Now func() time.Time
}

// OnDemand serves certificates from a Cache and, for a name it has none
// for, asks the configured ask URL; if the answer allows the name, it
// records an order request in the store for the leader and holds the
// handshake until the certificate arrives or Wait passes.
//
// GetCertificate blocks for a name without a certificate only: at most
// AskTimeout to ask (one ask per name at a time, at most MaxAsking names
// at once, within the ask budget), RequestTimeout to record the request
// (one write per name), and Wait in all, or less when the
// handshake's context ends first. A name whose answer is kept returns at
// once.
type OnDemand struct {
	cfg     OnDemandConfig
	log     *slog.Logger
	metrics *Metrics
	ask     atomic.Pointer[string] // nil: on-demand is off

	mu        sync.Mutex
	answers   answers
	budget    *budget
	asking    map[string]chan struct{} // names being asked about, closed when answered
	requested map[string]time.Time     // names whose request is being or was written, and when
	refused   refusals
}

// NewOnDemand returns an OnDemand that is off until SetConfig gives it an
// ask URL.
func NewOnDemand(cfg OnDemandConfig) (*OnDemand, error) {
	if cfg.Cache == nil || cfg.Store == nil || cfg.Keys.Root == "" {
		return nil, errors.New("on-demand: cache, store and keys are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	defaults := []struct {
		d *time.Duration
		v time.Duration
	}{{&cfg.Wait, 8 * time.Second}, {&cfg.AskTimeout, 2 * time.Second}, {&cfg.RequestTimeout, 2 * time.Second},
		{&cfg.Allowed, time.Hour}, {&cfg.Denied, 5 * time.Minute}}
	for _, d := range defaults {
		if *d.d == 0 {
			*d.d = d.v
		}
	}
	if cfg.AsksPerSecond == 0 {
		cfg.AsksPerSecond = 5
	}
	if cfg.AskBurst == 0 {
		cfg.AskBurst = 10
	}
	if cfg.MaxDenied == 0 {
		cfg.MaxDenied = 10_000
	}
	if cfg.MaxAsking == 0 {
		cfg.MaxAsking = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OnDemand{cfg: cfg, log: log, metrics: cfg.Cache.metrics,
		answers: newAnswers(cfg.MaxDenied), budget: newBudget(cfg.AsksPerSecond, cfg.AskBurst),
		asking: map[string]chan struct{}{}, requested: map[string]time.Time{}}, nil
}

// SetConfig turns on-demand on or off as cfg says.
func (o *OnDemand) SetConfig(cfg *config.Config) {
	if cfg.ACME == nil || cfg.ACME.OnDemand == nil || cfg.ACME.OnDemand.Ask == "" {
		o.ask.Store(nil)
		return
	}
	ask := cfg.ACME.OnDemand.Ask
	if old := o.ask.Load(); old == nil || *old != ask {
		o.mu.Lock()
		o.answers = newAnswers(o.cfg.MaxDenied) // a new ask URL answers anew
		o.mu.Unlock()
	}
	o.ask.Store(&ask)
}

// GetCertificate implements the router's certificate source. See
// OnDemand for how long it may block.
func (o *OnDemand) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c, err := o.cfg.Cache.GetCertificate(hello); c != nil || err != nil {
		return c, err
	}
	ask := o.ask.Load()
	if ask == nil {
		return nil, nil
	}
	name := normalize(hello.ServerName)
	if config.CheckHostname(name) != nil {
		return nil, nil
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Wait)
	defer cancel()
	if reason := o.allowed(ctx, *ask, name, clientNetwork(hello)); reason != refusedNone {
		o.refuse(reason)
		return nil, nil
	}
	o.request(ctx, name)
	for {
		changed := o.cfg.Cache.Changed()
		if c, err := o.cfg.Cache.GetCertificate(hello); c != nil || err != nil {
			return c, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			o.refuse(refusedNotIssued)
			return nil, nil
		}
	}
}

// allowed returns refusedNone when the ask URL allows name, else why
// not. It asks at most once at a time per name, about
// at most MaxAsking names at once, and within the budget of the client's
// network; a name allowed before is asked on the budget of its own and
// keeps its previous answer when the ask cannot be made.
func (o *OnDemand) allowed(ctx context.Context, ask, name, network string) refusal {
	for {
		o.mu.Lock()
		now := o.cfg.Now()
		kept, known, before := o.answers.get(name, now)
		if known {
			o.mu.Unlock()
			if kept {
				return refusedNone
			}
			return refusedDenied
		}
		if ch, ok := o.asking[name]; ok {
			o.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return refusedAskFailed
			}
		}
		if !before {
			if len(o.asking) >= o.cfg.MaxAsking {
				o.mu.Unlock()
				return refusedBusy
			}
			if !o.budget.take(network, now) {
				o.mu.Unlock()
				return refusedRate
			}
		} else if !o.budget.takePriority(now) {
			o.mu.Unlock()
			return refusedNone // the previous answer stands until a token comes
		}
		ch := make(chan struct{})
		o.asking[name] = ch
		o.mu.Unlock()

		ok, definite := o.query(ctx, ask, name)
		o.mu.Lock()
		delete(o.asking, name)
		close(ch)
		if definite {
			o.answers.put(name, ok, o.cfg.Now(), o.cfg.Allowed, o.cfg.Denied)
		}
		o.mu.Unlock()
		switch {
		case ok || (!definite && before):
			return refusedNone
		case definite:
			return refusedDenied
		default:
			return refusedAskFailed
		}
	}
}

// query asks the ask URL about name, within AskTimeout. definite is false
// when the URL could not be asked or failed (5xx), so the answer is not
// kept.
func (o *OnDemand) query(ctx context.Context, ask, name string) (ok, definite bool) {
	u, err := url.Parse(ask)
	if err != nil {
		return false, true
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, o.cfg.AskTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, true
	}
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		o.metrics.onDemandAsk(askFailed)
		o.log.Debug("on-demand ask failed", "name", name, "err", err)
		return false, false
	}
	resp.Body.Close()
	allowed := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case allowed:
		o.metrics.onDemandAsk(askAllowed)
		o.log.Info("on-demand ask allowed a name", "name", name, "status", resp.StatusCode)
	case resp.StatusCode < 500:
		o.metrics.onDemandAsk(askDenied)
		o.log.Debug("on-demand ask denied a name", "name", name, "status", resp.StatusCode)
	default:
		o.metrics.onDemandAsk(askFailed)
		o.log.Debug("on-demand ask failed", "name", name, "status", resp.StatusCode)
	}
	return allowed, resp.StatusCode < 500
}

// requestAgain is how long after writing a request for a name OnDemand
// writes none again, so that the handshakes arriving before the cache has
// seen the first do not each write one.
const requestAgain = time.Minute

// request records that name is wanted, within RequestTimeout; the leader
// orders it. A request that exists already, or that was written for the
// name within requestAgain, is left as it is.
func (o *OnDemand) request(ctx context.Context, name string) {
	if _, ok := o.cfg.Cache.Snapshot().Requests[name]; ok {
		return
	}
	o.mu.Lock()
	now := o.cfg.Now()
	if at, ok := o.requested[name]; ok && now.Sub(at) < requestAgain {
		o.mu.Unlock()
		return
	}
	for n, at := range o.requested {
		if now.Sub(at) >= requestAgain {
			delete(o.requested, n)
		}
	}
	o.requested[name] = now
	o.mu.Unlock()
	key, err := o.cfg.Keys.Request(name)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.RequestTimeout)
	defer cancel()
	b, _ := json.Marshal(RequestRecord{Name: name, Node: o.cfg.Node, Requested: now.UTC()})
	if _, err := o.cfg.Store.Apply(ctx, nil, kvstore.PutIfOp(key, b, 0)); err != nil && !errors.Is(err, kvstore.ErrConflict) {
		o.mu.Lock()
		delete(o.requested, name) // the next handshake tries again
		o.mu.Unlock()
		o.log.Warn("on-demand request not recorded", "name", name, "err", err)
	}
}
