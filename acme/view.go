package acme

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v4/challenge/tlsalpn01"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// View is the cache's state at one moment. Each folder (and each
// certificate shard) is followed by its own watch, so a batch the leader
// writes across folders may show in one before another. A View is never
// modified once published; its maps must not be written to.
type View struct {
	// Certs are the certificates by main domain (the key's last segment).
	Certs map[string]*CertEntry
	// Orders are the orders in flight by main domain.
	Orders map[string]*OrderRecord
	// States are the domains' failure states by main domain.
	States map[string]*DomainState
	// Requests are the on-demand requests by name.
	Requests map[string]*RequestRecord
	// Unusable are the main domains whose newest stored certificate
	// record cannot be served (see CheckCert). Certs keeps, and replicas
	// keep serving, the certificate held before, if any; the name counts
	// as failing and the leader orders it again.
	Unusable map[string]*UnusableRecord

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
		Unusable: map[string]*UnusableRecord{},
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
	// Pair is the certificate as served; its Leaf is not kept.
	Pair *tls.Certificate

	domain   string            // the main domain: the key's last segment
	names    []string          // normalized Record.Domains
	notAfter time.Time         // of the leaf
	sum      [sha256.Size]byte // of the stored value
	// cn, serial (hex) and sans (the leaf's DNS names, sorted and
	// comma-joined) label the certificate's expiry gauge.
	cn, serial, sans string
}

// UnusableRecord is a stored certificate record that cannot be served.
type UnusableRecord struct {
	// Key is the record's store key.
	Key string
	// Revision is the store revision of the record's last write.
	Revision int64
	// Err says why; it quotes nothing of the stored value.
	Err error
}

// orderDue says when the certificate of w needs an order, before any
// backoff, and why: now when the view holds none ("new") or the newest
// stored record is unusable ("record unusable"), or when its names
// changed; else at its renewal time.
func (v *View) orderDue(w Want, now time.Time) (time.Time, string) {
	if v.Unusable[w.Main()] != nil {
		return now, "record unusable"
	}
	e := v.Certs[w.Main()]
	switch {
	case e == nil || e.Record == nil:
		return now, "new"
	case !sameNames(e.Record.Domains, w.Domains):
		return now, "names changed"
	}
	return e.Record.RenewAt(), "renewal"
}

