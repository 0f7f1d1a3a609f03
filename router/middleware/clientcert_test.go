package middleware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// Validity of the test certificates.
var (
	certNotBefore = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	certNotAfter  = time.Date(2099, 6, 7, 8, 9, 10, 0, time.UTC)
)

// clientChain is a client certificate and the CA that signed it, which the
// client presents too.
type clientChain struct {
	tls      tls.Certificate
	leaf, ca *x509.Certificate
}

// newClientChain makes a CA and a client certificate with every field
// PassTLSClientCert can forward.
func newClientChain(t *testing.T) clientChain {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"Tollgate"}, CommonName: "Tollgate Test CA"},
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	spiffe, _ := url.Parse("spiffe://example.org/client")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject: pkix.Name{
			Country: []string{"FR"}, Province: []string{"Occitanie"}, Locality: []string{"Toulouse"},
			Organization: []string{"Cheese"}, OrganizationalUnit: []string{"Dev", "Ops"},
			CommonName: "client.example.org", SerialNumber: "42",
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: dc, Value: "org"}, {Type: dc, Value: "example"}},
		},
		NotBefore:      certNotBefore,
		NotAfter:       certNotAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:       []string{"client.example.org"},
		EmailAddresses: []string{"dev@example.org"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		URIs:           []*url.URL{spiffe},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return clientChain{
		tls:  tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
		leaf: leaf,
		ca:   ca,
	}
}

// newMTLSServer serves h over TLS, asking clients for a certificate
// without verifying it.
func newMTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// clientWithCert returns a client of ts presenting cert, if any.
func clientWithCert(t *testing.T, ts *httptest.Server, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := ts.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestPassTLSClientCert(t *testing.T) {
	chain := newClientChain(t)
	nb, na := fmt.Sprint(certNotBefore.Unix()), fmt.Sprint(certNotAfter.Unix())
	allDN := &config.TLSClientCertSubject{
		Country: true, Province: true, Locality: true, Organization: true, OrganizationalUnit: true,
		CommonName: true, SerialNumber: true, DomainComponent: true,
	}
	allInfo := &config.TLSClientCertInfo{NotAfter: true, NotBefore: true, SANs: true, SerialNumber: true, Subject: allDN, Issuer: allDN}
	leafAll := `Subject="DC=org,DC=example,C=FR,ST=Occitanie,L=Toulouse,O=Cheese,OU=Dev,OU=Ops,SN=42,CN=client.example.org";` +
		`Issuer="O=Tollgate,CN=Tollgate Test CA";SerialNumber="4242";NB="` + nb + `";NA="` + na + `";` +
		`SAN="client.example.org,dev@example.org,10.0.0.1,spiffe://example.org/client"`
	caAll := `Subject="O=Tollgate,CN=Tollgate Test CA";Issuer="O=Tollgate,CN=Tollgate Test CA";SerialNumber="1";NB="` + nb + `";NA="` + na + `"`
	pemOf := func(c *x509.Certificate) string { return url.QueryEscape(base64.StdEncoding.EncodeToString(c.Raw)) }

	tests := []struct {
		name     string
		cfg      config.PassTLSClientCert
		cert     *tls.Certificate
		forge    bool
		wantPEM  string
		wantInfo string // unescaped
	}{
		{name: "PEM", cfg: config.PassTLSClientCert{PEM: true}, cert: &chain.tls, wantPEM: pemOf(chain.leaf) + "," + pemOf(chain.ca)},
		{name: "all info", cfg: config.PassTLSClientCert{Info: allInfo}, cert: &chain.tls, wantInfo: leafAll + "," + caAll},
		{name: "PEM and info", cfg: config.PassTLSClientCert{PEM: true, Info: allInfo}, cert: &chain.tls,
			wantPEM: pemOf(chain.leaf) + "," + pemOf(chain.ca), wantInfo: leafAll + "," + caAll},
		{name: "some info", cert: &chain.tls, cfg: config.PassTLSClientCert{Info: &config.TLSClientCertInfo{
			NotAfter: true, Subject: &config.TLSClientCertSubject{Organization: true, CommonName: true}, Issuer: &config.TLSClientCertSubject{Country: true},
		}}, wantInfo: `Subject="O=Cheese,CN=client.example.org";NA="` + na + `",Subject="O=Tollgate,CN=Tollgate Test CA";NA="` + na + `"`},
		{name: "empty selection", cert: &chain.tls, cfg: config.PassTLSClientCert{Info: &config.TLSClientCertInfo{Subject: &config.TLSClientCertSubject{}}}, wantInfo: ","},
		{name: "forged without a certificate", cfg: config.PassTLSClientCert{PEM: true, Info: allInfo}, forge: true},
		{name: "forged with a certificate", cfg: config.PassTLSClientCert{PEM: true, Info: allInfo}, cert: &chain.tls, forge: true,
			wantPEM: pemOf(chain.leaf) + "," + pemOf(chain.ca), wantInfo: leafAll + "," + caAll},
		{name: "forged info only", cfg: config.PassTLSClientCert{PEM: true}, cert: &chain.tls, forge: true, wantPEM: pemOf(chain.leaf) + "," + pemOf(chain.ca)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewPassTLSClientCert(echoSeen, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := newMTLSServer(t, h)
			var header http.Header
			if tt.forge {
				header = http.Header{ClientCertHeader: {"forged"}, ClientCertInfoHeader: {`Subject="CN=admin"`}}
			}
			_, body := fetchResponse(t, clientWithCert(t, ts, tt.cert), frontRequest(t, "GET", ts.URL, header))
			seen := decodeSeen(t, body)
			if got := strings.Join(seen.Header.Values(ClientCertHeader), "|"); got != tt.wantPEM {
				t.Errorf("got %s %q, want %q", ClientCertHeader, got, tt.wantPEM)
			}
			rawInfo := strings.Join(seen.Header.Values(ClientCertInfoHeader), "|")
			if rawInfo != url.QueryEscape(tt.wantInfo) {
				t.Errorf("got %s %q, want the escaped form of %q", ClientCertInfoHeader, rawInfo, tt.wantInfo)
			}
		})
	}
}

// TestPassTLSClientCertPlainHTTP checks that forged headers are removed
// from requests that cannot carry a client certificate at all.
func TestPassTLSClientCertPlainHTTP(t *testing.T) {
	h, err := NewPassTLSClientCert(echoSeen, &config.PassTLSClientCert{PEM: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	header := http.Header{ClientCertHeader: {"forged"}, ClientCertInfoHeader: {"forged"}}
	_, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL, header))
	seen := decodeSeen(t, body)
	for _, name := range []string{ClientCertHeader, ClientCertInfoHeader} {
		if got := seen.Header.Values(name); len(got) != 0 {
			t.Errorf("got %s %q, want none", name, got)
		}
	}
}

func TestPassTLSClientCertConfig(t *testing.T) {
	for _, cfg := range []*config.PassTLSClientCert{nil, {}} {
		if _, err := NewPassTLSClientCert(echoSeen, cfg); err == nil {
			t.Errorf("NewPassTLSClientCert(%+v): got no error, want one", cfg)
		}
	}
}
