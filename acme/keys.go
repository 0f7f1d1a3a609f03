package acme

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// Folders below <prefix>/acme/.
const (
	dirAccounts   = "accounts"
	dirCerts      = "certs"
	dirChallenges = "challenges"
	dirOrders     = "orders"
	dirState      = "state"
	dirRequests   = "requests"

	kindHTTP01    = "http-01"
	kindTLSALPN01 = "tls-alpn-01"
)

// Keys builds the store keys of one cluster's ACME state.
type Keys struct {
	// Root is "<prefix>/acme".
	Root string
}

// NewKeys returns the keys under prefix (a configuration prefix such as
// "tollgate").
func NewKeys(prefix string) Keys {
	return Keys{Root: strings.TrimSuffix(prefix, "/") + "/acme"}
}

// Prefix is the watched prefix: "<prefix>/acme/".
func (k Keys) Prefix() string { return k.Root + "/" }

// join appends segments to the root. Each segment is checked on its own
// (the root itself has several).
func (k Keys) join(segments ...string) (string, error) {
	rel, err := kvstore.Join(segments...)
	if err != nil {
		return "", fmt.Errorf("acme key: %w", err)
	}
	key := k.Root + "/" + rel
	if err := kvstore.ValidateKey(key); err != nil {
		return "", fmt.Errorf("acme key: %w", err)
	}
	return key, nil
}

// Cert is the key of the certificate whose main name is domain:
// "certs/<shard>/<domain>", where the shard is one hex digit of the
// domain's SHA-256 (see CertShard).
func (k Keys) Cert(domain string) (string, error) {
	return k.join(dirCerts, CertShard(domain), domain)
}

// CertShards is how many folders the certificates are spread over. Each
// is watched on its own, so that a change to one certificate makes a
// Consul replica fetch a sixteenth of them, not all.
const CertShards = 16

// CertShard is the folder below certs/ of the certificate whose main
// domain is domain: the first hex digit of the SHA-256 of domain.
func CertShard(domain string) string {
	sum := sha256.Sum256([]byte(domain))
	return hex.EncodeToString(sum[:1])[:1]
}

// certPrefixes are the prefixes of the CertShards certificate folders.
func (k Keys) certPrefixes() []string {
	out := make([]string, 0, CertShards)
	for i := range CertShards {
		out = append(out, fmt.Sprintf("%s/%s/%x/", k.Root, dirCerts, i))
	}
	return out
}

// Order is the key of the order in flight for domain.
func (k Keys) Order(domain string) (string, error) { return k.join(dirOrders, domain) }

// State is the key of domain's failure state.
func (k Keys) State(domain string) (string, error) { return k.join(dirState, domain) }

// AccountState is the key where the leader records that it could not load
// or register the ACME account, and when it tries again. "_account" is
// no domain name, so no domain's state shares it.
func (k Keys) AccountState() (string, error) { return k.join(dirState, AccountStateName) }

// AccountStateName is the name, below state/, of the account's failure
// state.
const AccountStateName = "_account"

// Request is the key of an on-demand request for name.
func (k Keys) Request(name string) (string, error) { return k.join(dirRequests, name) }

// HTTP01 is the key of the HTTP-01 answer for token.
func (k Keys) HTTP01(token string) (string, error) {
	return k.join(dirChallenges, kindHTTP01, token)
}

// TLSALPN01 is the key of the TLS-ALPN-01 answer for name.
func (k Keys) TLSALPN01(name string) (string, error) {
	return k.join(dirChallenges, kindTLSALPN01, name)
}

// Account is the key of the account of email at the CA whose directory
// is caURL. The CA's folder is its host name and a short hash of the
// whole URL, so that two directories on one host (production and
// staging) do not share accounts; an empty email is "_".
func (k Keys) Account(caURL, email string) (string, error) {
	if email == "" {
		email = "_"
	}
	return k.join(dirAccounts, CAID(caURL), email)
}

// CAID names a CA directory URL as a key segment: its host and the first
// 8 hex digits of the URL's SHA-256.
func CAID(caURL string) string {
	host := "ca"
	if u, err := url.Parse(caURL); err == nil && u.Host != "" {
		host = strings.NewReplacer(":", "_", "/", "_").Replace(u.Host)
	}
	sum := sha256.Sum256([]byte(caURL))
	return host + "-" + hex.EncodeToString(sum[:4])
}

// Parsed is a key below the acme prefix, split into its kind and name.
type Parsed struct {
	// Dir is the folder: "certs" (whatever the shard), "orders",
	// "state", "requests", "accounts", "challenges/http-01" or
	// "challenges/tls-alpn-01".
	Dir string
	// Name is the last segment: a domain, a token or an email.
	Name string
}

// Parse splits key (a full key under k.Root). ok is false for keys that
// are not ACME items, among them certificates outside their shard (see
// Misplaced).
func (k Keys) Parse(key string) (p Parsed, ok bool) {
	rest, found := strings.CutPrefix(key, k.Root+"/")
	if !found {
		return p, false
	}
	segs := strings.Split(rest, "/")
	if slices.Contains(segs, "") {
		return p, false // no key the builders make
	}
	switch {
	case len(segs) == 2 && segs[0] != dirChallenges && segs[0] != dirAccounts && segs[0] != dirCerts:
		return Parsed{Dir: segs[0], Name: segs[1]}, true
	case len(segs) == 3 && segs[0] == dirCerts && segs[1] == CertShard(segs[2]):
		return Parsed{Dir: dirCerts, Name: segs[2]}, true
	case len(segs) == 3 && segs[0] == dirChallenges:
		return Parsed{Dir: segs[0] + "/" + segs[1], Name: segs[2]}, true
	case len(segs) == 3 && segs[0] == dirAccounts:
		return Parsed{Dir: dirAccounts, Name: segs[1] + "/" + segs[2]}, true
	}
	return p, false
}

// Misplaced reports whether key is a certificate key not where Cert puts
// it: "certs/<domain>" or "certs/<other shard>/<domain>". It then returns
// the key it belongs at. Such a record is not served. Deeper keys below
// certs/ are not records at all.
func (k Keys) Misplaced(key string) (want string, misplaced bool) {
	rest, found := strings.CutPrefix(key, k.Root+"/"+dirCerts+"/")
	if !found {
		return "", false
	}
	if _, ok := k.Parse(key); ok {
		return "", false
	}
	segs := strings.Split(rest, "/")
	if len(segs) > 2 {
		return "", false
	}
	want, err := k.Cert(segs[len(segs)-1])
	if err != nil {
		return "", true
	}
	return want, true
}