// storedCert checks the certificate record kv the leader read from the
// store before an order: it returns the record when it decodes (nil
// otherwise) and whether replicas can serve it.
func storedCert(kr *Keyring, kv kvstore.KV) (*CertRecord, bool) {
	rec, err := CheckCert(kr, kv.Key, kv.Value)
	return rec, err == nil
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
// domain (see openCert for what makes it usable).
func (c *Cache) decodeCert(kv kvstore.KV, domain string) (*CertEntry, error) {
	rec, pair, names, err := openCert(c.keyring, kv.Key, kv.Value)
	if err != nil {
		return nil, err
	}
	kept := *rec
	kept.Certificate = ""
	kept.PrivateKey = Sealed{Alg: rec.PrivateKey.Alg, KeyID: rec.PrivateKey.KeyID}
	leaf := pair.Leaf
	sans := slices.Clone(leaf.DNSNames)
	slices.Sort(sans)
	// Serving needs only the DER chain and the key; the parsed leaf is
	// more than half of what a held certificate costs.
	pair.Leaf = nil
	return &CertEntry{
		Key: kv.Key, Revision: kv.Revision, Record: &kept, Pair: pair,
		domain: domain, names: names, notAfter: leaf.NotAfter, sum: sha256.Sum256(kv.Value),
		cn: leaf.Subject.CommonName, serial: hex.EncodeToString(leaf.SerialNumber.Bytes()), sans: strings.Join(sans, ","),
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

// kindUnusable names View.Unusable for update.writable; it is no kind of
// record.
const kindUnusable = "unusable"

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
func (c *Cache) applyEvents(v *View, evs []watchEvent) *View {
	var u *update
	for _, we := range evs {
		ev := we.ev
		switch ev.Type {
		case kvstore.EventResync:
			if u != nil {
				v = u.finish()
			}
			u = nil
			v = c.resync(v, c.prefixes[we.w], ev.Snapshot)
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
	case kindUnusable:
		u.v.Unusable = maps.Clone(u.v.Unusable)
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
		if ev.Type == kvstore.EventPut {
			u.c.misplaced(ev.KV.Key)
		}
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
			u.usable(p.Name)
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
			u.usable(p.Name)
			return
		}
		e, err := u.c.decodeCert(ev.KV, p.Name)
		if err != nil {
			// The certificate held before, if any, stays served; the
			// name is failing until a usable record replaces this one.
			u.c.reject(kind, ev.KV.Key, err)
			u.writable(kindUnusable)
			u.v.Unusable[p.Name] = &UnusableRecord{Key: ev.KV.Key, Revision: ev.KV.Revision, Err: err}
			return
		}
		u.c.share(e)
		u.writable(kind)
		u.v.Certs[p.Name] = e
		u.certs[p.Name] = true
		u.usable(p.Name)
		return
	}
	if err := u.v.put(kind, p.Name, ev.KV, u.v, u.writable); err != nil {
		u.c.reject(kind, ev.KV.Key, err)
	}
}

// usable clears the unusable mark of the certificate of main domain name.
func (u *update) usable(name string) {
	if u.v.Unusable[name] != nil {
		u.writable(kindUnusable)
		delete(u.v.Unusable, name)
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

// resync returns old with everything under prefix (a watched prefix)
// replaced by snapshot, whose values it clears. A record that does not
// decode keeps the one old holds for its key (a certificate's name is
// marked unusable meanwhile); certificates whose value did not change are
// not decoded again.
func (c *Cache) resync(old *View, prefix string, snapshot []kvstore.KV) *View {
	v := *old
	rest := strings.TrimPrefix(prefix, c.keys.Root+"/")
	certs := strings.HasPrefix(rest, dirCerts+"/")
	switch {
	case certs:
		v.Certs = maps.Clone(old.Certs)
		maps.DeleteFunc(v.Certs, func(_ string, e *CertEntry) bool { return strings.HasPrefix(e.Key, prefix) })
		v.Unusable = maps.Clone(old.Unusable)
		maps.DeleteFunc(v.Unusable, func(_ string, r *UnusableRecord) bool { return strings.HasPrefix(r.Key, prefix) })
	case rest == dirOrders+"/":
		v.Orders = map[string]*OrderRecord{}
	case rest == dirState+"/":
		v.States = map[string]*DomainState{}
	case rest == dirRequests+"/":
		v.Requests = map[string]*RequestRecord{}
	case rest == dirChallenges+"/":
		v.http01, v.tlsalpn = map[string]*challengeEntry{}, map[string]*challengeEntry{}
	}
	type certItem struct {
		kv     kvstore.KV
		domain string
		entry  *CertEntry
		err    error
	}
	var decode []certItem
	for i, kv := range snapshot {
		// Values are dropped from the snapshot once taken, so that memory
		// can be reclaimed while the rest is decoded.
		snapshot[i].Value = nil
		p, ok := c.keys.Parse(kv.Key)
		if !ok || !strings.HasPrefix(kv.Key, prefix) {
			c.misplaced(kv.Key)
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
			decode = append(decode, certItem{kv: kv, domain: p.Name})
		default:
			if err := v.put(kind, p.Name, kv, old, func(string) {}); err != nil {
				c.reject(kind, kv.Key, err)
				keepOld(&v, old, kind, p.Name)
			}
		}
	}
	c.parallel(len(decode), func(i int) {
		decode[i].entry, decode[i].err = c.decodeCert(decode[i].kv, decode[i].domain)
		decode[i].kv.Value = nil
	})
	for _, it := range decode {
		if it.err != nil {
			c.reject(kindCert, it.kv.Key, it.err)
			if prev := old.Certs[it.domain]; prev != nil {
				v.Certs[it.domain] = prev
			}
			v.Unusable[it.domain] = &UnusableRecord{Key: it.kv.Key, Revision: it.kv.Revision, Err: it.err}
			continue
		}
		c.share(it.entry)
		v.Certs[it.domain] = it.entry
	}
	if certs {
		v.exact, v.wildcard = map[string]*CertEntry{}, map[string]*CertEntry{}
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
	}
	v.ordered = orderedNames(v.Orders)
	return &v
}

// misplaced logs and counts a certificate record stored where Keys.Cert
// does not put it; other keys outside the layout are ignored.
func (c *Cache) misplaced(key string) {
	if want, ok := c.keys.Misplaced(key); ok {
		c.reject(kindCert, key, fmt.Errorf("certificate record outside its shard (the certificate of this name belongs at %q); its key is sealed to its own path, so delete it rather than move it: the leader orders the certificate again if it is wanted", want))
	}
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
