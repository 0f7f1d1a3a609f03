package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Store holds the ACME state. Required.
	Store kvstore.Store
	// Keys locates the state in Store (NewKeys(prefix)). Required.
	Keys Keys
	// Keyring opens the certificates' private keys. Required.
	Keyring *Keyring
	// Logger receives rejected records and failed store reads. Nil
	// discards them.
	Logger *slog.Logger
	// Metrics, when set, counts challenge answers and rejected records,
	// and reports the certificates held. Nil means no metrics.
	Metrics *Metrics
	// OnApplied, when set, is called with the store revision up to which
	// the cache has applied everything under Keys.Prefix(), each time that
	// revision changes (the replica reports it in the node registry). It is
	// called from Run's goroutine and must not block.
	OnApplied func(rev int64)
	// MissTimeout bounds the consistent store read made when a challenge
	// is asked for that is not in memory while an order for the name is in
	// flight. Zero means 2s.
	MissTimeout time.Duration
}

// defaultMissTimeout is CacheConfig.MissTimeout's zero value.
const defaultMissTimeout = 2 * time.Second

// maxMissReads bounds the consistent store reads made at once for
// challenges missing from memory, so that requests for made-up tokens on a
// name being validated cannot flood the store.
const maxMissReads = 16

// settleDelay is how long the events of one store revision are given to
// arrive together. A store batch of several keys reaches the watch as one
// event per key, all at the batch's revision; a revision is reported as
// applied once an event of a later revision arrives, or once no event has
// come for settleDelay.
const settleDelay = 20 * time.Millisecond

// maxEventBatch bounds how many waiting events are folded into one view.
const maxEventBatch = 1024

// challengePath is where HTTP-01 answers are asked for (RFC 8555 §8.3).
const challengePath = "/.well-known/acme-challenge/"

// Cache is every replica's in-memory copy of the ACME state: it follows
// the store with one watch and serves certificates and challenge answers
// from memory. Handshakes and HTTP-01 requests only load an immutable
// View; each batch of watch events builds the next View copy-on-write,
// decoding only the records that changed.
//
// A Cache is safe for concurrent use; Run must be running for it to
// follow the store.
type Cache struct {
	store       kvstore.Store
	keys        Keys
	keyring     *Keyring
	log         *slog.Logger
	metrics     *Metrics
	onApplied   func(int64)
	missTimeout time.Duration
	missReads   chan struct{} // semaphore of consistent reads on a miss

	view    atomic.Pointer[View]
	ready   chan struct{}
	running atomic.Bool
	created time.Time
	// lastSync is when the last watch event was applied (Unix
	// nanoseconds); 0 before the first.
	lastSync atomic.Int64

	mu      sync.Mutex
	rev     int64         // the confirmed revision
	changed chan struct{} // closed and replaced when rev changes

	// intern shares the intermediate certificates of the chains, which
	// thousands of certificates have in common. Only Run's goroutine uses
	// it.
	intern map[[sha256.Size]byte][]byte
}

// NewCache returns a Cache holding nothing until Run has applied the
// store's state (see Ready).
func NewCache(cfg CacheConfig) (*Cache, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("acme cache: no store")
	case cfg.Keys.Root == "":
		return nil, errors.New("acme cache: no keys (use NewKeys)")
	case cfg.Keyring == nil:
		return nil, errors.New("acme cache: no keyring")
	case cfg.MissTimeout < 0:
		return nil, fmt.Errorf("acme cache: negative miss timeout %s", cfg.MissTimeout)
	}
	if err := kvstore.ValidatePrefix(cfg.Keys.Prefix()); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	missTimeout := cfg.MissTimeout
	if missTimeout == 0 {
		missTimeout = defaultMissTimeout
	}
	c := &Cache{
		store:       cfg.Store,
		keys:        cfg.Keys,
		keyring:     cfg.Keyring,
		log:         log,
		metrics:     cfg.Metrics,
		onApplied:   cfg.OnApplied,
		missTimeout: missTimeout,
		missReads:   make(chan struct{}, maxMissReads),
		ready:       make(chan struct{}),
		created:     time.Now(),
		changed:     make(chan struct{}),
		intern:      map[[sha256.Size]byte][]byte{},
	}
	c.view.Store(emptyView())
	cfg.Metrics.watch(c)
	return c, nil
}

