package migrate

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// ImportOptions configure Import. The zero value imports what is valid,
// writes only keys that do not exist yet, and skips expired certificates.
type ImportOptions struct {
	// Overwrite replaces records already in the store. Without it a
	// record that exists is kept and reported (StatusExists).
	Overwrite bool
	// IncludeExpired imports certificates that have expired; the leader
	// orders them again at once, so this only matters to keep a record.
	IncludeExpired bool
	// DryRun reads the store and reports what would be written, writing
	// nothing.
	DryRun bool
	// Node is written into the records as their writer. Empty means
	// "import".
	Node string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Status is what Import did with one item.
type Status string

// The statuses of import items.
const (
	// StatusImported: the record was written (or, in a dry run, would be).
	StatusImported Status = "imported"
	// StatusReplaced: an existing record was replaced (Overwrite).
	StatusReplaced Status = "replaced"
	// StatusExists: a record is already at the key; it was kept.
	StatusExists Status = "exists"
	// StatusSkipped: deliberately not imported (expired, a duplicate, an
	// account of another CA); not a failure.
	StatusSkipped Status = "skipped"
	// StatusFailed: the item could not be imported (a key that does not
	// match its certificate, unreadable PEM).
	StatusFailed Status = "failed"
)

// ImportItem reports one certificate or the account.
type ImportItem struct {
	// Kind is "certificate" or "account".
	Kind string
	// Name is the certificate's main domain or the account's email.
	Name string
	// Key is the store key of the record; empty when none could be made.
	Key string
	// Status says what was done.
	Status Status
	// DryRun is set when nothing was written.
	DryRun bool
	// Detail explains the status: the certificate's expiry and issuer, or
	// why it was skipped or failed. It never holds key material.
	Detail string
	// Origin locates the item in Traefik's storage.
	Origin string
}

func (it ImportItem) String() string {
	status := string(it.Status)
	if it.DryRun && (it.Status == StatusImported || it.Status == StatusReplaced) {
		status = "would be " + status
	}
	s := fmt.Sprintf("%s %s: %s", it.Kind, it.Name, status)
	if it.Key != "" {
		s += " at " + it.Key
	}
	if it.Detail != "" {
		s += " (" + it.Detail + ")"
	}
	return s
}

// ImportResult lists what Import did, the account first, then the
// certificates by main domain.
type ImportResult struct {
	Items []ImportItem
}

// Count returns how many items have status s.
func (r *ImportResult) Count(s Status) int {
	n := 0
	for _, it := range r.Items {
		if it.Status == s {
			n++
		}
	}
	return n
}

// Import writes what was read from Traefik into dst as the records a
// tollgate cluster serves, so that nothing is ordered again: one
// acme.CertRecord per certificate at keys.Cert(main domain), and the
// account as an acme.AccountRecord at keys.Account(caURL, email). caURL is
// the directory URL of the CA tollgate is configured with (the records
// name it; a certificate from another CA is renewed from caURL). Private
// keys are sealed with kr under their record's key, as the leader seals
// them.
//
// Each record is written on its own, create-only (a compare-and-set on
// "does not exist") unless opts.Overwrite, so running Import twice, or
// while a tollgate leader is ordering, never overwrites a newer record.
// Certificates are checked first: the key must match the certificate, the
// certificate must cover its main domain (names Traefik listed that it
// does not cover are dropped from the record), and expired ones are
// skipped unless opts.IncludeExpired. Of several certificates for one main
// domain, the one that expires last is imported.
//
// The error is set only when the store fails (or ctx ends); the result
// then lists what was done until then.
func Import(ctx context.Context, dst kvstore.Store, keys acme.Keys, kr *acme.Keyring, caURL string, data *Imported, opts ImportOptions) (*ImportResult, error) {
	if data == nil {
		return nil, errors.New("import: nothing to import")
	}
	if kr == nil {
		return nil, errors.New("import: no keyring")
	}
	im := &importer{
		st: dst, keys: keys, kr: kr, ca: caURL, opts: opts,
		node: cmp.Or(opts.Node, "import"), now: opts.Now,
	}
	if im.now == nil {
		im.now = time.Now
	}
	res := &ImportResult{}
	if a := data.Account; a != nil {
		it, err := im.account(ctx, a)
		res.Items = append(res.Items, it)
		if err != nil {
			return res, err
		}
	}
	for _, p := range im.prepare(data.Certs) {
		it, err := im.cert(ctx, p)
		res.Items = append(res.Items, it)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

type importer struct {
	st   kvstore.Store
	keys acme.Keys
	kr   *acme.Keyring
	ca   string
	opts ImportOptions
	node string
	now  func() time.Time
}

// prepared is a certificate checked and ready to write, or the reason it
// will not be.
type prepared struct {
	item    ImportItem
	names   []string
	chain   []byte
	key     []byte
	leaf    *x509.Certificate
	certURL string
}

// prepare checks every certificate, then keeps the latest-expiring one of
// each main domain. The result is sorted by main domain.
func (im *importer) prepare(certs []Cert) []*prepared {
	var all []*prepared
	for _, c := range certs {
		all = append(all, im.check(c))
	}
	best := map[string]*prepared{}
	for _, p := range all {
		if p.item.Status != "" {
			continue
		}
		if b := best[p.item.Name]; b == nil || p.leaf.NotAfter.After(b.leaf.NotAfter) {
			best[p.item.Name] = p
		}
	}
	for _, p := range all {
		if b := best[p.item.Name]; p.item.Status == "" && b != p {
			p.item.Status = StatusSkipped
			p.item.Detail = fmt.Sprintf("a duplicate: another certificate for %s, expiring %s, is imported instead", p.item.Name, day(b.leaf.NotAfter))
		}
	}
	slices.SortStableFunc(all, func(a, b *prepared) int {
		return cmp.Or(strings.Compare(a.item.Name, b.item.Name), strings.Compare(a.item.Origin, b.item.Origin))
	})
	return all
}

// check validates one certificate; the item's status is set when it will
// not be imported.
func (im *importer) check(c Cert) *prepared {
	p := &prepared{item: ImportItem{Kind: "certificate", Name: normalize(c.Main), Origin: c.Origin}, certURL: c.CertURL}
	fail := func(format string, args ...any) *prepared {
		p.item.Status, p.item.Detail = StatusFailed, fmt.Sprintf(format, args...)
		if p.item.Name == "" {
			p.item.Name = "(" + c.Origin + ")"
		}
		return p
	}
	if len(c.Chain) == 0 || len(c.Key) == 0 {
		// Traefik 1.x drops such entries when it loads them, and serves
		// nothing from them: not a failure of the migration.
		fail("an entry without certificate or key, which Traefik ignores too")
		p.item.Status = StatusSkipped
		return p
	}
	var ders [][]byte
	rest := c.Chain
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			ders = append(ders, blk.Bytes)
		}
	}
	if len(ders) == 0 {
		return fail("no PEM certificate in the entry")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return fail("the certificate does not parse: %v", err)
	}
	p.leaf = leaf
	var keyBlock *pem.Block
	rest = c.Key
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			keyBlock = blk
			break
		}
	}
	if keyBlock == nil {
		return fail("no PEM private key in the entry")
	}
	for _, d := range ders {
		p.chain = append(p.chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	p.key = pem.EncodeToMemory(&pem.Block{Type: keyBlock.Type, Bytes: keyBlock.Bytes})
	if _, err := tls.X509KeyPair(p.chain, p.key); err != nil {
		return fail("the private key does not match the certificate, or does not parse")
	}
	if p.item.Name == "" {
		p.item.Name = normalize(cmp.Or(leaf.Subject.CommonName, first(leaf.DNSNames)))
	}
	main := p.item.Name
	if main == "" || !covers(leaf, main) {
		return fail("the certificate does not cover its main domain %q", main)
	}
	p.names = []string{main}
	var dropped []string
	for _, s := range c.SANs {
		n := normalize(s)
		switch {
		case n == "" || slices.Contains(p.names, n):
		case covers(leaf, n):
			p.names = append(p.names, n)
		default:
			dropped = append(dropped, n)
		}
	}
	key, err := im.keys.Cert(main)
	if err != nil {
		return fail("no store key for %q: %v", main, err)
	}
	p.item.Key = key
	var notes []string
	notes = append(notes, fmt.Sprintf("expires %s, issued by %s", day(leaf.NotAfter), cmp.Or(leaf.Issuer.CommonName, "an unnamed CA")))
	if strings.HasPrefix(main, "*.") {
		notes = append(notes, "a wildcard: renewing it needs [acme.dnsChallenge]")
	}
	if len(dropped) > 0 {
		notes = append(notes, "names Traefik listed that the certificate does not cover are left out: "+strings.Join(dropped, ", "))
	}
	p.item.Detail = strings.Join(notes, "; ")
	if now := im.now(); now.After(leaf.NotAfter) && !im.opts.IncludeExpired {
		p.item.Status = StatusSkipped
		p.item.Detail = fmt.Sprintf("expired on %s; --include-expired imports it anyway", day(leaf.NotAfter))
	}
	return p
}

// cert writes one prepared certificate.
func (im *importer) cert(ctx context.Context, p *prepared) (ImportItem, error) {
	it := p.item
	if it.Status != "" {
		return it, nil
	}
	sealed, err := im.kr.Seal(it.Key, p.key)
	if err != nil {
		it.Status, it.Detail = StatusFailed, "sealing the private key: "+err.Error()
		return it, nil
	}
	leaf := p.leaf
	rec := acme.CertRecord{
		Version: acme.RecordVersion, Domains: p.names,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		Issuer: leaf.Issuer.CommonName, Serial: hex.EncodeToString(leaf.SerialNumber.Bytes()),
		KeyType: keyType(leaf), CA: im.ca, CertURL: p.certURL,
		Node: im.node, Written: im.now().UTC(),
		Certificate: string(p.chain), PrivateKey: sealed,
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return it, err
	}
	return im.write(ctx, it, b)
}

// write stores value at it.Key: create-only, or replacing what is there
// with a compare-and-set on the revision read.
func (im *importer) write(ctx context.Context, it ImportItem, value []byte) (ImportItem, error) {
	it.DryRun = im.opts.DryRun
	var rev int64
	kv, err := im.st.Get(ctx, it.Key)
	switch {
	case err == nil:
		if !im.opts.Overwrite {
			it.Status = StatusExists
			it.Detail = "a record is already there and was kept; --overwrite replaces it"
			return it, nil
		}
		rev = kv.Revision
		it.Status = StatusReplaced
	case errors.Is(err, kvstore.ErrNotFound):
		it.Status = StatusImported
	default:
		return it, fmt.Errorf("read %s: %w", it.Key, err)
	}
	if im.opts.DryRun {
		return it, nil
	}
	if _, err := im.st.Apply(ctx, nil, kvstore.PutIfOp(it.Key, value, rev)); err != nil {
		if errors.Is(err, kvstore.ErrConflict) {
			it.Status = StatusExists
			it.Detail = "a record was written there meanwhile and was kept; run again to see it"
			return it, nil
		}
		return it, fmt.Errorf("write %s: %w", it.Key, err)
	}
	return it, nil
}

// acmeV1Account matches the account URLs of ACME v1, which ACME v2 CAs
// do not know.
var acmeV1Account = regexp.MustCompile(`/acme/reg/\d+$`)

// account writes the account record.
func (im *importer) account(ctx context.Context, a *Account) (ImportItem, error) {
	it := ImportItem{Kind: "account", Name: cmp.Or(a.Email, "(no email)")}
	key, err := im.keys.Account(im.ca, a.Email)
	if err != nil {
		it.Status, it.Detail = StatusFailed, "no store key for the account: "+err.Error()
		return it, nil
	}
	it.Key = key
	ca, _ := url.Parse(im.ca)
	acct, _ := url.Parse(a.URI)
	switch {
	case a.URI == "":
		it.Status, it.Detail = StatusSkipped, "Traefik had not registered it; tollgate registers an account itself"
		return it, nil
	case acmeV1Account.MatchString(a.URI):
		it.Status, it.Detail = StatusSkipped, "an ACME v1 account, which the CA no longer knows; tollgate registers a new one"
		return it, nil
	case ca == nil || acct == nil || !strings.EqualFold(hostPort(ca), hostPort(acct)):
		it.Status, it.Detail = StatusSkipped, fmt.Sprintf("registered at %s, not at the configured CA %s; tollgate registers a new account there", hostOf(acct), im.ca)
		return it, nil
	}
	sealed, err := im.kr.Seal(key, a.Key)
	if err != nil {
		it.Status, it.Detail = StatusFailed, "sealing the account key: "+err.Error()
		return it, nil
	}
	rec := acme.AccountRecord{
		Version: acme.RecordVersion, CA: im.ca, Email: a.Email, URI: a.URI, Registration: a.Registration,
		Key: sealed, Node: im.node, Written: im.now().UTC(),
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return it, err
	}
	it.Detail = a.URI
	return im.write(ctx, it, b)
}

// hostPort is u's host and port, the scheme's default port when it names
// none: two directories of one host on different ports (a production and
// a test CA) do not share accounts.
func hostPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return net.JoinHostPort(u.Hostname(), p)
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

func hostOf(u *url.URL) string {
	if u == nil || u.Host == "" {
		return "an unknown CA"
	}
	return u.Host
}

// keyType names a certificate's key as tollgate's keyType does.
func keyType(leaf *x509.Certificate) string {
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return fmt.Sprintf("EC%d", k.Curve.Params().BitSize)
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "ED25519"
	}
	return "unknown"
}

// covers reports whether leaf is valid for name, a DNS name or wildcard,
// as tollgate's certificate cache checks it.
func covers(leaf *x509.Certificate, name string) bool {
	if strings.HasPrefix(name, "*.") {
		return slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return normalize(d) == name })
	}
	return !strings.Contains(name, "*") && leaf.VerifyHostname(name) == nil
}

// normalize lower-cases a DNS name and drops a trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
