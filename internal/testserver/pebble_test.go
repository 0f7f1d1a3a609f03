package testserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestPebbleIssues obtains certificates from Pebble through its counting
// proxy with an ACME client, answering HTTP-01 from a server in the test,
// and checks the chain, the lifetime and the order counts.
func TestPebbleIssues(t *testing.T) {
	const validity = 2 * time.Hour
	httpPort := FreePort(t)
	p := StartPebble(t, PebbleOptions{HTTPPort: httpPort, CertValidity: validity})
	responder := startHTTP01Responder(t, httpPort)
	client := newACMEClient(t, p)
	// A guard against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}

	chain := obtain(ctx, t, client, responder, "a.test.example", "b.test.example")
	roots := p.IssuerRoots(t)
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	for _, name := range []string{"a.test.example", "b.test.example"} {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: name}
		if _, err := chain[0].Verify(opts); err != nil {
			t.Errorf("certificate for %s does not verify against Pebble's roots: %v", name, err)
		}
	}
	// Pebble makes NotAfter NotBefore+validity-1s; both have whole seconds.
	if got := chain[0].NotAfter.Sub(chain[0].NotBefore); got > validity || got < validity-2*time.Second {
		t.Errorf("certificate lifetime %v, want about %v", got, validity)
	}
	if got, want := p.Orders(), map[string]int{"a.test.example": 1, "b.test.example": 1}; !maps.Equal(got, want) {
		t.Errorf("orders %v, want %v", got, want)
	}

	// Pebble may reuse a's authorization now; obtain copes either way.
	obtain(ctx, t, client, responder, "a.test.example")
	if got, want := p.Orders(), map[string]int{"a.test.example": 2, "b.test.example": 1}; !maps.Equal(got, want) {
		t.Errorf("after a second order for a: orders %v, want %v", got, want)
	}
}

// TestPebbleRestart restarts Pebble behind the proxy: the directory answers
// again on the same URL and the counts stay.
func TestPebbleRestart(t *testing.T) {
	p := StartPebble(t, PebbleOptions{})
	client := newACMEClient(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := client.AuthorizeOrder(ctx, acme.DomainIDs("c.test.example")); err != nil {
		t.Fatalf("order: %v", err)
	}

	p.Stop(t)
	p.Start(t)
	p.IssuerRoots(t)
	// Pebble forgot the account: a new client registers again.
	client = newACMEClient(t, p)
	if _, err := client.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatalf("register after restart: %v", err)
	}
	if _, err := client.AuthorizeOrder(ctx, acme.DomainIDs("c.test.example", "d.test.example")); err != nil {
		t.Fatalf("order after restart: %v", err)
	}
	if got, want := p.Orders(), map[string]int{"c.test.example": 2, "d.test.example": 1}; !maps.Equal(got, want) {
		t.Errorf("orders %v, want %v", got, want)
	}
}

// newACMEClient returns a client with a new account key for p's directory,
// trusting p.CACertFile.
func newACMEClient(t *testing.T, p *Pebble) *acme.Client {
	t.Helper()
	pem, err := os.ReadFile(p.CACertFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", p.CACertFile())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &acme.Client{
		Key:          key,
		DirectoryURL: p.Directory(),
		HTTPClient:   &http.Client{Transport: tr},
	}
}

// obtain orders a certificate for names, solving HTTP-01 where Pebble asks
// for it, and returns the chain, leaf first.
func obtain(ctx context.Context, t *testing.T, c *acme.Client, r *http01Responder, names ...string) []*x509.Certificate {
	t.Helper()
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		t.Fatalf("order %v: %v", names, err)
	}
	base := strings.TrimSuffix(c.DirectoryURL, pebbleDirectoryPath)
	if !strings.HasPrefix(order.URI, base+"/") {
		t.Errorf("order URL %s is not on the proxy %s", order.URI, base)
	}
	for _, u := range order.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatalf("authorization: %v", err)
		}
		if z.Status == acme.StatusValid {
			continue // reused
		}
		chal := http01Challenge(t, z)
		resp, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		r.set(c.HTTP01ChallengePath(chal.Token), resp)
		if _, err := c.Accept(ctx, chal); err != nil {
			t.Fatalf("accept %s: %v", z.Identifier.Value, err)
		}
		if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
			t.Fatalf("authorization of %s: %v", z.Identifier.Value, err)
		}
	}
	if order, err = c.WaitOrder(ctx, order.URI); err != nil {
		t.Fatalf("order %v: %v", names, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := c.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		t.Fatalf("finalize %v: %v", names, err)
	}
	chain := make([]*x509.Certificate, len(der))
	for i, b := range der {
		if chain[i], err = x509.ParseCertificate(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(chain) == 0 {
		t.Fatal("empty certificate chain")
	}
	return chain
}

func http01Challenge(t *testing.T, z *acme.Authorization) *acme.Challenge {
	t.Helper()
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			return c
		}
	}
	t.Fatalf("no http-01 challenge for %s", z.Identifier.Value)
	return nil
}

// http01Responder serves HTTP-01 key authorizations by path.
type http01Responder struct {
	mu        sync.Mutex
	responses map[string]string
}

// startHTTP01Responder serves on 127.0.0.1:port until the test ends.
func startHTTP01Responder(t *testing.T, port int) *http01Responder {
	t.Helper()
	r := &http01Responder{responses: make(map[string]string)}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return r
}

func (r *http01Responder) set(path, keyAuth string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses[path] = keyAuth
}

func (r *http01Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	keyAuth, ok := r.responses[req.URL.Path]
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write([]byte(keyAuth))
}
