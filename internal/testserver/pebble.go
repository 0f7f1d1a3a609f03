package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Paths of Pebble's ACME directory on its API listener and of its first
// issuing root on its management listener.
const (
	pebbleDirectoryPath = "/dir"
	pebbleRootPath      = "/roots/0"
)

// PebbleOptions configure Pebble. The zero value starts a CA whose
// challenge validations all fail.
type PebbleOptions struct {
	// HTTPPort is the port Pebble connects to for HTTP-01 validation. Every
	// name resolves to 127.0.0.1, so the test serves the challenge on
	// 127.0.0.1:HTTPPort. Zero: HTTP-01 validation fails.
	HTTPPort int
	// TLSPort is the port for TLS-ALPN-01 validation, on 127.0.0.1 too.
	// Zero: TLS-ALPN-01 validation fails.
	TLSPort int
	// CertValidity is the lifetime of the certificates Pebble issues,
	// rounded up to whole seconds, for renewal tests. Zero: Pebble's
	// default, 90 days.
	CertValidity time.Duration
}

// Pebble is a running Pebble ACME CA, reached through an HTTPS proxy that
// counts new orders, with a pebble-challtestsrv DNS server that resolves
// every name to 127.0.0.1 for Pebble's validations. Everything is stopped
// at the end of the test.
//
// Pebble's own listeners use a certificate from a throw-away CA made for the
// test (CACertFile); the certificates it issues chain to roots it makes up
// at start-up (IssuerRoots). Pebble does not reject good nonces at random
// (PEBBLE_WFE_NONCEREJECT=0) and validates without sleeping first
// (PEBBLE_VA_NOSLEEP=1). It reuses a valid authorization of the same
// account for about half of the identifiers of a later order, as it does by
// default, so a client must not expect to solve a challenge for every order.
type Pebble struct {
	server   *Server // the pebble process
	certs    *testCA
	proxy    *pebbleProxy
	acmeAddr string // Pebble's ACME API, behind the proxy
	mgmtAddr string // Pebble's management interface
	dnsAddr  string // pebble-challtestsrv's DNS server
	dnsMgmt  string // pebble-challtestsrv's management interface
}

// StartPebble starts pebble-challtestsrv and Pebble on free 127.0.0.1 ports
// and waits until both answer.
func StartPebble(t TB, opts PebbleOptions) *Pebble {
	t.Helper()
	pebbleBin := Binary(t, "pebble")
	dnsBin := Binary(t, "pebble-challtestsrv")
	// Server has no environment of its own: env(1) sets Pebble's and then
	// execs it, so the process (group) is still Pebble's.
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	dir := dataDir(t, "pebble")
	p := &Pebble{certs: newTestCA(t, dir)}
	ports := FreePorts(t, 4)
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	p.acmeAddr, p.mgmtAddr = addr(0), addr(1)
	dnsAddr, dnsMgmtAddr := addr(2), addr(3)
	p.dnsAddr, p.dnsMgmt = dnsAddr, dnsMgmtAddr

	launch(t, &Server{
		name:    "pebble-challtestsrv",
		bin:     dnsBin,
		dataDir: dataDir(t, "pebble-challtestsrv"),
		Addr:    dnsAddr,
		args: []string{
			"-dnsserver", dnsAddr, "-management", dnsMgmtAddr,
			"-http01=", "-https01=", "-doh=", "-tlsalpn01=",
			"-defaultIPv4", "127.0.0.1", "-defaultIPv6=",
		},
		ready: dnsReady(dnsAddr),
	})

	config := writePebbleConfig(t, dir, p.certs, p.acmeAddr, p.mgmtAddr, opts)
	p.server = launch(t, &Server{
		name:    "pebble",
		bin:     envBin,
		dataDir: dir,
		Addr:    p.acmeAddr,
		args: []string{
			"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0",
			pebbleBin, "-config", config, "-dnsserver", dnsAddr,
		},
		ready: p.ready,
	})

	newOrder, renewalInfo, err := p.directoryPaths()
	if err != nil {
		t.Fatalf("pebble directory: %v", err)
	}
	// The proxy's errors go to Pebble's log, so they show in its tail.
	logf, err := os.OpenFile(p.server.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("pebble log: %v", err)
	}
	target := &url.URL{Scheme: "https", Host: p.acmeAddr}
	p.proxy, err = newPebbleProxy(p.certs, target, newOrder, renewalInfo, logf)
	if err != nil {
		logf.Close()
		t.Fatalf("pebble proxy: %v", err)
	}
	t.Cleanup(func() {
		p.proxy.Close()
		logf.Close()
	})
	return p
}

// Directory is the URL of the ACME directory, on the counting proxy.
func (p *Pebble) Directory() string { return p.proxy.URL() + pebbleDirectoryPath }

// CACertFile is the PEM file of the CA certificate that signs the
// certificate of Pebble's listeners (and of the proxy): an ACME client must
// trust it.
func (p *Pebble) CACertFile() string { return p.certs.caFile }

// IssuerRoots fetches the root Pebble issues certificates under, from its
// management interface. Pebble makes a new root each time it starts.
func (p *Pebble) IssuerRoots(t TB) *x509.CertPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := p.get(ctx, "https://"+p.mgmtAddr+pebbleRootPath)
	if err != nil {
		t.Fatalf("pebble roots: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble roots: no certificate in %q", body)
	}
	return pool
}

// IssuerRootsPEM fetches the roots Pebble issues certificates under, as
// PEM.
func (p *Pebble) IssuerRootsPEM(ctx context.Context) ([]byte, error) {
	return p.get(ctx, "https://"+p.mgmtAddr+pebbleRootPath)
}

