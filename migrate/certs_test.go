package migrate_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/migrate"
)

// TestDecodeTraefikV1Encodings reads one account in every encoding Traefik
// 1.x's KV layer wrote or an export produces.
func TestDecodeTraefikV1Encodings(t *testing.T) {
	ca := newTestCA(t, "Test Intermediate R1")
	acctKey := rsaKey(t)
	cert := ca.valid(t, ecKey(t, elliptic.P256()), "example.com", "www.example.com")
	doc := mustJSON(t, traefikV1Account(acctKey, "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1",
		v1Entry{main: "example.com", sans: []string{"www.example.com"}, cert: cert}))
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"gzip, as Traefik 1.7 stores it", gzipped(t, doc)},
		{"base64, as older versions stored it", b64(doc)},
		{"base64 of gzip, as consul kv export shows it", b64(gzipped(t, doc))},
		{"base64 of base64, exported from an older version", b64(b64(doc))},
		{"JSON", doc},
		{"JSON with blanks around it", append(append([]byte("\n  "), doc...), "\r\n"...)},
		{"base64 with a newline", append(b64(gzipped(t, doc)), '\n')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := migrate.DecodeTraefikV1(tc.value)
			if err != nil {
				t.Fatalf("DecodeTraefikV1: %v", err)
			}
			a := imp.Account
			if a == nil || a.Email != "ops@example.com" || !strings.HasSuffix(a.URI, "/acct/1") {
				t.Fatalf("account %+v", a)
			}
			if k := parsePKCS8(t, a.Key); !acctKey.Equal(k) {
				t.Fatalf("the account key is %T, not Traefik's", k)
			}
			if len(imp.Certs) != 1 {
				t.Fatalf("%d certificates, want 1", len(imp.Certs))
			}
			c := imp.Certs[0]
			if c.Main != "example.com" || !slices.Equal(c.SANs, []string{"www.example.com"}) ||
				!bytes.Equal(c.Chain, cert.chain) || !bytes.Equal(c.Key, cert.keyPEM) ||
				c.Origin != "DomainsCertificate.Certs[0]" || !strings.Contains(c.CertURL, "/acme/cert/") {
				t.Fatalf("certificate %+v", c)
			}
		})
	}
}

// TestDecodeTraefikV1AccountKeys reads the account key in each form it
// may take: Traefik's PKCS #1 RSA, or SEC 1, PKCS #8 and PEM.
func TestDecodeTraefikV1AccountKeys(t *testing.T) {
	rsaK, ecK := rsaKey(t), ecKey(t, elliptic.P256())
	_, edK, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecK)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		der  []byte
		key  crypto.Signer
	}{
		{"PKCS #1 RSA", x509.MarshalPKCS1PrivateKey(rsaK), rsaK},
		{"SEC 1 ECDSA", sec1, ecK},
		{"PKCS #8 ECDSA", pkcs8(t, ecK), ecK},
		{"PKCS #8 Ed25519", pkcs8(t, edK), edK},
		{"PEM", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaK)}), rsaK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf(`{"Email":"a@example.com","Registration":{"body":{},"uri":"https://ca.example/acct/1"},"PrivateKey":%s}`, mustJSON(t, tc.der))
			imp, err := migrate.DecodeTraefikV1([]byte(doc))
			if err != nil {
				t.Fatalf("DecodeTraefikV1: %v", err)
			}
			got := parsePKCS8(t, imp.Account.Key)
			if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(tc.key) {
				t.Fatalf("the account key is %T, not the one stored", got)
			}
		})
	}
}

