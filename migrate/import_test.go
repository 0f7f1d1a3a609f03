package migrate_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/migrate"
)

// stored is a certificate put into Traefik's storage and what tollgate
// must serve from its record.
type stored struct {
	entry v1Entry
	// names are the record's domains, the main one first.
	names []string
	// serve are server names a replica must answer with it.
	serve []string
	// keyType is the record's keyType.
	keyType string
}

// importCase is a Traefik 1.x cluster: one of the example files, the store
// it ran on, and the ACME data it kept there.
type importCase struct {
	example    string // in testdata/traefik-v1
	server     func(testserver.TB) *testserver.Server
	scheme     string
	accountURI string
	certs      func(t *testing.T, ca *testCA) []stored
}

// TestImportTraefikV1Store migrates the ACME data of a Traefik 1.x cluster
// the way an operator does: it converts an example traefik.toml, builds
// the value Traefik 1.7 keeps at <storage>/object (the account and every
// certificate, as JSON, gzip-compressed) in a real Consul or etcd, reads it
// with ReadTraefikV1Store, imports it into the same store under the
// converted configuration's prefix, and checks that a replica's
// certificate cache serves every certificate with its own key and that the
// account key decrypts. It then runs the import again (nothing changes),
// with DryRun and Overwrite, and reads the value base64-encoded, corrupted
// and under a wrong key.
func TestImportTraefikV1Store(t *testing.T) {
	for name, tc := range map[string]importCase{
		"consul": {
			example: "cluster-consul.toml", server: testserver.Consul, scheme: "consul",
			accountURI: "https://acme-v02.api.letsencrypt.org/acme/acct/314159",
			certs: func(t *testing.T, ca *testCA) []stored {
				return []stored{{
					// Traefik 1.x's default: RSA keys.
					entry:   v1Entry{main: "example.com", sans: []string{"www.example.com"}, cert: ca.valid(t, rsaKey(t), "example.com", "www.example.com")},
					names:   []string{"example.com", "www.example.com"},
					serve:   []string{"example.com", "WWW.example.com"},
					keyType: "RSA2048",
				}, {
					entry:   v1Entry{main: "api.example.com", cert: ca.valid(t, ecKey(t, elliptic.P256()), "api.example.com")},
					names:   []string{"api.example.com"},
					serve:   []string{"api.example.com"},
					keyType: "EC256",
				}, {
					// Traefik listed a name the certificate does not have:
					// the record leaves it out.
					entry:   v1Entry{main: "admin.example.com", sans: []string{"admin.example.com", "old.example.com"}, cert: ca.valid(t, ecKey(t, elliptic.P256()), "admin.example.com")},
					names:   []string{"admin.example.com"},
					serve:   []string{"admin.example.com"},
					keyType: "EC256",
				}}
			},
		},
		"etcd": {
			example: "etcd-ondemand.toml", server: testserver.Etcd, scheme: "etcd",
			accountURI: "https://acme-staging-v02.api.letsencrypt.org/acme/acct/2718",
			certs: func(t *testing.T, ca *testCA) []stored {
				return []stored{{
					entry:   v1Entry{main: "*.example.org", sans: []string{"example.org"}, cert: ca.valid(t, ecKey(t, elliptic.P384()), "*.example.org", "example.org")},
					names:   []string{"*.example.org", "example.org"},
					serve:   []string{"tenant1.example.org", "example.org"},
					keyType: "EC384",
				}, {
					entry:   v1Entry{main: "files.example.org", cert: ca.valid(t, ecKey(t, elliptic.P256()), "files.example.org")},
					names:   []string{"files.example.org"},
					serve:   []string{"files.example.org"},
					keyType: "EC256",
				}}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := tc.server(t)
			st := openStore(t, tc.scheme+"://"+srv.Addr)
			testImportStore(t, st, tc)
		})
	}
}

