package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v4/challenge/tlsalpn01"

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

// ChallengeCertificate implements router.Challenges for TLS-ALPN-01: the
// validation certificate of the answer pending for the hello's server
// name, or nil, nil when there is none. An answer not in memory is read
// from the store, within MissTimeout, only while an order for the name is
// in flight.
func (c *Cache) ChallengeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if name == "" {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, nil
	}
	v := c.view.Load()
	e := v.tlsalpn[name]
	result := resultAnswered
	if e == nil && v.ordered[name] {
		ctx := hello.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		e = c.readMiss(ctx, kindTLSALPN01, name)
		result = resultStore
	}
	if e == nil {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, nil
	}
	cert, err := e.cert()
	if err != nil {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, fmt.Errorf("acme: TLS-ALPN-01 certificate for %s: %w", name, err)
	}
	c.metrics.challenge(kindTLSALPN01, result)
	return cert, nil
}

// ServeHTTP implements router.Challenges for HTTP-01: GET
// /.well-known/acme-challenge/<token> answers the key authorization of
// the token when the request's Host is the name being validated, else
// 404. An answer not in memory is read from the store, within
// MissTimeout, only while an order for the Host is in flight: any other
// miss is answered at once.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, challengePath)
	if !ok || !validToken(token) {
		c.metrics.challenge(kindHTTP01, resultMissing)
		http.NotFound(w, r)
		return
	}
	host := requestHost(r.Host)
	v := c.view.Load()
	e := v.http01[token]
	result := resultAnswered
	if e == nil && v.ordered[host] {
		e = c.readMiss(r.Context(), kindHTTP01, token)
		result = resultStore
	}
	if e == nil || e.domain != host {
		c.metrics.challenge(kindHTTP01, resultMissing)
		http.NotFound(w, r)
		return
	}
	c.metrics.challenge(kindHTTP01, result)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(e.keyAuth))
	}
}

// validToken reports whether token can be an ACME token: one non-empty
// path segment of base64url characters (RFC 8555 §8.1).
func validToken(token string) bool {
	if token == "" || len(token) > 512 {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// requestHost is the normalized host of a Host header, without its port.
func requestHost(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = host
	}
	return normalize(hostport)
}

// readMiss reads the challenge answer of kind for name (a token or a
// domain) from the store with a consistent read bounded by MissTimeout.
// It returns nil when there is none or the store cannot tell in time.
func (c *Cache) readMiss(ctx context.Context, kind, name string) *challengeEntry {
	var key string
	var err error
	if kind == kindHTTP01 {
		key, err = c.keys.HTTP01(name)
	} else {
		key, err = c.keys.TLSALPN01(name)
	}
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.missTimeout)
	defer cancel()
	select {
	case c.missReads <- struct{}{}:
		defer func() { <-c.missReads }()
	case <-ctx.Done():
		return nil
	}
	kv, err := c.store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, kvstore.ErrNotFound) {
			c.log.Warn("acme challenge read from the store failed", "key", key, "err", err)
		}
		return nil
	}
	e, err := decodeChallenge(kv, kind, name)
	if err != nil {
		c.reject(kind, key, err)
		return nil
	}
	return e
}

// reject logs and counts a record that was not applied. Neither the value
// nor anything from it is logged.
func (c *Cache) reject(kind, key string, err error) {
	c.log.Warn("acme record rejected; the previous one, if any, stays in use", "key", key, "err", err)
	c.metrics.rejected(kind)
}

// View is the cache's state at one store revision. A View is never
// modified once published; its maps must not be written to.
type View struct {
	// Revision is the store revision up to which every change is in the
	// view.
	Revision int64
	// Certs are the certificates by main domain (the key's last segment).
	Certs map[string]*CertEntry
	// Orders are the orders in flight by main domain.
	Orders map[string]*OrderRecord
	// States are the domains' failure states by main domain.
	States map[string]*DomainState
	// Requests are the on-demand requests by name.
	Requests map[string]*RequestRecord

	exact    map[string]*CertEntry      // served name -> certificate
	wildcard map[string]*CertEntry      // "example.com" for *.example.com
	http01   map[string]*challengeEntry // token -> answer
	tlsalpn  map[string]*challengeEntry // normalized name -> answer
	// ordered holds the names of the orders in flight that HTTP-01 and
	// TLS-ALPN-01 can validate (no wildcards).
	ordered map[string]bool
}

