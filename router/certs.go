package router

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// CertSource supplies certificates for TLS handshakes; the ACME cache and
// on-demand TLS (acme.Cache, acme.OnDemand) implement it. The entry point
// asks it after the provided certificates (a provider's certificate for a
// name wins). GetCertificate returns nil, nil when it has no certificate
// for the name; the entry point then serves a certificate file's, or the
// default one.
//
// GetCertificate runs inside the handshake, so a certificate it holds
// must come from memory, without waiting. For a name it holds none for it
// may block, but only within a bound it documents, and no longer than
// hello.Context() lasts: acme.Cache never blocks; acme.OnDemand may ask
// its ask URL and record a request in the store, 8s at most in all by
// default. Keep that bound below the entry point's handshake deadline
// (readHeaderTimeout, 10s by default), past which the handshake fails
// whatever the certificate.
type CertSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// certIndex finds a certificate by exact name, then by wildcard, then by
// IP address. It is immutable once built.
type certIndex struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // "example.com" for *.example.com
	ip       map[netip.Addr]*tls.Certificate
}

func newCertIndex() *certIndex {
	return &certIndex{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}, ip: map[netip.Addr]*tls.Certificate{}}
}

// certKeys are the keys a certificate is indexed under: the DNS names and
// IP addresses of its leaf's subject alternative names, normalized. A DNS
// name with a "*" anywhere but as its whole first label is left out:
// clients match no such name.
type certKeys struct {
	exact    []string
	wildcard []string // "example.com" for *.example.com
	ips      []netip.Addr
}

// only returns the keys of names that k covers: a name the leaf names, or
// a name under one of its wildcards; a wildcard name only when the leaf
// names that wildcard. IP addresses are left out.
func (k certKeys) only(names []string) certKeys {
	var out certKeys
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(n), ".")
		if rest, wild := strings.CutPrefix(n, "*."); wild {
			if slices.Contains(k.wildcard, rest) {
				out.wildcard = append(out.wildcard, rest)
			}
			continue
		}
		_, parent, _ := strings.Cut(n, ".")
		if slices.Contains(k.exact, n) || parent != "" && slices.Contains(k.wildcard, parent) {
			out.exact = append(out.exact, n)
		}
	}
	return out
}

func keysOf(leaf *x509.Certificate) certKeys {
	var k certKeys
	for _, name := range leaf.DNSNames {
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		rest, wild := strings.CutPrefix(name, "*.")
		switch {
		case rest == "" || strings.Contains(rest, "*"):
		case wild:
			k.wildcard = append(k.wildcard, rest)
		default:
			k.exact = append(k.exact, name)
		}
	}
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			k.ips = append(k.ips, a.Unmap())
		}
	}
	return k
}

// empty reports whether k indexes nothing: the certificate serves no
// handshake.
func (k certKeys) empty() bool {
	return len(k.exact) == 0 && len(k.wildcard) == 0 && len(k.ips) == 0
}

// add indexes c under k. A key indexed already keeps its certificate: the
// first one added wins.
func (ix *certIndex) add(c *tls.Certificate, k certKeys) {
	for _, name := range k.exact {
		if _, taken := ix.exact[name]; !taken {
			ix.exact[name] = c
		}
	}
	for _, name := range k.wildcard {
		if _, taken := ix.wildcard[name]; !taken {
			ix.wildcard[name] = c
		}
	}
	for _, a := range k.ips {
		if _, taken := ix.ip[a]; !taken {
			ix.ip[a] = c
		}
	}
}

// loadFileCerts reads the certificate files of the configuration. For a
// name two files cover, the later file wins.
func loadFileCerts(cfg *config.TLS) (*certIndex, error) {
	ix := newCertIndex()
	if cfg == nil {
		return ix, nil
	}
	pairs := make([]*tls.Certificate, len(cfg.Certificates))
	for i, c := range cfg.Certificates {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		pairs[i] = &pair
	}
	// add keeps the first certificate of a name: add the files last to
	// first so that the later file wins.
	for _, pair := range slices.Backward(pairs) {
		ix.add(pair, keysOf(pair.Leaf))
	}
	return ix, nil
}

// GetCertificate implements CertSource: an exact name beats a wildcard,
// which covers one label (*.example.com covers a.example.com only). A
// server name that is an IP address, or for a handshake without one the
// address the client connected to, finds a certificate by IP address.
func (ix *certIndex) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if name == "" {
		return ix.byLocalAddr(hello.Conn), nil
	}
	if c := ix.exact[name]; c != nil {
		return c, nil
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if c := ix.wildcard[rest]; c != nil {
			return c, nil
		}
	}
	if len(ix.ip) > 0 {
		if a, err := netip.ParseAddr(name); err == nil {
			return ix.ip[a.Unmap()], nil
		}
	}
	return nil, nil
}

// byLocalAddr returns the certificate of the IP address conn was accepted
// on, or nil.
func (ix *certIndex) byLocalAddr(conn net.Conn) *tls.Certificate {
	if len(ix.ip) == 0 || conn == nil {
		return nil
	}
	if ta, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		return ix.ip[ta.AddrPort().Addr().Unmap()]
	}
	return nil
}

// selfSigned makes the default certificate, served for names nobody has a
// certificate for.
func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "TOLLGATE DEFAULT CERT"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"tollgate.invalid"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
