package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
)

// ErrNoCertificate reports that no certificate is stored for a name.
var ErrNoCertificate = errors.New("no certificate stored")

// RequestRenewal makes the leader renew the certificate whose main domain
// is domain as soon as it next plans (within seconds): it sets the
// record's renewal time (ari.renewAt) to now with a compare-and-set, so
// that a record the leader writes meanwhile is not overwritten. The
// private key and chain are left as they are. It returns the record as
// rewritten.
func RequestRenewal(ctx context.Context, st kvstore.Store, keys Keys, domain string) (*CertRecord, error) {
	key, err := keys.Cert(normalize(domain))
	if err != nil {
		return nil, err
	}
	for {
		kv, err := st.Get(ctx, key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", key, ErrNoCertificate)
		}
		if err != nil {
			return nil, err
		}
		var rec CertRecord
		if err := decodeExact(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if _, err := DecodeCert(kv.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		now := time.Now().UTC()
		if rec.ARI == nil {
			rec.ARI = &ARIState{}
		}
		rec.ARI.RenewAt, rec.ARI.Requested = now, true
		// No renewal-information check replaces the request before the
		// leader acts on it.
		if rec.ARI.CheckAgain.Before(now.Add(time.Hour)) {
			rec.ARI.CheckAgain = now.Add(time.Hour)
		}
		b, _ := json.MarshalIndent(rec, "", "  ")
		_, err = st.Apply(ctx, nil, kvstore.PutIfOp(key, b, kv.Revision))
		if errors.Is(err, kvstore.ErrConflict) {
			continue // written meanwhile: read it again
		}
		if err != nil {
			return nil, err
		}
		return &rec, nil
	}
}

// Revoke revokes at the CA the stored certificate whose main domain is
// domain, with the account a names (read from the store and opened with
// kr), for reason (RFC 5280 reason code; 0 is unspecified). It leaves the
// record in place and returns it with the revision it was read at; delete
// it at that revision to make the leader order a new certificate.
func Revoke(ctx context.Context, st kvstore.Store, keys Keys, kr *Keyring, a *config.ACME, domain string, reason uint) (*CertRecord, int64, error) {
	if a == nil {
		return nil, 0, errors.New("the configuration has no [acme] section")
	}
	certKey, err := keys.Cert(normalize(domain))
	if err != nil {
		return nil, 0, err
	}
	kv, err := st.Get(ctx, certKey)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, 0, fmt.Errorf("%s: %w", certKey, ErrNoCertificate)
	}
	if err != nil {
		return nil, 0, err
	}
	rec, err := DecodeCert(kv.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", certKey, err)
	}
	if rec.CA != "" && rec.CA != caURL(a) {
		return nil, 0, fmt.Errorf("%s was issued by %s, but the configuration's CA is %s", certKey, rec.CA, caURL(a))
	}
	acctKey, err := keys.Account(caURL(a), a.Email)
	if err != nil {
		return nil, 0, err
	}
	akv, err := st.Get(ctx, acctKey)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, 0, fmt.Errorf("no account stored at %s: the leader registers it", acctKey)
	}
	if err != nil {
		return nil, 0, err
	}
	m := &Manager{cfg: ManagerConfig{Store: st, Keys: keys, Keyring: kr, Getenv: os.Getenv}, log: slog.New(slog.DiscardHandler)}
	acct, _, err := m.decodeAccount(acctKey, akv.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", acctKey, err)
	}
	client, err := m.newClient(ctx, a, acct)
	if err != nil {
		return nil, 0, err
	}
	if err := client.Certificate.RevokeWithReason([]byte(rec.Certificate), &reason); err != nil {
		return nil, 0, fmt.Errorf("revoke %s: %w", certKey, err)
	}
	return rec, kv.Revision, nil
}

// DeleteCertificate deletes the certificate record whose main domain is
// domain, with its failure state, so that the leader orders it again if it
// is still wanted. With rev > 0 only the record at that revision is
// deleted (an error wrapping kvstore.ErrConflict when it changed). It
// returns the deleted record's revision.
func DeleteCertificate(ctx context.Context, st kvstore.Store, keys Keys, domain string, rev int64) (int64, error) {
	domain = normalize(domain)
	certKey, err := keys.Cert(domain)
	if err != nil {
		return 0, err
	}
	stateKey, _ := keys.State(domain)
	kv, err := st.Get(ctx, certKey)
	if errors.Is(err, kvstore.ErrNotFound) {
		return 0, fmt.Errorf("%s: %w", certKey, ErrNoCertificate)
	}
	if err != nil {
		return 0, err
	}
	if rev > 0 && kv.Revision != rev {
		return 0, fmt.Errorf("%s changed since revision %d: %w", certKey, rev, kvstore.ErrConflict)
	}
	if _, err := st.Apply(ctx, nil, kvstore.DeleteIfOp(certKey, kv.Revision), kvstore.DeleteOp(stateKey)); err != nil {
		return 0, err
	}
	return kv.Revision, nil
}

// RevocationReason returns the RFC 5280 code of a revocation reason
// name: unspecified, keyCompromise, superseded, cessationOfOperation or
// affiliationChanged.
func RevocationReason(name string) (uint, bool) {
	switch name {
	case "unspecified":
		return legoacme.CRLReasonUnspecified, true
	case "keyCompromise":
		return legoacme.CRLReasonKeyCompromise, true
	case "affiliationChanged":
		return legoacme.CRLReasonAffiliationChanged, true
	case "superseded":
		return legoacme.CRLReasonSuperseded, true
	case "cessationOfOperation":
		return legoacme.CRLReasonCessationOfOperation, true
	}
	return 0, false
}
