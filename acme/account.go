package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/leader"
)

// account is an ACME account as lego uses it.
type account struct {
	email string
	reg   *registration.Resource
	key   crypto.PrivateKey
}

func (a *account) GetEmail() string                        { return a.email }
func (a *account) GetRegistration() *registration.Resource { return a.reg }
func (a *account) GetPrivateKey() crypto.PrivateKey        { return a.key }

// loadAccount returns the account of email at the CA from the store, with
// the revision of its record, or registers one and stores it with a write
// fenced by term, so that two leaders never both register. A stored
// account is not used when it was registered at another CA directory or
// is the one the CA rejected (replaceURI): a new one is registered and
// replaces it, conditional on the record read. newClient builds a lego
// client for a user.
func (m *Manager) loadAccount(ctx context.Context, term *leader.Term, a *config.ACME, replaceURI string,
	newClient func(registration.User) (*lego.Client, error)) (*account, int64, error) {
	ca := caURL(a)
	key, err := m.cfg.Keys.Account(ca, a.Email)
	if err != nil {
		return nil, 0, err
	}
	var prevRev int64 // the record to replace; 0: create
	kv, err := m.cfg.Store.Get(ctx, key)
	switch {
	case err == nil:
		acct, rec, derr := m.decodeAccount(key, kv.Value)
		if derr != nil {
			return nil, 0, fmt.Errorf("account %s: %w; delete the key to register a new account", key, derr)
		}
		switch {
		case rec.CA != ca:
			m.log.Warn("stored account was registered at another CA directory; registering a new one", "key", key, "registered_at", rec.CA, "ca", ca)
		case replaceURI != "" && rec.URI == replaceURI:
			m.log.Warn("the CA rejected the stored account; registering a new one", "key", key, "account", rec.URI)
		default:
			return acct, kv.Revision, nil
		}
		prevRev = kv.Revision
	case !errors.Is(err, kvstore.ErrNotFound):
		return nil, 0, fmt.Errorf("read account: %w", err)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, 0, err
	}
	acct := &account{email: a.Email, key: priv}
	client, err := newClient(acct)
	if err != nil {
		return nil, 0, err
	}
	if e := a.EAB; e != nil {
		hmac, herr := m.secret(e.HMACKeyFile, e.HMACKeyEnv)
		if herr != nil {
			return nil, 0, fmt.Errorf("external account binding: %w", herr)
		}
		acct.reg, err = client.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: e.KID, HmacEncoded: hmac,
		})
	} else {
		acct.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return nil, 0, fmt.Errorf("register account at %s: %w", ca, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, 0, err
	}
	sealed, err := m.cfg.Keyring.Seal(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, 0, err
	}
	regJSON, _ := json.Marshal(acct.reg.Body)
	rec := AccountRecord{Version: RecordVersion, CA: ca, Email: a.Email, URI: acct.reg.URI, Registration: regJSON,
		Key: sealed, Node: m.cfg.Node, Token: term.Token(), Written: time.Now().UTC()}
	b, _ := json.MarshalIndent(rec, "", "  ")
	rev, err := term.Apply(ctx, kvstore.PutIfOp(key, b, prevRev))
	if err != nil {
		if errors.Is(err, kvstore.ErrConflict) {
			// Someone stored one meanwhile (a leader before us): use it.
			kv, gerr := m.cfg.Store.Get(ctx, key)
			if gerr != nil {
				return nil, 0, gerr
			}
			acct, _, derr := m.decodeAccount(key, kv.Value)
			return acct, kv.Revision, derr
		}
		return nil, 0, fmt.Errorf("store account: %w", err)
	}
	m.log.Info("ACME account registered", "ca", ca, "key", key)
	return acct, rev, nil
}

func (m *Manager) decodeAccount(key string, b []byte) (*account, *AccountRecord, error) {
	var rec AccountRecord
	if err := decodeJSON(b, &rec); err != nil {
		return nil, nil, err
	}
	if rec.URI == "" {
		return nil, nil, errors.New("account record has no URI")
	}
	keyPEM, err := m.cfg.Keyring.Open(key, rec.Key)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, nil, errors.New("account key is not PEM")
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, errors.New("account key: not a PKCS #8 private key")
	}
	reg := &registration.Resource{URI: rec.URI}
	if len(rec.Registration) > 0 {
		_ = json.Unmarshal(rec.Registration, &reg.Body)
	}
	return &account{email: rec.Email, reg: reg, key: priv}, &rec, nil
}

