package migrate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// The CA URLs the test accounts and records name.
const (
	prodCA    = "https://acme-v02.api.letsencrypt.org/directory"
	stagingCA = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// testCA issues certificates as an ACME CA does: a leaf signed by an
// intermediate, the chain stored leaf first.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := ecKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-365 * 24 * time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, serial: 100}
}

// issued is a certificate the test CA issued, with its key as Traefik
// keeps it.
type issued struct {
	leaf   *x509.Certificate
	chain  []byte // PEM, leaf then the CA
	keyPEM []byte // PEM as lego writes it: SEC 1 or PKCS #1
	key    crypto.Signer
}

// issue signs a certificate for names (the first is the common name) with
// key, valid from notBefore to notAfter.
func (ca *testCA) issue(t *testing.T, key crypto.Signer, notBefore, notAfter time.Time, names ...string) issued {
	t.Helper()
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return issued{leaf: leaf, chain: chain, keyPEM: legoKeyPEM(t, key), key: key}
}

// valid issues a certificate for names valid from 30 days ago for 90 days.
func (ca *testCA) valid(t *testing.T, key crypto.Signer, names ...string) issued {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	return ca.issue(t, key, now.Add(-30*24*time.Hour), now.Add(60*24*time.Hour), names...)
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// legoKeyPEM encodes a certificate key as lego (and so Traefik) stores it:
// "EC PRIVATE KEY" (SEC 1) or "RSA PRIVATE KEY" (PKCS #1).
func legoKeyPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	t.Fatalf("no PEM encoding for %T", key)
	return nil
}

// The JSON Traefik 1.7 writes for its ACME account (acme.Account in its
// cluster mode): exported Go field names without tags, except the lego
// registration resource's "body" and "uri"; []byte fields are base64.
type (
	v1Account struct {
		Email              string
		Registration       *v1Registration
		PrivateKey         []byte // PKCS #1 DER of the RSA account key
		KeyType            string
		DomainsCertificate v1DomainsCertificates
		ChallengeCerts     map[string]*v1ChallengeCert
		HTTPChallenge      map[string]map[string][]byte
	}
	v1Registration struct {
		Body json.RawMessage `json:"body,omitempty"`
		URI  string          `json:"uri,omitempty"`
	}
	v1DomainsCertificates struct {
		Certs []*v1DomainsCertificate
	}
	v1DomainsCertificate struct {
		Domains     v1Domain
		Certificate *v1Certificate
	}
	v1Domain struct {
		Main string
		SANs []string
	}
	v1Certificate struct {
		Domain        string
		CertURL       string
		CertStableURL string
		PrivateKey    []byte // PEM
		Certificate   []byte // PEM chain
	}
	v1ChallengeCert struct {
		Certificate []byte
		PrivateKey  []byte
	}
)

// v1Entry is one certificate in a Traefik 1.x account.
type v1Entry struct {
	main string
	sans []string
	cert issued
}

