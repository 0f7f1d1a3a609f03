// Package testcert makes throw-away certificate authorities and
// certificates for tests: a CA, leaf certificates it signs for DNS names
// and IP addresses, and self-signed certificates, as parsed values, PEM,
// tls.Certificate, x509.CertPool or files. Nothing outside a test trusts
// them. Keys are ECDSA P-256 unless a test asks for RSA.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TB is the part of testing.TB the package uses; it fails the test on
// any error.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Usage says what a leaf certificate may be used for.
type Usage int

const (
	// Server allows TLS server authentication (the default).
	Server Usage = 1 << iota
	// Client allows TLS client authentication.
	Client
)

// Spec describes a certificate. Every zero field has a default.
type Spec struct {
	// CommonName is the subject's common name; default "tollgate test CA"
	// for a CA, else the first of Names, else "tollgate test".
	CommonName string
	// Names are the subject alternative names: those that parse as an IP
	// address become IP SANs, the others DNS names.
	Names []string
	// Usage is ignored for a CA; default Server.
	Usage Usage
	// Serial is the serial number; default a random 128-bit number.
	Serial int64
	// NotBefore defaults to an hour ago, NotAfter to a day from now; set
	// them to make an expired or not yet valid certificate.
	NotBefore, NotAfter time.Time
	// RSA makes a 2048-bit RSA key instead of ECDSA P-256.
	RSA bool
}

// Cert is a certificate with its private key. A CA's Cert issues others.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	DER  []byte
}

// NewCA makes a self-signed certificate authority.
func NewCA(t TB, s Spec) *Cert {
	t.Helper()
	if s.CommonName == "" {
		s.CommonName = "tollgate test CA"
	}
	tmpl := template(t, s)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = nil
	return create(t, tmpl, nil, s.RSA)
}

// SelfSigned makes a self-signed leaf certificate (not a CA).
func SelfSigned(t TB, s Spec) *Cert {
	t.Helper()
	return create(t, template(t, s), nil, s.RSA)
}

// Issue makes a leaf certificate signed by c, which must be a CA.
func (c *Cert) Issue(t TB, s Spec) *Cert {
	t.Helper()
	if !c.Cert.IsCA {
		t.Fatalf("testcert: %q is not a CA", c.Cert.Subject.CommonName)
	}
	return create(t, template(t, s), c, s.RSA)
}

func template(t TB, s Spec) *x509.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: s.CommonName},
		NotBefore: s.NotBefore,
		NotAfter:  s.NotAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	if s.Serial != 0 {
		tmpl.SerialNumber = big.NewInt(s.Serial)
	} else {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			t.Fatalf("testcert: serial number: %v", err)
		}
		tmpl.SerialNumber = n
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	if s.RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range s.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "tollgate test"
		if len(s.Names) > 0 {
			tmpl.Subject.CommonName = s.Names[0]
		}
	}
	if s.Usage == 0 || s.Usage&Server != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.Usage&Client != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return tmpl
}

// create signs tmpl with parent, or with its own new key when parent is nil.
func create(t TB, tmpl *x509.Certificate, parent *Cert, useRSA bool) *Cert {
	t.Helper()
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatalf("testcert: generate key: %v", err)
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatalf("testcert: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcert: parse certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return &Cert{Cert: cert, Key: key, DER: der}
}

// CertPEM is the certificate, PEM-encoded.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM is the private key, PKCS #8, PEM-encoded.
func (c *Cert) KeyPEM(t TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatalf("testcert: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TLS is the certificate and key for a tls.Config, its Leaf set.
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key, Leaf: c.Cert}
}

// Pool is a certificate pool holding only c.
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// WriteCert writes the certificate as PEM to dir/name.pem and returns
// the path.
func (c *Cert) WriteCert(t TB, dir, name string) string {
	t.Helper()
	file := filepath.Join(dir, name+".pem")
	write(t, file, c.CertPEM())
	return file
}

// WriteFiles writes the certificate to dir/name.pem and its key to
// dir/name-key.pem, both PEM, and returns the paths.
func (c *Cert) WriteFiles(t TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = c.WriteCert(t, dir, name)
	keyFile = filepath.Join(dir, name+"-key.pem")
	write(t, keyFile, c.KeyPEM(t))
	return certFile, keyFile
}

func write(t TB, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatalf("testcert: %v", err)
	}
}