// migration is the state of one migration under test.
type migration struct {
	st         kvstore.Store
	keys       acme.Keys
	kr         *acme.Keyring
	ca         string
	email      string
	acctKey    *rsa.PrivateKey
	accountURI string
	certs      []stored
	secrets    []string
	// traefikPrefix and traefikKey are where Traefik kept its data.
	traefikPrefix, traefikKey string
	blob                      []byte
}

func testImportStore(t *testing.T, st kvstore.Store, tc importCase) {
	ctx := testContext(t)
	m := newMigration(t, st, tc)

	if _, err := kvstore.Put(ctx, st, m.traefikKey, m.blob); err != nil {
		t.Fatal(err)
	}
	// Traefik's lock beside it holds the id of the last transaction.
	lockKey := strings.TrimSuffix(m.traefikKey, "object") + "lock"
	if _, err := kvstore.Put(ctx, st, lockKey, []byte("5f0c1d5e-7a6b-4c1d-9e8f-0a1b2c3d4e5f")); err != nil {
		t.Fatal(err)
	}

	t.Run("import", func(t *testing.T) {
		imp, err := migrate.ReadTraefikV1Store(ctx, st, m.traefikPrefix)
		if err != nil {
			t.Fatalf("ReadTraefikV1Store(%q): %v", m.traefikPrefix, err)
		}
		m.checkRead(t, imp)
		res, err := migrate.Import(ctx, st, m.keys, m.kr, m.ca, imp, migrate.ImportOptions{})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		m.checkItems(t, res, migrate.StatusImported, false)
		m.checkRecords(t)
		m.checkServed(t)
		m.checkAccount(t)
		kv, err := st.Get(ctx, m.traefikKey)
		if err != nil || !bytes.Equal(kv.Value, m.blob) {
			t.Fatalf("Traefik's value after the import: %v (changed: %t); want it untouched", err, err == nil)
		}
	})

	t.Run("again", func(t *testing.T) {
		imp, err := migrate.ReadTraefikV1Store(ctx, st, m.traefikPrefix)
		if err != nil {
			t.Fatal(err)
		}
		before := m.records(t)
		for _, opts := range []migrate.ImportOptions{{}, {DryRun: true}, {DryRun: true, Overwrite: true}} {
			res, err := migrate.Import(ctx, st, m.keys, m.kr, m.ca, imp, opts)
			if err != nil {
				t.Fatalf("Import(%+v): %v", opts, err)
			}
			want := migrate.StatusExists
			if opts.Overwrite {
				want = migrate.StatusReplaced
			}
			m.checkItems(t, res, want, opts.DryRun)
			if after := m.records(t); !sameKVs(before, after) {
				t.Fatalf("Import(%+v) changed the records", opts)
			}
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		imp, err := migrate.ReadTraefikV1Store(ctx, st, m.traefikPrefix)
		if err != nil {
			t.Fatal(err)
		}
		before := m.records(t)
		res, err := migrate.Import(ctx, st, m.keys, m.kr, m.ca, imp, migrate.ImportOptions{Overwrite: true, Node: "ops"})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		m.checkItems(t, res, migrate.StatusReplaced, false)
		after := m.records(t)
		for key, kv := range after {
			if kv.Revision <= before[key].Revision {
				t.Errorf("%s: revision %d after the overwrite, want above %d", key, kv.Revision, before[key].Revision)
			}
			if !strings.Contains(string(kv.Value), `"node": "ops"`) {
				t.Errorf("%s was not rewritten by node ops:\n%s", key, kv.Value)
			}
		}
		m.checkServed(t)
		m.checkAccount(t)
	})

	t.Run("encodings", func(t *testing.T) {
		// Traefik versions before gzip stored base64 of the JSON; a value
		// exported with "consul kv export" is base64 of what is stored.
		doc := mustJSON(t, traefikV1Account(m.acctKey, m.email, m.accountURI, entries(m.certs)...))
		for prefix, value := range map[string][]byte{
			"b64-json":      b64(doc),
			"b64-gzip":      b64(gzipped(t, doc)),
			"json-newline":  append(doc, '\n'),
			"b64-b64-gzip":  b64(b64(gzipped(t, doc))),
			"gzip-b64-json": gzipped(t, b64(doc)),
		} {
			if _, err := kvstore.Put(ctx, st, prefix+"/"+migrate.DefaultTraefikV1Key, value); err != nil {
				t.Fatal(err)
			}
			imp, err := migrate.ReadTraefikV1Store(ctx, st, prefix)
			if err != nil {
				t.Fatalf("%s: %v", prefix, err)
			}
			m.checkRead(t, imp)
		}
	})

	t.Run("corrupted", func(t *testing.T) {
		corrupt := slices.Clone(m.blob)
		for i := 20; i < len(corrupt)-20; i += 7 {
			corrupt[i] ^= 0x55
		}
		for prefix, value := range map[string][]byte{
			"truncated": m.blob[:len(m.blob)/2],
			"flipped":   corrupt,
			"header":    m.blob[:12],
			"html":      []byte("<html>502 Bad Gateway</html>"),
		} {
			key := prefix + "/" + migrate.DefaultTraefikV1Key
			if _, err := kvstore.Put(ctx, st, key, value); err != nil {
				t.Fatal(err)
			}
			imp, err := migrate.ReadTraefikV1Store(ctx, st, prefix)
			if !errors.Is(err, migrate.ErrFormat) || imp != nil {
				t.Fatalf("%s: got %v, %v; want an error wrapping ErrFormat", prefix, imp, err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("%s: the error %q does not name the key %s", prefix, err, key)
			}
			noSecret(t, prefix+" error", err.Error(), m.secrets)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			read func() (*migrate.Imported, error)
			want string
		}{
			{"another prefix", func() (*migrate.Imported, error) {
				return migrate.ReadTraefikV1Store(ctx, st, "nothing-here")
			}, "check --prefix and --traefik-key"},
			{"another storage setting", func() (*migrate.Imported, error) {
				return migrate.ReadTraefikV1Key(ctx, st, m.traefikPrefix+"/acme/certs/object")
			}, "keys ending in /object there: " + m.traefikKey},
		} {
			imp, err := tc.read()
			if !errors.Is(err, kvstore.ErrNotFound) || imp != nil {
				t.Fatalf("%s: got %v, %v; want an error wrapping kvstore.ErrNotFound", tc.name, imp, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: the error %q does not say %q", tc.name, err, tc.want)
			}
		}
	})
}

// newMigration converts the example file and builds Traefik's value with
// certificates issued for the test.
func newMigration(t *testing.T, st kvstore.Store, tc importCase) *migration {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "traefik-v1", tc.example))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := migrate.TraefikV1(tc.example, src)
	if err != nil {
		t.Fatalf("TraefikV1: %v", err)
	}
	cfg, err := config.Parse("tollgate.toml", conv.Config)
	if err != nil {
		t.Fatalf("the converted %s does not validate: %v", tc.example, err)
	}
	if cfg.ACME == nil || cfg.Store == nil || conv.ACMEStorage == "" {
		t.Fatalf("%s converts without [acme], [store] or acme storage", tc.example)
	}
	_, keyText := newKeyring(t)
	kr, err := acme.LoadKeyring(cfg.ACME.EncryptionKeyFile, cfg.ACME.EncryptionKeyEnv, cfg.ACME.InsecurePlaintextKeys,
		func(name string) string {
			if name == migrate.EncryptionKeyEnv {
				return keyText
			}
			return ""
		})
	if err != nil {
		t.Fatalf("the converted configuration's encryption key: %v", err)
	}
	m := &migration{
		st: st, keys: acme.NewKeys(cfg.Store.Prefix), kr: kr,
		ca: cmp.Or(cfg.ACME.CAServer, config.DefaultCAServer), email: cfg.ACME.Email,
		acctKey: rsaKey(t), accountURI: tc.accountURI,
		certs:      tc.certs(t, newTestCA(t, "Test Intermediate R1")),
		traefikKey: conv.ACMEStorage + "/object",
	}
	m.traefikPrefix, _, _ = strings.Cut(conv.ACMEStorage, "/")
	if m.traefikPrefix+"/"+migrate.DefaultTraefikV1Key != m.traefikKey {
		t.Fatalf("%s keeps its ACME data at %s, not below its prefix as the test expects", tc.example, m.traefikKey)
	}
	m.blob = gzipped(t, mustJSON(t, traefikV1Account(m.acctKey, m.email, m.accountURI, entries(m.certs)...)))
	m.secrets = secretsOf(t, legoKeyPEM(t, m.acctKey))
	for _, c := range m.certs {
		m.secrets = append(m.secrets, secretsOf(t, c.entry.cert.keyPEM)...)
	}
	return m
}

func entries(certs []stored) []v1Entry {
	var out []v1Entry
	for _, c := range certs {
		out = append(out, c.entry)
	}
	return out
}

// checkRead checks what ReadTraefikV1Store returned.
func (m *migration) checkRead(t *testing.T, imp *migrate.Imported) {
	t.Helper()
	a := imp.Account
	if a == nil || a.Email != m.email || a.URI != m.accountURI || !strings.Contains(string(a.Registration), `"valid"`) {
		t.Fatalf("account = %+v; want %s at %s with its registration", a, m.email, m.accountURI)
	}
	if len(imp.Certs) != len(m.certs) {
		t.Fatalf("%d certificates read, want %d", len(imp.Certs), len(m.certs))
	}
	for i, c := range imp.Certs {
		want := m.certs[i].entry
		if c.Main != want.main || !slices.Equal(c.SANs, want.sans) || !bytes.Equal(c.Chain, want.cert.chain) ||
			!bytes.Equal(c.Key, want.cert.keyPEM) || !strings.Contains(c.CertURL, "/acme/cert/") {
			t.Fatalf("certificate %d = %s %v (chain %t, key %t, URL %q); want %s %v", i, c.Main, c.SANs,
				bytes.Equal(c.Chain, want.cert.chain), bytes.Equal(c.Key, want.cert.keyPEM), c.CertURL, want.main, want.sans)
		}
	}
	for _, text := range []string{fmt.Sprintf("%v", imp), fmt.Sprintf("%+v", imp), fmt.Sprintf("%#v", imp), fmt.Sprintf("%+v", *a), string(mustJSON(t, imp))} {
		noSecret(t, "the formatted import", text, m.secrets)
	}
}

// checkItems checks that Import reported the account and each certificate
// with status, in order.
func (m *migration) checkItems(t *testing.T, res *migrate.ImportResult, status migrate.Status, dryRun bool) {
	t.Helper()
	acctKey, err := m.keys.Account(m.ca, m.email)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("account %s %s %s", m.email, status, acctKey)}
	var mains []string
	for _, c := range m.certs {
		mains = append(mains, c.names[0])
	}
	slices.Sort(mains)
	for _, main := range mains {
		key, err := m.keys.Cert(main)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("certificate %s %s %s", main, status, key))
	}
	var got []string
	for _, it := range res.Items {
		got = append(got, fmt.Sprintf("%s %s %s %s", it.Kind, it.Name, it.Status, it.Key))
		if it.DryRun != dryRun {
			t.Errorf("%s: DryRun %t, want %t", it, it.DryRun, dryRun)
		}
		if it.Kind == "certificate" && !strings.Contains(it.Origin, "DomainsCertificate.Certs[") {
			t.Errorf("%s: origin %q", it, it.Origin)
		}
		noSecret(t, "the item", it.String()+" "+it.Detail, m.secrets)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := res.Count(status); n != len(want) {
		t.Fatalf("Count(%s) = %d, want %d", status, n, len(want))
	}
	if dryRun && status == migrate.StatusReplaced && !strings.Contains(res.Items[0].String(), "would be replaced") {
		t.Errorf("a dry run reads %q, want \"would be replaced\"", res.Items[0])
	}
	if status == migrate.StatusImported {
		for _, it := range res.Items {
			if it.Name == "admin.example.com" && !strings.Contains(it.Detail, "left out: old.example.com") {
				t.Errorf("%s: the name Traefik listed that the certificate lacks is not reported", it)
			}
		}
	}
}