func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func parsePKCS8(t *testing.T, p []byte) crypto.PrivateKey {
	t.Helper()
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("the account key is not a PKCS #8 PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDecodeTraefikV1Errors feeds values that are not what Traefik
// writes: each fails with ErrFormat, says what was found, and never
// repeats key material from the value.
func TestDecodeTraefikV1Errors(t *testing.T) {
	ca := newTestCA(t, "Test Intermediate R1")
	acctKey := rsaKey(t)
	cert := ca.valid(t, ecKey(t, elliptic.P256()), "example.com")
	doc := mustJSON(t, traefikV1Account(acctKey, "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1",
		v1Entry{main: "example.com", cert: cert}))
	secrets := secretsOf(t, legoKeyPEM(t, acctKey), cert.keyPEM)
	gz := gzipped(t, doc)
	flipped := slices.Clone(gz)
	for i := 20; i < len(flipped)-20; i += 5 {
		flipped[i] ^= 0xa5
	}
	// A type error after the keys: the certificate is a number.
	badType := bytes.Replace(doc, []byte(`"Certificate":"`), []byte(`"Certificate":12345,"x":"`), 1)
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "the value is empty"},
		{"blank", []byte(" \n"), "the value is empty"},
		{"truncated gzip", gz[:len(gz)/2], "gzip:"},
		{"gzip header only", gz[:10], "gzip:"},
		{"corrupted gzip", flipped, "gzip:"},
		{"base64 of truncated gzip", b64(gz[:len(gz)-9]), "gzip:"},
		{"text", []byte("<html>502 Bad Gateway</html>"), `neither gzip, base64 nor JSON (it starts with "<html>50")`},
		{"base64 of text", b64([]byte("not json")), "neither gzip, base64 nor JSON"},
		{"too many layers", b64(b64(b64(b64(b64(doc))))), "too many layers of encoding"},
		{"truncated JSON", doc[:len(doc)*3/4], "syntax error at byte"},
		{"truncated JSON in gzip", gzipped(t, doc[:len(doc)/2]), "syntax error at byte"},
		{"wrong type", badType, "DomainsCertificate.Certs.Certificate.Certificate holds a JSON number"},
		{"a JSON array", []byte(`[{"Email":"a"}]`), "neither gzip, base64 nor JSON"},
		{"account key not base64", []byte(`{"PrivateKey":"-----BEGIN"}`), "the account is not the JSON Traefik 1.x writes"},
		{"account key not a key", []byte(`{"PrivateKey":"AAECAwQFBgc="}`), "the account key is not an RSA or ECDSA private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := migrate.DecodeTraefikV1(tc.value)
			if !errors.Is(err, migrate.ErrFormat) || imp != nil {
				t.Fatalf("got %v, %v; want an error wrapping ErrFormat", imp, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			noSecret(t, "the error", err.Error(), secrets)
		})
	}
}

// The acme.json of Traefik v2 and v3: certificate resolvers by name.
type (
	v2Store struct {
		Account      *v2Account
		Certificates []*v2Cert
	}
	v2Account struct {
		Email        string
		Registration *v1Registration
		PrivateKey   []byte // PKCS #1 DER
		KeyType      string
	}
	v2Cert struct {
		Domain      v2Domain `json:"domain"`
		Certificate []byte   `json:"certificate"` // PEM chain
		Key         []byte   `json:"key"`         // PEM
		Store       string
	}
	v2Domain struct {
		Main string   `json:"main,omitempty"`
		SANs []string `json:"sans,omitempty"`
	}
)

// Traefik 1.7's file storage: one store, the certificates' fields without
// JSON names.
type (
	v17File struct {
		Account        *v2Account
		Certificates   []*v17Cert
		HTTPChallenges map[string]map[string][]byte
		TLSChallenges  map[string]*v17Cert
	}
	v17Cert struct {
		Domain      v1Domain
		Certificate []byte
		Key         []byte
	}
)

func v2Resolver(acctKey *rsa.PrivateKey, email, uri string, certs ...v1Entry) *v2Store {
	s := &v2Store{Account: &v2Account{
		Email: email, PrivateKey: x509.MarshalPKCS1PrivateKey(acctKey), KeyType: "4096",
		Registration: &v1Registration{Body: json.RawMessage(`{"status":"valid","contact":["mailto:` + email + `"]}`), URI: uri},
	}}
	for _, c := range certs {
		s.Certificates = append(s.Certificates, &v2Cert{
			Domain: v2Domain{Main: c.main, SANs: c.sans}, Certificate: c.cert.chain, Key: c.cert.keyPEM, Store: "default",
		})
	}
	return s
}

// TestReadACMEJSON reads acme.json files of Traefik v2/v3 (one or several
// resolvers) and of Traefik 1.7, and picks a resolver.
func TestReadACMEJSON(t *testing.T) {
	ca := newTestCA(t, "Test Intermediate R1")
	acctKey := rsaKey(t)
	web := v1Entry{main: "example.com", sans: []string{"www.example.com"}, cert: ca.valid(t, ecKey(t, elliptic.P256()), "example.com", "www.example.com")}
	api := v1Entry{main: "api.example.com", cert: ca.valid(t, ecKey(t, elliptic.P384()), "api.example.com")}
	test := v1Entry{main: "test.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "test.example.com")}
	le := v2Resolver(acctKey, "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1", web, api)
	staging := v2Resolver(acctKey, "ops@example.com", "https://acme-staging-v02.api.letsencrypt.org/acme/acct/2", test)
	v17 := &v17File{
		Account: le.Account,
		Certificates: []*v17Cert{
			{Domain: v1Domain{Main: web.main, SANs: web.sans}, Certificate: web.cert.chain, Key: web.cert.keyPEM},
			{Domain: v1Domain{Main: api.main}, Certificate: api.cert.chain, Key: api.cert.keyPEM},
		},
		HTTPChallenges: map[string]map[string][]byte{}, TLSChallenges: map[string]*v17Cert{},
	}

	for _, tc := range []struct {
		name   string
		file   []byte
		names  []string
		pick   string // the resolver to read
		source string
		email  string
		certs  []v1Entry
		// pickErr is the error of Resolver(""), when it has to fail.
		pickErr string
	}{{
		name:  "two resolvers",
		file:  mustJSON(t, map[string]*v2Store{"le": le, "le-staging": staging}),
		names: []string{"le", "le-staging"}, pick: "le-staging", source: `acme.json resolver "le-staging"`,
		email: "ops@example.com", certs: []v1Entry{test},
		pickErr: "acme.json holds the resolvers le, le-staging: choose one with --resolver",
	}, {
		name:  "one resolver",
		file:  mustJSON(t, map[string]*v2Store{"le": le}),
		names: []string{"le"}, source: `acme.json resolver "le"`,
		email: "ops@example.com", certs: []v1Entry{web, api},
	}, {
		name:  "a resolver without account or certificates",
		file:  []byte(`{"le": {"Account": null, "Certificates": null}}`),
		names: []string{"le"}, source: `acme.json resolver "le"`,
	}, {
		name:  "Traefik 1.7 file storage",
		file:  mustJSON(t, v17),
		names: []string{""}, source: "acme.json",
		email: "ops@example.com", certs: []v1Entry{web, api},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := migrate.ReadACMEJSON(tc.file)
			if err != nil {
				t.Fatalf("ReadACMEJSON: %v", err)
			}
			if got := j.Names(); !slices.Equal(got, tc.names) {
				t.Fatalf("Names() = %q, want %q", got, tc.names)
			}
			imp, err := j.Resolver("")
			switch {
			case tc.pickErr != "" && (err == nil || err.Error() != tc.pickErr):
				t.Fatalf(`Resolver("") = %v; want the error %q`, err, tc.pickErr)
			case tc.pickErr == "" && err != nil:
				t.Fatalf(`Resolver(""): %v`, err)
			}
			if tc.pick != "" {
				if imp, err = j.Resolver(tc.pick); err != nil {
					t.Fatalf("Resolver(%q): %v", tc.pick, err)
				}
			}
			if _, err := j.Resolver("nope"); err == nil || !strings.Contains(err.Error(), `acme.json has no resolver "nope" (it has `+strings.Join(tc.names, ", ")) {
				t.Errorf(`Resolver("nope") = %v`, err)
			}
			if imp.Source != tc.source {
				t.Errorf("Source %q, want %q", imp.Source, tc.source)
			}
			switch a := imp.Account; {
			case tc.email == "" && a != nil:
				t.Errorf("account %+v, want none", a)
			case tc.email != "" && (a == nil || a.Email != tc.email || !acctKey.Equal(parsePKCS8(t, a.Key))):
				t.Errorf("account %+v, want %s with Traefik's key", a, tc.email)
			}
			if len(imp.Certs) != len(tc.certs) {
				t.Fatalf("%d certificates, want %d", len(imp.Certs), len(tc.certs))
			}
			for i, c := range imp.Certs {
				w := tc.certs[i]
				if c.Main != w.main || !slices.Equal(c.SANs, w.sans) || !bytes.Equal(c.Chain, w.cert.chain) ||
					!bytes.Equal(c.Key, w.cert.keyPEM) || c.Origin != fmt.Sprintf("Certificates[%d]", i) {
					t.Errorf("certificate %d = %s %v %s, want %s %v", i, c.Main, c.SANs, c.Origin, w.main, w.sans)
				}
			}
		})
	}
}

// TestReadACMEJSONErrors feeds files that are not an acme.json.
func TestReadACMEJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty", "", "acme.json is empty: Traefik had stored nothing yet"},
		{"blank", "\n", "acme.json is empty"},
		{"an array", "[]", "acme.json is not a JSON object"},
		{"truncated", `{"le": {"Account": {"Email": "a@`, "acme.json is not a JSON object: syntax error"},
		{"no resolver", "{}", "acme.json holds no resolver"},
		{"a resolver that is not a store", `{"le": 5}`, `resolver "le": ` + migrate.ErrFormat.Error() + ": not a store of certificates"},
		{"a bad account key", `{"le": {"Account": {"Email": "a@example.com", "PrivateKey": "AAECAwQ="}}}`, "the account key is not an RSA or ECDSA private key"},
		{"certificates of the wrong type", `{"Account": null, "Certificates": {"a": 1}}`, "not a store of certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := migrate.ReadACMEJSON([]byte(tc.file))
			if !errors.Is(err, migrate.ErrFormat) || j != nil {
				t.Fatalf("got %v, %v; want an error wrapping ErrFormat", j, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestImportACMEJSON imports a resolver of a Traefik v2 acme.json and
// reads the records back as a replica does.
func TestImportACMEJSON(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, "Test Intermediate R1")
	acctKey := rsaKey(t)
	web := v1Entry{main: "example.com", sans: []string{"www.example.com"}, cert: ca.valid(t, rsaKey(t), "example.com", "www.example.com")}
	api := v1Entry{main: "api.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "api.example.com")}
	file := mustJSON(t, map[string]*v2Store{
		"le":      v2Resolver(acctKey, "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1", web, api),
		"staging": v2Resolver(acctKey, "ops@example.com", "https://acme-staging-v02.api.letsencrypt.org/acme/acct/2"),
	})
	j, err := migrate.ReadACMEJSON(file)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := j.Resolver("le")
	if err != nil {
		t.Fatal(err)
	}
	st := embeddedStore(t)
	kr, _ := newKeyring(t)
	keys := acme.NewKeys("edge-tollgate")
	res, err := migrate.Import(ctx, st, keys, kr, prodCA, imp, migrate.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Count(migrate.StatusImported); n != 3 {
		t.Fatalf("%d imported, want the account and 2 certificates: %v", n, res.Items)
	}
	secrets := secretsOf(t, legoKeyPEM(t, acctKey), web.cert.keyPEM, api.cert.keyPEM)
	for _, it := range res.Items {
		noSecret(t, "the item", it.String(), secrets)
	}
	for _, e := range []v1Entry{web, api} {
		rec := certRecord(t, ctx, st, keys, e.main)
		key, _ := keys.Cert(e.main)
		pair, err := rec.KeyPair(kr, key)
		if err != nil {
			t.Fatalf("%s: %v", e.main, err)
		}
		if !pair.Leaf.Equal(e.cert.leaf) || !samePublic(pair, e.cert.key) {
			t.Fatalf("%s: the record opens to another certificate or key", e.main)
		}
		if _, err := rec.KeyPair(kr, keys.Root+"/certs/0/elsewhere"); err == nil {
			t.Fatalf("%s: the sealed key opens under another key path", e.main)
		}
	}
	// The account of the other resolver is at another CA: skipped.
	other, err := j.Resolver("staging")
	if err != nil {
		t.Fatal(err)
	}
	res, err = migrate.Import(ctx, st, keys, kr, prodCA, other, migrate.ImportOptions{})
	if err != nil || len(res.Items) != 1 || res.Items[0].Status != migrate.StatusSkipped {
		t.Fatalf("Import of the staging resolver: %v, %v; want its account skipped", res, err)
	}
}

func samePublic(pair *tls.Certificate, key crypto.Signer) bool {
	pub := pair.PrivateKey.(crypto.Signer).Public()
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case *rsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	}
	return false
}
