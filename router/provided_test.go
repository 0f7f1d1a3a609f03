package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testcert"
)

// makePair returns a self-signed key pair whose leaf has the given serial
// and subject alternative names: IP addresses for the names that parse as
// one, DNS names for the others. With no names, the leaf has only a
// common name.
func makePair(t testing.TB, source string, serial int64, names ...string) config.KeyPair {
	t.Helper()
	c := testcert.SelfSigned(t, testcert.Spec{CommonName: "cn.example.com", Names: names, Serial: serial, NotAfter: time.Now().Add(time.Hour)})
	return config.KeyPair{Source: source, Cert: c.CertPEM(), Key: c.KeyPEM(t)}
}

// keyBody returns the base64 body of a PEM private key, which no error or
// log line may contain any part of.
func keyBody(kp config.KeyPair) []string {
	var lines []string
	for l := range strings.Lines(string(kp.Key)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tlsSite is one TLS entry point routing everything to a backend named
// "a".
const tlsSite = `
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[http.routers.all]
rule = "PathPrefix(` + "`/`" + `)"
service = "a"
[http.routers.all.tls]
[[http.services.a.loadBalancer.servers]]
url = %q
`

// tlsRunning is a router serving tlsSite, its log and its configuration.
type tlsRunning struct {
	*running
	cfg *config.Config
	log *syncBuffer
}

// serveTLSSite serves tlsSite with pairs provided and sc's Certs and
// Challenges.
func serveTLSSite(t *testing.T, pairs []config.KeyPair, sc ServersConfig) *tlsRunning {
	t.Helper()
	a := backendServer(t, "a")
	cfg := parseConfig(t, fmt.Sprintf(tlsSite, a.URL))
	cfg.ProvidedCertificates = pairs
	logs := &syncBuffer{}
	rt := New(Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	sc.Config, sc.Router = cfg, rt
	servers, err := Listen(sc)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{rt: rt, servers: servers, done: make(chan error, 1)}
	go func() { r.done <- servers.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		servers.Shutdown(ctx)
		<-r.done
		rt.Close()
	})
	return &tlsRunning{running: r, cfg: cfg, log: logs}
}

// apply applies the site's configuration with pairs provided instead.
func (r *tlsRunning) apply(t *testing.T, pairs ...config.KeyPair) {
	t.Helper()
	cfg := *r.cfg
	cfg.ProvidedCertificates = pairs
	if err := r.rt.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
}

// served makes a new TLS handshake with the entry point for sni (none when
// empty) and returns the leaf it was served.
func (r *tlsRunning) served(t *testing.T, sni string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", r.servers.Addr("websecure").String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake for %q: %v", sni, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// describe names a served leaf in failures: its serial, or the default
// certificate.
func describe(c *x509.Certificate) string {
	if c.Subject.CommonName == "TOLLGATE DEFAULT CERT" {
		return "the default certificate"
	}
	return "serial " + c.SerialNumber.String()
}

// wantServed checks which certificate a handshake for sni gets: the one
// of serial want, or with want 0 the default one.
func (r *tlsRunning) wantServed(t *testing.T, sni string, want int64) {
	t.Helper()
	got := r.served(t, sni)
	wantDesc := "the default certificate"
	if want != 0 {
		wantDesc = fmt.Sprintf("serial %d", want)
	}
	if describe(got) != wantDesc {
		t.Errorf("SNI %q: served %s, want %s", sni, describe(got), wantDesc)
	}
}

// TestProvidedCertificates serves provided pairs by exact name, wildcard
// and IP address, gives a tie to the first pair, and leaves out the pairs
// it cannot serve while serving the others, logging them without their
// keys.
func TestProvidedCertificates(t *testing.T) {
	mismatch := makePair(t, "secret shop/mismatch", 90, "mismatch.test")
	mismatch.Key = makePair(t, "", 91, "mismatch.test").Key
	garbage := config.KeyPair{Source: "secret shop/garbage", Cert: []byte("not PEM at all"), Key: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}
	swapped := makePair(t, "secret shop/swapped", 92, "swapped.test")
	swapped.Cert, swapped.Key = swapped.Key, swapped.Cert
	noSANs := makePair(t, "secret shop/cn-only", 93)
	pairs := []config.KeyPair{
		garbage, mismatch, swapped, noSANs,
		makePair(t, "secret shop/www", 1, "www.example.com"),
		makePair(t, "secret shop/wild", 2, "*.example.com", "example.org"),
		makePair(t, "secret shop/www-second", 3, "www.example.com", "second.example.com"),
		makePair(t, "secret shop/ip", 4, "127.0.0.1"),
	}
	r := serveTLSSite(t, pairs, ServersConfig{})
	for _, tc := range []struct {
		name, sni string
		want      int64
	}{
		{"exact", "www.example.com", 1},
		{"exact, any case, trailing dot", "WWW.Example.COM.", 1},
		{"wildcard", "shop.example.com", 2},
		{"exact beats wildcard", "second.example.com", 3},
		{"second name of a pair", "example.org", 2},
		{"wildcard covers one label", "a.b.example.com", 0},
		{"no SNI: the address connected to", "", 4},
		{"unknown name", "unknown.test", 0},
		{"key mismatch skipped", "mismatch.test", 0},
		{"swapped inputs skipped", "swapped.test", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { r.wantServed(t, tc.sni, tc.want) })
	}

	logs := r.log.String()
	for _, kp := range []config.KeyPair{garbage, mismatch, swapped, noSANs} {
		if !strings.Contains(logs, kp.Source) {
			t.Errorf("the log does not name the skipped pair %s:\n%s", kp.Source, logs)
		}
		for _, line := range keyBody(kp) {
			if strings.Contains(logs, line) {
				t.Fatalf("the log quotes the private key of %s", kp.Source)
			}
		}
	}
	if strings.Contains(logs, "secret shop/www") {
		t.Errorf("the log names a pair that is served:\n%s", logs)
	}
}

// TestProvidedCertificateNames: a pair with Names is served only for the
// names it lists that its leaf covers, so that a tenant's secret cannot
// take a name its Ingress does not claim (nor handshakes without SNI).
func TestProvidedCertificateNames(t *testing.T) {
	wild := makePair(t, "secret a/wild", 1, "*.example.com", "example.com", "127.0.0.1")
	wild.Names = []string{"shop.example.com", "unrelated.test", "*.example.com"}
	exact := makePair(t, "secret b/www", 2, "www.example.com", "api.example.com")
	exact.Names = []string{"api.example.com"}
	r := serveTLSSite(t, []config.KeyPair{exact, wild}, ServersConfig{})
	for _, tc := range []struct {
		sni  string
		want int64
	}{
		{"api.example.com", 2},
		{"www.example.com", 1}, // not claimed by b: the wildcard a claims
		{"shop.example.com", 1},
		{"example.com", 0}, // the leaf covers it, the secret's Ingress does not claim it
		{"unrelated.test", 0},
		{"", 0}, // no IP address for a pair with names
	} {
		r.wantServed(t, tc.sni, tc.want)
	}
}

// TestParseKeyPair checks the errors a provider reports for its pairs:
// they say what is wrong and where, and quote nothing of the key.
func TestParseKeyPair(t *testing.T) {
	good := makePair(t, "secret default/web", 1, "www.example.com", "*.example.com", "192.0.2.1")
	mismatch := makePair(t, "secret default/mismatch", 2, "www.example.com")
	mismatch.Key = makePair(t, "", 3, "www.example.com").Key
	swapped := good
	swapped.Source, swapped.Cert, swapped.Key = "secret default/swapped", good.Key, good.Cert
	for _, tc := range []struct {
		name string
		kp   config.KeyPair
		want string // in the error; "" for none
	}{
		{"good", good, ""},
		{"key mismatch", mismatch, "provided certificate secret default/mismatch: tls: private key does not match public key"},
		{"garbage", config.KeyPair{Source: "secret default/garbage", Cert: []byte("garbage"), Key: good.Key}, "provided certificate secret default/garbage: tls: failed to find any PEM data in certificate input"},
		{"swapped", swapped, "provided certificate secret default/swapped: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"},
		{"no key", config.KeyPair{Source: "secret default/nokey", Cert: good.Cert}, "provided certificate secret default/nokey: tls: failed to find any PEM data in key input"},
		{"no SANs", makePair(t, "secret default/cn", 4), "provided certificate secret default/cn: the leaf certificate names no DNS name or IP address"},
		{"wildcard in the middle only", makePair(t, "secret default/odd", 5, "a.*.example.com"), "names no DNS name or IP address"},
		{"no source", config.KeyPair{Cert: []byte("x")}, "provided certificate (no source given): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseKeyPair(tc.kp)
			if tc.want == "" {
				if err != nil || c == nil || c.Leaf == nil {
					t.Fatalf("got %v, %v; want a certificate with its leaf", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
			if c != nil {
				t.Errorf("got a certificate with the error")
			}
			for _, line := range keyBody(tc.kp) {
				if strings.Contains(err.Error(), line) {
					t.Fatalf("the error quotes the private key")
				}
			}
		})
	}
}

// staticCerts is a CertSource holding a certificate per exact name, as
// the ACME cache does.
type staticCerts map[string]*tls.Certificate

func (s staticCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s[hello.ServerName], nil
}

// staticChallenges answers TLS-ALPN-01 handshakes with one certificate.
type staticChallenges struct{ cert *tls.Certificate }

func (s staticChallenges) ServeHTTP(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

func (s staticChallenges) ChallengeCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

func mustParse(t *testing.T, kp config.KeyPair) *tls.Certificate {
	t.Helper()
	c, err := ParseKeyPair(kp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestProvidedBeforeCertSource checks the order of certificates: the
// TLS-ALPN-01 challenge, then the provided pairs (a wildcard one too),
// then the CertSource, which serves the names no provided pair covers and,
// once a pair is removed, its names again.
func TestProvidedBeforeCertSource(t *testing.T) {
	source := staticCerts{
		"www.example.com":  mustParse(t, makePair(t, "", 10, "www.example.com")),
		"api.example.com":  mustParse(t, makePair(t, "", 11, "api.example.com")),
		"shop.example.org": mustParse(t, makePair(t, "", 12, "shop.example.org")),
	}
	challenge := mustParse(t, makePair(t, "", 20, "www.example.com"))
	www := makePair(t, "secret shop/www", 1, "www.example.com")
	wild := makePair(t, "secret shop/wild", 2, "*.example.org")
	r := serveTLSSite(t, []config.KeyPair{www, wild}, ServersConfig{Certs: source, Challenges: staticChallenges{challenge}})

	r.wantServed(t, "www.example.com", 1)
	r.wantServed(t, "api.example.com", 11)
	r.wantServed(t, "shop.example.org", 2) // a provided wildcard beats the source's exact name
	r.wantServed(t, "other.test", 0)

	conn, err := tls.Dial("tcp", r.servers.Addr("websecure").String(), &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true, NextProtos: []string{ACMETLSProto}})
	if err != nil {
		t.Fatalf("TLS-ALPN-01 handshake: %v", err)
	}
	got := conn.ConnectionState()
	conn.Close()
	if got.NegotiatedProtocol != ACMETLSProto || got.PeerCertificates[0].SerialNumber.Int64() != 20 {
		t.Errorf("TLS-ALPN-01 handshake: protocol %q, %s; want %s and the challenge certificate (serial 20)", got.NegotiatedProtocol, describe(got.PeerCertificates[0]), ACMETLSProto)
	}

	r.apply(t, wild)
	r.wantServed(t, "www.example.com", 10)
	r.apply(t)
	r.wantServed(t, "shop.example.org", 12)
	r.wantServed(t, "other.test", 0)
}

// TestProvidedCertificateRotation applies a renewed pair and a removal:
// the next handshake sees each at once, without a restart, while a
// connection made before keeps serving requests.
func TestProvidedCertificateRotation(t *testing.T) {
	r := serveTLSSite(t, []config.KeyPair{makePair(t, "secret shop/www", 1, "www.example.com")}, ServersConfig{})
	r.wantServed(t, "www.example.com", 1)

	old, err := tls.Dial("tcp", r.servers.Addr("websecure").String(), &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	client := &http.Client{Transport: &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return old, nil }}}
	request := func() {
		t.Helper()
		resp, err := client.Get("https://www.example.com/")
		if err != nil {
			t.Fatalf("request on the connection made before the change: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "a" {
			t.Fatalf("request on the connection made before the change: got %q, want a", body)
		}
	}
	request()

	r.apply(t, makePair(t, "secret shop/www", 2, "www.example.com"))
	r.wantServed(t, "www.example.com", 2)
	request()
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 1 {
		t.Errorf("the open connection shows serial %d, want 1", got)
	}

	r.apply(t)
	r.wantServed(t, "www.example.com", 0)
	request()
}

// TestProvidedCertificatesSwapUnderHandshakes rotates a pair while clients
// handshake without pause: every handshake succeeds with one of the
// pairs. Run with -race, it also checks that the swap is race-free.
func TestProvidedCertificatesSwapUnderHandshakes(t *testing.T) {
	serials := []int64{1, 2, 3}
	var pairs []config.KeyPair
	for _, s := range serials {
		pairs = append(pairs, makePair(t, "secret shop/www", s, "www.example.com"))
	}
	r := serveTLSSite(t, pairs[:1], ServersConfig{})
	addr := r.servers.Addr("websecure").String()
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true})
				if err != nil {
					failed.Add(1)
					continue
				}
				s := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
				conn.Close()
				if s < 1 || s > 3 {
					mu.Lock()
					bad = append(bad, fmt.Sprint(s))
					mu.Unlock()
				}
			}
		})
	}
	applies := 0
	for ; applies < 100 || total.Load() < 300; applies++ {
		r.apply(t, pairs[applies%len(pairs)])
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d applies, %d handshakes", applies, total.Load())
	if failed.Load() != 0 || len(bad) != 0 {
		t.Fatalf("%d of %d handshakes failed, serials %v served that no applied pair has", failed.Load(), total.Load(), bad)
	}
}

// TestFileCertificateTie checks that for a name two certificate files
// cover, the later file wins, as it always has.
func TestFileCertificateTie(t *testing.T) {
	dir := t.TempDir()
	c1, k1 := writeCert(t, dir, "first", "www.example.com")
	c2, k2 := writeCert(t, dir, "second", "www.example.com", "other.example.com")
	ix, err := loadFileCerts(&config.TLS{Certificates: []config.Certificate{{CertFile: c1, KeyFile: k1}, {CertFile: c2, KeyFile: k2}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ix.GetCertificate(&tls.ClientHelloInfo{ServerName: "www.example.com"})
	if got == nil || !got.Leaf.Equal(ix.exact["other.example.com"].Leaf) {
		t.Fatal("www.example.com: the first file's certificate is served, want the later file's")
	}
}

// FuzzParseKeyPair checks that no input panics, that a pair accepted has
// something to serve, and that an error never quotes the key.
func FuzzParseKeyPair(f *testing.F) {
	good := makePair(f, "s", 1, "www.example.com")
	f.Add(good.Cert, good.Key)
	f.Add(good.Key, good.Cert)
	f.Add([]byte("garbage"), good.Key)
	f.Add(good.Cert, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		c, err := ParseKeyPair(config.KeyPair{Source: "s", Cert: cert, Key: key})
		if err != nil {
			for _, line := range keyBody(config.KeyPair{Key: key}) {
				if len(line) >= 8 && strings.Contains(err.Error(), line) {
					t.Fatalf("the error quotes the key: %v", err)
				}
			}
			return
		}
		if keysOf(c.Leaf).empty() {
			t.Fatal("a pair with nothing to serve was accepted")
		}
	})
}

// TestProvidedCertificatesParsedOnce checks that Apply parses a pair only
// when its content is new: an unchanged pair, even in new slices or under
// another source, is served as parsed before; a pair no longer provided is
// dropped; a pair that cannot be served is logged once for as long as it
// stays provided.
func TestProvidedCertificatesParsedOnce(t *testing.T) {
	logs := &syncBuffer{}
	rt := New(Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer rt.Close()
	www := makePair(t, "secret shop/www", 1, "www.example.com")
	bad := makePair(t, "secret shop/bad", 2, "bad.example.com")
	bad.Key = makePair(t, "", 3, "bad.example.com").Key
	apply := func(pairs ...config.KeyPair) map[string]*tls.Certificate {
		t.Helper()
		if err := rt.Apply(&config.Config{ProvidedCertificates: pairs}); err != nil {
			t.Fatal(err)
		}
		return rt.current.Load().provided.exact
	}
	warnings := func() int { return strings.Count(logs.String(), "provided certificate not served") }

	first := apply(www, bad)["www.example.com"]
	copied := config.KeyPair{Source: "secret other/www", Cert: bytes.Clone(www.Cert), Key: bytes.Clone(www.Key)}
	if again := apply(copied, bad)["www.example.com"]; again != first {
		t.Error("an unchanged pair was parsed again")
	}
	apply(www, bad)
	if n := warnings(); n != 1 {
		t.Errorf("a bad pair provided three times was logged %d times, want once", n)
	}
	badElsewhere := bad
	badElsewhere.Source = "secret other/bad"
	apply(www, bad, badElsewhere)
	if n := warnings(); n != 2 {
		t.Errorf("the bad pair provided under a second source: %d warnings, want 2", n)
	}

	rotated := makePair(t, "secret shop/www", 4, "www.example.com")
	if got := apply(rotated)["www.example.com"]; got == first || got.Leaf.SerialNumber.Int64() != 4 {
		t.Error("a rotated pair is not the one served")
	}
	if len(rt.parsed) != 1 {
		t.Errorf("after the pairs changed, %d parsed pairs are kept, want 1: the rotated one", len(rt.parsed))
	}
	apply(rotated, bad)
	if n := warnings(); n != 3 {
		t.Errorf("a bad pair provided again after it was gone: %d warnings, want 3", n)
	}
	apply()
	if len(rt.parsed) != 0 || len(rt.warned) != 0 {
		t.Errorf("with no pairs provided, %d parsed pairs and %d warnings are kept, want none", len(rt.parsed), len(rt.warned))
	}
}
