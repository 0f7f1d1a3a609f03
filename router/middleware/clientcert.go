package middleware

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// Headers set by PassTLSClientCert.
const (
	ClientCertHeader     = "X-Forwarded-Tls-Client-Cert"
	ClientCertInfoHeader = "X-Forwarded-Tls-Client-Cert-Info"
)

// oidDomainComponent is the attribute type of DC (RFC 4519).
const oidDomainComponent = "0.9.2342.19200300.100.1.25"

// NewPassTLSClientCert returns a handler that passes the certificates the
// client presented on a mutual TLS connection to next in request headers,
// in Traefik's format:
//
//   - with cfg.PEM, X-Forwarded-Tls-Client-Cert holds each certificate as
//     the base64 body of its PEM form, without the BEGIN and END lines and
//     line breaks, URL-query-escaped; certificates (the client's own first,
//     then any intermediates it sent) are separated by ",".
//   - with cfg.Info, X-Forwarded-Tls-Client-Cert-Info holds the chosen
//     fields of each certificate, URL-query-escaped as a whole, for
//     example Subject="DC=org,C=FR,ST=Occitanie,L=Toulouse,O=Cheese,
//     OU=Dev,SN=42,CN=client";Issuer="CN=CA";SerialNumber="1";
//     NB="1700000000";NA="1800000000";SAN="client.example.org,
//     dev@example.org,10.0.0.1,spiffe://example.org/client" (without the
//     line breaks). Fields are separated by ";" and certificates by ",";
//     distinguished names list DC, C, ST, L, O, OU, SN and CN in that
//     order; NB and NA are Unix seconds; SAN lists DNS names, e-mail
//     addresses, IPs and URIs; empty fields are left out.
//
// Both headers are removed from every request first, with or without a
// client certificate, so that clients cannot forge them.
func NewPassTLSClientCert(next http.Handler, cfg *config.PassTLSClientCert) (http.Handler, error) {
	if cfg == nil {
		return nil, errors.New("pass TLS client cert: no configuration")
	}
	if !cfg.PEM && cfg.Info == nil {
		return nil, errors.New("pass TLS client cert: nothing to pass: set pem or choose info fields")
	}
	p := &passTLSClientCert{next: next, pem: cfg.PEM}
	if cfg.Info != nil {
		info := *cfg.Info
		info.Subject = cloneSubject(cfg.Info.Subject)
		info.Issuer = cloneSubject(cfg.Info.Issuer)
		p.info = &info
	}
	return p, nil
}

func cloneSubject(s *config.TLSClientCertSubject) *config.TLSClientCertSubject {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

type passTLSClientCert struct {
	next http.Handler
	pem  bool
	info *config.TLSClientCertInfo // nil: no info header
}

func (p *passTLSClientCert) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var certs []*x509.Certificate
	if r.TLS != nil {
		certs = r.TLS.PeerCertificates
	}
	_, forged := r.Header[ClientCertHeader]
	_, forgedInfo := r.Header[ClientCertInfoHeader]
	if len(certs) == 0 && !forged && !forgedInfo {
		p.next.ServeHTTP(w, r)
		return
	}
	r = rewritableCopy(r, true)
	r.Header.Del(ClientCertHeader)
	r.Header.Del(ClientCertInfoHeader)
	if len(certs) > 0 && p.pem {
		r.Header.Set(ClientCertHeader, certsPEM(certs))
	}
	if len(certs) > 0 && p.info != nil {
		r.Header.Set(ClientCertInfoHeader, certsInfo(p.info, certs))
	}
	p.next.ServeHTTP(w, r)
}

// certsPEM formats certificates for X-Forwarded-Tls-Client-Cert.
func certsPEM(certs []*x509.Certificate) string {
	parts := make([]string, len(certs))
	for i, c := range certs {
		parts[i] = url.QueryEscape(base64.StdEncoding.EncodeToString(c.Raw))
	}
	return strings.Join(parts, ",")
}

// certsInfo formats certificates for X-Forwarded-Tls-Client-Cert-Info.
func certsInfo(info *config.TLSClientCertInfo, certs []*x509.Certificate) string {
	parts := make([]string, len(certs))
	for i, c := range certs {
		parts[i] = certInfo(info, c)
	}
	return url.QueryEscape(strings.Join(parts, ","))
}

// certInfo formats the chosen fields of one certificate.
func certInfo(info *config.TLSClientCertInfo, c *x509.Certificate) string {
	var fields []string
	add := func(name, value string) {
		if value != "" {
			fields = append(fields, name+`="`+value+`"`)
		}
	}
	add("Subject", distinguishedName(info.Subject, &c.Subject))
	add("Issuer", distinguishedName(info.Issuer, &c.Issuer))
	if info.SerialNumber && c.SerialNumber != nil {
		add("SerialNumber", c.SerialNumber.String())
	}
	if info.NotBefore {
		add("NB", strconv.FormatInt(c.NotBefore.Unix(), 10))
	}
	if info.NotAfter {
		add("NA", strconv.FormatInt(c.NotAfter.Unix(), 10))
	}
	if info.SANs {
		add("SAN", strings.Join(certSANs(c), ","))
	}
	return strings.Join(fields, ";")
}

// distinguishedName formats the chosen attributes of n; "" when none is
// chosen or present.
func distinguishedName(sel *config.TLSClientCertSubject, n *pkix.Name) string {
	if sel == nil {
		return ""
	}
	var parts []string
	add := func(on bool, key string, values ...string) {
		for _, v := range values {
			if on && v != "" {
				parts = append(parts, key+"="+v)
			}
		}
	}
	if sel.DomainComponent {
		for _, a := range n.Names {
			if a.Type.String() == oidDomainComponent {
				add(true, "DC", fmt.Sprint(a.Value))
			}
		}
	}
	add(sel.Country, "C", n.Country...)
	add(sel.Province, "ST", n.Province...)
	add(sel.Locality, "L", n.Locality...)
	add(sel.Organization, "O", n.Organization...)
	add(sel.OrganizationalUnit, "OU", n.OrganizationalUnit...)
	add(sel.SerialNumber, "SN", n.SerialNumber)
	add(sel.CommonName, "CN", n.CommonName)
	return strings.Join(parts, ",")
}

// certSANs lists the subject alternative names of c: DNS names, e-mail
// addresses, IPs, then URIs.
func certSANs(c *x509.Certificate) []string {
	sans := make([]string, 0, len(c.DNSNames)+len(c.EmailAddresses)+len(c.IPAddresses)+len(c.URIs))
	sans = append(sans, c.DNSNames...)
	sans = append(sans, c.EmailAddresses...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	return sans
}