// records returns every record under tollgate's ACME prefix.
func (m *migration) records(t *testing.T) map[string]kvstore.KV {
	t.Helper()
	l, err := m.st.List(testContext(t), m.keys.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]kvstore.KV{}
	for _, kv := range l.KVs {
		out[kv.Key] = kv
	}
	if len(out) != len(m.certs)+1 {
		t.Fatalf("%d records under %s, want %d", len(out), m.keys.Prefix(), len(m.certs)+1)
	}
	return out
}

// sameKVs reports whether a and b hold the same keys, values and
// revisions.
func sameKVs(a, b map[string]kvstore.KV) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.Revision != v.Revision || !bytes.Equal(w.Value, v.Value) {
			return false
		}
	}
	return true
}

// checkRecords checks the certificate records as stored.
func (m *migration) checkRecords(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	for _, c := range m.certs {
		key, err := m.keys.Cert(c.names[0])
		if err != nil {
			t.Fatal(err)
		}
		kv, err := m.st.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", c.names[0], err)
		}
		noSecret(t, "the stored record", string(kv.Value), m.secrets)
		rec, err := acme.DecodeCert(kv.Value)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		leaf := c.entry.cert.leaf
		if !slices.Equal(rec.Domains, c.names) || rec.CA != m.ca || rec.KeyType != c.keyType ||
			rec.Issuer != "Test Intermediate R1" || rec.Serial != fmt.Sprintf("%x", leaf.SerialNumber) ||
			!rec.NotAfter.Equal(leaf.NotAfter) || !rec.NotBefore.Equal(leaf.NotBefore) ||
			rec.Certificate != string(c.entry.cert.chain) || !strings.HasSuffix(rec.CertURL, rec.Serial) || rec.Node != "import" {
			t.Fatalf("%s = %+v; want domains %v, CA %s, key type %s, the leaf's serial and dates, the chain and its URL",
				key, rec, c.names, m.ca, c.keyType)
		}
		if rec.PrivateKey.Alg != acme.AlgXChaCha || rec.PrivateKey.KeyID != m.kr.ActiveID() {
			t.Fatalf("%s: private key sealed with %q under %q, want %q under %q",
				key, rec.PrivateKey.Alg, rec.PrivateKey.KeyID, acme.AlgXChaCha, m.kr.ActiveID())
		}
	}
}

