package acme

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// ARI timing: how often to ask again when the CA names no Retry-After,
// and the bounds put on what it names.
const (
	ariDefaultRecheck = 6 * time.Hour
	ariMinRecheck     = time.Minute
	ariMaxRecheck     = 24 * time.Hour
)

// errNoARI marks a CA without ARI.
var errNoARI = errors.New("the CA offers no renewal information (ARI)")

// askARI asks the CA for leaf's renewal window. It returns errNoARI when
// the CA has no ARI endpoint.
func askARI(client *lego.Client, leaf *x509.Certificate, now time.Time) (*ARIState, error) {
	info, err := client.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: leaf})
	if errors.Is(err, api.ErrNoARI) {
		return nil, errNoARI
	}
	if err != nil {
		return nil, err
	}
	st := &ARIState{
		WindowStart: info.SuggestedWindow.Start.UTC(), WindowEnd: info.SuggestedWindow.End.UTC(),
		ExplanationURL: info.ExplanationURL, CheckedAt: now.UTC(),
	}
	// A moment drawn once in the window, so that replicas of many
	// certificates do not all renew at its start.
	if at := info.ShouldRenewAt(now, 100*365*24*time.Hour); at != nil {
		st.RenewAt = at.UTC()
	}
	recheck := info.RetryAfter
	if recheck == 0 {
		recheck = ariDefaultRecheck
	}
	st.CheckAgain = now.Add(min(max(recheck, ariMinRecheck), ariMaxRecheck)).UTC()
	return st, nil
}

// ariDue reports whether the renewal window of r should be asked for.
func ariDue(r *CertRecord, now time.Time) bool {
	return r.ARI == nil || !now.Before(r.ARI.CheckAgain)
}

// refreshARI asks the CA for the renewal window of the certificate stored
// for main and records it in the certificate's record, with a write
// conditional on the revision read and fenced by the term.
func (m *Manager) refreshARI(ctx context.Context, term *leader.Term, a *config.ACME, acct *account, main string, log *slog.Logger) {
	key, err := m.cfg.Keys.Cert(main)
	if err != nil {
		return
	}
	kv, err := m.cfg.Store.Get(ctx, key)
	if err != nil {
		return
	}
	rec, err := DecodeCert(kv.Value)
	if err != nil || !ariDue(rec, time.Now()) || rec.CA != caURL(a) {
		return
	}
	leaf, err := parseLeaf([]byte(rec.Certificate))
	if err != nil {
		return
	}
	client, err := m.newClient(ctx, a, acct)
	if err != nil {
		return
	}
	st, err := askARI(client, leaf, time.Now())
	switch {
	case errors.Is(err, errNoARI):
		m.noARI.Store(caURL(a), true)
		return
	case err != nil:
		// Try again later: the record keeps its window, or the third of
		// its lifetime rule applies.
		log.Debug("renewal information not available", "domain", main, "err", err)
		st = &ARIState{CheckedAt: time.Now().UTC(), CheckAgain: time.Now().Add(time.Hour).UTC()}
		if rec.ARI != nil {
			st.WindowStart, st.WindowEnd, st.RenewAt = rec.ARI.WindowStart, rec.ARI.WindowEnd, rec.ARI.RenewAt
		}
	}
	rec.ARI = st
	b, _ := json.MarshalIndent(rec, "", "  ")
	if _, err := term.Apply(ctx, kvstore.PutIfOp(key, b, kv.Revision)); err != nil && !errors.Is(err, kvstore.ErrConflict) {
		log.Debug("renewal information not stored", "domain", main, "err", err)
	}
}
