package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/resolver"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// Bounds of the steps of an order that wait on the CA.
const (
	// finalizeTimeout bounds the wait for a finalized order to become
	// valid.
	finalizeTimeout = 2 * time.Minute
	// processingTimeout bounds the wait for a validation an earlier
	// leader asked for to end before this one solves the rest.
	processingTimeout = time.Minute
	// pollInterval is the wait between two looks at an order or
	// authorization being processed, unless the CA names one.
	pollInterval = time.Second
)

// errAccountRejected marks an order the CA refused because it does not
// know the account (or no longer accepts it): the leader registers a new
// one.
var errAccountRejected = errors.New("the CA rejected the ACME account")

// errNotStored marks an order that failed because the store did not take
// its record or its certificate.
var errNotStored = errors.New("not stored")

// orderRun is one order's conversation with the CA.
type orderRun struct {
	m     *Manager
	ctx   context.Context
	term  *leader.Term
	a     *config.ACME
	core  *api.Core
	w     Want
	log   *slog.Logger
	key   string // the order key in the store
	order legoacme.ExtendedOrder
	priv  crypto.PrivateKey
}

// newCore builds the ACME API client of acct, whose requests all end when
// ctx does, and remembers the CA's renewal-information endpoint (see
// ariEndpoint).
func (m *Manager) newCore(ctx context.Context, a *config.ACME, acct *account) (*api.Core, *http.Client, error) {
	hc, err := m.httpClient(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	core, err := api.New(hc, "tollgate", caURL(a), acct.reg.URI, acct.key)
	if err != nil {
		return nil, nil, fmt.Errorf("ACME directory %s: %w", caURL(a), err)
	}
	m.ariEndpoints.Store(caURL(a), core.GetDirectory().RenewalInfo)
	return core, hc, nil
}

// obtain gets the certificate w: it resumes the order recorded under
// orderKey when the CA can still complete it, else it places a new one,
// recording its URL and the certificate's sealed private key (fenced by
// term) before any validation starts. dead reports whether the recorded
// order can no longer be completed, so that its record is to be deleted
// along with the failure.
func (m *Manager) obtain(ctx context.Context, term *leader.Term, a *config.ACME, acct *account, w Want,
	certKey, orderKey string, recorded *OrderRecord, replaces string, log *slog.Logger) (rec *CertRecord, dead bool, err error) {
	core, hc, err := m.newCore(ctx, a, acct)
	if err != nil {
		return nil, false, err
	}
	o := &orderRun{m: m, ctx: ctx, term: term, a: a, core: core, w: w, log: log, key: orderKey}
	if !o.resume(recorded) {
		if err := o.place(replaces); err != nil {
			return nil, false, err
		}
	}
	chain, err := o.complete()
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		return nil, o.isDead(), err
	}
	keyPEM := certcrypto.PEMEncode(o.priv)
	if _, err := tls.X509KeyPair(chain, keyPEM); err != nil {
		return nil, true, fmt.Errorf("CA returned a certificate that does not match its key: %w", err)
	}
	leaf, err := parseLeaf(chain)
	if err != nil {
		return nil, true, fmt.Errorf("CA returned an unreadable certificate: %w", err)
	}
	sealed, err := m.cfg.Keyring.Seal(certKey, keyPEM)
	if err != nil {
		return nil, false, err
	}
	var ari *ARIState
	if !m.noARI(caURL(a)) {
		ac := ariClient{endpoint: core.GetDirectory().RenewalInfo, http: hc}
		if ari, err = ac.askARI(ctx, leaf, time.Now()); err != nil {
			// Asked again at the next check, with backoff; the
			// certificate's own lifetime applies meanwhile.
			log.Info("no renewal information for the new certificate yet", "err", err)
			ari = failedARI(nil, time.Now(), err)
		}
	}
	return &CertRecord{
		ARI:     ari,
		Version: RecordVersion, Domains: w.Domains,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		Issuer: leaf.Issuer.CommonName, Serial: hex.EncodeToString(leaf.SerialNumber.Bytes()),
		KeyType: keyTypeName(a.KeyType), CA: caURL(a), CertURL: o.order.Certificate,
		Node: m.cfg.Node, Token: term.Token(), Written: time.Now().UTC(),
		Certificate: string(chain), PrivateKey: sealed,
	}, false, nil
}

