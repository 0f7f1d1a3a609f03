package router

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// BenchmarkApply measures building and swapping in a routing generation
// of n routers, each with its own host and service: the cost of a reload,
// paid off the request path.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routers=%d", n), func(b *testing.B) {
			cfg := generatedConfig(b, n)
			rt := New(Config{})
			defer rt.Close()
			for b.Loop() {
				if err := rt.Apply(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func generatedConfig(tb testing.TB, n int) *config.Config {
	tb.Helper()
	cfg := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}},
		HTTP: &config.HTTP{
			Routers:  make(map[string]*config.Router, n),
			Services: make(map[string]*config.Service, n),
		},
	}
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		cfg.HTTP.Routers[name] = &config.Router{
			Rule:    fmt.Sprintf("Host(`h%d.example.com`) && PathPrefix(`/api`)", i),
			Service: name,
		}
		cfg.HTTP.Services[name] = &config.Service{LoadBalancer: &config.LoadBalancer{
			Servers: []config.Server{{URL: fmt.Sprintf("http://10.0.%d.%d:8080", i/250, i%250)}},
		}}
	}
	return cfg
}

// BenchmarkApplyProvidedCertificates measures Apply of a configuration
// with 1,000 provided key pairs that did not change since the last Apply,
// as after an endpoint change: with ECDSA P-256 keys and with RSA 2048
// keys.
func BenchmarkApplyProvidedCertificates(b *testing.B) {
	const n = 1000
	for _, kt := range []struct {
		name string
		key  func() (crypto.Signer, error)
	}{
		{"key=p256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
		{"key=rsa2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
	} {
		b.Run(fmt.Sprintf("pairs=%d/%s", n, kt.name), func(b *testing.B) {
			key, err := kt.key()
			if err != nil {
				b.Fatal(err)
			}
			cfg := generatedConfig(b, 1)
			cfg.ProvidedCertificates = benchPairs(b, key, n)
			rt := New(Config{})
			defer rt.Close()
			if err := rt.Apply(cfg); err != nil { // the pairs are not new in the loop
				b.Fatal(err)
			}
			for b.Loop() {
				if err := rt.Apply(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchPairs makes n key pairs for distinct names that share key, which
// costs what distinct keys do to parse and far less to make.
func benchPairs(tb testing.TB, key crypto.Signer, n int) []config.KeyPair {
	tb.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pairs := make([]config.KeyPair, n)
	for i := range pairs {
		name := fmt.Sprintf("h%d.example.com", i)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)),
			Subject:      pkix.Name{CommonName: name},
			DNSNames:     []string{name, "www." + name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			tb.Fatal(err)
		}
		pairs[i] = config.KeyPair{
			Source: "secret bench/" + name,
			Cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			Key:    keyPEM,
		}
	}
	return pairs
}
