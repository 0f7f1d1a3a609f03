package migrate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// DefaultTraefikV1Key is where Traefik 1.x keeps its ACME data below its
// KV prefix when [acme] storage is "<prefix>/acme/account", as its
// documentation suggests: the storage setting names a folder, and the
// account with every certificate is one value, "object", in it.
const DefaultTraefikV1Key = "acme/account/object"

// ErrFormat means Traefik's storage could not be read: a value or file
// that is not what Traefik writes. Errors wrapping it say what was found.
var ErrFormat = errors.New("unreadable Traefik ACME storage")

// maxStorageBytes bounds what is read or decompressed from Traefik's
// storage: far above the few megabytes of thousands of certificates.
const maxStorageBytes = 256 << 20

// Imported is what was read from Traefik's ACME storage.
type Imported struct {
	// Source says where it was read, for reports.
	Source string
	// Account is the ACME account; nil when the storage holds none.
	Account *Account
	// Certs are the certificates, in the order of the storage.
	Certs []Cert
}

// Account is an ACME account read from Traefik's storage.
type Account struct {
	// Email is the account's contact.
	Email string
	// URI is the account's URL at the CA; empty when Traefik had not
	// registered it.
	URI string
	// Registration is the account object the CA returned, as JSON; nil
	// when Traefik did not keep it.
	Registration json.RawMessage
	// Key is the account key, PEM (PKCS #8).
	Key Secret
}

// Cert is a certificate read from Traefik's storage.
type Cert struct {
	// Main is the main domain Traefik filed it under, as written there.
	Main string
	// SANs are its other names, as Traefik filed them.
	SANs []string
	// Chain is the PEM certificate chain, leaf first.
	Chain []byte
	// Key is the PEM private key.
	Key Secret
	// CertURL is the certificate's URL at the CA, if Traefik kept it.
	CertURL string
	// Origin locates it in the storage, such as "Certificates[3]".
	Origin string
}

// Secret is private key material. It formats as "[REDACTED]" with every
// verb and in JSON, so that it never reaches a log or a report by
// accident.
type Secret []byte

