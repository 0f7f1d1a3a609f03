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

// loadAccount returns the account of email at the CA from the store, or
// registers one and stores it with a write fenced by term, so that two
// leaders never both register. newClient builds a lego client for a user.
func (m *Manager) loadAccount(ctx context.Context, term *leader.Term, a *config.ACME, newClient func(registration.User) (*lego.Client, error)) (*account, error) {
	ca := caURL(a)
	key, err := m.cfg.Keys.Account(ca, a.Email)
	if err != nil {
		return nil, err
	}
	kv, err := m.cfg.Store.Get(ctx, key)
	switch {
	case err == nil:
		acct, derr := m.decodeAccount(key, kv.Value)
		if derr != nil {
			return nil, fmt.Errorf("account %s: %w; delete the key to register a new account", key, derr)
		}
		return acct, nil
	case !errors.Is(err, kvstore.ErrNotFound):
		return nil, fmt.Errorf("read account: %w", err)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	acct := &account{email: a.Email, key: priv}
	client, err := newClient(acct)
	if err != nil {
		return nil, err
	}
	if e := a.EAB; e != nil {
		hmac, herr := m.secret(e.HMACKeyFile, e.HMACKeyEnv)
		if herr != nil {
			return nil, fmt.Errorf("external account binding: %w", herr)
		}
		acct.reg, err = client.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: e.KID, HmacEncoded: hmac,
		})
	} else {
		acct.reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return nil, fmt.Errorf("register account at %s: %w", ca, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	sealed, err := m.cfg.Keyring.Seal(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, err
	}
	regJSON, _ := json.Marshal(acct.reg.Body)
	rec := AccountRecord{Version: RecordVersion, CA: ca, Email: a.Email, URI: acct.reg.URI, Registration: regJSON,
		Key: sealed, Node: m.cfg.Node, Token: term.Token(), Written: time.Now().UTC()}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if _, err := term.Apply(ctx, kvstore.PutIfOp(key, b, 0)); err != nil {
		if errors.Is(err, kvstore.ErrConflict) {
			// Someone stored one meanwhile (a leader before us): use it.
			kv, gerr := m.cfg.Store.Get(ctx, key)
			if gerr != nil {
				return nil, gerr
			}
			return m.decodeAccount(key, kv.Value)
		}
		return nil, fmt.Errorf("store account: %w", err)
	}
	m.log.Info("ACME account registered", "ca", ca, "key", key)
	return acct, nil
}

func (m *Manager) decodeAccount(key string, b []byte) (*account, error) {
	var rec AccountRecord
	if err := decodeJSON(b, &rec); err != nil {
		return nil, err
	}
	if rec.URI == "" {
		return nil, errors.New("account record has no URI")
	}
	keyPEM, err := m.cfg.Keyring.Open(key, rec.Key)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("account key is not PEM")
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	reg := &registration.Resource{URI: rec.URI}
	if len(rec.Registration) > 0 {
		_ = json.Unmarshal(rec.Registration, &reg.Body)
	}
	return &account{email: rec.Email, reg: reg, key: priv}, nil
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
