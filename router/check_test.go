package router_test

import (
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router"
)

// TestCheckTLSNames gives Check TLS options with names crypto/tls does not
// know, in a configuration built in code that validation never saw: each
// is an error, never a silent zero (which would mean no client
// authentication, or a cipher suite with ID 0).
func TestCheckTLSNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts config.TLSOptions
		want string
	}{
		{"minVersion", config.TLSOptions{MinVersion: "VersionTLS14"}, `minVersion: "VersionTLS14": use VersionTLS12 or VersionTLS13`},
		{"maxVersion", config.TLSOptions{MaxVersion: "VersionTLS11"}, `maxVersion: "VersionTLS11": tollgate requires TLS 1.2 or later`},
		{"cipherSuites", config.TLSOptions{CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA"}}, `cipher suite "TLS_RSA_WITH_RC4_128_SHA" is unknown or insecure`},
		{"curvePreferences", config.TLSOptions{CurvePreferences: []string{"P256"}}, `curve "P256": use X25519`},
		{"clientAuthType", config.TLSOptions{ClientAuth: &config.ClientAuth{ClientAuthType: "RequireClientCert"}}, `clientAuthType "RequireClientCert": use one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{
				EntryPoints: map[string]*config.EntryPoint{"websecure": {Address: ":443", HTTP: &config.EntryPointHTTP{TLS: &config.EntryPointTLS{Options: "custom"}}}},
				TLS:         &config.TLS{Options: map[string]*config.TLSOptions{"custom": &tc.opts}},
			}
			err := router.Check(cfg)
			if err == nil || !strings.Contains(err.Error(), "TLS options custom: "+tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
