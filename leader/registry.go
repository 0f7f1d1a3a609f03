package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/retry"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// DefaultRegistryPrefix is where the registry keeps one key per replica.
const DefaultRegistryPrefix = "nodes/"

// NodeRecord is a replica's entry in the registry.
type NodeRecord struct {
	Node
	// Version is the replica's tollgate version.
	Version string `json:"version,omitempty"`
	// Started is when the replica started.
	Started time.Time `json:"started"`
	// Applied is the store revision up to which the replica has applied
	// the shared state the leader waits for (the ACME challenge answers).
	Applied int64 `json:"applied"`
	// Answered counts the ACME validation requests (HTTP-01 and
	// TLS-ALPN-01) the replica answered since it started; LastAnswered is
	// when it answered the latest, for the domain LastAnsweredName. They
	// show that the CA's requests reach every replica behind the load
	// balancer.
	Answered         int64     `json:"answered,omitempty"`
	LastAnswered     time.Time `json:"lastAnswered,omitzero"`
	LastAnsweredName string    `json:"lastAnsweredName,omitempty"`
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Store holds the registry. Required.
	Store kvstore.Store
	// Prefix is the registry's prefix. Empty means DefaultRegistryPrefix.
	Prefix string
	// Record is this replica; Record.ID is required and must be usable as
	// a key segment. Applied is kept up to date by SetApplied, the
	// challenge answers by ChallengeAnswered.
	Record NodeRecord
	// TTL is the entry's lease: how long the entry of a crashed replica
	// stays. Zero means DefaultTTL.
	TTL time.Duration
	// MinInterval spaces updates of the entry (Applied and the challenge
	// answers together). Zero means one second.
	MinInterval time.Duration
	// Logger receives registration errors. Nil discards them.
	Logger *slog.Logger
}

// Registry keeps this replica's entry alive under the registry prefix:
// bound to a lease, so it vanishes when the replica dies.
type Registry struct {
	cfg  RegistryConfig
	key  string
	log  *slog.Logger
	wake chan struct{}

	mu  sync.Mutex
	cur progress // what the entry should hold
}

// progress is the changing part of the entry.
type progress struct {
	applied  int64
	answered int64
	last     int64 // LastAnswered in Unix nanoseconds; 0 when none
	lastName string
}

// NewRegistry validates cfg and returns a Registry; Run keeps the entry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("registry: no store")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRegistryPrefix
	}
	if _, err := kvstore.Join(cfg.Record.ID); err != nil {
		return nil, fmt.Errorf("registry: node ID %q: %w", cfg.Record.ID, err)
	}
	key := strings.TrimSuffix(cfg.Prefix, "/") + "/" + cfg.Record.ID
	if err := kvstore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("registry: prefix %q: %w", cfg.Prefix, err)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg, key: key, log: log.With("node", cfg.Record.ID), wake: make(chan struct{}, 1)}
	r.cur = progress{applied: cfg.Record.Applied, answered: cfg.Record.Answered, lastName: cfg.Record.LastAnsweredName}
	if !cfg.Record.LastAnswered.IsZero() {
		r.cur.last = cfg.Record.LastAnswered.UnixNano()
	}
	return r, nil
}

// SetApplied records the store revision this replica has applied; Run
// publishes it, at most once per MinInterval.
func (r *Registry) SetApplied(rev int64) {
	r.mu.Lock()
	r.cur.applied = rev
	r.mu.Unlock()
	r.poke()
}

// ChallengeAnswered counts one ACME validation request this replica
// answered for domain; Run publishes the count, the time and the domain,
// at most once per MinInterval. It does not block.
func (r *Registry) ChallengeAnswered(domain string) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	r.cur.answered++
	r.cur.last = now
	r.cur.lastName = domain
	r.mu.Unlock()
	r.poke()
}

func (r *Registry) load() progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// poke wakes keep without blocking.
func (r *Registry) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run registers the replica and keeps the entry until ctx is done, then
// removes it. When the entry's lease is lost (an outage longer than the
// TTL) it registers again; store errors are retried forever, except that
// the store being closed ends Run with an error wrapping kvstore.ErrClosed.
func (r *Registry) Run(ctx context.Context) error {
	bo := retry.Backoff{What: "node registration", Log: r.log}
	for ctx.Err() == nil {
		cur := r.load()
		lock, err := r.cfg.Store.Lock(ctx, r.key, kvstore.LockOptions{TTL: r.cfg.TTL, Value: r.record(cur)})
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, kvstore.ErrClosed) {
				return fmt.Errorf("node registration: %w", err)
			}
			if ctx.Err() == nil {
				bo.Failed(err)
				bo.Wait(ctx)
			}
			continue
		}
		bo.Succeeded()
		r.keep(ctx, lock, cur)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := lock.Release(rctx); err != nil {
			r.log.Warn("remove node entry", "err", err)
		}
		cancel()
	}
	return nil
}

// keep brings the held entry up to date whenever the progress differs from
// what it holds (written), at most once per MinInterval and retrying
// failed writes, until the lease is lost or ctx is done.
func (r *Registry) keep(ctx context.Context, lock kvstore.Lock, written progress) {
	bo := retry.Backoff{What: "node entry update", Log: r.log}
	last := time.Now()       // registering wrote the entry
	var due <-chan time.Time // set while an update is scheduled
	schedule := func(d time.Duration) {
		if due == nil {
			due = time.After(max(d, 0))
		}
	}
	if r.load() != written {
		schedule(r.cfg.MinInterval) // changed while registering
	}
	for {
		select {
		case <-lock.Done():
			r.log.Warn("node entry lost; registering again")
			return
		case <-ctx.Done():
			return
		case <-r.wake:
			if r.load() != written {
				schedule(time.Until(last.Add(r.cfg.MinInterval)))
			}
		case <-due:
			due = nil
			cur := r.load()
			if cur == written {
				continue
			}
			last = time.Now()
			if _, err := lock.Update(ctx, r.record(cur)); err != nil {
				if ctx.Err() == nil {
					bo.Failed(err)
					schedule(max(bo.Next(), r.cfg.MinInterval))
				}
				continue
			}
			bo.Succeeded()
			written = cur
			if r.load() != written {
				schedule(r.cfg.MinInterval)
			}
		}
	}
}

func (r *Registry) record(p progress) []byte {
	rec := r.cfg.Record
	rec.Applied = p.applied
	rec.Answered = p.answered
	rec.LastAnswered = time.Time{}
	if p.last != 0 {
		rec.LastAnswered = time.Unix(0, p.last).UTC()
	}
	rec.LastAnsweredName = p.lastName
	b, _ := json.Marshal(rec) // a struct of strings, times and numbers
	return b
}

// Nodes lists the registered replicas under prefix (DefaultRegistryPrefix
// when empty), skipping entries that do not decode.
func Nodes(ctx context.Context, s kvstore.Store, prefix string) ([]NodeRecord, error) {
	if prefix == "" {
		prefix = DefaultRegistryPrefix
	}
	l, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []NodeRecord
	for _, kv := range l.KVs {
		var rec NodeRecord
		if json.Unmarshal(kv.Value, &rec) == nil && rec.ID != "" {
			out = append(out, rec)
		}
	}
	return out, nil
}