func emptyView() *View {
	return &View{
		Certs:    map[string]*CertEntry{},
		Orders:   map[string]*OrderRecord{},
		States:   map[string]*DomainState{},
		Requests: map[string]*RequestRecord{},
		exact:    map[string]*CertEntry{},
		wildcard: map[string]*CertEntry{},
		http01:   map[string]*challengeEntry{},
		tlsalpn:  map[string]*challengeEntry{},
		ordered:  map[string]bool{},
	}
}

// CertEntry is a certificate held by the cache.
type CertEntry struct {
	// Key is the record's store key.
	Key string
	// Revision is the store revision of the record's last write.
	Revision int64
	// Record is the decoded record without its PEM chain and without the
	// sealed key's data (its algorithm and key id stay, for NeedsReseal).
	Record *CertRecord
	// Pair is the certificate as served, its leaf parsed.
	Pair *tls.Certificate

	domain   string            // the main domain: the key's last segment
	names    []string          // normalized Record.Domains
	notAfter time.Time         // of the leaf
	sum      [sha256.Size]byte // of the stored value
}

// claims reports whether e serves name, in the form of the index: a
// plain name, or "*." and the parent of a wildcard.
func (e *CertEntry) claims(name string) bool { return slices.Contains(e.names, name) }

// better reports whether a is preferred to b for a name both claim: the
// later expiry, then the smaller key, so that the choice does not depend
// on the order records arrive in.
func better(a, b *CertEntry) bool {
	if !a.notAfter.Equal(b.notAfter) {
		return a.notAfter.After(b.notAfter)
	}
	return a.Key < b.Key
}

// challengeEntry is a challenge answer held by the cache.
type challengeEntry struct {
	sum     [sha256.Size]byte // of the stored value
	domain  string            // normalized
	keyAuth string
	// cert builds the TLS-ALPN-01 certificate once, at the first
	// handshake that needs it.
	cert func() (*tls.Certificate, error)
}

// decodeChallenge decodes the challenge record kv of kind, stored under
// name (a token for HTTP-01, a domain for TLS-ALPN-01).
func decodeChallenge(kv kvstore.KV, kind, name string) (*challengeEntry, error) {
	var rec ChallengeRecord
	if err := decodeJSON(kv.Value, &rec); err != nil {
		return nil, err
	}
	domain := normalize(rec.Domain)
	switch {
	case domain == "":
		return nil, errors.New("challenge record has no domain")
	case rec.KeyAuth == "":
		return nil, errors.New("challenge record has no key authorization")
	case kind == kindHTTP01 && rec.Token != "" && rec.Token != name:
		return nil, errors.New("challenge record's token is not the one of its key")
	case kind == kindTLSALPN01 && domain != normalize(name):
		return nil, errors.New("challenge record's domain is not the one of its key")
	}
	e := &challengeEntry{sum: sha256.Sum256(kv.Value), domain: domain, keyAuth: rec.KeyAuth}
	if kind == kindTLSALPN01 {
		e.cert = sync.OnceValues(func() (*tls.Certificate, error) {
			return tlsalpn01.ChallengeCert(domain, rec.KeyAuth)
		})
	}
	return e, nil
}

// decodeCert decodes and opens the certificate record kv, stored under
// domain.
func (c *Cache) decodeCert(kv kvstore.KV, domain string) (*CertEntry, error) {
	rec, err := DecodeCert(kv.Value)
	if err != nil {
		return nil, err
	}
	pair, err := rec.KeyPair(c.keyring, kv.Key)
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate record: %w", err)
		}
	}
	// The names served are the record's that the leaf covers: a record
	// whose names and certificate disagree must not take over a name.
	var names []string
	for _, d := range rec.Domains {
		n := normalize(d)
		if n == "" || slices.Contains(names, n) || !covers(pair.Leaf, n) {
			continue
		}
		names = append(names, n)
	}
	kept := *rec
	kept.Certificate = ""
	kept.PrivateKey = Sealed{Alg: rec.PrivateKey.Alg, KeyID: rec.PrivateKey.KeyID}
	return &CertEntry{
		Key: kv.Key, Revision: kv.Revision, Record: &kept, Pair: pair,
		domain: domain, names: names, notAfter: pair.Leaf.NotAfter, sum: sha256.Sum256(kv.Value),
	}, nil
}