// resume takes up the recorded order when it is one for the same names at
// the same CA, its key opens, and the CA still has it pending, ready,
// processing or valid; it reports whether it did.
func (o *orderRun) resume(r *OrderRecord) bool {
	if r == nil || r.URL == "" || r.Key == nil {
		return false
	}
	why := ""
	switch {
	case r.CA != caURL(o.a):
		why = "placed at another CA"
	case !sameNames(r.Domains, o.w.Domains):
		why = "for other names"
	}
	var priv crypto.PrivateKey
	if why == "" {
		keyPEM, err := o.m.cfg.Keyring.Open(o.key, *r.Key)
		if err == nil {
			priv, err = certcrypto.ParsePEMPrivateKey(keyPEM)
		}
		if err != nil {
			why = "its key does not open: " + err.Error()
		}
	}
	var ord legoacme.ExtendedOrder
	if why == "" {
		var err error
		if ord, err = o.core.Orders.Get(r.URL); err != nil {
			why = "the CA did not return it: " + err.Error()
		}
	}
	if why == "" {
		switch ord.Status {
		case legoacme.StatusPending, legoacme.StatusReady, legoacme.StatusProcessing, legoacme.StatusValid:
			if exp, err := time.Parse(time.RFC3339, ord.Expires); err == nil && ord.Status != legoacme.StatusValid && time.Until(exp) < time.Minute {
				why = "it expires at " + exp.UTC().Format(time.RFC3339)
			}
		default:
			why = "its status is " + ord.Status
		}
	}
	if why != "" {
		o.log.Info("the order an earlier attempt placed cannot be resumed; ordering anew", "order", r.URL, "why", why)
		return false
	}
	ord.Location = r.URL
	o.order, o.priv = ord, priv
	o.log.Info("resuming the order an earlier attempt placed", "order", r.URL, "status", ord.Status, "placed_by", r.Node, "term", r.Token)
	return true
}

// place creates a new order at the CA and records it before any
// validation starts.
func (o *orderRun) place(replaces string) error {
	priv, err := certcrypto.GeneratePrivateKey(legoKeyType(o.a.KeyType))
	if err != nil {
		return err
	}
	// The CA refuses a replacement it has seen replaced already
	// (alreadyReplaced); lego then orders without it. A CA that does not
	// know the replaced certificate refuses the request as malformed:
	// then no order exists yet, and asking again without the replacement
	// costs nothing. Any other error fails the attempt as it is; and once
	// the CA has created an order, its failure is never retried here.
	ord, err := o.core.Orders.NewWithOptions(o.w.Domains, &api.OrderOptions{ReplacesCertID: replaces})
	var p *legoacme.ProblemDetails
	if err != nil && replaces != "" && errors.As(err, &p) && p.Type == "urn:ietf:params:acme:error:malformed" {
		o.log.Info("the CA refused the replacement of the certificate held; ordering without it", "err", err)
		ord, err = o.core.Orders.NewWithOptions(o.w.Domains, nil)
	}
	if err != nil {
		return classify(err)
	}
	sealed, err := o.m.cfg.Keyring.Seal(o.key, certcrypto.PEMEncode(priv))
	if err != nil {
		return err
	}
	rec := &OrderRecord{Domains: o.w.Domains, Node: o.m.cfg.Node, Token: o.term.Token(), Started: time.Now().UTC(),
		CA: caURL(o.a), URL: ord.Location, Key: &sealed}
	b, _ := json.Marshal(rec)
	if _, err := o.term.Apply(o.ctx, kvstore.PutOp(o.key, b)); err != nil {
		// Nothing was validated: the CA's order expires unused.
		return fmt.Errorf("order %w, so not pursued: %w", errNotStored, err)
	}
	o.order, o.priv = ord, priv
	return nil
}

// complete drives the order to a certificate: it solves what is pending,
// finalizes a ready order and downloads the chain of a valid one.
func (o *orderRun) complete() ([]byte, error) {
	if o.order.Status == legoacme.StatusPending {
		if err := o.solve(); err != nil {
			return nil, err
		}
		ord, err := o.core.Orders.Get(o.order.Location)
		if err != nil {
			return nil, classify(err)
		}
		o.setOrder(ord)
	}
	if o.order.Status == legoacme.StatusReady {
		csr, err := o.csr()
		if err != nil {
			return nil, err
		}
		ord, err := o.core.Orders.UpdateForCSR(o.order.Finalize, csr)
		if err != nil {
			return nil, classify(err)
		}
		o.setOrder(ord)
	}
	if err := o.awaitValid(); err != nil {
		return nil, err
	}
	chain, _, err := o.core.Certificates.Get(o.order.Certificate, true)
	if err != nil {
		return nil, classify(err)
	}
	return chain, nil
}

func (o *orderRun) setOrder(ord legoacme.ExtendedOrder) {
	ord.Location = o.order.Location
	o.order = ord
}