// checkServed runs a replica's certificate cache on the store and checks
// that it serves each certificate, with its own key, for its names.
func (m *migration) checkServed(t *testing.T) {
	t.Helper()
	c, err := acme.NewCache(acme.CacheConfig{Store: m.st, Keys: m.keys, Keyring: m.kr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache: %v", err)
		}
	}()
	select {
	case <-c.Ready():
	case <-time.After(time.Minute):
		t.Fatal("the certificate cache is not ready after a minute")
	}
	for _, s := range m.certs {
		rec, pair, ok := c.Cert(s.names[0])
		if !ok || rec == nil || pair == nil {
			t.Fatalf("the cache has no certificate for %s", s.names[0])
		}
		if !pair.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.entry.cert.key.Public()) {
			t.Fatalf("%s is served with another private key", s.names[0])
		}
		for _, name := range s.serve {
			got, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
			if err != nil || got == nil {
				t.Fatalf("no certificate served for %s: %v", name, err)
			}
			leaf, err := x509.ParseCertificate(got.Certificate[0])
			if err != nil || !leaf.Equal(s.entry.cert.leaf) {
				t.Fatalf("%s is served another certificate (%v)", name, err)
			}
			if len(got.Certificate) != 2 {
				t.Fatalf("%s is served a chain of %d, want the leaf and its intermediate", name, len(got.Certificate))
			}
		}
	}
}