const redacted = "[REDACTED]"

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns "[REDACTED]".
func (Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON writes "[REDACTED]".
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// LogValue logs "[REDACTED]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

func secretOf(b []byte) Secret { return Secret(bytes.Clone(b)) }

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// ReadTraefikV1Store reads the ACME data Traefik 1.x keeps in a cluster's
// KV store at <prefix>/acme/account/object (DefaultTraefikV1Key): prefix
// is Traefik's KV prefix, "traefik" by default. For another [acme] storage
// setting use ReadTraefikV1Key.
func ReadTraefikV1Store(ctx context.Context, st kvstore.Store, prefix string) (*Imported, error) {
	key := DefaultTraefikV1Key
	if p := strings.Trim(prefix, "/"); p != "" {
		key = p + "/" + key
	}
	return ReadTraefikV1Key(ctx, st, key)
}

// ReadTraefikV1Key reads the ACME data Traefik 1.x keeps at key, its
// [acme] storage setting followed by "/object". A missing key yields an
// error wrapping kvstore.ErrNotFound that lists the keys ending in
// "/object" below the key's first segment, to help find the right one.
func ReadTraefikV1Key(ctx context.Context, st kvstore.Store, key string) (*Imported, error) {
	kv, err := st.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w%s", key, kvstore.ErrNotFound, objectKeys(ctx, st, key))
	}
	if err != nil {
		return nil, err
	}
	imp, err := DecodeTraefikV1(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	imp.Source = key
	return imp, nil
}

// objectKeys lists keys ending in /object below the first segment of key,
// as a hint for a missing key.
func objectKeys(ctx context.Context, st kvstore.Store, key string) string {
	first, _, _ := strings.Cut(key, "/")
	const hint = "; check --prefix and --traefik-key against [acme] storage in traefik.toml (the key is <storage>/object)"
	l, err := st.List(ctx, first+"/")
	if err != nil {
		return hint
	}
	var found []string
	for _, kv := range l.KVs {
		if strings.HasSuffix(kv.Key, "/object") && len(found) < 10 {
			found = append(found, kv.Key)
		}
	}
	if len(found) == 0 {
		return hint
	}
	return "; keys ending in /object there: " + strings.Join(found, ", ")
}

// DecodeTraefikV1 decodes the value Traefik 1.x stores for its ACME
// account: the JSON of the account and its certificates, which Traefik's
// KV layer writes gzip-compressed (older versions base64-encoded; a value
// exported from Consul is base64 of either). Private keys and chains in it
// are base64 of DER (the account key) and of PEM (certificates and their
// keys).
func DecodeTraefikV1(value []byte) (*Imported, error) {
	doc, err := unwrap(value)
	if err != nil {
		return nil, err
	}
	var acct struct {
		Email              string
		Registration       *registration
		PrivateKey         []byte
		DomainsCertificate struct {
			Certs []struct {
				Domains     domain
				Certificate *struct {
					Domain        string
					CertURL       string
					CertStableURL string
					PrivateKey    []byte
					Certificate   []byte
				}
			}
		}
	}
	if err := json.Unmarshal(doc, &acct); err != nil {
		return nil, formatErr("the account is not the JSON Traefik 1.x writes: %v", jsonError(err))
	}
	imp := &Imported{}
	imp.Account, err = account(acct.Email, acct.Registration, acct.PrivateKey)
	if err != nil {
		return nil, err
	}
	for i, dc := range acct.DomainsCertificate.Certs {
		c := Cert{Main: dc.Domains.Main, SANs: dc.Domains.SANs, Origin: fmt.Sprintf("DomainsCertificate.Certs[%d]", i)}
		if cr := dc.Certificate; cr != nil {
			c.Chain, c.Key, c.CertURL = cr.Certificate, secretOf(cr.PrivateKey), cr.CertURL
			if c.Main == "" {
				c.Main = cr.Domain
			}
		}
		imp.Certs = append(imp.Certs, c)
	}
	return imp, nil
}

// unwrap removes up to three layers of base64 and gzip around a JSON
// document.
func unwrap(b []byte) ([]byte, error) {
	for range 4 {
		t := bytes.TrimSpace(b)
		switch {
		case len(t) == 0:
			return nil, formatErr("the value is empty")
		case t[0] == '{':
			return t, nil
		case len(t) > 2 && t[0] == 0x1f && t[1] == 0x8b:
			zr, err := gzip.NewReader(bytes.NewReader(t))
			if err != nil {
				return nil, formatErr("gzip: %v", err)
			}
			out, err := io.ReadAll(io.LimitReader(zr, maxStorageBytes+1))
			if err != nil {
				return nil, formatErr("gzip: %v", err)
			}
			if len(out) > maxStorageBytes {
				return nil, formatErr("more than %d bytes once decompressed", maxStorageBytes)
			}
			b = out
		default:
			out, err := base64.StdEncoding.DecodeString(string(t))
			if err != nil {
				return nil, formatErr("neither gzip, base64 nor JSON (it starts with %q)", printablePrefix(t))
			}
			b = out
		}
	}
	return nil, formatErr("too many layers of encoding")
}

// printablePrefix shows the first bytes of unreadable input safely: never
// more than a few, which cannot hold a key.
func printablePrefix(b []byte) string {
	n := min(len(b), 8)
	return strings.ToValidUTF8(string(b[:n]), "?")
}

// jsonError keeps a JSON error's description and drops the input excerpt
// some errors could carry.
func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s holds a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return "invalid JSON"
}

// registration is a lego registration resource as Traefik stores it.
type registration struct {
	Body json.RawMessage `json:"body"`
	URI  string          `json:"uri"`
}

// domain is Traefik's main name and alternative names.
type domain struct {
	Main string
	SANs []string
}

// account converts Traefik's account fields; nil when there is no key.
func account(email string, reg *registration, der []byte) (*Account, error) {
	if len(der) == 0 {
		return nil, nil
	}
	key, err := parseAccountKey(der)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, formatErr("account key: %v", err)
	}
	a := &Account{Email: email, Key: Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))}
	if reg != nil {
		a.URI = reg.URI
		if body := bytes.TrimSpace(reg.Body); len(body) > 0 && body[0] == '{' && json.Valid(body) {
			a.Registration = json.RawMessage(bytes.Clone(body))
		}
	}
	return a, nil
}

