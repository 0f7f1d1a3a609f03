package acme_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/acme"
)

// newKey returns base64 of 32 random bytes, as operators make keys.
func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func parseKeyring(t testing.TB, text string) *acme.Keyring {
	t.Helper()
	kr, err := acme.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpen(t *testing.T) {
	kr := parseKeyring(t, newKey(t))
	const path = "tollgate/acme/certs/example.com"
	secret := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	s, err := kr.Seal(path, secret)
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg != acme.AlgXChaCha || s.KeyID != kr.ActiveID() {
		t.Fatalf("sealed with %s under %q, want %s under %q", s.Alg, s.KeyID, acme.AlgXChaCha, kr.ActiveID())
	}
	if strings.Contains(s.Data, "secret") {
		t.Fatal("the sealed data holds the plaintext")
	}
	got, err := kr.Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("opened %q, want %q", got, secret)
	}
	if again, _ := kr.Seal(path, secret); again.Data == s.Data {
		t.Fatal("two seals of one plaintext are equal: the nonce is not random")
	}
	if kr.NeedsReseal(s) {
		t.Fatal("a value sealed under the active key needs resealing")
	}

	// The path is associated data: the value copied to another key does
	// not open.
	if _, err := kr.Open("tollgate/acme/certs/other.example.com", s); err == nil {
		t.Fatal("a sealed value opened under another path")
	}
	// Damage anywhere fails.
	raw, _ := base64.StdEncoding.DecodeString(s.Data)
	for _, i := range []int{0, 24, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		damaged := s
		damaged.Data = base64.StdEncoding.EncodeToString(bad)
		if _, err := kr.Open(path, damaged); err == nil {
			t.Fatalf("a value damaged at byte %d opened", i)
		}
	}
	for name, bad := range map[string]acme.Sealed{
		"not base64":        {Alg: acme.AlgXChaCha, KeyID: s.KeyID, Data: "%%%"},
		"too short":         {Alg: acme.AlgXChaCha, KeyID: s.KeyID, Data: base64.StdEncoding.EncodeToString(raw[:30])},
		"unknown algorithm": {Alg: "rot13", KeyID: s.KeyID, Data: s.Data},
	} {
		if _, err := kr.Open(path, bad); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestOpenUnknownKey(t *testing.T) {
	a, b := parseKeyring(t, newKey(t)), parseKeyring(t, newKey(t))
	s, err := a.Seal("k", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open("k", s)
	if !errors.Is(err, acme.ErrNoKey) {
		t.Fatalf("got %v, want ErrNoKey", err)
	}
	if _, err := acme.PlaintextKeyring().Open("k", s); !errors.Is(err, acme.ErrNoKey) {
		t.Fatalf("plaintext keyring: got %v, want ErrNoKey", err)
	}
}

// TestKeyRotation: a new key put first seals, and the old one still
// opens what it sealed until the records are resealed.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	before := parseKeyring(t, oldKey)
	s, err := before.Seal("k", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	after := parseKeyring(t, "# rotated\n"+newKey+"\n"+oldKey+"\n")
	if after.ActiveID() == before.ActiveID() {
		t.Fatal("the new key is not the active one")
	}
	if got, err := after.Open("k", s); err != nil || string(got) != "x" {
		t.Fatalf("old value under the rotated keyring: %q, %v", got, err)
	}
	if !after.NeedsReseal(s) {
		t.Fatal("a value sealed under the old key does not need resealing")
	}
	s2, err := after.Seal("k", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if s2.KeyID != after.ActiveID() || after.NeedsReseal(s2) {
		t.Fatalf("resealed under %q, want the active %q", s2.KeyID, after.ActiveID())
	}
	if _, err := before.Open("k", s2); !errors.Is(err, acme.ErrNoKey) {
		t.Fatalf("the old keyring opened a value of the new key: %v", err)
	}
}

func TestParseKeyring(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(250 + i) // some bytes base64 encodes as + / - _
	}
	std, url := base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)
	second := newKey(t)
	good := []struct {
		name, text string
		holds      []string // the keys the keyring opens with
	}{
		{"standard", std, []string{std}},
		{"URL unpadded", url, []string{std}},
		{"trailing newline and spaces", "  " + std + "  \n", []string{std}},
		{"comma separated", std + "," + second, []string{std, second}},
		{"lines and comments", "# keys\n" + second + "\n\n# old\n" + std + "\r\n", []string{second, std}},
		{"duplicates", std + " " + url, []string{std}},
	}
	for _, tc := range good {
		kr, err := acme.ParseKeyring(tc.text)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		for _, k := range tc.holds {
			s, err := parseKeyring(t, k).Seal("p", []byte("v"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.Open("p", s); err != nil {
				t.Errorf("%s: does not open a value sealed under one of its keys: %v", tc.name, err)
			}
		}
		if want := parseKeyring(t, tc.holds[0]).ActiveID(); kr.ActiveID() != want {
			t.Errorf("%s: active id %q, want the first key's %q", tc.name, kr.ActiveID(), want)
		}
	}
	if kr := parseKeyring(t, std); kr.ActiveID() != acme.KeyID(raw) {
		t.Errorf("active id %q, want KeyID %q", kr.ActiveID(), acme.KeyID(raw))
	}
	if kr := parseKeyring(t, "# new\n"+second+"\n"+std); kr.ActiveID() == acme.KeyID(raw) {
		t.Error("the first key is not the active one")
	}

	bad := []struct{ name, text, want string }{
		{"empty", "", "no key"},
		{"comments only", "# nothing\n", "no key"},
		{"not base64", "%%%%not*base64%%%%", "not base64"},
		{"16 bytes", base64.StdEncoding.EncodeToString(raw[:16]), "decodes to 16 bytes"},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(raw, raw...)), "decodes to 64 bytes"},
		{"second bad", std + "\n!!", "key 2"},
	}
	for _, tc := range bad {
		_, err := acme.ParseKeyring(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	key := newKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEY": key, "BAD": "short"}
	getenv := func(name string) string { return env[name] }
	want := parseKeyring(t, key).ActiveID()

	tests := []struct {
		name      string
		file, env string
		plaintext bool
		wantPlain bool
		wantErr   string
	}{
		{name: "file", file: file},
		{name: "file wins over env and plaintext", file: file, env: "BAD", plaintext: true},
		{name: "env", env: "KEY"},
		{name: "plaintext", plaintext: true, wantPlain: true},
		{name: "none", wantErr: "no encryption key"},
		{name: "missing file", file: filepath.Join(dir, "missing"), wantErr: "encryption key file"},
		{name: "empty file", file: empty, wantErr: "no key"},
		{name: "unset env", env: "UNSET", wantErr: "UNSET is empty or not set"},
		{name: "bad env", env: "BAD", wantErr: "encryption key in BAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := acme.LoadKeyring(tc.file, tc.env, tc.plaintext, getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kr.Plaintext() != tc.wantPlain {
				t.Fatalf("plaintext %v, want %v", kr.Plaintext(), tc.wantPlain)
			}
			if !tc.wantPlain && kr.ActiveID() != want {
				t.Fatalf("active id %q, want %q", kr.ActiveID(), want)
			}
		})
	}
	t.Run("os environment", func(t *testing.T) {
		t.Setenv("TOLLGATE_TEST_ACME_KEY", key)
		kr, err := acme.LoadKeyring("", "TOLLGATE_TEST_ACME_KEY", false, nil)
		if err != nil || kr.ActiveID() != want {
			t.Fatalf("got %v, %v; want the key of the variable", kr, err)
		}
	})
}

func TestPlaintextKeyring(t *testing.T) {
	kr := acme.PlaintextKeyring()
	s, err := kr.Seal("k", []byte("pem"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg != acme.AlgPlaintext || s.Data != "pem" || kr.ActiveID() != "" {
		t.Fatalf("sealed %+v, active %q; want the PEM in clear", s, kr.ActiveID())
	}
	if got, err := kr.Open("other", s); err != nil || string(got) != "pem" {
		t.Fatalf("open: %q, %v", got, err)
	}
	// Moving to encryption: a plaintext record opens and needs sealing.
	enc := parseKeyring(t, newKey(t))
	if got, err := enc.Open("k", s); err != nil || string(got) != "pem" {
		t.Fatalf("a keyring does not open a plaintext record: %q, %v", got, err)
	}
	if !enc.NeedsReseal(s) {
		t.Fatal("a plaintext record does not need sealing under a keyring")
	}
}