// covers reports whether leaf is valid for name, a normalized DNS name or
// wildcard.
func covers(leaf *x509.Certificate, name string) bool {
	if strings.HasPrefix(name, "*.") {
		return !strings.Contains(name[2:], "*") && slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return normalize(d) == name })
	}
	return !strings.Contains(name, "*") && leaf.VerifyHostname(name) == nil
}

// share replaces the intermediate certificates of e's chain with copies
// other entries already hold.
func (c *Cache) share(e *CertEntry) {
	if len(c.intern) > 1024 {
		clear(c.intern) // only a damaged store has that many CAs
	}
	chain := e.Pair.Certificate
	for i := 1; i < len(chain); i++ {
		sum := sha256.Sum256(chain[i])
		if held, ok := c.intern[sum]; ok {
			chain[i] = held
		} else {
			c.intern[sum] = chain[i]
		}
	}
}

// Kinds of records, as counted in tollgate_acme_records_rejected_total.
const (
	kindCert    = "cert"
	kindOrder   = "order"
	kindState   = "state"
	kindRequest = "request"
)

// recordKind names the kind of the records of dir; "" for those the cache
// does not hold.
func recordKind(dir string) string {
	switch dir {
	case dirCerts:
		return kindCert
	case dirOrders:
		return kindOrder
	case dirState:
		return kindState
	case dirRequests:
		return kindRequest
	case dirChallenges + "/" + kindHTTP01:
		return kindHTTP01
	case dirChallenges + "/" + kindTLSALPN01:
		return kindTLSALPN01
	}
	return ""
}

// applyEvents returns the view after evs, built on v.
func (c *Cache) applyEvents(v *View, evs []kvstore.Event) *View {
	var u *update
	for _, ev := range evs {
		switch ev.Type {
		case kvstore.EventResync:
			if u != nil {
				v = u.finish()
			}
			u = nil
			v = c.resync(v, ev.Snapshot)
		case kvstore.EventPut, kvstore.EventDelete:
			if u == nil {
				u = c.newUpdate(v)
			}
			u.event(ev)
		}
	}
	if u != nil {
		v = u.finish()
	}
	return v
}

// update builds a view from its predecessor: maps are copied when first
// changed, and only the changed records are decoded.
type update struct {
	c      *Cache
	old    *View
	v      *View
	copied map[string]bool // by record kind
	// certs are the main domains of the certificates changed.
	certs map[string]bool
}

func (c *Cache) newUpdate(old *View) *update {
	v := *old
	return &update{c: c, old: old, v: &v, copied: map[string]bool{}, certs: map[string]bool{}}
}

// writable copies the map of kind before its first change.
func (u *update) writable(kind string) {
	if u.copied[kind] {
		return
	}
	u.copied[kind] = true
	switch kind {
	case kindCert:
		u.v.Certs = maps.Clone(u.v.Certs)
	case kindOrder:
		u.v.Orders = maps.Clone(u.v.Orders)
	case kindState:
		u.v.States = maps.Clone(u.v.States)
	case kindRequest:
		u.v.Requests = maps.Clone(u.v.Requests)
	case kindHTTP01:
		u.v.http01 = maps.Clone(u.v.http01)
	case kindTLSALPN01:
		u.v.tlsalpn = maps.Clone(u.v.tlsalpn)
	}
}

