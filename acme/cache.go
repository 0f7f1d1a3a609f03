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

	"golang.org/x/sync/singleflight"

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
	// the cache has applied every change to the challenge answers, each
	// time that revision changes (the replica reports it in the node
	// registry, and the leader waits for it before asking the CA to
	// validate). It is called from Run's goroutine and must not block.
	OnApplied func(rev int64)
	// OnAnswered, when set, is called with the domain of each validation
	// request (HTTP-01 or TLS-ALPN-01) the cache answered, from memory or
	// after a store read (the replica reports the count in the node
	// registry). It is called from the request's goroutine and must not
	// block.
	OnAnswered func(domain string)
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
// the store with a watch per folder (see Run) and serves certificates and challenge answers
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
	onAnswered  func(string)
	missTimeout time.Duration
	missReads   chan struct{}      // semaphore of consistent reads on a miss
	missFlights singleflight.Group // by store key: one read per key at a time

	view    atomic.Pointer[View]
	ready   chan struct{}
	running atomic.Bool
	created time.Time
	// lastSync is when the last watch event was applied (Unix
	// nanoseconds); 0 before the first.
	lastSync atomic.Int64

	prefixes []string // watched, one watch each

	mu        sync.Mutex
	confirmed []int64       // by watch: the confirmed revision; nil before the first publish
	reported  int64         // the challenge watch's, as last reported
	changed   chan struct{} // closed and replaced at each publish

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
		prefixes:    cfg.Keys.watchedPrefixes(),
		keyring:     cfg.Keyring,
		log:         log,
		metrics:     cfg.Metrics,
		onApplied:   cfg.OnApplied,
		onAnswered:  cfg.OnAnswered,
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

// watchedPrefixes are the prefixes a Cache follows, each with its own
// watch: the challenge answers first (their position is the one reported
// through OnApplied), the small folders that change while orders run,
// then the certificate shards. Accounts are not followed: only the leader
// reads them. With Consul, whose watch responses carry the whole state
// under their prefix, a change to one certificate then costs a fetch of
// its shard rather than of every record.
func (k Keys) watchedPrefixes() []string {
	out := []string{
		k.Root + "/" + dirChallenges + "/",
		k.Root + "/" + dirOrders + "/",
		k.Root + "/" + dirState + "/",
		k.Root + "/" + dirRequests + "/",
	}
	return append(out, k.certPrefixes()...)
}

// challengeWatch is the index in watchedPrefixes of the challenge answers.
const challengeWatch = 0

// watchEvent is an event of the watch of prefix index w; closed reports
// that the watch's channel closed, err that the watch did not start.
type watchEvent struct {
	w      int
	ev     kvstore.Event
	closed bool
	err    error
}

// watchPos is where one watch stands.
type watchPos struct {
	// applied is the highest revision received; confirmed the one up to
	// which every event is known to have been received.
	applied, confirmed int64
	resynced           bool
	// last is when the watch last brought an event: its applied revision
	// is confirmed settleDelay after that, if nothing came since.
	last time.Time
}

// Run follows the ACME state, one watch per prefix (see
// watchedPrefixes), each from revision 0 (its first event is a Resync of
// its whole state), until ctx is done, and then returns nil. It returns an
// error when a watch cannot start or ends because the store was closed.
// Only one Run may be active at a time.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("acme cache: already running")
	}
	defer c.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: every forwarder has drained its watch
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	merged := make(chan watchEvent, 64)
	// The watches start at once: each takes its first listing (with
	// Consul, before Watch returns) while the others do.
	for i, prefix := range c.prefixes {
		wg.Go(func() { c.forward(ctx, i, prefix, merged) })
	}

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	pos := make([]watchPos, len(c.prefixes))
	resynced := 0
	batch := make([]watchEvent, 0, 16)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-settle.C:
			now := time.Now()
			for i := range pos {
				if p := &pos[i]; p.applied != p.confirmed && now.Sub(p.last) >= settleDelay {
					p.confirmed = p.applied
				}
			}
			c.publish(c.view.Load(), pos)
			resettle(settle, pos, now)
		case ev := <-merged:
			batch = pendingEvents(merged, append(batch, ev))
			for _, e := range batch {
				if e.err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("acme cache: watch %s: %w", c.prefixes[e.w], e.err)
				}
				if e.closed {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("acme cache: watch %s ended: %w", c.prefixes[e.w], kvstore.ErrClosed)
				}
				p := &pos[e.w]
				p.last = time.Now()
				switch {
				case e.ev.Type == kvstore.EventResync:
					p.applied, p.confirmed = e.ev.Revision, e.ev.Revision
					if !p.resynced {
						p.resynced = true
						resynced++
					}
				case e.ev.Revision > p.applied:
					p.confirmed, p.applied = p.applied, e.ev.Revision
				}
			}
			v := c.applyEvents(c.view.Load(), batch)
			clear(batch) // a Resync's snapshot can be large
			batch = batch[:0]
			c.lastSync.Store(time.Now().UnixNano())
			c.publish(v, pos)
			if resynced == len(pos) {
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
			resettle(settle, pos, time.Now())
		}
	}
}