// Run follows Keys.Prefix() from revision 0 (the first event is a Resync
// of the whole state) until ctx is done, and then returns nil. It returns
// an error when the watch cannot start or ends because the store was
// closed. Only one Run may be active at a time.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("acme cache: already running")
	}
	defer c.running.Store(false)
	events, err := c.store.Watch(ctx, c.keys.Prefix(), 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("acme cache: watch %s: %w", c.keys.Prefix(), err)
	}
	// The watch goroutine closes events once ctx is done; wait for it.
	defer func() {
		for range events {
		}
	}()

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	// applied is the highest revision received; confirmed the one up to
	// which every event is known to have been received.
	var applied, confirmed int64
	batch := make([]kvstore.Event, 0, 16)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-settle.C:
			confirmed = applied
			c.publish(c.view.Load(), confirmed)
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("acme cache: watch %s ended: %w", c.keys.Prefix(), kvstore.ErrClosed)
			}
			batch = pending(events, append(batch, ev))
			resynced := false
			for _, ev := range batch {
				switch {
				case ev.Type == kvstore.EventResync:
					applied, confirmed, resynced = ev.Revision, ev.Revision, true
				case ev.Revision > applied:
					confirmed, applied = applied, ev.Revision
				}
			}
			v := c.applyEvents(c.view.Load(), batch)
			clear(batch) // a Resync's snapshot can be large
			batch = batch[:0]
			c.lastSync.Store(time.Now().UnixNano())
			c.publish(v, confirmed)
			if resynced {
				select {
				case <-c.ready:
				default:
					// Decoding every record left garbage several times
					// the size of what is kept; give it back before
					// this replica reports ready, once.
					debug.FreeOSMemory()
					close(c.ready)
				}
			}
			if applied != confirmed {
				settle.Reset(settleDelay)
			} else {
				settle.Stop()
			}
		}
	}
}

// pending appends the events already waiting on events, up to
// maxEventBatch, without blocking.
func pending(events <-chan kvstore.Event, batch []kvstore.Event) []kvstore.Event {
	for len(batch) < maxEventBatch {
		select {
		case ev, ok := <-events:
			if !ok {
				return batch
			}
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// publish swaps in v at revision rev and, when rev changed, reports it
// and wakes WaitRevision.
func (c *Cache) publish(v *View, rev int64) {
	if v.Revision != rev {
		nv := *v
		nv.Revision = rev
		v = &nv
	}
	c.view.Store(v)
	c.mu.Lock()
	moved := c.rev != rev
	if moved {
		c.rev = rev
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	if moved && c.onApplied != nil {
		c.onApplied(rev)
	}
}

// Ready is closed once the store's whole state has been applied the first
// time.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Revision is the store revision up to which the cache has applied every
// change under Keys.Prefix(). It may go down after the store was
// restored.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

// WaitRevision blocks until Revision() >= rev or ctx is done, and then
// returns an error wrapping ctx.Err().
func (c *Cache) WaitRevision(ctx context.Context, rev int64) error {
	for {
		c.mu.Lock()
		cur, changed := c.rev, c.changed
		c.mu.Unlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("acme cache: wait for revision %d (at %d): %w", rev, cur, ctx.Err())
		}
	}
}

// Snapshot returns the current view. It is never modified: a change of
// the store brings a new one.
func (c *Cache) Snapshot() *View { return c.view.Load() }

// Cert returns the record and served pair of the certificate whose main
// domain is domain. The record holds neither the PEM chain nor the sealed
// key's data: the pair has the chain.
func (c *Cache) Cert(domain string) (*CertRecord, *tls.Certificate, bool) {
	v := c.view.Load()
	e := v.Certs[domain]
	if e == nil {
		e = v.Certs[normalize(domain)]
	}
	if e == nil {
		return nil, nil, false
	}
	return e.Record, e.Pair, true
}

// GetCertificate implements router.CertSource: the certificate for the
// hello's exact server name, else one whose wildcard covers it (one label:
// *.example.com covers a.example.com only), else nil, nil. It never reads
// the store.
func (c *Cache) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if name == "" {
		return nil, nil
	}
	v := c.view.Load()
	if e := v.exact[name]; e != nil {
		return e.Pair, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if e := v.wildcard[parent]; e != nil {
			return e.Pair, nil
		}
	}
	return nil, nil
}

// reject logs and counts a record that was not applied. Neither the value
// nor anything from it is logged.
func (c *Cache) reject(kind, key string, err error) {
	c.log.Warn("acme record rejected; the previous one, if any, stays in use", "key", key, "err", err)
	c.metrics.rejected(kind)
}