// event applies one put or delete.
func (u *update) event(ev kvstore.Event) {
	p, ok := u.c.keys.Parse(ev.KV.Key)
	if !ok {
		return
	}
	kind := recordKind(p.Dir)
	if kind == "" {
		return
	}
	if ev.Type == kvstore.EventDelete {
		u.writable(kind)
		u.v.remove(kind, p.Name)
		if kind == kindCert {
			u.certs[p.Name] = true
		}
		return
	}
	if kind == kindCert {
		if prev := u.v.Certs[p.Name]; prev != nil && prev.sum == sha256.Sum256(ev.KV.Value) {
			same := *prev // the same value written again
			same.Revision = ev.KV.Revision
			u.writable(kind)
			u.v.Certs[p.Name] = &same
			u.certs[p.Name] = true
			return
		}
		e, err := u.c.decodeCert(ev.KV, p.Name)
		if err != nil {
			u.c.reject(kind, ev.KV.Key, err)
			return
		}
		u.c.share(e)
		u.writable(kind)
		u.v.Certs[p.Name] = e
		u.certs[p.Name] = true
		return
	}
	if err := u.v.put(kind, p.Name, ev.KV, u.v, u.writable); err != nil {
		u.c.reject(kind, ev.KV.Key, err)
	}
}

// remove deletes the record of kind at name; the map must be writable.
func (v *View) remove(kind, name string) {
	switch kind {
	case kindCert:
		delete(v.Certs, name)
	case kindOrder:
		delete(v.Orders, name)
	case kindState:
		delete(v.States, name)
	case kindRequest:
		delete(v.Requests, name)
	case kindHTTP01:
		delete(v.http01, name)
	case kindTLSALPN01:
		delete(v.tlsalpn, normalize(name))
	}
}

// put decodes kv, a record of kind other than a certificate stored under
// name, and sets it in v after calling writable(kind). A challenge answer
// whose value prev already holds is taken from prev, keeping a TLS-ALPN-01
// certificate already built. A record that does not decode changes
// nothing.
func (v *View) put(kind, name string, kv kvstore.KV, prev *View, writable func(string)) error {
	switch kind {
	case kindOrder:
		var r OrderRecord
		if err := decodeJSON(kv.Value, &r); err != nil {
			return err
		}
		writable(kind)
		v.Orders[name] = &r
	case kindState:
		var r DomainState
		if err := decodeJSON(kv.Value, &r); err != nil {
			return err
		}
		writable(kind)
		v.States[name] = &r
	case kindRequest:
		var r RequestRecord
		if err := decodeJSON(kv.Value, &r); err != nil {
			return err
		}
		writable(kind)
		v.Requests[name] = &r
	case kindHTTP01, kindTLSALPN01:
		held := prev.http01[name]
		if kind == kindTLSALPN01 {
			name = normalize(name)
			held = prev.tlsalpn[name]
		}
		e := held
		if held == nil || held.sum != sha256.Sum256(kv.Value) {
			var err error
			if e, err = decodeChallenge(kv, kind, name); err != nil {
				return err
			}
		}
		writable(kind)
		if kind == kindHTTP01 {
			v.http01[name] = e
		} else {
			v.tlsalpn[name] = e
		}
	}
	return nil
}

// finish updates the indexes of the changed certificates and orders and
// returns the view.
func (u *update) finish() *View {
	if u.copied[kindOrder] {
		u.v.ordered = orderedNames(u.v.Orders)
	}
	if len(u.certs) == 0 {
		return u.v
	}
	var changed []*CertEntry
	affected := map[string]bool{}
	for domain := range u.certs {
		if e := u.old.Certs[domain]; e != nil {
			for _, n := range e.names {
				affected[n] = true
			}
		}
		if e := u.v.Certs[domain]; e != nil {
			changed = append(changed, e)
			for _, n := range e.names {
				affected[n] = true
			}
		}
	}
	u.v.exact, u.v.wildcard = maps.Clone(u.v.exact), maps.Clone(u.v.wildcard)
	for name := range affected {
		u.reindex(name, changed)
	}
	return u.v
}

// reindex sets the certificate served for name (a plain name or "*."
// and a parent) after the certificates in changed were put or deleted.
func (u *update) reindex(name string, changed []*CertEntry) {
	index, key := u.v.exact, name
	if parent, ok := strings.CutPrefix(name, "*."); ok {
		index, key = u.v.wildcard, parent
	}
	var best *CertEntry
	scan := false
	if holder := u.old.index(name); holder != nil {
		cur := u.v.Certs[holder.domain]
		switch {
		case cur == holder:
			best = holder
		case cur != nil && cur.claims(name) && !better(holder, cur):
			// Replaced by a record of the same key that is at least as
			// good (a renewal): still better than every other.
			best = cur
		default:
			scan = true // the holder is gone: look at every certificate
		}
	}
	consider := func(e *CertEntry) {
		if e.claims(name) && (best == nil || better(e, best)) {
			best = e
		}
	}
	if scan {
		for _, e := range u.v.Certs {
			consider(e)
		}
	} else {
		for _, e := range changed {
			consider(e)
		}
	}
	if best == nil {
		delete(index, key)
	} else {
		index[key] = best
	}
}

