// Package leader elects one replica of a cluster as leader through a lock
// in the shared store, and keeps a registry of the live replicas.
//
// Leadership is handed out as a Term: a value with a fencing token, a Done
// channel that closes the moment leadership is lost or uncertain, a context
// for leader-only work, and Apply for writes fenced by the term's lock. An
// Elector campaigns for as long as it runs, never giving up on store errors,
// and resigns when it stops so that another replica takes over at once.
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Errors callers branch on.
var (
	// ErrNotLeader means the term has ended: a fenced write was not made.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means no replica leads at the moment.
	ErrNoLeader = errors.New("no leader")
)

// Reasons a term ends, given by Term.Err.
var (
	// ErrLeaseLost: the lock's lease was revoked or expired, or its key
	// was deleted or taken over.
	ErrLeaseLost = errors.New("lock lease lost")
	// ErrLeaseUnconfirmed: no renewal of the lease was confirmed in time
	// (TTL less Margin since the last confirmed one was sent).
	ErrLeaseUnconfirmed = errors.New("lease renewal not confirmed in time")
	// ErrWriteFenced: the store refused a write fenced by the term.
	ErrWriteFenced = errors.New("a fenced write was refused")
	// ErrResigned: the elector stopped.
	ErrResigned = errors.New("resigned")
)

// Defaults of Config.
const (
	DefaultKey = "leader"
	DefaultTTL = 10 * time.Second
)

// Node identifies a replica.
type Node struct {
	// ID is unique in the cluster and stable for the replica's life, for
	// example the pod name. Required.
	ID string `json:"id"`
	// Address is where other replicas reach this one (host:port), for
	// forwarding. Optional.
	Address string `json:"address,omitempty"`
}

// Info is who leads, as stored at the leader key.
type Info struct {
	Node
	// Since is when the term began, by the leader's clock.
	Since time.Time `json:"since"`
	// Token is the term's fencing token; 0 in the moment between winning
	// the lock and publishing it.
	Token int64 `json:"token,omitempty"`
}

// Config configures an Elector.
type Config struct {
	// Store holds the leader lock. Required.
	Store kvstore.Store
	// Key is the lock key. Empty means DefaultKey.
	Key string
	// Node is this replica. Node.ID is required.
	Node Node
	// TTL is the lock's lease: how long a crashed leader keeps the lock.
	// Zero means DefaultTTL.
	TTL time.Duration
	// Margin is how long before its lease could expire a leader steps
	// down when renewals stop being confirmed. Zero means TTL/5, at least
	// one second; at most half the TTL.
	Margin time.Duration
	// Logger receives transitions and campaign errors. Nil discards them.
	Logger *slog.Logger
	// Clock tells the time; nil means the system clock.
	Clock Clock
}

// Clock is the time source of an Elector, replaceable in tests.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives after d and a function
	// that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Stats are the elector's gauges and counters, for metrics.
type Stats struct {
	// IsLeader is whether this replica leads now.
	IsLeader bool
	// Token is the current term's; 0 when not leading.
	Token int64
	// Transitions counts changes of IsLeader, both ways.
	Transitions uint64
	// CampaignErrors counts failed attempts to take or wait for the lock.
	CampaignErrors uint64
}

// Elector campaigns for leadership. Create it with New and call Run.
type Elector struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	term    *Term
	changed chan struct{} // closed and replaced when term changes

	transitions    atomic.Uint64
	campaignErrors atomic.Uint64
}

// New validates cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Store == nil {
		return nil, errors.New("leader: no store")
	}
	if cfg.Node.ID == "" {
		return nil, errors.New("leader: node ID is empty")
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if err := kvstore.ValidateKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("leader: key: %w", err)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("leader: TTL %v is under a second", cfg.TTL)
	}
	if cfg.Margin == 0 {
		cfg.Margin = min(max(cfg.TTL/5, time.Second), cfg.TTL/2)
	}
	// Leases are renewed every third of their TTL: a margin over half the
	// TTL would end terms between two healthy renewals.
	if cfg.Margin < 0 || cfg.Margin > cfg.TTL/2 {
		return nil, fmt.Errorf("leader: margin %v must be between 0 and half the TTL (%v)", cfg.Margin, cfg.TTL/2)
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Elector{cfg: cfg, log: log.With("node", cfg.Node.ID), changed: make(chan struct{})}, nil
}

// Run campaigns until ctx is done: it waits for the lock, leads until the
// term ends, and campaigns again. Store errors are retried with jittered
// backoff, forever, except that the store being closed ends Run with an
// error wrapping kvstore.ErrClosed: nothing can be won from it any more.
//
// When ctx is done Run stops campaigning at once, ends the current term,
// releases the lock so that another replica takes over at once, and
// returns nil. A replica that stops serving (draining on SIGTERM) cancels
// ctx first, so that the leadership neither stays with it nor comes to it.
func (e *Elector) Run(ctx context.Context) error {
	bo := retry.Backoff{What: "leader campaign", Log: e.log}
	for ctx.Err() == nil {
		lock, err := e.campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, kvstore.ErrClosed) {
				return fmt.Errorf("leader campaign: %w", err)
			}
			e.campaignErrors.Add(1)
			bo.Failed(err)
			bo.Wait(ctx)
			continue
		}
		bo.Succeeded()
		if lasted := e.lead(ctx, lock); lasted < minTerm && ctx.Err() == nil {
			// A term that ends at once (a store that refuses every fenced
			// write, a lease that is never confirmed) must not become a
			// tight loop of campaigns.
			bo.Failed(errShortTerm)
			bo.Wait(ctx)
		}
	}
	return nil
}