// checkAccount checks that the account record opens to Traefik's key.
func (m *migration) checkAccount(t *testing.T) {
	t.Helper()
	key, err := m.keys.Account(m.ca, m.email)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := m.st.Get(testContext(t), key)
	if err != nil {
		t.Fatalf("the account record: %v", err)
	}
	noSecret(t, "the account record", string(kv.Value), m.secrets)
	var rec acme.AccountRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Version != acme.RecordVersion || rec.CA != m.ca || rec.Email != m.email || rec.URI != m.accountURI ||
		!strings.Contains(string(rec.Registration), "mailto:"+m.email) {
		t.Fatalf("account record = %+v; want %s at %s for %s", rec, m.email, m.accountURI, m.ca)
	}
	p, err := m.kr.Open(key, rec.Key)
	if err != nil {
		t.Fatalf("the account key does not open: %v", err)
	}
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("the account key is not a PKCS #8 PEM")
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := priv.(*rsa.PrivateKey); !ok || !k.Equal(m.acctKey) {
		t.Fatalf("the account key is %T, not Traefik's", priv)
	}
}

// TestReadTraefikV1StorePrefix reads Traefik's data below prefixes
// written with and without slashes, and with none at all.
func TestReadTraefikV1StorePrefix(t *testing.T) {
	ctx := testContext(t)
	st := embeddedStore(t)
	doc := mustJSON(t, traefikV1Account(rsaKey(t), "ops@example.com", "https://acme-v02.api.letsencrypt.org/acme/acct/1"))
	for _, key := range []string{"traefik/" + migrate.DefaultTraefikV1Key, "edge/prod/" + migrate.DefaultTraefikV1Key, migrate.DefaultTraefikV1Key} {
		if _, err := kvstore.Put(ctx, st, key, gzipped(t, doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ prefix, key string }{
		{"traefik", "traefik/acme/account/object"},
		{"/traefik/", "traefik/acme/account/object"},
		{"/edge/prod", "edge/prod/acme/account/object"},
		{"", "acme/account/object"},
		{"/", "acme/account/object"},
	} {
		imp, err := migrate.ReadTraefikV1Store(ctx, st, tc.prefix)
		if err != nil {
			t.Fatalf("ReadTraefikV1Store(%q): %v", tc.prefix, err)
		}
		if imp.Source != tc.key || imp.Account == nil || imp.Account.Email != "ops@example.com" {
			t.Fatalf("ReadTraefikV1Store(%q) read %s (account %+v), want %s", tc.prefix, imp.Source, imp.Account, tc.key)
		}
	}
}

// TestImportAccountOtherDirectory: an account is imported only when it was
// registered at the configured CA's host and port; one registered on the
// same host at another port (another directory) is left out, for the
// leader to register its own.
func TestImportAccountOtherDirectory(t *testing.T) {
	ctx := testContext(t)
	kr, _ := newKeyring(t)
	for _, tc := range []struct {
		ca, account string
		want        migrate.Status
	}{
		{"https://ca.test:14000/dir", "https://ca.test:14000/my-account/1", migrate.StatusImported},
		{"https://ca.test:14000/dir", "https://ca.test:15000/my-account/1", migrate.StatusSkipped},
		{"https://ca.test/directory", "https://ca.test:443/acme/acct/1", migrate.StatusImported},
		{"https://ca.test/directory", "https://ca.test:8443/acme/acct/1", migrate.StatusSkipped},
		{"https://acme-v02.api.letsencrypt.org/directory", "https://acme-staging-v02.api.letsencrypt.org/acme/acct/1", migrate.StatusSkipped},
	} {
		st := embeddedStore(t)
		data := &migrate.Imported{Account: &migrate.Account{Email: "ops@example.com", URI: tc.account,
			Key: migrate.Secret(legoKeyPEM(t, rsaKey(t)))}}
		res, err := migrate.Import(ctx, st, acme.NewKeys("tollgate"), kr, tc.ca, data, migrate.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Items[0].Status; got != tc.want {
			t.Errorf("account %s for CA %s: %s (%s), want %s", tc.account, tc.ca, got, res.Items[0].Detail, tc.want)
		}
	}
}