// CertStatus returns Pebble's status of the certificate with the serial
// number serial (hex): "Valid" or "Revoked".
func (p *Pebble) CertStatus(t TB, serial string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := p.get(ctx, "https://"+p.mgmtAddr+"/cert-status-by-serial/"+serial)
	if err != nil {
		t.Fatalf("pebble certificate status of %s: %v", serial, err)
	}
	var st struct{ Status string }
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("pebble certificate status of %s: %v in %q", serial, err, body)
	}
	return st.Status
}

// DNSAddr is the host:port of the DNS server that answers for every name,
// as Pebble and DNS-01 propagation checks should ask.
func (p *Pebble) DNSAddr() string { return p.dnsAddr }

// DNSManagement is the base URL of the DNS server's management API:
// POST /set-txt {"host": FQDN, "value": V} adds a TXT record and
// POST /clear-txt {"host": FQDN} removes it.
func (p *Pebble) DNSManagement() string { return "http://" + p.dnsMgmt }

// Orders reports how many new orders Pebble has created that named each
// identifier (by value, as the client sent it). Requests Pebble refused,
// such as one with a stale nonce that the client then retries, do not count.
func (p *Pebble) Orders() map[string]int { return p.proxy.Orders() }

// Certificates reports how many certificates Pebble has issued for each
// name: finalizations it accepted, by the names of their CSR.
func (p *Pebble) Certificates() map[string]int { return p.proxy.Certificates() }

// SetRenewalInfo makes h answer the renewal-information (ARI) requests
// sent to Pebble, as a CA that fails them would; nil lets Pebble answer
// again.
func (p *Pebble) SetRenewalInfo(h http.Handler) { p.proxy.SetRenewalInfo(h) }

// RefuseReplacements makes new orders that name a certificate they replace
// fail with a 500 serverInternal problem, as a CA that cannot find the
// replaced certificate does; false lets Pebble answer them again.
func (p *Pebble) RefuseReplacements(refuse bool) { p.proxy.RefuseReplacements(refuse) }

// Stop stops Pebble gracefully. Pebble keeps its state in memory: accounts,
// orders and roots are lost.
func (p *Pebble) Stop(t TB) { t.Helper(); p.server.Stop(t) }

// Kill stops Pebble with SIGKILL.
func (p *Pebble) Kill(t TB) { t.Helper(); p.server.Kill(t) }

// Start starts a stopped Pebble again on the same ports, empty and with new
// roots; the proxy and its counts stay.
func (p *Pebble) Start(t TB) { t.Helper(); p.server.Start(t) }

// Log returns Pebble's output so far, with the proxy's errors.
func (p *Pebble) Log() string { return p.server.Log() }

// ready reports whether Pebble's API and management listeners answer.
func (p *Pebble) ready(ctx context.Context) error {
	if _, err := p.get(ctx, "https://"+p.acmeAddr+pebbleDirectoryPath); err != nil {
		return err
	}
	_, err := p.get(ctx, "https://"+p.mgmtAddr+pebbleRootPath)
	return err
}

// directoryPaths reads the paths of the newOrder and renewalInfo resources
// from Pebble's directory; renewalInfo is "" when Pebble has none.
func (p *Pebble) directoryPaths() (newOrder, renewalInfo string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := p.get(ctx, "https://"+p.acmeAddr+pebbleDirectoryPath)
	if err != nil {
		return "", "", err
	}
	var dir struct {
		NewOrder    string `json:"newOrder"`
		RenewalInfo string `json:"renewalInfo"`
	}
	if err := json.Unmarshal(body, &dir); err != nil {
		return "", "", err
	}
	u, err := url.Parse(dir.NewOrder)
	if err != nil {
		return "", "", err
	}
	if u.Path == "" {
		return "", "", fmt.Errorf("no newOrder URL in %s", body)
	}
	if dir.RenewalInfo != "" {
		ri, err := url.Parse(dir.RenewalInfo)
		if err != nil {
			return "", "", err
		}
		renewalInfo = ri.Path
	}
	return u.Path, renewalInfo, nil
}

// get GETs url from one of Pebble's listeners and returns the body of a 200
// response. It keeps no connection open afterwards.
func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.certs.pool},
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

// writePebbleConfig writes Pebble's configuration file into dir.
func writePebbleConfig(t TB, dir string, certs *testCA, acmeAddr, mgmtAddr string, opts PebbleOptions) string {
	t.Helper()
	profile := map[string]any{"description": "tollgate tests"}
	if opts.CertValidity > 0 {
		profile["validityPeriod"] = uint64((opts.CertValidity + time.Second - 1) / time.Second)
	}
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    certs.certFile,
		"privateKey":                     certs.keyFile,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"keyAlgorithm":                   "ecdsa",
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		// One profile only: Pebble picks a profile at random for an order
		// that names none.
		"profiles": map[string]any{"default": profile},
	}}
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dnsReady returns a readiness probe that asks the DNS server at addr, over
// TCP as Pebble does, for a name and expects 127.0.0.1.
func dnsReady(addr string) func(ctx context.Context) error {
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	return func(ctx context.Context) error {
		addrs, err := r.LookupHost(ctx, "tollgate-ready.test.")
		if err != nil {
			return err
		}
		if !slices.Equal(addrs, []string{"127.0.0.1"}) {
			return fmt.Errorf("tollgate-ready.test resolves to %v, want 127.0.0.1", addrs)
		}
		return nil
	}
}
