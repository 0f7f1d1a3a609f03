package main

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
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/migrate"
)

func TestMigrateTraefikV1(t *testing.T) {
	const src = "../../migrate/testdata/traefik-v1/cluster-consul.toml"
	dir := t.TempDir()
	// The converted files read the encryption key from this variable, as
	// check does.
	t.Setenv(migrate.EncryptionKeyEnv, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	existing := filepath.Join(dir, "existing.toml")
	if err := os.WriteFile(existing, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notTOML := writeFile(t, "traefik.toml", "[entryPoints]\n  [entryPoints.http\n")
	twoProblems := writeFile(t, "two.toml", "[entryPoints.a]\n  address = \":80\"\n  [entryPoints.a.proxyProtocol]\n[entryPoints.b]\n  address = \":81\"\n  [entryPoints.b.proxyProtocol]\n")
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"no subcommand", []string{"migrate"}, exitUsage, "", "name a subcommand: "},
		{"unknown source", []string{"migrate", "traefik-v3", src}, exitUsage, "", `unknown command "traefik-v3"`},
		{"help", []string{"migrate", "traefik-v1", "-h"}, exitOK, "Exit codes: 0 converted", ""},
		{"no file", []string{"migrate", "traefik-v1"}, exitUsage, "", "missing argument"},
		{"missing file", []string{"migrate", "traefik-v1", filepath.Join(dir, "nope.toml")}, exitUsage, "", "nope.toml does not exist"},
		{"output exists", []string{"migrate", "traefik-v1", "--out", existing, src}, exitUsage, "", "existing.toml exists: give --force"},
		{"output is input", []string{"migrate", "traefik-v1", "--out", src, "--force", src}, exitUsage, "", "is the file being converted"},
		{"not TOML", []string{"migrate", "traefik-v1", notTOML}, exitInvalid, "", notTOML + ":2:"},
		{"one problem", []string{"migrate", "traefik-v1", notTOML}, exitInvalid, "", "cannot be converted: 1 problem, listed above"},
		{"two problems", []string{"migrate", "traefik-v1", twoProblems}, exitInvalid, "", "cannot be converted: 2 problems, listed above"},
		{"to stdout", []string{"migrate", "traefik-v1", src}, exitOK, "[acme]", "tollgate certs import --from-traefik-v1 --kv consul://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tollgate(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout %q and stderr %q", code, tc.code, out, errOut, tc.stdout, tc.stderr)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me\n" {
		t.Errorf("a refused --out changed the file: %q", b)
	}

	// --out and --report, then the output passes check.
	out, report := filepath.Join(dir, "tollgate.toml"), filepath.Join(dir, "report.txt")
	code, stdout, stderr := tollgate(t, "migrate", "traefik-v1", "--out", out, "--report", report, src)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "report in "+report) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rep, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(rep), "unsupported") || !strings.Contains(string(rep), "cluster-consul.toml:") {
		t.Fatalf("report: %v\n%s", err, rep)
	}
	if code, out, errOut := tollgate(t, "check", "--config", out); code != exitOK {
		t.Fatalf("check of the converted file: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := tollgate(t, "migrate", "traefik-v1", "--out", out, src); code != exitUsage {
		t.Fatalf("second run without --force: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := tollgate(t, "migrate", "traefik-v1", "--out", out, "--report", report, "--force", src); code != exitOK {
		t.Fatalf("second run with --force: exit %d\n%s", code, errOut)
	}

	// Every example converts to a file that check (which builds the
	// routing tables as a replica would) accepts.
	examples, err := filepath.Glob("../../migrate/testdata/traefik-v1/*.toml")
	if err != nil || len(examples) == 0 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, ex := range examples {
		out := filepath.Join(dir, "converted-"+filepath.Base(ex))
		if code, _, errOut := tollgate(t, "migrate", "traefik-v1", "--out", out, "--report", out+".report", ex); code != exitOK {
			t.Fatalf("%s: exit %d\n%s", ex, code, errOut)
		}
		// The examples name files of their hosts (CA bundles, tokens).
		if code, stdout, errOut := tollgate(t, "check", "--config", out, "--skip-files"); code != exitOK {
			t.Errorf("%s converted: check exit %d\n%s%s", ex, code, stdout, errOut)
		}
	}
}

// TestMigrateTraefikV1FlagsAndIngresses converts a file whose store is on
// Traefik's command line (--traefik-args) with the cluster's manifests
// (--ingresses, a directory): the report gives the import command of
// that store, names the --out file, checks the Ingresses, and the output
// passes check.
func TestMigrateTraefikV1FlagsAndIngresses(t *testing.T) {
	const examples = "../../migrate/testdata/traefik-v1/"
	dir := t.TempDir()
	manifests := filepath.Join(dir, "k8s")
	for _, d := range []string{"apps/shop", ".git"} {
		if err := os.MkdirAll(filepath.Join(manifests, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	yaml, err := os.ReadFile(examples + "kubernetes.ingresses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"apps/shop/ingresses.yaml": string(yaml),
		".git/ignored.yaml":        "not: [valid",
		"README.md":                "not a manifest",
	} {
		if err := os.WriteFile(filepath.Join(manifests, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, report := filepath.Join(dir, "cluster.toml"), filepath.Join(dir, "report.txt")
	code, stdout, stderr := tollgate(t, "migrate", "traefik-v1", "--out", out, "--report", report,
		"--traefik-args", "--consul --consul.endpoint=10.0.0.5:8500", "--traefik-args", "--consul.prefix='traefik' --kubernetes --kubernetes.ingressclass=traefik-public",
		"--ingresses", manifests, examples+"cluster-args.toml")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--traefik-args: consul.endpoint: converted",
		"tollgate check --config " + out + ", then import them",
		"tollgate certs import --from-traefik-v1 --kv consul://10.0.0.5:8500 --prefix traefik --config " + out,
		filepath.Join(manifests, "apps/shop/ingresses.yaml") + ":16: ingress shop/web: action",
		"kubectl annotate ingress -n shop web --overwrite",
	} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("the report has no %q", want)
		}
	}
	if strings.Contains(string(rep), "ignored.yaml") || strings.Contains(string(rep), "--from-acme-json") {
		t.Errorf("the report reads a hidden file, or advises a file import for a store key:\n%s", rep)
	}
	if code, stdout, errOut := tollgate(t, "check", "--config", out, "--skip-files"); code != exitOK {
		t.Fatalf("check of the converted file: exit %d\n%s%s", code, stdout, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unclosed quote", []string{"--traefik-args", "--consul.endpoint='a"}, "a quote is not closed"},
		{"missing manifests", []string{"--ingresses", filepath.Join(dir, "nope")}, "does not exist"},
		{"bad flag value", []string{"--traefik-args", "--consul.watch=maybe"}, "--traefik-args: --consul.watch:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"migrate", "traefik-v1"}, tc.args...)
			code, _, errOut := tollgate(t, append(args, examples+"cluster-args.toml")...)
			if code == exitOK || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant a failure with %q", code, errOut, tc.want)
			}
		})
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tollgate(t, "migrate", "traefik-v1", "--ingresses", empty, examples+"cluster-args.toml"); code != exitUsage || !strings.Contains(errOut, "no .yaml, .yml or .json file") {
		t.Fatalf("an empty directory: exit %d\n%s", code, errOut)
	}
}

// v1Cert is a certificate as a Traefik test fixture holds it.
type v1Cert struct {
	main   string
	sans   []string
	chain  []byte
	keyPEM []byte
}

// newV1Cert makes a self-signed certificate for names, valid from
// notBefore for life, with an RSA or ECDSA key as Traefik's lego wrote them
// (PKCS #1 or SEC 1 PEM).
func newV1Cert(t *testing.T, rsaKey bool, notBefore time.Time, life time.Duration, names ...string) v1Cert {
	t.Helper()
	var (
		signer  any
		pub     any
		keyPEM  []byte
		keyType string
	)
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		signer, pub, keyType = k, &k.PublicKey, "RSA PRIVATE KEY"
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: x509.MarshalPKCS1PrivateKey(k)})
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		signer, pub = k, &k.PublicKey
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notBefore.Add(life),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return v1Cert{main: names[0], sans: names[1:], chain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM: keyPEM}
}

// v1Blob is the value Traefik 1.7 keeps at <storage>/object: its account
// with every certificate, as JSON, gzip-compressed. The account key is
// PKCS #1 DER, certificates and their keys PEM; encoding/json writes
// them all as base64, as Traefik's did.
func v1Blob(t *testing.T, email string, accountKey *rsa.PrivateKey, certs ...v1Cert) []byte {
	t.Helper()
	type certificate struct {
		Domain        string
		CertURL       string
		CertStableURL string
		PrivateKey    []byte
		Certificate   []byte
	}
	type domainsCertificate struct {
		Domains struct {
			Main string
			SANs []string
		}
		Certificate certificate
	}
	var dcs []domainsCertificate
	for i, c := range certs {
		var dc domainsCertificate
		dc.Domains.Main, dc.Domains.SANs = c.main, c.sans
		dc.Certificate = certificate{
			Domain: c.main, CertURL: fmt.Sprintf("https://ca.test/cert/%d", i), CertStableURL: fmt.Sprintf("https://ca.test/cert/%d", i),
			PrivateKey: c.keyPEM, Certificate: c.chain,
		}
		dcs = append(dcs, dc)
	}
	doc := map[string]any{
		"Email": email,
		"Registration": map[string]any{
			"body": map[string]any{"status": "valid", "contact": []string{"mailto:" + email}},
			"uri":  "https://ca.test/acct/1",
		},
		"PrivateKey":         x509.MarshalPKCS1PrivateKey(accountKey),
		"KeyType":            "4096",
		"DomainsCertificate": map[string]any{"Certs": dcs},
		"ChallengeCerts":     map[string]any{},
		"HTTPChallenge":      map[string]any{},
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(js); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCertsImport imports a Traefik 1.x cluster's ACME data, built by the
// test and put into a real Consul where Traefik keeps it, and a Traefik v2
// acme.json, and checks what the replicas would serve.
func TestCertsImport(t *testing.T) {
	consul := testserver.Consul(t)
	kv := "consul://" + consul.Addr
	key := encryptionKey(t)
	kr := keyring(t, key)
	keyFile := writeFile(t, "key", key+"\n")
	cfgFile := acmeConfig(t, kv, fmt.Sprintf("encryptionKeyFile = %q\ncaServer = \"https://ca.test/dir\"", keyFile))
	keys := acme.NewKeys("keys") // acmeConfig's prefix

	accountKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	shop := newV1Cert(t, true, now.Add(-24*time.Hour), 90*24*time.Hour, "shop.example.com", "www.shop.example.com")
	api := newV1Cert(t, false, now.Add(-24*time.Hour), 90*24*time.Hour, "api.example.com")
	old := newV1Cert(t, false, now.Add(-100*24*time.Hour), 90*24*time.Hour, "old.example.com")
	blob := v1Blob(t, "ops@example.com", accountKey, shop, api, old)
	// A second cluster whose certificate's key is another's.
	wrong := newV1Cert(t, false, now.Add(-time.Hour), 90*24*time.Hour, "wrong.example.com")
	wrong.keyPEM = api.keyPEM
	wrongBlob := v1Blob(t, "other@example.com", accountKey, wrong)
	withStore(t, kv, func(ctx context.Context, st kvstore.Store) {
		for k, v := range map[string][]byte{
			"traefik/acme/account/object": blob,
			"edge/acme/account/object":    []byte(base64.StdEncoding.EncodeToString(wrongBlob)),
			"broken/acme/account/object":  []byte("this is not gzip"),
		} {
			if _, err := kvstore.Put(ctx, st, k, v); err != nil {
				t.Fatal(err)
			}
		}
	})
	secrets := []string{string(shop.keyPEM), string(api.keyPEM), base64.StdEncoding.EncodeToString(shop.keyPEM)}
	noSecrets := func(t *testing.T, outputs ...string) {
		t.Helper()
		for _, o := range outputs {
			for _, s := range secrets {
				if strings.Contains(o, s) || strings.Contains(o, "PRIVATE KEY") {
					t.Fatalf("output holds a private key:\n%s", o)
				}
			}
		}
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"no source", []string{"--config", cfgFile}, exitUsage, "give either --from-traefik-v1 or --from-acme-json FILE"},
		{"both sources", []string{"--from-traefik-v1", "--from-acme-json", "x.json", "--config", cfgFile}, exitUsage, "give either"},
		{"prefix with acme.json", []string{"--from-acme-json", "x.json", "--prefix", "traefik"}, exitUsage, "give tollgate's prefix with --to-prefix"},
		{"no store", []string{"--from-traefik-v1"}, exitUsage, "give --kv URL"},
		{"missing key", []string{"--from-traefik-v1", "--kv", kv, "--traefik-key", "traefik/acme/acount/object", "--config", cfgFile}, exitFailure, "keys ending in /object there: traefik/acme/account/object"},
		{"not Traefik's", []string{"--from-traefik-v1", "--kv", kv, "--prefix", "broken", "--config", cfgFile}, exitFailure, "neither gzip, base64 nor JSON"},
		{"no acme section", []string{"--from-traefik-v1", "--kv", kv, "--config", "../../examples/quickstart.toml"}, exitInvalid, "has no [acme] section"},
		{"key mismatch", []string{"--from-traefik-v1", "--kv", kv, "--traefik-key", "edge/acme/account/object", "--config", cfgFile}, exitFailure, "1 item(s) not imported"},
		{"dry run", []string{"--from-traefik-v1", "--kv", kv, "--prefix", "traefik", "--config", cfgFile, "--dry-run"}, exitOK, "dry run: 3 imported, 1 skipped, 0 failed; nothing written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tollgate(t, append([]string{"certs", "import"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.output) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant %q", code, tc.code, out, errOut, tc.output)
			}
			noSecrets(t, out, errOut)
		})
	}
	withStore(t, kv, func(ctx context.Context, st kvstore.Store) {
		certKey, _ := keys.Cert("shop.example.com")
		if _, err := st.Get(ctx, certKey); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("the dry run wrote %s: %v", certKey, err)
		}
	})

	// The import the issue names, then again: the second run keeps what
	// the first wrote.
	args := []string{"certs", "import", "--from-traefik-v1", "--kv", kv, "--prefix", "traefik", "--config", cfgFile}
	code, out, errOut := tollgate(t, args...)
	if code != exitOK || !strings.Contains(out, "3 imported, 1 skipped, 0 failed") || !strings.Contains(out, "certificate old.example.com: skipped") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	noSecrets(t, out, errOut)
	code, out, errOut = tollgate(t, args...)
	if code != exitOK || !strings.Contains(out, "0 imported, 3 exists, 1 skipped, 0 failed") {
		t.Fatalf("second import: exit %d\n%s%s", code, out, errOut)
	}

	// The records are what a replica serves: the chain in clear, the key
	// sealed under tollgate's encryption key for its record's key.
	withStore(t, kv, func(ctx context.Context, st kvstore.Store) {
		for _, c := range []v1Cert{shop, api} {
			certKey, _ := keys.Cert(c.main)
			got, err := st.Get(ctx, certKey)
			if err != nil {
				t.Fatalf("%s: %v", c.main, err)
			}
			var rec acme.CertRecord
			if err := json.Unmarshal(got.Value, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Domains[0] != c.main || string(rec.Certificate) != string(c.chain) || rec.CA != "https://ca.test/dir" {
				t.Errorf("%s: record %+v", c.main, rec)
			}
			if bytes.Contains(got.Value, c.keyPEM) {
				t.Errorf("%s: the private key is stored in clear", c.main)
			}
			keyPEM, err := kr.Open(certKey, rec.PrivateKey)
			if err != nil {
				t.Fatalf("%s: the key does not open: %v", c.main, err)
			}
			if !sameKey(t, keyPEM, c.keyPEM) {
				t.Errorf("%s: the imported key is not the certificate's", c.main)
			}
		}
		acctKey, err := keys.Account("https://ca.test/dir", "ops@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, acctKey); err != nil {
			t.Errorf("account record %s: %v", acctKey, err)
		}
	})
	code, out, errOut = tollgate(t, "certs", "list", "--config", cfgFile)
	if code != exitOK || !strings.Contains(out, "shop.example.com") || !strings.Contains(out, "api.example.com") {
		t.Fatalf("certs list: exit %d\n%s%s", code, out, errOut)
	}

	// A Traefik v2 acme.json with two resolvers, into the embedded store.
	fileStore := "file:" + filepath.Join(t.TempDir(), "state.db")
	fileCfg := acmeConfig(t, fileStore, fmt.Sprintf("encryptionKeyFile = %q", keyFile))
	resolver := func(c v1Cert) map[string]any {
		return map[string]any{
			"Account": map[string]any{"Email": "ops@example.com", "PrivateKey": x509.MarshalPKCS1PrivateKey(accountKey), "KeyType": "4096"},
			"Certificates": []map[string]any{{
				"domain": map[string]any{"main": c.main, "sans": c.sans}, "certificate": c.chain, "key": c.keyPEM, "Store": "default",
			}},
		}
	}
	js, err := json.Marshal(map[string]any{"le": resolver(shop), "le-staging": resolver(api)})
	if err != nil {
		t.Fatal(err)
	}
	acmeJSON := writeFile(t, "acme.json", string(js))
	if code, out, errOut := tollgate(t, "certs", "import", "--from-acme-json", acmeJSON, "--config", fileCfg); code != exitUsage || !strings.Contains(errOut, "le-staging") {
		t.Fatalf("several resolvers without --resolver: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = tollgate(t, "certs", "import", "--from-acme-json", acmeJSON, "--resolver", "le", "--config", fileCfg)
	if code != exitOK || !strings.Contains(out, "certificate shop.example.com: imported") || strings.Contains(out, "api.example.com") {
		t.Fatalf("acme.json import: exit %d\n%s%s", code, out, errOut)
	}
	noSecrets(t, out, errOut)
}

// sameKey reports whether two PEM private keys are the same key.
func sameKey(t *testing.T, a, b []byte) bool {
	t.Helper()
	parse := func(p []byte) any {
		blk, _ := pem.Decode(p)
		if blk == nil {
			t.Fatal("not PEM")
		}
		if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			return k
		}
		if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return k
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ka, kb := parse(a), parse(b)
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	return ka.(equaler).Equal(kb)
}