// traefikV1Account builds the account Traefik 1.7 stores: its key,
// registration at the CA of accountURI, and entries.
func traefikV1Account(acctKey *rsa.PrivateKey, email, accountURI string, entries ...v1Entry) *v1Account {
	a := &v1Account{
		Email:      email,
		PrivateKey: x509.MarshalPKCS1PrivateKey(acctKey),
		KeyType:    "RSA4096",
		// Traefik keeps answers of challenges in flight in the same
		// value; the import ignores them.
		ChallengeCerts: map[string]*v1ChallengeCert{},
		HTTPChallenge:  map[string]map[string][]byte{"tok3n": {"example.com": []byte("tok3n.thumbprint")}},
	}
	if accountURI != "" {
		a.Registration = &v1Registration{
			Body: json.RawMessage(`{"status":"valid","contact":["mailto:` + email + `"]}`),
			URI:  accountURI,
		}
	}
	for _, e := range entries {
		url := fmt.Sprintf("https://acme-v02.api.letsencrypt.org/acme/cert/%x", e.cert.leaf.SerialNumber)
		a.DomainsCertificate.Certs = append(a.DomainsCertificate.Certs, &v1DomainsCertificate{
			Domains: v1Domain{Main: e.main, SANs: e.sans},
			Certificate: &v1Certificate{
				Domain: e.main, CertURL: url, CertStableURL: url,
				PrivateKey: e.cert.keyPEM, Certificate: e.cert.chain,
			},
		})
	}
	return a
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gzipped compresses b as Traefik's KV layer does before storing it.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

// secretsOf lists forms in which the keys could leak, each cut from the
// private part of the key (not its public half, which the certificate
// shows): a PEM header, a run of the base64 of the key's DER (a line of
// its PEM, or Traefik's account key), and a run of the base64 of its PEM
// (Traefik's certificate keys).
func secretsOf(t *testing.T, keyPEMs ...[]byte) []string {
	t.Helper()
	out := []string{"PRIVATE KEY"}
	for _, p := range keyPEMs {
		blk, _ := pem.Decode(p)
		if blk == nil {
			t.Fatalf("not PEM: %d bytes", len(p))
		}
		var private []byte
		switch blk.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if private, err = k.Bytes(); err != nil {
				t.Fatal(err)
			}
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			private = k.D.Bytes()
		default:
			t.Fatalf("no private part known in a %s", blk.Type)
		}
		lo := bytes.Index(blk.Bytes, private)
		if lo < 0 {
			t.Fatal("the private scalar is not in the key's DER")
		}
		// Base64 characters [c0, c1) of the DER encode private bytes only;
		// keep them within one 64-character line of the PEM.
		hi := lo + min(len(private), 40)
		c0, c1 := lo*4/3+2, hi*4/3-2
		c1 = min(c1, (c0/64+1)*64)
		if c1-c0 < 16 {
			c0, c1 = (c0/64+1)*64, min(hi*4/3-2, (c0/64+2)*64)
		}
		body := base64.StdEncoding.EncodeToString(blk.Bytes)
		out = append(out, body[c0:c1])
		// The same characters in the PEM text, then in its base64.
		header := bytes.Index(p, []byte(body[:64]))
		p0, p1 := header+c0+c0/64, header+c1+c0/64
		p0, p1 = (p0+2)/3*3, p1/3*3
		out = append(out, base64.StdEncoding.EncodeToString(p)[p0/3*4:p1/3*4])
	}
	return out
}

// noSecret fails when text holds any of secrets.
func noSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("%s holds key material (%.12q…): %s", what, s, text)
		}
	}
}

func newKeyring(t *testing.T) (*acme.Keyring, string) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	text := base64.StdEncoding.EncodeToString(raw)
	kr, err := acme.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	return kr, text
}

// openStore opens endpoint and closes it when the test ends.
func openStore(t *testing.T, endpoint string) kvstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", endpoint, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// embeddedStore is a fresh embedded store in the test's directory.
func embeddedStore(t *testing.T) kvstore.Store {
	t.Helper()
	return openStore(t, "file://"+filepath.Join(t.TempDir(), "state.db"))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSecretsOf checks the leak detector itself: every form it looks for
// is in the key's PEM, its base64 or its DER's base64, and none is in the
// certificate of the same key.
func TestSecretsOf(t *testing.T) {
	ca := newTestCA(t, "Test CA")
	for _, key := range []crypto.Signer{ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), rsaKey(t)} {
		c := ca.valid(t, key, "a.example.com")
		blk, _ := pem.Decode(c.keyPEM)
		forms := string(c.keyPEM) + " " + string(b64(c.keyPEM)) + " " + string(b64(blk.Bytes))
		secrets := secretsOf(t, c.keyPEM)
		if len(secrets) != 3 {
			t.Fatalf("%T: %d forms, want 3", key, len(secrets))
		}
		for _, s := range secrets {
			if len(s) < 16 && s != "PRIVATE KEY" || !strings.Contains(forms, s) {
				t.Fatalf("%T: %q is not a run of the key's encodings", key, s)
			}
		}
		noSecret(t, "the certificate", string(c.chain)+string(b64(c.chain)), secrets)
	}
}