// resettle arms settle for the earliest moment a watch's applied revision
// can be confirmed: settleDelay after its last event. Each watch settles on
// its own, so a busy folder does not hold back the others' positions.
func resettle(settle *time.Timer, pos []watchPos, now time.Time) {
	var next time.Time
	for _, p := range pos {
		if p.applied == p.confirmed {
			continue
		}
		if at := p.last.Add(settleDelay); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	settle.Stop()
	if !next.IsZero() {
		settle.Reset(max(next.Sub(now), 0))
	}
}

// forward starts watch w of prefix and sends its events to merged, then a
// closed marker (or the error that kept it from starting). Once ctx is
// done it drops them, until the watch closes its channel.
func (c *Cache) forward(ctx context.Context, w int, prefix string, merged chan<- watchEvent) {
	events, err := c.store.Watch(ctx, prefix, 0)
	if err != nil {
		select {
		case merged <- watchEvent{w: w, err: err}:
		case <-ctx.Done():
		}
		return
	}
	for ev := range events {
		select {
		case merged <- watchEvent{w: w, ev: ev}:
		case <-ctx.Done():
		}
	}
	select {
	case merged <- watchEvent{w: w, closed: true}:
	case <-ctx.Done():
	}
}

// pendingEvents appends the events already waiting on merged, up to
// maxEventBatch, without blocking.
func pendingEvents(merged <-chan watchEvent, batch []watchEvent) []watchEvent {
	for len(batch) < maxEventBatch {
		select {
		case ev := <-merged:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// publish swaps in v, records the watches' confirmed positions, wakes
// WaitKey and Changed's waiters and reports a new challenge position.
func (c *Cache) publish(v *View, pos []watchPos) {
	c.view.Store(v)
	c.mu.Lock()
	if c.confirmed == nil {
		c.confirmed = make([]int64, len(pos))
	}
	for i, p := range pos {
		c.confirmed[i] = p.confirmed
	}
	rev := c.confirmed[challengeWatch]
	moved := c.reported != rev
	c.reported = rev
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if moved && c.onApplied != nil {
		c.onApplied(rev)
	}
}

// Ready is closed once the store's whole state has been applied the first
// time.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// ChallengeRevision is the store revision up to which the cache has
// applied every change to the challenge answers: the position OnApplied
// reports. It may go down after the store was restored.
func (c *Cache) ChallengeRevision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reported
}

// lagReadTimeout bounds the store read of newestChallenge, made at each
// scrape of the metrics.
const lagReadTimeout = 2 * time.Second

// newestChallenge is the store revision of the newest challenge answer in
// the store, 0 when there is none: the revision a replica must have
// applied to be in sync (ChallengeRevision). It reads the store, not the
// cache's view, so that a replica that is behind sees what it misses.
func (c *Cache) newestChallenge() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lagReadTimeout)
	defer cancel()
	l, err := c.store.List(ctx, c.prefixes[challengeWatch])
	if err != nil {
		return 0, fmt.Errorf("acme cache: list challenges: %w", err)
	}
	var newest int64
	for _, kv := range l.KVs {
		newest = max(newest, kv.Revision)
	}
	return newest, nil
}

// Changed returns a channel that is closed the next time the cache
// publishes a view (a change applied, or a revision confirmed). Take it
// before looking at the view, then wait on it.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// watchOf returns the index of the watch that follows key, or -1.
func (c *Cache) watchOf(key string) int {
	for i, p := range c.prefixes {
		if strings.HasPrefix(key, p) {
			return i
		}
	}
	return -1
}

// WaitKey blocks until the cache has applied every change to key up to
// store revision rev (the revision a write of key returned), or until ctx
// is done, and then returns an error wrapping ctx.Err(). Keys the cache
// does not follow (accounts, keys outside the ACME prefix) are an error
// at once.
func (c *Cache) WaitKey(ctx context.Context, key string, rev int64) error {
	w := c.watchOf(key)
	if w < 0 {
		return fmt.Errorf("acme cache: %s is not followed", key)
	}
	for {
		c.mu.Lock()
		var cur int64
		if c.confirmed != nil {
			cur = c.confirmed[w]
		}
		changed := c.changed
		c.mu.Unlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("acme cache: wait for %s at revision %d (at %d): %w", key, rev, cur, ctx.Err())
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