// solve answers the pending authorizations, with the same solvers as
// lego's: the answers go to the store for every replica to serve.
func (o *orderRun) solve() error {
	authzs := make([]legoacme.Authorization, 0, len(o.order.Authorizations))
	for _, u := range o.order.Authorizations {
		z, err := o.core.Authorizations.Get(u)
		if err != nil {
			return classify(err)
		}
		if z, err = o.settle(u, z); err != nil {
			return err
		}
		authzs = append(authzs, z)
	}
	sm := resolver.NewSolversManager(o.core)
	if o.a.HTTPChallenge != nil {
		if err := sm.SetHTTP01Provider(&solver{m: o.m, ctx: o.ctx, term: o.term, kind: kindHTTP01}); err != nil {
			return err
		}
	}
	if o.a.TLSChallenge != nil {
		if err := sm.SetTLSALPN01Provider(&solver{m: o.m, ctx: o.ctx, term: o.term, kind: kindTLSALPN01}); err != nil {
			return err
		}
	}
	if o.a.DNSChallenge != nil {
		if err := o.m.setDNS(sm, o.a.DNSChallenge); err != nil {
			return err
		}
	}
	if err := resolver.NewProber(sm).Solve(authzs); err != nil {
		return classify(err)
	}
	return nil
}

// settle waits while the CA is still validating a challenge of z that an
// earlier leader asked for (a challenge cannot be asked for twice), and
// returns z as it then stands.
func (o *orderRun) settle(u string, z legoacme.Authorization) (legoacme.Authorization, error) {
	deadline := time.Now().Add(processingTimeout)
	for z.Status == legoacme.StatusPending && processing(z) {
		if time.Now().After(deadline) {
			return z, fmt.Errorf("authorization for %s still being validated after %s", z.Identifier.Value, processingTimeout)
		}
		if err := sleepCtx(o.ctx, pollInterval); err != nil {
			return z, err
		}
		var err error
		if z, err = o.core.Authorizations.Get(u); err != nil {
			return z, classify(err)
		}
	}
	return z, nil
}

func processing(z legoacme.Authorization) bool {
	for _, c := range z.Challenges {
		if c.Status == legoacme.StatusProcessing {
			return true
		}
	}
	return false
}

// csr is the certificate request for the order's names, signed with its
// key: the main name as common name when it fits, every name as a SAN.
func (o *orderRun) csr() ([]byte, error) {
	cn := ""
	if len(o.w.Domains[0]) <= 64 {
		cn = o.w.Domains[0]
	}
	san := make([]string, 0, len(o.w.Domains))
	if cn != "" {
		san = append(san, cn)
	}
	for _, d := range o.w.Domains {
		if d != cn {
			san = append(san, d)
		}
	}
	return certcrypto.CreateCSR(o.priv, certcrypto.CSROptions{Domain: cn, SAN: san})
}

// awaitValid waits until the order is valid, or fails when the CA makes
// it invalid or finalizeTimeout passes.
func (o *orderRun) awaitValid() error {
	deadline := time.Now().Add(finalizeTimeout)
	for {
		switch o.order.Status {
		case legoacme.StatusValid:
			if o.order.Certificate == "" {
				return errors.New("the CA made the order valid without a certificate URL")
			}
			return nil
		case legoacme.StatusInvalid:
			if o.order.Error != nil {
				return fmt.Errorf("the CA made the order invalid: %w", o.order.Error)
			}
			return errors.New("the CA made the order invalid")
		case legoacme.StatusProcessing:
		default:
			return fmt.Errorf("order is %s where valid or processing was expected", o.order.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("order still processing after %s", finalizeTimeout)
		}
		if err := sleepCtx(o.ctx, pollInterval); err != nil {
			return err
		}
		ord, err := o.core.Orders.Get(o.order.Location)
		if err != nil {
			return classify(err)
		}
		o.setOrder(ord)
	}
}

// isDead reports whether the order can no longer be completed: the CA
// made it invalid, or it is gone. A failure to ask keeps it, for the next
// attempt to resume.
func (o *orderRun) isDead() bool {
	if o.order.Location == "" {
		return false
	}
	ord, err := o.core.Orders.Get(o.order.Location)
	if err != nil {
		var p *legoacme.ProblemDetails
		return errors.As(err, &p) && (p.HTTPStatus == http.StatusNotFound || p.HTTPStatus == http.StatusGone)
	}
	return ord.Status == legoacme.StatusInvalid
}

// classify marks the CA's refusal of the account with errAccountRejected.
func classify(err error) error {
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) && (p.Type == "urn:ietf:params:acme:error:accountDoesNotExist" ||
		(p.Type == "urn:ietf:params:acme:error:unauthorized" && accountDeactivated(p.Detail))) {
		return fmt.Errorf("%w: %w", errAccountRejected, err)
	}
	return err
}

func accountDeactivated(detail string) bool {
	d := strings.ToLower(detail)
	return strings.Contains(d, "account") && strings.Contains(d, "deactivated")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// replaces names the certificate a renewal replaces, for CAs with ARI
// (RFC 9773, which exempts such orders from some rate limits); "" when
// there is none. Only a certificate the CA gave a renewal window for is
// named: a CA refuses an order that replaces a certificate it does not
// know (one imported, or issued by the CA used before).
func (m *Manager) replaces(a *config.ACME, prev *CertRecord) string {
	if prev == nil || prev.CA != caURL(a) || !prev.ARI.usable() {
		return ""
	}
	if m.noARI(caURL(a)) {
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