// accounts is the leader's account for the configured CA, during one
// term: loaded from the store (or registered) when needed, dropped when
// its record changes or goes, and replaced once when the CA rejects it.
type accounts struct {
	m    *Manager
	term *leader.Term
	log  *slog.Logger

	acct *account
	fp   string // accountFingerprint of the configuration acct is for
	rev  int64  // revision of acct's record
	// replace is the URI of an account the CA rejected: the next load
	// registers a new one in its place.
	replace string
	// failures counts loads in a row that failed, and retryAt is when to
	// load again.
	failures int
	retryAt  time.Time
	// replacedAt is when a rejected account was last replaced, and
	// rejections counts replacements the CA rejected again soon after.
	replacedAt time.Time
	rejections int
}

// accountRetryMax caps the wait between two failed account loads.
const accountRetryMax = time.Hour

// get returns the account for a, loading it when the configuration or
// the stored record changed; nil, with when to try again, after a failure.
func (s *accounts) get(ctx context.Context, a *config.ACME) (*account, time.Time) {
	fp := accountFingerprint(a)
	if s.acct != nil && fp == s.fp {
		key, err := s.m.cfg.Keys.Account(caURL(a), a.Email)
		if err != nil {
			return s.acct, time.Time{}
		}
		kv, err := s.m.cfg.Store.Get(ctx, key)
		switch {
		case err == nil && kv.Revision == s.rev:
			return s.acct, time.Time{}
		case err != nil && !errors.Is(err, kvstore.ErrNotFound):
			return s.acct, time.Time{} // the store is away: keep what works
		}
		s.log.Info("account record changed or deleted; loading it again", "key", key)
		s.acct = nil
	}
	if time.Now().Before(s.retryAt) {
		return nil, s.retryAt
	}
	acct, rev, err := s.m.loadAccount(ctx, s.term, a, s.replace, func(u registration.User) (*lego.Client, error) {
		return s.m.newClient(ctx, a, u)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, time.Time{}
		}
		s.fail(ctx, a, err)
		return nil, s.retryAt
	}
	if s.replace != "" {
		s.replacedAt = time.Now()
	}
	s.acct, s.fp, s.rev, s.replace = acct, fp, rev, ""
	s.clear(ctx)
	return acct, time.Time{}
}

// rejected notes that the CA refused acct: the next get registers a new
// account in its place, unless that already happened without success.
func (s *accounts) rejected(acct *account) {
	if s.acct == nil || acct.reg.URI != s.acct.reg.URI {
		return // replaced already
	}
	s.replace, s.acct = acct.reg.URI, nil
	if !s.replacedAt.IsZero() && time.Since(s.replacedAt) < 10*time.Minute {
		// The account registered after the last rejection was
		// rejected too: wait before registering yet another.
		s.rejections++
		s.retryAt = time.Now().Add(min(time.Minute<<min(s.rejections-1, 10), accountRetryMax))
		return
	}
	s.rejections = 0
}

// wait is the pause after the failures so far: BackoffBase, doubled
// after each further failure, at most accountRetryMax.
func (s *accounts) wait() time.Duration {
	return min(s.m.cfg.BackoffBase<<min(s.failures, 10), accountRetryMax)
}

// fail schedules the next load and records the failure where `cluster
// status` shows it.
func (s *accounts) fail(ctx context.Context, a *config.ACME, err error) {
	s.retryAt = time.Now().Add(s.wait())
	s.failures++
	s.log.Error("no ACME account; orders wait for it", "retry_at", s.retryAt, "failures", s.failures, "err", err)
	st := DomainState{Failures: s.failures, LastError: truncate(err.Error(), 2000), LastAttempt: time.Now().UTC(), NextAttempt: s.retryAt.UTC()}
	b, _ := json.MarshalIndent(st, "", "  ")
	if key, kerr := s.m.cfg.Keys.AccountState(); kerr == nil {
		if _, werr := s.term.Apply(ctx, kvstore.PutOp(key, b)); werr != nil {
			s.log.Warn("account failure not stored", "err", werr)
		}
	}
}

// clear removes a recorded account failure after a successful load.
func (s *accounts) clear(ctx context.Context) {
	if s.failures == 0 {
		return
	}
	s.failures = 0
	if key, err := s.m.cfg.Keys.AccountState(); err == nil {
		_, _ = s.term.Apply(ctx, kvstore.DeleteOp(key))
	}
}

// secret reads a secret from a file or an environment variable.
func (m *Manager) secret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	v := strings.TrimSpace(m.getenv(env))
	if v == "" {
		return "", fmt.Errorf("environment variable %s is empty or not set", env)
	}
	return v, nil
}

func caURL(a *config.ACME) string {
	if a.CAServer != "" {
		return a.CAServer
	}
	return config.DefaultCAServer
}
