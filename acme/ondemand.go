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

	"golang.org/x/time/rate"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// OnDemandConfig configures OnDemand. Zero values take the defaults
// named on each field.
type OnDemandConfig struct {
	// Cache serves the certificates. Required.
	Cache *Cache
	// Store and Keys are where requests are recorded. Required.
	Store kvstore.Store
	Keys  Keys
	// Node is this replica's id, recorded in requests.
	Node string
	// Logger receives asks and requests. Nil discards them.
	Logger *slog.Logger
	// Client asks the ask URL. Nil means a client with a 5s timeout.
	Client *http.Client
	// Wait bounds how long a handshake waits for its new certificate
	// before it is served the default one. Zero means 15s.
	Wait time.Duration
	// AsksPerSecond and AskBurst bound the asks for names not yet
	// answered. Zero means 5 per second, bursts of 10.
	AsksPerSecond float64
	AskBurst      int
	// Allowed and Denied are how long an answer of the ask URL is kept.
	// Zero means an hour and five minutes.
	Allowed, Denied time.Duration
}

// OnDemand serves certificates from a Cache and, for a name it has none
// for, asks the configured ask URL; if the answer allows the name, it
// records an order request in the store for the leader and holds the
// handshake until the certificate arrives or Wait passes.
type OnDemand struct {
	cfg     OnDemandConfig
	log     *slog.Logger
	ask     atomic.Pointer[string] // nil: on-demand is off
	limiter *rate.Limiter

	mu      sync.Mutex
	answers map[string]answer
	asking  map[string]chan struct{} // names being asked about
}

type answer struct {
	allowed bool
	until   time.Time
}

// maxAnswers bounds the memory of answers kept.
const maxAnswers = 100_000

// NewOnDemand returns an OnDemand that is off until SetConfig gives it an
// ask URL.
func NewOnDemand(cfg OnDemandConfig) (*OnDemand, error) {
	if cfg.Cache == nil || cfg.Store == nil || cfg.Keys.Root == "" {
		return nil, errors.New("on-demand: cache, store and keys are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Wait == 0 {
		cfg.Wait = 15 * time.Second
	}
	if cfg.AsksPerSecond == 0 {
		cfg.AsksPerSecond = 5
	}
	if cfg.AskBurst == 0 {
		cfg.AskBurst = 10
	}
	if cfg.Allowed == 0 {
		cfg.Allowed = time.Hour
	}
	if cfg.Denied == 0 {
		cfg.Denied = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OnDemand{cfg: cfg, log: log, limiter: rate.NewLimiter(rate.Limit(cfg.AsksPerSecond), cfg.AskBurst),
		answers: map[string]answer{}, asking: map[string]chan struct{}{}}, nil
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
		clear(o.answers) // a new ask URL answers anew
		o.mu.Unlock()
	}
	o.ask.Store(&ask)
}

// GetCertificate implements the router's certificate source.
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
	if !o.allowed(ctx, *ask, name) {
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
			o.log.Info("on-demand certificate not there in time; serving the default certificate", "name", name, "waited", o.cfg.Wait)
			return nil, nil
		}
	}
}

// allowed returns the ask URL's answer for name, asking at most once at a
// time per name and within the ask rate.
func (o *OnDemand) allowed(ctx context.Context, ask, name string) bool {
	for {
		o.mu.Lock()
		if a, ok := o.answers[name]; ok && time.Now().Before(a.until) {
			o.mu.Unlock()
			return a.allowed
		}
		if ch, ok := o.asking[name]; ok {
			o.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return false
			}
		}
		if !o.limiter.Allow() {
			o.mu.Unlock()
			o.log.Warn("on-demand ask rate exceeded; not asking", "name", name)
			return false
		}
		ch := make(chan struct{})
		o.asking[name] = ch
		o.mu.Unlock()

		ok, definite := o.query(ctx, ask, name)
		o.mu.Lock()
		delete(o.asking, name)
		close(ch)
		if definite {
			if len(o.answers) >= maxAnswers {
				clear(o.answers)
			}
			ttl := o.cfg.Denied
			if ok {
				ttl = o.cfg.Allowed
			}
			o.answers[name] = answer{allowed: ok, until: time.Now().Add(ttl)}
		}
		o.mu.Unlock()
		return ok
	}
}

// query asks the ask URL about name. definite is false when the URL could
// not be asked, so the answer is not kept.
func (o *OnDemand) query(ctx context.Context, ask, name string) (ok, definite bool) {
	u, err := url.Parse(ask)
	if err != nil {
		return false, true
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, true
	}
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		o.log.Warn("on-demand ask failed", "name", name, "err", err)
		return false, false
	}
	resp.Body.Close()
	allowed := resp.StatusCode >= 200 && resp.StatusCode < 300
	o.log.Info("on-demand ask", "name", name, "allowed", allowed, "status", resp.StatusCode)
	return allowed, resp.StatusCode < 500
}

// request records that name is wanted; the leader orders it. A request
// that exists already is left as it is.
func (o *OnDemand) request(ctx context.Context, name string) {
	if _, ok := o.cfg.Cache.Snapshot().Requests[name]; ok {
		return
	}
	key, err := o.cfg.Keys.Request(name)
	if err != nil {
		return
	}
	b, _ := json.Marshal(RequestRecord{Name: name, Node: o.cfg.Node, Requested: time.Now().UTC()})
	if _, err := o.cfg.Store.Apply(ctx, nil, kvstore.PutIfOp(key, b, 0)); err != nil && !errors.Is(err, kvstore.ErrConflict) {
		o.log.Warn("on-demand request not recorded", "name", name, "err", err)
	}
}
