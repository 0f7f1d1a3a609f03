package acme

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// RecordVersion is the version of the records this package writes.
const RecordVersion = 1

// CertRecord is a certificate as stored at acme/certs/<shard>/<main-domain>: JSON
// an operator can read, with the chain in clear and the private key
// sealed under the key's path.
type CertRecord struct {
	Version int `json:"version"`
	// Domains are the certificate's names, the main one first.
	Domains   []string  `json:"domains"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Issuer is the issuing CA's common name.
	Issuer string `json:"issuer"`
	// Serial is the serial number in hex.
	Serial string `json:"serial"`
	// KeyType is the configured key type, such as EC256.
	KeyType string `json:"keyType"`
	// CA is the directory URL of the CA that issued it.
	CA string `json:"ca"`
	// CertURL is the certificate's URL at the CA.
	CertURL string `json:"certURL,omitempty"`
	// ARI is the renewal window the CA suggested, when it offers ARI.
	ARI *ARIState `json:"ari,omitempty"`
	// Node and Token are the leader that wrote the record and its fencing
	// token.
	Node  string `json:"node"`
	Token int64  `json:"token"`
	// Written is when the record was written.
	Written time.Time `json:"written"`
	// Certificate is the PEM chain, leaf first.
	Certificate string `json:"certificate"`
	// PrivateKey is the PEM private key, sealed.
	PrivateKey Sealed `json:"privateKey"`
}

// ARIState is a CA's suggested renewal window (RFC 9773).
type ARIState struct {
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	// RenewAt is the moment chosen inside the window.
	RenewAt time.Time `json:"renewAt"`
	// CheckAgain is when to ask the CA again (its Retry-After).
	CheckAgain     time.Time `json:"checkAgain"`
	ExplanationURL string    `json:"explanationURL,omitempty"`
	CheckedAt      time.Time `json:"checkedAt"`
	// Requested marks RenewAt as an operator's renewal request (tollgate
	// certs renew) rather than a moment in the CA's window.
	Requested bool `json:"requested,omitempty"`
	// Failures counts failed renewal-information queries in a row; a
	// failed query leaves the window as it was and backs off CheckAgain.
	Failures int `json:"failures,omitempty"`
	// LastError is the last failed query's error, for operators.
	LastError string `json:"lastError,omitempty"`
}

// AccountRecord is an ACME account as stored at acme/accounts/<ca>/<email>.
type AccountRecord struct {
	Version int    `json:"version"`
	CA      string `json:"ca"`
	Email   string `json:"email"`
	// URI is the account's URL at the CA.
	URI string `json:"uri"`
	// Registration is the account object the CA returned, as JSON.
	Registration json.RawMessage `json:"registration,omitempty"`
	// Key is the PEM account key, sealed.
	Key     Sealed    `json:"key"`
	Node    string    `json:"node"`
	Token   int64     `json:"token"`
	Written time.Time `json:"written"`
}

// ChallengeRecord is an HTTP-01 or TLS-ALPN-01 answer, written by the
// leader for every replica to serve.
type ChallengeRecord struct {
	// Domain is the name being validated.
	Domain string `json:"domain"`
	// Token is the challenge token (HTTP-01 path segment).
	Token string `json:"token"`
	// KeyAuth is the key authorization to answer with.
	KeyAuth string    `json:"keyAuth"`
	Node    string    `json:"node"`
	Fence   int64     `json:"fence"`
	Written time.Time `json:"written"`
}

// OrderRecord marks an order in flight: while it exists, replicas that
// miss a challenge in their cache read the store before answering 404.
// It is written (fenced) once the CA has created the order and before
// any validation starts, so that a leader that takes over resumes the
// order instead of placing another: URL names the order at the CA, and
// Key is the certificate's private key, sealed under the order key's
// path, which the finalization's request is signed for.
type OrderRecord struct {
	Domains []string  `json:"domains"`
	Node    string    `json:"node"`
	Token   int64     `json:"token"`
	Started time.Time `json:"started"`
	// CA is the directory URL the order was placed at.
	CA string `json:"ca,omitempty"`
	// URL is the order's URL at the CA.
	URL string `json:"url,omitempty"`
	// Key is the certificate's PEM private key, sealed.
	Key *Sealed `json:"key,omitempty"`
}

// DomainState is a domain's failure state, kept across leader changes.
type DomainState struct {
	// Failures counts consecutive failed orders.
	Failures int `json:"failures"`
	// LastError is the last failure, for operators.
	LastError   string    `json:"lastError,omitempty"`
	LastAttempt time.Time `json:"lastAttempt"`
	// NextAttempt is the earliest time to try again.
	NextAttempt time.Time `json:"nextAttempt"`
	// GaveUp is set when Failures reached the cap; a configuration
	// change or an operator's delete of the state key retries.
	GaveUp bool `json:"gaveUp,omitempty"`
	// Unused is when the domain was first seen no longer configured, for
	// garbage collection; zero while it is configured.
	Unused time.Time `json:"unused,omitzero"`
}

// RequestRecord is an on-demand order request from a replica.
type RequestRecord struct {
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	Requested time.Time `json:"requested"`
}

// maxRecordBytes bounds what is decoded from the store.
const maxRecordBytes = 1 << 20

// errBadJSON is the error of a stored record that does not decode.
var errBadJSON = errors.New("record is not valid JSON")

// decodeJSON decodes a stored record strictly enough to catch damage.
func decodeJSON(b []byte, v any) error {
	if len(b) > maxRecordBytes {
		return fmt.Errorf("record of %d bytes, at most %d", len(b), maxRecordBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError describes err, an error decoding a stored record, by where it
// is: the errors of encoding/json and of the types it decodes into (times,
// base64) quote the bytes they reject, and a damaged record's bytes may be
// those of a sealed key. It wraps errBadJSON, not err.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: syntax error at byte %d", errBadJSON, syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("%w: field %s has the wrong type (at byte %d)", errBadJSON, typ.Field, typ.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("%w: wrong type at byte %d", errBadJSON, typ.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: it ends early", errBadJSON)
	}
	return fmt.Errorf("%w: a value does not decode", errBadJSON)
}

// DecodeCert decodes and checks a certificate record without opening the
// private key.
func DecodeCert(b []byte) (*CertRecord, error) {
	var r CertRecord
	if err := decodeJSON(b, &r); err != nil {
		return nil, err
	}
	if r.Version != RecordVersion {
		return nil, fmt.Errorf("certificate record version %d; this tollgate reads version %d", r.Version, RecordVersion)
	}
	if len(r.Domains) == 0 {
		return nil, errors.New("certificate record has no domains")
	}
	if r.Certificate == "" {
		return nil, errors.New("certificate record has no certificate")
	}
	return &r, nil
}

// KeyPair opens the record's private key with kr (the record's key path
// is the associated data) and returns the certificate ready to serve,
// its leaf parsed.
func (r *CertRecord) KeyPair(kr *Keyring, path string) (*tls.Certificate, error) {
	keyPEM, err := kr.Open(path, r.PrivateKey)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair([]byte(r.Certificate), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate record: the private key and the chain do not make a pair: %w", err)
	}
	return &pair, nil
}

// openCert decodes the certificate record b stored at key and checks that
// it can be served: the chain parses, the leaf covers at least one of the
// record's names, and, with kr, the private key opens with kr and matches
// the leaf. It returns the record whenever it decodes (with the error when
// it is unusable), and, when it is usable and kr is given, the pair with
// its Leaf set and the names served (the record's the leaf covers). Errors
// quote nothing of the stored value.
func openCert(kr *Keyring, key string, b []byte) (*CertRecord, *tls.Certificate, []string, error) {
	rec, err := DecodeCert(b)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf, err := parseLeaf([]byte(rec.Certificate))
	if err != nil {
		return rec, nil, nil, fmt.Errorf("certificate record: chain does not parse: %w", err)
	}
	// The names served are the record's that the leaf covers: a record
	// whose names and certificate disagree must not take over a name.
	var names []string
	for _, d := range rec.Domains {
		n := normalize(d)
		if n == "" || slices.Contains(names, n) || !covers(leaf, n) {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return rec, nil, nil, errors.New("certificate record: the certificate covers none of the record's names")
	}
	if kr == nil {
		return rec, nil, names, nil
	}
	pair, err := rec.KeyPair(kr, key)
	if err != nil {
		return rec, nil, nil, err
	}
	pair.Leaf = leaf
	return rec, pair, names, nil
}

// CheckCert decodes the certificate record b stored at key and reports
// whether replicas can serve it: nil when its chain parses, its leaf
// covers at least one of its names and its private key opens with kr and
// matches the leaf. With kr nil the private key is not opened (the other
// checks run). It returns the record whenever it decodes, also with an
// error when it is unusable; the error quotes nothing of the stored value.
func CheckCert(kr *Keyring, key string, b []byte) (*CertRecord, error) {
	rec, _, _, err := openCert(kr, key, b)
	return rec, err
}

// parseLeaf returns the leaf of a PEM chain.
func parseLeaf(chain []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, chain = pem.Decode(chain)
		if b == nil {
			return nil, errors.New("no certificate in PEM")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// normalize lower-cases a DNS name and drops a trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}
