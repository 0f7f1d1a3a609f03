package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// The names TLS options use, resolved to crypto/tls values. Validation
// and the router both resolve names here, so a name validation accepts is
// one the router can build, and an unknown name is an error in both, never
// a silent zero.

// tlsVersionNames lists the accepted versions, oldest first.
func tlsVersionNames() []string { return []string{"VersionTLS12", "VersionTLS13"} }

// TLSVersion resolves minVersion and maxVersion: "VersionTLS12" or
// "VersionTLS13".
func TLSVersion(name string) (uint16, error) {
	switch name {
	case "VersionTLS12":
		return tls.VersionTLS12, nil
	case "VersionTLS13":
		return tls.VersionTLS13, nil
	case "VersionTLS10", "VersionTLS11":
		return 0, fmt.Errorf("%q: tollgate requires TLS 1.2 or later; use %s", name, orList(tlsVersionNames()))
	}
	return 0, fmt.Errorf("%q: use %s", truncate(name, 80), orList(tlsVersionNames()))
}

// CipherSuite resolves a TLS 1.2 cipher suite by its Go name, such as
// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256. Only the suites Go considers
// secure are accepted.
func CipherSuite(name string) (uint16, error) {
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name {
			return cs.ID, nil
		}
	}
	return 0, fmt.Errorf("cipher suite %q is unknown or insecure; use Go names such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", truncate(name, 80))
}

// curves lists the accepted curve names in order.
func curves() []struct {
	name string
	id   tls.CurveID
} {
	return []struct {
		name string
		id   tls.CurveID
	}{{"X25519", tls.X25519}, {"X25519MLKEM768", tls.X25519MLKEM768}, {"CurveP256", tls.CurveP256}, {"CurveP384", tls.CurveP384}, {"CurveP521", tls.CurveP521}}
}

// Curve resolves a curvePreferences entry by its Go name, such as X25519
// or CurveP256.
func Curve(name string) (tls.CurveID, error) {
	var names []string
	for _, c := range curves() {
		if c.name == name {
			return c.id, nil
		}
		names = append(names, c.name)
	}
	return 0, fmt.Errorf("curve %q: use %s", truncate(name, 80), strings.Join(names, ", "))
}

// clientAuthTypes lists the accepted clientAuthType names in order.
func clientAuthTypes() []string {
	return []string{"NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}
}

// ClientAuthType resolves clientAuthType; "" is NoClientCert.
func ClientAuthType(name string) (tls.ClientAuthType, error) {
	if name == "" {
		return tls.NoClientCert, nil
	}
	if i := slices.Index(clientAuthTypes(), name); i >= 0 {
		// The names are listed in the order of crypto/tls's constants.
		return tls.ClientAuthType(i), nil
	}
	return 0, fmt.Errorf("clientAuthType %q: use one of %s", truncate(name, 80), strings.Join(clientAuthTypes(), ", "))
}

// needsClientCAs reports whether a clientAuthType verifies client
// certificates, which needs caFiles.
func needsClientCAs(t tls.ClientAuthType) bool {
	return t == tls.VerifyClientCertIfGiven || t == tls.RequireAndVerifyClientCert
}
