package testcert

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestIssue checks that a leaf verifies against its CA for its names and
// usages, and that the files written load as a key pair.
func TestIssue(t *testing.T) {
	ca := NewCA(t, Spec{})
	leaf := ca.Issue(t, Spec{CommonName: "both", Names: []string{"www.example.test", "127.0.0.1", "::1"}, Usage: Server | Client, Serial: 7})
	if got := leaf.Cert.SerialNumber.Int64(); got != 7 {
		t.Errorf("serial %d, want 7", got)
	}
	for _, name := range []string{"www.example.test", "127.0.0.1", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify %s for usage %v: %v", name, usage, err)
			}
		}
	}
	client := ca.Issue(t, Spec{Usage: Client})
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err == nil {
		t.Error("a client certificate verifies for server authentication")
	}
	certFile, keyFile := leaf.WriteFiles(t, t.TempDir(), "leaf")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ca.WriteCert(t, t.TempDir(), "ca")); err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.Equal(leaf.TLS().Leaf) {
		t.Error("the files hold another certificate than TLS()")
	}
}

// TestValidityAndRSA checks the validity window and RSA keys.
func TestValidityAndRSA(t *testing.T) {
	ca := NewCA(t, Spec{RSA: true})
	if _, ok := ca.Key.(*rsa.PrivateKey); !ok {
		t.Fatalf("CA key is %T, want RSA", ca.Key)
	}
	past := time.Now().Add(-48 * time.Hour)
	expired := ca.Issue(t, Spec{Names: []string{"old.test"}, NotBefore: past, NotAfter: past.Add(time.Hour)})
	if _, err := expired.Cert.Verify(x509.VerifyOptions{DNSName: "old.test", Roots: ca.Pool()}); err == nil {
		t.Error("an expired certificate verifies")
	}
	self := SelfSigned(t, Spec{Names: []string{"self.test"}})
	if self.Cert.IsCA || self.Cert.Subject.CommonName != "self.test" {
		t.Errorf("self-signed: IsCA %v, CN %q; want false, self.test", self.Cert.IsCA, self.Cert.Subject.CommonName)
	}
}
