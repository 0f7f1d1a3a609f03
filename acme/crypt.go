package acme

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealing algorithms of a Sealed value.
const (
	// AlgXChaCha is XChaCha20-Poly1305: Data is base64 of the 24-byte
	// nonce followed by the ciphertext.
	AlgXChaCha = "xchacha20poly1305"
	// AlgPlaintext is no encryption: Data is the PEM itself.
	AlgPlaintext = "plaintext"
)

// Sealed is a private key as stored: encrypted under a key of the
// Keyring named by KeyID, with the store key it is kept at as associated
// data, so that a sealed value copied to another key does not open.
type Sealed struct {
	Alg   string `json:"alg"`
	KeyID string `json:"kid,omitempty"`
	Data  string `json:"data"`
}

// Keyring holds the keys that seal private keys. The first key seals;
// every key opens, so that a new key can be put first while records
// sealed under the old one are re-encrypted.
type Keyring struct {
	keys  []ringKey
	plain bool
}

type ringKey struct {
	id  string
	key []byte
}

// ErrNoKey means a sealed value names a key the keyring does not hold.
var ErrNoKey = errors.New("encryption key not in the keyring")

// KeyID is the identifier of a 32-byte key: the first 8 hex digits of
// its SHA-256, so that replicas agree on it without naming keys.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// ParseKeyring reads keys: base64 (standard or URL, padded or not) of 32
// bytes each, separated by newlines, commas or spaces; "#" starts a
// comment line.
func ParseKeyring(text string) (*Keyring, error) {
	kr := &Keyring{}
	seen := map[string]bool{}
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			n++
			key, err := decodeKey(f)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", n, err)
			}
			id := KeyID(key)
			if !seen[id] {
				seen[id] = true
				kr.keys = append(kr.keys, ringKey{id: id, key: key})
			}
		}
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no key: give base64 of 32 random bytes, as made by \"openssl rand -base64 32\"")
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != chacha20poly1305.KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, need %d: make one with \"openssl rand -base64 32\"", len(b), chacha20poly1305.KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64: make one with \"openssl rand -base64 32\"")
}

// PlaintextKeyring seals nothing: private keys are stored in clear. It
// opens sealed values of no key.
func PlaintextKeyring() *Keyring { return &Keyring{plain: true} }

// LoadKeyring reads the keyring from a file or from the environment
// variable env (getenv reads it; nil means os.Getenv). With neither, it
// returns the plaintext keyring when plaintext is set, else an error.
func LoadKeyring(file, env string, plaintext bool, getenv func(string) string) (*Keyring, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("encryption key file: %w", err)
		}
		kr, err := ParseKeyring(string(b))
		if err != nil {
			return nil, fmt.Errorf("encryption key file %s: %w", file, err)
		}
		return kr, nil
	case env != "":
		v := getenv(env)
		if v == "" {
			return nil, fmt.Errorf("encryption key: environment variable %s is empty or not set; put base64 of 32 random bytes in it (openssl rand -base64 32), the same on every replica", env)
		}
		kr, err := ParseKeyring(v)
		if err != nil {
			return nil, fmt.Errorf("encryption key in %s: %w", env, err)
		}
		return kr, nil
	case plaintext:
		return PlaintextKeyring(), nil
	}
	return nil, errors.New("no encryption key: set acme.encryptionKeyFile or acme.encryptionKeyEnv (or, for tests only, acme.insecurePlaintextKeys)")
}

// Plaintext reports whether the keyring stores keys in clear.
func (kr *Keyring) Plaintext() bool { return kr.plain }

// ActiveID is the id of the sealing key; "" for the plaintext keyring.
func (kr *Keyring) ActiveID() string {
	if kr.plain {
		return ""
	}
	return kr.keys[0].id
}

// Seal encrypts plaintext under the first key with path as associated
// data.
func (kr *Keyring) Seal(path string, plaintext []byte) (Sealed, error) {
	if kr.plain {
		return Sealed{Alg: AlgPlaintext, Data: string(plaintext)}, nil
	}
	k := kr.keys[0]
	aead, err := chacha20poly1305.NewX(k.key)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	out := aead.Seal(nonce, nonce, plaintext, []byte(path))
	return Sealed{Alg: AlgXChaCha, KeyID: k.id, Data: base64.StdEncoding.EncodeToString(out)}, nil
}

// Open decrypts s, which must have been sealed for path.
func (kr *Keyring) Open(path string, s Sealed) ([]byte, error) {
	switch s.Alg {
	case AlgPlaintext:
		return []byte(s.Data), nil
	case AlgXChaCha:
	default:
		return nil, fmt.Errorf("sealed key: unknown algorithm %s", shown(s.Alg))
	}
	var key []byte
	for _, k := range kr.keys {
		if k.id == s.KeyID {
			key = k.key
			break
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: the key was sealed under key id %s; add that key to the keyring", ErrNoKey, shown(s.KeyID))
	}
	raw, err := base64.StdEncoding.DecodeString(s.Data)
	if err != nil {
		return nil, errors.New("sealed key: data is not base64")
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed key: too short")
	}
	out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(path))
	if err != nil {
		return nil, fmt.Errorf("sealed key at %s does not open under key %s: damaged, or copied from another key", path, shown(s.KeyID))
	}
	return out, nil
}

// shown quotes a name read from a sealed value (an algorithm, a key id)
// for an error when it is short and plain, as written; a damaged one is
// only measured, for its bytes may be anything, key data included.
func shown(s string) string {
	ok := len(s) <= 32
	for _, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}
	if ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(damaged, %d bytes, not shown)", len(s))
}

// NeedsReseal reports whether s is not sealed under the active key.
func (kr *Keyring) NeedsReseal(s Sealed) bool {
	if kr.plain {
		return s.Alg != AlgPlaintext
	}
	return s.Alg != AlgXChaCha || s.KeyID != kr.keys[0].id
}