// index returns the certificate v serves for name, a plain name or "*."
// and a parent.
func (v *View) index(name string) *CertEntry {
	if parent, ok := strings.CutPrefix(name, "*."); ok {
		return v.wildcard[parent]
	}
	return v.exact[name]
}

// orderedNames lists the names of orders that HTTP-01 and TLS-ALPN-01
// can validate.
func orderedNames(orders map[string]*OrderRecord) map[string]bool {
	names := map[string]bool{}
	for _, o := range orders {
		for _, d := range o.Domains {
			if n := normalize(d); n != "" && !strings.HasPrefix(n, "*.") {
				names[n] = true
			}
		}
	}
	return names
}

// resync builds the view of the full state snapshot, whose values it
// clears. A record that does not decode keeps the one old holds for its
// key; certificates whose value did not change are not decoded again.
func (c *Cache) resync(old *View, snapshot []kvstore.KV) *View {
	v := emptyView()
	type certItem struct {
		kv     kvstore.KV
		domain string
		entry  *CertEntry
		err    error
	}
	var certs []certItem
	for i, kv := range snapshot {
		// Values are dropped from the snapshot once taken, so that memory
		// can be reclaimed while the rest is decoded.
		snapshot[i].Value = nil
		p, ok := c.keys.Parse(kv.Key)
		if !ok {
			continue
		}
		kind := recordKind(p.Dir)
		switch kind {
		case "":
		case kindCert:
			if prev := old.Certs[p.Name]; prev != nil && prev.sum == sha256.Sum256(kv.Value) {
				same := *prev
				same.Revision = kv.Revision
				v.Certs[p.Name] = &same
				continue
			}
			certs = append(certs, certItem{kv: kv, domain: p.Name})
		default:
			if err := v.put(kind, p.Name, kv, old, func(string) {}); err != nil {
				c.reject(kind, kv.Key, err)
				keepOld(v, old, kind, p.Name)
			}
		}
	}
	c.parallel(len(certs), func(i int) {
		certs[i].entry, certs[i].err = c.decodeCert(certs[i].kv, certs[i].domain)
		certs[i].kv.Value = nil
	})
	for _, it := range certs {
		if it.err != nil {
			c.reject(kindCert, it.kv.Key, it.err)
			if prev := old.Certs[it.domain]; prev != nil {
				v.Certs[it.domain] = prev
			}
			continue
		}
		c.share(it.entry)
		v.Certs[it.domain] = it.entry
	}
	for _, e := range v.Certs {
		for _, n := range e.names {
			index, key := v.exact, n
			if parent, ok := strings.CutPrefix(n, "*."); ok {
				index, key = v.wildcard, parent
			}
			if held := index[key]; held == nil || better(e, held) {
				index[key] = e
			}
		}
	}
	v.ordered = orderedNames(v.Orders)
	return v
}

// keepOld keeps old's record of kind at name in v.
func keepOld(v, old *View, kind, name string) {
	switch kind {
	case kindOrder:
		if r := old.Orders[name]; r != nil {
			v.Orders[name] = r
		}
	case kindState:
		if r := old.States[name]; r != nil {
			v.States[name] = r
		}
	case kindRequest:
		if r := old.Requests[name]; r != nil {
			v.Requests[name] = r
		}
	case kindHTTP01:
		if e := old.http01[name]; e != nil {
			v.http01[name] = e
		}
	case kindTLSALPN01:
		if e := old.tlsalpn[normalize(name)]; e != nil {
			v.tlsalpn[normalize(name)] = e
		}
	}
}

// parallel runs f(0) … f(n-1) on up to GOMAXPROCS goroutines and returns
// when all are done.
func (c *Cache) parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