// parseAccountKey reads Traefik's account key: DER, PKCS #1 for the RSA
// keys Traefik made, or PKCS #8 or SEC 1; or the same in PEM.
func parseAccountKey(b []byte) (crypto.Signer, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, formatErr("the account key is not an RSA or ECDSA private key")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, formatErr("the account key is of an unsupported type")
}

// ACMEJSON is a Traefik acme.json file: one store per certificate
// resolver (Traefik v2 and v3), or a single one (Traefik 1.7's file
// storage, under the name "").
type ACMEJSON struct {
	// Resolvers are the stores by resolver name.
	Resolvers map[string]*Imported
}

// Names lists the resolvers, sorted.
func (a *ACMEJSON) Names() []string { return slices.Sorted(mapKeys(a.Resolvers)) }

// Resolver returns the store of the resolver name; with name empty, the
// only one there is.
func (a *ACMEJSON) Resolver(name string) (*Imported, error) {
	if name == "" {
		if len(a.Resolvers) == 1 {
			for _, imp := range a.Resolvers {
				return imp, nil
			}
		}
		return nil, fmt.Errorf("acme.json holds the resolvers %s: choose one with --resolver", strings.Join(a.Names(), ", "))
	}
	imp, ok := a.Resolvers[name]
	if !ok {
		return nil, fmt.Errorf("acme.json has no resolver %q (it has %s)", name, strings.Join(a.Names(), ", "))
	}
	return imp, nil
}

// ReadACMEJSON reads a Traefik acme.json: for Traefik v2 and v3, an
// object of certificate resolvers, each with its Account (Email,
// Registration, PrivateKey as base64 DER, KeyType) and Certificates
// (domain with main and sans, certificate and key as base64 PEM, Store);
// for Traefik 1.7's file storage, one such store at the top.
func ReadACMEJSON(data []byte) (*ACMEJSON, error) {
	if len(data) > maxStorageBytes {
		return nil, formatErr("acme.json of %d bytes, at most %d read", len(data), maxStorageBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, formatErr("acme.json is empty: Traefik had stored nothing yet")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, formatErr("acme.json is not a JSON object: %v", jsonError(err))
	}
	out := &ACMEJSON{Resolvers: map[string]*Imported{}}
	single := false
	for k := range top {
		if strings.EqualFold(k, "Account") || strings.EqualFold(k, "Certificates") {
			single = true
		}
	}
	if single {
		imp, err := readStore(data, "acme.json")
		if err != nil {
			return nil, err
		}
		out.Resolvers[""] = imp
		return out, nil
	}
	for _, name := range slices.Sorted(mapKeys(top)) {
		imp, err := readStore(top[name], fmt.Sprintf("acme.json resolver %q", name))
		if err != nil {
			return nil, fmt.Errorf("resolver %q: %w", name, err)
		}
		out.Resolvers[name] = imp
	}
	if len(out.Resolvers) == 0 {
		return nil, formatErr("acme.json holds no resolver")
	}
	return out, nil
}

// readStore reads one store of an acme.json.
func readStore(b []byte, source string) (*Imported, error) {
	var st struct {
		Account *struct {
			Email        string
			Registration *registration
			PrivateKey   []byte
		}
		Certificates []struct {
			Domain      domain `json:"domain"`
			Certificate []byte `json:"certificate"`
			Key         []byte `json:"key"`
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, formatErr("not a store of certificates: %v", jsonError(err))
	}
	imp := &Imported{Source: source}
	if a := st.Account; a != nil {
		acct, err := account(a.Email, a.Registration, a.PrivateKey)
		if err != nil {
			return nil, err
		}
		imp.Account = acct
	}
	for i, c := range st.Certificates {
		imp.Certs = append(imp.Certs, Cert{
			Main: c.Domain.Main, SANs: c.Domain.SANs, Chain: c.Certificate, Key: secretOf(c.Key),
			Origin: fmt.Sprintf("Certificates[%d]", i),
		})
	}
	return imp, nil
}
