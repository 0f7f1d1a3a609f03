package testserver

import (
	"crypto/x509"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// testCA is a throw-away certificate authority made at test time, with one
// server certificate for 127.0.0.1, ::1 and localhost, written as PEM files.
// It lives only as long as the test; nothing else trusts it.
type testCA struct {
	caFile   string // the CA certificate
	certFile string // the server certificate
	keyFile  string // the server certificate's private key (PKCS #8)
	pool     *x509.CertPool
}

// newTestCA creates the CA and the server certificate in dir.
func newTestCA(t TB, dir string) *testCA {
	t.Helper()
	notAfter := time.Now().Add(7 * 24 * time.Hour)
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "tollgate testserver CA", NotAfter: notAfter})
	leaf := ca.Issue(t, testcert.Spec{CommonName: "localhost", Names: []string{"localhost", "127.0.0.1", "::1"}, Usage: testcert.Server, NotAfter: notAfter})
	certFile, keyFile := leaf.WriteFiles(t, dir, "cert")
	return &testCA{
		caFile:   ca.WriteCert(t, dir, "ca"),
		certFile: certFile,
		keyFile:  keyFile,
		pool:     ca.Pool(),
	}
}
