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
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// CertSource supplies certificates for TLS handshakes; the ACME cache and
// on-demand TLS (acme.Cache, acme.OnDemand) implement it. GetCertificate
// returns nil, nil when it has no certificate for the name; the entry
// point then serves a certificate file's, or the default one.
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

// certIndex finds a certificate by exact name, then by wildcard.
type certIndex struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // "example.com" for *.example.com
}

// loadFileCerts reads the certificate files of the configuration.
func loadFileCerts(cfg *config.TLS) (*certIndex, error) {
	ix := &certIndex{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	if cfg == nil {
		return ix, nil
	}
	for _, c := range cfg.Certificates {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		for _, name := range pair.Leaf.DNSNames {
			name = strings.ToLower(name)
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				ix.wildcard[rest] = &pair
			} else {
				ix.exact[name] = &pair
			}
		}
	}
	return ix, nil
}

// GetCertificate implements CertSource: an exact name beats a wildcard.
func (ix *certIndex) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if c := ix.exact[name]; c != nil {
		return c, nil
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if c := ix.wildcard[rest]; c != nil {
			return c, nil
		}
	}
	return nil, nil
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
