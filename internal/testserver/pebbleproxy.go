package testserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxOrderBody bounds how much of a new-order request the proxy reads to
// count it; ACME requests are a few kilobytes.
const maxOrderBody = 1 << 20

// pebbleProxy is the HTTPS reverse proxy in front of Pebble's ACME API. It
// counts the new orders Pebble creates and the certificates it issues, per
// identifier, and can answer renewal-information requests in Pebble's
// place.
//
// Pebble builds every URL it hands out (directory entries, Location and Link
// headers, order and authorization URLs) from the request's Host header, and
// checks a JWS's "url" header against https://<Host><RequestURI>. The proxy
// passes the client's Host through unchanged, so the URLs name the proxy and
// the signed "url" matches what Pebble expects; it alters no request byte.
type pebbleProxy struct {
	srv          *http.Server
	ln           net.Listener
	transport    *http.Transport
	newOrderPath string
	// renewalInfoPath is the path of Pebble's renewalInfo resource; ""
	// when it has none.
	renewalInfoPath string
	served          chan struct{}

	mu           sync.Mutex
	orders       map[string]int
	certificates map[string]int
	renewalInfo  http.Handler // nil: Pebble answers
	// refuseReplacements makes new-order requests naming a certificate
	// they replace fail with a server error, as a CA that cannot find
	// the replaced certificate's order does.
	refuseReplacements bool
}

// newPebbleProxy starts the proxy on a free 127.0.0.1 port, serving TLS with
// ca's server certificate and forwarding to target (an https URL whose
// certificate ca signed). newOrderPath is the path of Pebble's newOrder
// resource. Its errors go to errLog.
func newPebbleProxy(ca *testCA, target *url.URL, newOrderPath, renewalInfoPath string, errLog io.Writer) (*pebbleProxy, error) {
	cert, err := tls.LoadX509KeyPair(ca.certFile, ca.keyFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pebbleProxy{
		ln: ln,
		transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: ca.pool},
			TLSHandshakeTimeout: 10 * time.Second,
		},
		newOrderPath:    newOrderPath,
		renewalInfoPath: renewalInfoPath,
		served:          make(chan struct{}),
		orders:          make(map[string]int),
		certificates:    make(map[string]int),
	}
	logger := log.New(errLog, "pebble proxy: ", log.LstdFlags)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: p.transport,
		ErrorLog:  logger,
	}
	p.srv = &http.Server{
		Handler:           p.count(rp),
		ErrorLog:          logger,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() {
		defer close(p.served)
		_ = p.srv.ServeTLS(ln, "", "")
	}()
	return p, nil
}

// URL is the proxy's base URL.
func (p *pebbleProxy) URL() string { return "https://" + p.ln.Addr().String() }

// count wraps next, counting the identifiers of each new-order request that
// Pebble answers with 201 Created, and the names of each finalization (a
// request whose payload holds a CSR) that it answers with 200 OK: the
// certificates it issues. Refused requests (a bad nonce, say, that the
// client retries) are not counted, so a retried order counts once. It
// answers renewal-information requests itself when a handler is set.
func (p *pebbleProxy) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && p.renewalInfoPath != "" && strings.HasPrefix(r.URL.Path, p.renewalInfoPath) {
			p.mu.Lock()
			h := p.renewalInfo
			p.mu.Unlock()
			if h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxOrderBody+1))
		if err != nil || len(body) > maxOrderBody {
			http.Error(w, "pebble proxy: unreadable request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		var counts map[string]int
		var idents []string
		want := http.StatusCreated
		if r.URL.Path == p.newOrderPath {
			p.mu.Lock()
			refuse := p.refuseReplacements
			p.mu.Unlock()
			if refuse && orderReplaces(body) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `{"type":"urn:ietf:params:acme:error:serverInternal","detail":"could not find an order for the given certificate","status":500}`)
				return
			}
			idents, _ = orderIdentifiers(body)
			counts = p.orders
		} else if names, ok := csrNames(body); ok {
			idents, counts, want = names, p.certificates, http.StatusOK
		}
		slices.Sort(idents)
		idents = slices.Compact(idents) // a request names an identifier once
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if counts == nil || rec.status != want {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, id := range idents {
			counts[id]++
		}
	})
}

// Orders returns a copy of the order counts.
func (p *pebbleProxy) Orders() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.orders)
}

// Certificates returns a copy of the finalization counts.
func (p *pebbleProxy) Certificates() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.certificates)
}

// SetRenewalInfo makes h answer renewal-information requests; nil lets
// Pebble answer again.
func (p *pebbleProxy) SetRenewalInfo(h http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.renewalInfo = h
}

// RefuseReplacements makes new-order requests that name a certificate they
// replace (RFC 9773's "replaces") fail with a 500 serverInternal problem,
// or, with false, go to Pebble again.
func (p *pebbleProxy) RefuseReplacements(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseReplacements = refuse
}

// orderReplaces reports whether a new-order request names a certificate
// it replaces.
func orderReplaces(body []byte) bool {
	payload, err := jwsPayload(body)
	if err != nil {
		return false
	}
	var order struct {
		Replaces string `json:"replaces"`
	}
	return json.Unmarshal(payload, &order) == nil && order.Replaces != ""
}

// csrNames returns the names of the CSR a finalization request carries
// (payload {"csr": base64url DER}); ok is false for any other request.
func csrNames(body []byte) (names []string, ok bool) {
	payload, err := jwsPayload(body)
	if err != nil {
		return nil, false
	}
	var fin struct {
		CSR string `json:"csr"`
	}
	if json.Unmarshal(payload, &fin) != nil || fin.CSR == "" {
		return nil, false
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(fin.CSR, "="))
	if err != nil {
		return nil, false
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, false
	}
	names = append(names, csr.DNSNames...)
	if cn := csr.Subject.CommonName; cn != "" && !slices.Contains(names, cn) {
		names = append(names, cn)
	}
	return names, true
}

// Close stops the proxy, letting requests in flight finish for a few seconds
// before cutting them off, and waits for its goroutines.
func (p *pebbleProxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		_ = p.srv.Close()
	}
	<-p.served
	p.transport.CloseIdleConnections()
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// orderIdentifiers returns the identifier values of an ACME new-order
// request: a flattened JWS JSON serialization whose base64url payload is
// {"identifiers":[{"type":"dns","value":"a.example"},...],...}. The
// signature is not checked; Pebble does that.
func orderIdentifiers(body []byte) ([]string, error) {
	payload, err := jwsPayload(body)
	if err != nil {
		return nil, err
	}
	var order struct {
		Identifiers []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identifiers"`
	}
	if err := json.Unmarshal(payload, &order); err != nil {
		return nil, err
	}
	values := make([]string, 0, len(order.Identifiers))
	for _, id := range order.Identifiers {
		values = append(values, id.Value)
	}
	return values, nil
}

// jwsPayload decodes the payload of a flattened JWS JSON serialization.
func jwsPayload(body []byte) ([]byte, error) {
	var jws struct {
		Payload *string `json:"payload"`
	}
	if err := json.Unmarshal(body, &jws); err != nil {
		return nil, err
	}
	if jws.Payload == nil {
		return nil, errors.New("no JWS payload")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(*jws.Payload, "="))
}
