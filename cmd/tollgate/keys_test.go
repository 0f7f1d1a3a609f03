package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/acme"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
	"github.com/tollgate-proxy/tollgate/kvstore"
	"github.com/tollgate-proxy/tollgate/kvstore/backend"
)

// encryptionKey returns base64 of 32 random bytes.
func encryptionKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func keyring(t *testing.T, keys ...string) *acme.Keyring {
	t.Helper()
	kr, err := acme.ParseKeyring(strings.Join(keys, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// privateKeyPEM returns a fresh P-256 key as PEM, and the key.
func privateKeyPEM(t *testing.T) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), priv
}

// sealedCert returns a certificate record for name, as the leader writes
// it, its key sealed by kr for the store key.
func sealedCert(t *testing.T, kr *acme.Keyring, key, name string) []byte {
	t.Helper()
	keyPEM, priv := privateKeyPEM(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(acme.CertRecord{
		Version: acme.RecordVersion, Domains: []string{name}, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter,
		Issuer: name, Serial: "01", KeyType: "EC256", CA: "https://ca.test/dir", Node: "n1", Token: 1,
		Written:     time.Now().UTC(),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), PrivateKey: sealed,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sealedAccount(t *testing.T, kr *acme.Keyring, key string) []byte {
	t.Helper()
	keyPEM, _ := privateKeyPEM(t)
	sealed, err := kr.Seal(key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(acme.AccountRecord{
		Version: acme.RecordVersion, CA: "https://ca.test/dir", Email: "ops@example.com", URI: "https://ca.test/acct/1",
		Key: sealed, Node: "n1", Token: 1, Written: time.Now().UTC(),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withStore opens endpoint for f and closes it again, so that the
// command can open the embedded store's file after it.
func withStore(t *testing.T, endpoint string, f func(ctx context.Context, st kvstore.Store)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := backend.Open(ctx, endpoint, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f(ctx, st)
}

// acmeConfig is a valid configuration with [acme] and extra lines in it.
func acmeConfig(t *testing.T, endpoint, acmeLines string) string {
	t.Helper()
	return writeFile(t, "tollgate.toml", fmt.Sprintf(`
[store]
endpoint = %q
prefix = "keys"

[entryPoints.websecure]
address = "127.0.0.1:0"
  [entryPoints.websecure.http.tls]

[acme]
email = "ops@example.com"
%s
  [acme.tlsChallenge]
`, endpoint, acmeLines))
}

func TestKeysUsage(t *testing.T) {
	dir := t.TempDir()
	fileStore := "file:" + filepath.Join(dir, "state.db")
	keyFile := writeFile(t, "key", encryptionKey(t)+"\n")
	t.Setenv("TOLLGATE_TEST_ROTATE_KEY", encryptionKey(t))
	unreachable := fmt.Sprintf("consul://127.0.0.1:%d", testserver.FreePort(t))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"listed in usage", []string{"help"}, exitOK, "rotate: re-encrypt"},
		{"no subcommand", []string{"keys"}, exitUsage, "name a subcommand: rotate"},
		{"unknown subcommand", []string{"keys", "turn"}, exitUsage, `unknown command "turn"`},
		{"keys help", []string{"keys", "help"}, exitOK, "Run \"tollgate keys rotate -h\""},
		{"procedure in help", []string{"keys", "rotate", "-h"}, exitOK, "1. Add the new key FIRST"},
		{"no configuration", []string{"keys", "rotate"}, exitUsage, "give --config FILE"},
		{"stray argument", []string{"keys", "rotate", "--kv", fileStore, "now"}, exitUsage, `unexpected argument "now"`},
		{"no acme", []string{"keys", "rotate", "--config", "../../examples/quickstart.toml"}, exitInvalid, "has no [acme] section"},
		{"plaintext", []string{"keys", "rotate", "--config", acmeConfig(t, fileStore, "insecurePlaintextKeys = true")}, exitInvalid, "[acme] names no encryption key"},
		{"missing key file", []string{"keys", "rotate", "--config", acmeConfig(t, fileStore, `encryptionKeyFile = "/nonexistent/key"`)}, exitInvalid, "encryption key file"},
		{"bad key", []string{"keys", "rotate", "--config", acmeConfig(t, fileStore, fmt.Sprintf("encryptionKeyFile = %q", writeFile(t, "bad", "c2hvcnQ=\n")))}, exitInvalid, "decodes to 5 bytes"},
		{"unset variable", []string{"keys", "rotate", "--config", acmeConfig(t, fileStore, `encryptionKeyEnv = "TOLLGATE_TEST_UNSET_KEY"`)}, exitInvalid, "TOLLGATE_TEST_UNSET_KEY is empty or not set"},
		{"empty store", []string{"keys", "rotate", "--config", acmeConfig(t, fileStore, `encryptionKeyEnv = "TOLLGATE_TEST_ROTATE_KEY"`)}, exitOK, "no certificates or accounts under keys/acme/"},
		{"no configuration in the store", []string{"keys", "rotate", "--kv", fileStore}, exitInvalid, "no configuration in the store"},
		{"unreachable store", []string{"keys", "rotate", "--config", acmeConfig(t, unreachable, fmt.Sprintf("encryptionKeyFile = %q", keyFile))}, exitStore, "tollgate keys rotate: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tollgate(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.output) {
				t.Fatalf("exit %d, want %d; output:\n%s%s\nwant it to contain %q", code, tc.code, stdout, stderr, tc.output)
			}
		})
	}
}

func TestKeysRotate(t *testing.T) {
	consul := testserver.Consul(t)
	for _, endpoint := range []string{"file:" + filepath.Join(t.TempDir(), "state.db"), "consul://" + consul.Addr} {
		name, _, _ := strings.Cut(endpoint, ":")
		t.Run(name, func(t *testing.T) { testKeysRotate(t, endpoint) })
	}
}

func testKeysRotate(t *testing.T, endpoint string) {
	oldKey, newKey, strangerKey := encryptionKey(t), encryptionKey(t), encryptionKey(t)
	old, kr, newOnly := keyring(t, oldKey), keyring(t, newKey, oldKey), keyring(t, newKey)
	keyFile := writeFile(t, "keys", "# new key first\n"+newKey+"\n"+oldKey+"\n")
	cfgFile := acmeConfig(t, endpoint, fmt.Sprintf("encryptionKeyFile = %q", keyFile))
	keys := acme.NewKeys("keys")
	certKey := func(name string) string {
		k, err := keys.Cert(name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	acctKey, err := keys.Account("https://ca.test/dir", "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	records := []string{certKey("a.example.com"), certKey("b.example.com"), acctKey}
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		for _, k := range records {
			var v []byte
			if k == acctKey {
				v = sealedAccount(t, old, k)
			} else {
				v = sealedCert(t, old, k, path.Base(k))
			}
			if _, err := kvstore.Put(ctx, st, k, v); err != nil {
				t.Fatal(err)
			}
		}
	})
	secrets := []string{oldKey, newKey, strangerKey, "PRIVATE KEY"}
	step := func(want int, wantOut []string, args ...string) (string, string) {
		t.Helper()
		args = append([]string{"keys", "rotate"}, args...)
		code, stdout, stderr := tollgate(t, args...)
		missing := slices.ContainsFunc(wantOut, func(w string) bool { return !strings.Contains(stdout, w) })
		if code != want || missing {
			t.Fatalf("tollgate %s: exit %d, want %d; stdout:\n%s\nstderr:\n%s\nwant stdout to contain %q",
				strings.Join(args, " "), code, want, stdout, stderr, wantOut)
		}
		for _, s := range secrets {
			if strings.Contains(stdout+stderr, s) {
				t.Fatalf("the output holds key material:\n%s%s", stdout, stderr)
			}
		}
		return stdout, stderr
	}
	oldID, newID := old.ActiveID(), kr.ActiveID()
	sealedWith := func() map[string]string {
		ids := map[string]string{}
		withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
			for _, k := range records {
				kv, err := st.Get(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				var rec struct{ PrivateKey, Key acme.Sealed }
				if err := json.Unmarshal(kv.Value, &rec); err != nil {
					t.Fatal(err)
				}
				s := rec.PrivateKey
				if k == acctKey {
					s = rec.Key
				}
				if _, err := newOnly.Open(k, s); err == nil {
					ids[k] = "new"
				} else if _, err := old.Open(k, s); err == nil {
					ids[k] = "old"
				}
			}
		})
		return ids
	}

	// A dry run lists what it would do and writes nothing.
	step(exitOK, []string{
		fmt.Sprintf("would reseal keys/acme/certs/7/a.example.com: %s → %s\n", oldID, newID),
		fmt.Sprintf("would reseal %s: %s → %s\n", acctKey, oldID, newID),
		"dry run: 3 checked: 3 would reseal, 0 already current, 0 failed; nothing written",
	}, "--config", cfgFile, "--dry-run")
	for k, s := range sealedWith() {
		if s != "old" {
			t.Fatalf("%s changed by a dry run", k)
		}
	}

	// The rotation.
	out, _ := step(exitOK, []string{
		"with key " + newID,
		fmt.Sprintf("resealed keys/acme/certs/7/a.example.com: %s → %s\n", oldID, newID),
		fmt.Sprintf("resealed keys/acme/certs/c/b.example.com: %s → %s\n", oldID, newID),
		fmt.Sprintf("resealed %s: %s → %s\n", acctKey, oldID, newID),
		"3 checked: 3 resealed, 0 already current, 0 failed\n",
	}, "--config", cfgFile)
	if n := strings.Count(out, "\n"); n != 5 {
		t.Fatalf("%d lines, want a header, 3 records and a summary:\n%s", n, out)
	}
	ids := sealedWith()
	for _, k := range records {
		if ids[k] != "new" {
			t.Fatalf("%s does not open with the new key alone", k)
		}
	}

	// Again: nothing to do.
	step(exitOK, []string{"3 checked: 0 resealed, 3 already current, 0 failed"}, "--config", cfgFile)

	// A record sealed under a key the keyring lacks is reported and kept.
	stray := certKey("stray.example.com")
	strayValue := sealedCert(t, keyring(t, strangerKey), stray, "stray.example.com")
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		if _, err := kvstore.Put(ctx, st, stray, strayValue); err != nil {
			t.Fatal(err)
		}
	})
	_, stderr := step(exitFailure, []string{
		"FAILED " + stray + ": encryption key not in the keyring",
		"4 checked: 0 resealed, 3 already current, 1 failed",
	}, "--config", cfgFile)
	if !strings.Contains(stderr, "1 record(s) left as they were") {
		t.Fatalf("stderr:\n%s", stderr)
	}
	withStore(t, endpoint, func(ctx context.Context, st kvstore.Store) {
		kv, err := st.Get(ctx, stray)
		if err != nil || string(kv.Value) != string(strayValue) {
			t.Fatalf("the failed record was changed or deleted (err %v)", err)
		}
		if err := kvstore.Delete(ctx, st, stray); err != nil {
			t.Fatal(err)
		}
	})

	// The configuration read from the store, as serve --kv reads it.
	if code, _, stderr := tollgate(t, "storeconfig", "--config", cfgFile, "--kv", endpoint); code != exitOK {
		t.Fatalf("storeconfig: exit %d: %s", code, stderr)
	}
	step(exitOK, []string{"3 checked: 0 resealed, 3 already current, 0 failed"}, "--kv", endpoint, "--prefix", "keys")
}