// minTerm is the shortest term after which Run campaigns again at once.
const minTerm = time.Second

var errShortTerm = errors.New("term ended within a second of starting")

// campaign waits for the lock. The value it stores names the node; the
// start of the term and its token are published once it is won.
func (e *Elector) campaign(ctx context.Context) (kvstore.Lock, error) {
	value, err := json.Marshal(Info{Node: e.cfg.Node})
	if err != nil {
		return nil, fmt.Errorf("encode leader record: %w", err)
	}
	return e.cfg.Store.Lock(ctx, e.cfg.Key, kvstore.LockOptions{TTL: e.cfg.TTL, Value: value})
}

// lead holds a term on lock until it ends, releases the lock and returns
// how long the term lasted.
func (e *Elector) lead(ctx context.Context, lock kvstore.Lock) time.Duration {
	t := newTerm(e, lock)
	e.begin(t)
	e.log.Info("leading", "token", t.Token())
	var wg sync.WaitGroup
	wg.Go(func() { e.announce(t) })

	reason := e.hold(ctx, t)
	e.finish(t, reason)
	wg.Wait()
	e.log.Info("stepped down", "token", t.Token(), "reason", reason.Error())

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := lock.Release(rctx); err != nil {
		e.log.Warn("release leader lock", "err", err)
	}
	return e.cfg.Clock.Now().Sub(t.since)
}

// announce publishes the term's start and token at the leader key, for
// Leader, Observe and operators, retrying until it succeeds or the term
// ends. Each attempt must finish while the lease is known to last.
func (e *Elector) announce(t *Term) {
	value, err := json.Marshal(Info{Node: e.cfg.Node, Since: t.since, Token: t.Token()})
	if err != nil {
		return
	}
	bo := retry.Backoff{What: "publishing the leader record", Log: e.log}
	for t.ctx.Err() == nil {
		ctx, cancel := t.ctx, context.CancelFunc(func() {})
		if exp := t.lock.Expires(); !exp.IsZero() {
			ctx, cancel = context.WithDeadline(t.ctx, exp.Add(-e.cfg.Margin))
		}
		_, err := t.lock.Update(ctx, value)
		cancel()
		if err == nil || errors.Is(err, kvstore.ErrFenced) {
			return // a fenced refusal ends the term through the lock
		}
		bo.Failed(err)
		bo.Wait(t.ctx)
	}
}

// begin makes t the current term.
func (e *Elector) begin(t *Term) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.term = t
	e.transitions.Add(1)
	close(e.changed)
	e.changed = make(chan struct{})
}

// finish ends t for reason and clears it, in one step for Term and Stats.
func (e *Elector) finish(t *Term, reason error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t.end(reason)
	e.term = nil
	e.transitions.Add(1)
	close(e.changed)
	e.changed = make(chan struct{})
}

// hold waits for the term to end and returns why: the lease was lost, its
// renewal was not confirmed in time, a fenced write was refused, or ctx
// ended (a resignation).
func (e *Elector) hold(ctx context.Context, t *Term) error {
	for {
		var expiry <-chan time.Time
		stop := func() bool { return false }
		if exp := t.lock.Expires(); !exp.IsZero() {
			left := exp.Sub(e.cfg.Clock.Now()) - e.cfg.Margin
			if left <= 0 {
				return ErrLeaseUnconfirmed
			}
			expiry, stop = e.cfg.Clock.NewTimer(left)
		}
		var reason error
		select {
		case <-t.lock.Done():
			reason = ErrLeaseLost
		case <-t.ctx.Done():
			reason = context.Cause(t.ctx)
		case <-ctx.Done():
			reason = ErrResigned
		case <-expiry:
			// Re-read Expires: a renewal may have moved it.
		}
		stop()
		if reason != nil {
			return reason
		}
	}
}

// Term returns the current term, or nil when this replica does not lead.
func (e *Elector) Term() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}

// Await blocks until this replica leads and returns the term, or returns
// ctx's error.
func (e *Elector) Await(ctx context.Context) (*Term, error) {
	for {
		e.mu.Lock()
		t, changed := e.term, e.changed
		e.mu.Unlock()
		if t != nil && t.ctx.Err() == nil {
			return t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Stats returns the elector's gauges and counters.
func (e *Elector) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Transitions: e.transitions.Load(), CampaignErrors: e.campaignErrors.Load()}
	if e.term != nil {
		s.IsLeader, s.Token = true, e.term.Token()
	}
	return s
}
