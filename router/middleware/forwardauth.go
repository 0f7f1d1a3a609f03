package middleware

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// ForwardAuthTimeout bounds a whole call to the authentication server,
// its answer's body included. A request whose authentication server does
// not answer in time is answered with 500.
const ForwardAuthTimeout = 30 * time.Second

// AuthClients holds the HTTP clients of forwardAuth middlewares, one per
// TLS setting (and content of the files it names), so that a reload
// keeps the idle connections of the settings it keeps. Retire closes the
// connections of clients the configuration in force no longer uses, once
// their last requests are done.
type AuthClients struct {
	mu      sync.Mutex
	clients map[[sha256.Size]byte]*authClient
}

// NewAuthClients returns an empty set of clients.
func NewAuthClients() *AuthClients {
	return &AuthClients{clients: map[[sha256.Size]byte]*authClient{}}
}

// authClient is the client of one TLS setting.
type authClient struct {
	key     [sha256.Size]byte
	client  *http.Client
	tr      *http.Transport
	retired atomic.Bool
}

// done is called after each request; a retired client closes the
// connection the request just returned to the idle pool.
func (c *authClient) done() {
	if c.retired.Load() {
		c.tr.CloseIdleConnections()
	}
}

// get returns the client of t, made the first time it is asked for.
func (p *AuthClients) get(t *config.ClientTLS) (*authClient, error) {
	var tlsCfg *tls.Config
	h := sha256.New()
	if t != nil {
		tlsCfg = &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the operator asked for it
		fmt.Fprintf(h, "insecure=%t\n", t.InsecureSkipVerify)
		if t.CA != "" {
			pool, err := config.ReadCertPool([]string{t.CA})
			if err != nil {
				return nil, err
			}
			tlsCfg.RootCAs = pool
			if err := hashFile(h, "ca", t.CA); err != nil {
				return nil, err
			}
		}
		if t.Cert != "" || t.Key != "" {
			pair, err := config.ReadKeyPair(t.Cert, t.Key)
			if err != nil {
				return nil, err
			}
			tlsCfg.Certificates = []tls.Certificate{pair}
			if err := hashFile(h, "cert", t.Cert); err != nil {
				return nil, err
			}
			if err := hashFile(h, "key", t.Key); err != nil {
				return nil, err
			}
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[key]; c != nil {
		return c, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 64
	c := &authClient{key: key, tr: tr, client: &http.Client{
		Transport:     tr,
		Timeout:       ForwardAuthTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	p.clients[key] = c
	return c, nil
}

// hashFile adds the name and content of file to h.
func hashFile(h io.Writer, what, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s file: %w", what, err)
	}
	fmt.Fprintf(h, "%s=%d\n", what, len(b))
	_, _ = h.Write(b)
	return nil
}

// Keep retires the clients that no middleware in use holds: those not in
// keep. Their idle connections are closed now, the others when the
// requests still using them end.
func (p *AuthClients) Keep(keep []*ForwardAuthHandle) {
	in := map[[sha256.Size]byte]bool{}
	for _, k := range keep {
		in[k.c.key] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, c := range p.clients {
		if !in[key] {
			delete(p.clients, key)
			c.retired.Store(true)
			c.tr.CloseIdleConnections()
		}
	}
}

// Close retires every client.
func (p *AuthClients) Close() { p.Keep(nil) }

// ForwardAuthHandle names the client a forwardAuth middleware uses, for
// AuthClients.Keep.
type ForwardAuthHandle struct{ c *authClient }

// NewForwardAuth asks the authentication server at cfg.Address about
// every request, with a client from clients, and returns the middleware
// and the handle of its client.
//
// The server receives a GET (the request's method with
// PreserveRequestMethod) with the request's headers (only those of
// AuthRequestHeaders when set) less the hop-by-hop ones, and
// X-Forwarded-Method, -Proto, -Host, -Uri and -For describing the request
// as tollgate received it; with TrustForwardHeader the values the client
// sent are kept (the router has already removed those of untrusted
// clients) and the client's address is appended to X-Forwarded-For.
// With ForwardBody the body goes too: up to MaxBodySize bytes, a larger
// one is answered with 401; the service still receives the whole body.
//
// A 2xx answer lets the request through: the headers named in
// AuthResponseHeaders or matching AuthResponseHeadersRegex replace the
// request's own of those names (a client's header of such a name is
// removed even when the answer lacks it), HeaderField likewise, and the
// answer's cookies named in AddAuthCookiesToResponse are added to the
// service's response, replacing the service's cookies of the same names.
// Any other answer is sent to the client, status, headers and body, and
// the service is not called; a relative Location is made absolute against
// the authentication server unless PreserveLocationHeader. When the
// server cannot be reached or does not answer within ForwardAuthTimeout,
// the client gets 500 and the service is not called.
//
// Unlike Traefik, HeaderField passes the user to the service (as basic
// auth's does) rather than naming the access log's user, and the
// service's cookies are replaced only by those the authentication server
// set.
func NewForwardAuth(next http.Handler, cfg *config.ForwardAuth, clients *AuthClients, log *slog.Logger) (http.Handler, *ForwardAuthHandle, error) {
	if cfg.Address == "" {
		return nil, nil, errors.New("forwardAuth: address is required")
	}
	if clients == nil {
		return nil, nil, errors.New("forwardAuth: no client set")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &forwardAuth{
		next: next, address: cfg.Address, trust: cfg.TrustForwardHeader, log: log,
		forwardBody: cfg.ForwardBody, maxBody: -1,
		preserveLocation: cfg.PreserveLocationHeader, preserveMethod: cfg.PreserveRequestMethod,
		headerField: textproto.CanonicalMIMEHeaderKey(cfg.HeaderField),
	}
	if _, err := http.NewRequest(http.MethodGet, cfg.Address, nil); err != nil {
		return nil, nil, fmt.Errorf("forwardAuth: address: %w", err)
	}
	if cfg.MaxBodySize != nil {
		f.maxBody = *cfg.MaxBodySize
	}
	for _, h := range cfg.AuthResponseHeaders {
		f.responseHeaders = append(f.responseHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	for _, h := range cfg.AuthRequestHeaders {
		f.requestHeaders = append(f.requestHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	if cfg.AuthResponseHeadersRegex != "" {
		re, err := regexp.Compile(cfg.AuthResponseHeadersRegex)
		if err != nil {
			return nil, nil, fmt.Errorf("forwardAuth: authResponseHeadersRegex: %w", err)
		}
		f.responseRegex = re
	}
	if len(cfg.AddAuthCookiesToResponse) > 0 {
		f.cookies = map[string]bool{}
		for _, c := range cfg.AddAuthCookiesToResponse {
			f.cookies[c] = true
		}
	}
	c, err := clients.get(cfg.TLS)
	if err != nil {
		return nil, nil, fmt.Errorf("forwardAuth: tls: %w", err)
	}
	f.client = c
	return f, &ForwardAuthHandle{c: c}, nil
}

type forwardAuth struct {
	next             http.Handler
	address          string
	client           *authClient
	log              *slog.Logger
	trust            bool
	forwardBody      bool
	maxBody          int64
	preserveLocation bool
	preserveMethod   bool
	headerField      string
	responseHeaders  []string
	requestHeaders   []string
	responseRegex    *regexp.Regexp
	cookies          map[string]bool
}

// hopHeaders are not sent to the authentication server nor copied from
// its answer to the client.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade",
}

// maxDrainBytes of an accepting answer's body are read to reuse its
// connection; a longer body closes it.
const maxDrainBytes = 64 << 10

func (f *forwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer f.client.done()
	var body io.Reader
	if f.forwardBody && r.Body != nil && r.Body != http.NoBody {
		b, err := readBody(r.Body, f.maxBody)
		if errors.Is(err, errBodyTooLarge) {
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		body = bytes.NewReader(b)
	}
	method := http.MethodGet
	if f.preserveMethod {
		method = r.Method
	}
	areq, err := http.NewRequestWithContext(r.Context(), method, f.address, body)
	if err != nil {
		f.fail(w, err)
		return
	}
	f.authHeaders(areq.Header, r)
	resp, err := f.client.client.Do(areq)
	if err != nil {
		f.fail(w, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		f.deny(w, resp)
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrainBytes)
	f.accept(r, resp.Header)
	if f.cookies != nil {
		if set := f.authCookies(resp.Header); len(set) > 0 {
			hw := &headerHookWriter{rw: w, before: func(h http.Header) { replaceCookies(h, set) }}
			f.next.ServeHTTP(hw, r)
			hw.finish()
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

// fail answers 500 for an authentication server that gave no answer.
func (f *forwardAuth) fail(w http.ResponseWriter, err error) {
	f.log.Debug("forwardAuth: calling the authentication server failed", "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// readBody reads a body of at most limit bytes (no limit when negative).
func readBody(r io.Reader, limit int64) ([]byte, error) {
	if limit < 0 {
		return io.ReadAll(r)
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// authHeaders fills the header of the request to the authentication
// server from r.
func (f *forwardAuth) authHeaders(h http.Header, r *http.Request) {
	if f.requestHeaders != nil {
		for _, k := range f.requestHeaders {
			if v := r.Header[k]; len(v) > 0 {
				h[k] = append([]string(nil), v...)
			}
		}
	} else {
		for k, v := range r.Header {
			h[k] = append([]string(nil), v...)
		}
	}
	for _, c := range r.Header["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	forwarded := func(name, own string) {
		if v := r.Header.Get(name); f.trust && v != "" {
			h.Set(name, v)
		} else if own != "" {
			h.Set(name, own)
		} else {
			delete(h, name)
		}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	forwarded("X-Forwarded-Method", r.Method)
	forwarded("X-Forwarded-Proto", proto)
	forwarded("X-Forwarded-Host", r.Host)
	forwarded("X-Forwarded-Uri", r.URL.RequestURI())
	if f.trust {
		if v := r.Header.Get("X-Forwarded-Port"); v != "" {
			h.Set("X-Forwarded-Port", v)
		}
	} else {
		delete(h, "X-Forwarded-Port")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; f.trust && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	} else {
		delete(h, "X-Forwarded-For")
	}
}

// deny sends the authentication server's answer to the client.
func (f *forwardAuth) deny(w http.ResponseWriter, resp *http.Response) {
	out := w.Header()
	for k, v := range resp.Header {
		out[k] = append([]string(nil), v...)
	}
	for _, k := range hopHeaders {
		delete(out, k)
	}
	if !f.preserveLocation {
		loc, err := resp.Location()
		switch {
		case err == nil:
			out.Set("Location", loc.String())
		case !errors.Is(err, http.ErrNoLocation):
			delete(out, "Location")
			f.fail(w, fmt.Errorf("answer's Location: %w", err))
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// accept edits the request for the service after a 2xx answer with
// header h.
func (f *forwardAuth) accept(r *http.Request, h http.Header) {
	copyHeader := func(k string) {
		delete(r.Header, k)
		if v := h[k]; len(v) > 0 {
			r.Header[k] = append([]string(nil), v...)
		}
	}
	for _, k := range f.responseHeaders {
		copyHeader(k)
	}
	if f.headerField != "" {
		copyHeader(f.headerField)
	}
	if re := f.responseRegex; re != nil {
		for k := range r.Header {
			if re.MatchString(k) {
				delete(r.Header, k)
			}
		}
		for k, v := range h {
			if re.MatchString(k) {
				r.Header[k] = append([]string(nil), v...)
			}
		}
	}
}

// authCookie is a Set-Cookie line of the authentication server's answer.
type authCookie struct{ name, line string }

// authCookies returns the Set-Cookie lines of h whose cookies are to be
// added to the response.
func (f *forwardAuth) authCookies(h http.Header) []authCookie {
	var out []authCookie
	for _, line := range h["Set-Cookie"] {
		c, err := http.ParseSetCookie(line)
		if err == nil && f.cookies[c.Name] {
			out = append(out, authCookie{name: c.Name, line: line})
		}
	}
	return out
}

// replaceCookies adds the authentication server's cookies to the
// response header h, in place of the service's of the same names.
func replaceCookies(h http.Header, set []authCookie) {
	lines := h["Set-Cookie"]
	kept := lines[:0:0]
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err == nil && hasCookie(set, c.Name) {
			continue
		}
		kept = append(kept, line)
	}
	for _, c := range set {
		kept = append(kept, c.line)
	}
	h["Set-Cookie"] = kept
}

func hasCookie(set []authCookie, name string) bool {
	for _, c := range set {
		if c.name == name {
			return true
		}
	}
	return false
}
