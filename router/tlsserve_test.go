package router

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// handshake makes a TLS handshake with addr for sni, none when empty (a
// Go client sends no server name for an IP address), and returns the
// leaf served.
func handshake(addr, sni string) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// ipv6Loopback reports whether ::1 can be listened on.
func ipv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestTLSServing serves certificate files on 127.0.0.1 (and ::1 when the
// host has it): a handshake without a server name gets the certificate
// whose IP address SANs name the address connected to, a name no
// certificate covers gets [tls.stores.default]'s defaultCertificate, and
// so does a handshake without a server name on an address no certificate
// names.
func TestTLSServing(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "ca"})
	ipCert, ipKey := issue(t, ca, dir, "ip", testcert.Server, "127.0.0.1", "::1")
	wwwCert, wwwKey := issue(t, ca, dir, "www", testcert.Server, "www.example.com")
	defCert, defKey := issue(t, ca, dir, "default", testcert.Server, "default.example.com")
	a := backendServer(t, "a")
	v6 := ipv6Loopback()
	eps := "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.web.http.tls]\n"
	if v6 {
		eps += "[entryPoints.web6]\naddress = \"[::1]:0\"\n[entryPoints.web6.http.tls]\n"
	} else {
		t.Log("::1 is not available here; IPv4 only")
	}
	doc := eps + fmt.Sprintf(`[[tls.certificates]]
certFile = %q
keyFile = %q
[[tls.certificates]]
certFile = %q
keyFile = %q
[tls.stores.default.defaultCertificate]
certFile = %q
keyFile = %q
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
service = "a"
[http.routers.all.tls]
[[http.services.a.loadBalancer.servers]]
url = %q
`, ipCert, ipKey, wwwCert, wwwKey, defCert, defKey, a.URL)
	r := serveConfig(t, doc)
	type want struct{ ep, sni, cn string }
	cases := []want{
		{"web", "", "ip"},
		{"web", "www.example.com", "www"},
		{"web", "unknown.test", "default"},
	}
	if v6 {
		cases = append(cases, want{"web6", "", "ip"}, want{"web6", "unknown.test", "default"})
	}
	for _, tc := range cases {
		leaf, err := handshake(r.servers.Addr(tc.ep).String(), tc.sni)
		if err != nil {
			t.Errorf("%s, SNI %q: %v", tc.ep, tc.sni, err)
			continue
		}
		if leaf.Subject.CommonName != tc.cn {
			t.Errorf("%s, SNI %q: served %q, want %q", tc.ep, tc.sni, leaf.Subject.CommonName, tc.cn)
		}
	}

	// Without a certificate for its IP address, a handshake without a
	// server name gets the default certificate.
	r = serveConfig(t, strings.Replace(doc, fmt.Sprintf("[[tls.certificates]]\ncertFile = %q\nkeyFile = %q\n", ipCert, ipKey), "", 1))
	if leaf, err := handshake(r.servers.Addr("web").String(), ""); err != nil || leaf.Subject.CommonName != "default" {
		t.Errorf("no SNI, no certificate for the address: %v, %v; want the default certificate", describeLeaf(leaf), err)
	}
}

func describeLeaf(c *x509.Certificate) string {
	if c == nil {
		return "no certificate"
	}
	return fmt.Sprintf("%q", c.Subject.CommonName)
}

// TestSNIStrict: TLS options with sniStrict refuse a handshake without a
// server name, even on an address a certificate names, and one for a
// name no certificate covers, instead of serving the default
// certificate; a name a certificate covers is served.
func TestSNIStrict(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, testcert.Spec{CommonName: "ca"})
	ipCert, ipKey := issue(t, ca, dir, "ip", testcert.Server, "127.0.0.1")
	wwwCert, wwwKey := issue(t, ca, dir, "www", testcert.Server, "www.example.com")
	defCert, defKey := issue(t, ca, dir, "default", testcert.Server, "default.example.com")
	a := backendServer(t, "a")
	r := serveConfig(t, fmt.Sprintf(`[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.web.http.tls]
[tls.options.default]
sniStrict = true
[[tls.certificates]]
certFile = %q
keyFile = %q
[[tls.certificates]]
certFile = %q
keyFile = %q
[tls.stores.default.defaultCertificate]
certFile = %q
keyFile = %q
[http.routers.all]
rule = "PathPrefix(`+"`/`"+`)"
service = "a"
[http.routers.all.tls]
[[http.services.a.loadBalancer.servers]]
url = %q
`, ipCert, ipKey, wwwCert, wwwKey, defCert, defKey, a.URL))
	addr := r.servers.Addr("web").String()
	if leaf, err := handshake(addr, "www.example.com"); err != nil || leaf.Subject.CommonName != "www" {
		t.Errorf("a known name: %s, %v; want www", describeLeaf(leaf), err)
	}
	for _, sni := range []string{"", "unknown.test"} {
		if leaf, err := handshake(addr, sni); err == nil {
			t.Errorf("SNI %q: served %s, want the handshake refused", sni, describeLeaf(leaf))
		}
	}
}
