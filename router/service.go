package router

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// StatusClientClosedRequest is the status recorded (never sent) when the
// client went away before the backend answered, as nginx logs it.
const StatusClientClosedRequest = 499

// serverTarget is where one configured server is reached.
type serverTarget struct {
	url *url.URL // scheme http or https (h2c is reached as http)
	h2c bool     // speak HTTP/2 without TLS
	// id names the server in sticky cookies without revealing its
	// address.
	id string
	// shown is the URL shown in logs and metrics: url without userinfo.
	shown string
}

func newTarget(raw string) (*serverTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server url: %w", err)
	}
	t := &serverTarget{url: u}
	if u.Scheme == "h2c" {
		t.h2c = true
		c := *u
		c.Scheme = "http"
		t.url = &c
	}
	sum := sha256.Sum256([]byte(raw))
	t.id = hex.EncodeToString(sum[:8])
	shown := *t.url
	shown.User = nil
	t.shown = shown.String()
	return t, nil
}

// transports are the connection pools shared by every service of a
// router, across reloads: one for HTTP/1.1 and TLS backends, one for
// HTTP/2 without TLS; and the copy buffers of every proxy, pooled so that
// a request does not allocate (and later collect) 32 KiB of its own.
type transports struct {
	std, h2c http.RoundTripper
	buffers  httputil.BufferPool
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// service is one configured service: a balancer over its servers and the
// reverse proxy that forwards to the chosen one.
type service struct {
	name     string
	lb       *balancer
	byID     map[string]*backend
	passHost bool
	cookie   *config.Cookie
	// cookieName is the sticky cookie's name, derived once.
	cookieName string
	passive    *config.PassiveHealthCheck
	// unavailable is answered when no server is available.
	unavailable int
	proxy       *httputil.ReverseProxy
	log         *slog.Logger
	now         func() time.Time
}

type ctxKey int

const backendKey ctxKey = iota

func newService(name string, cfg *config.Service, tr transports, log *slog.Logger) (*service, error) {
	lbc := cfg.LoadBalancer
	if lbc == nil {
		return nil, fmt.Errorf("service %s: no loadBalancer", name)
	}
	s := &service{
		name:        name,
		byID:        map[string]*backend{},
		passHost:    lbc.PassHostHeader == nil || *lbc.PassHostHeader,
		passive:     lbc.PassiveHealthCheck,
		unavailable: cmp.Or(lbc.UnavailableStatus, http.StatusServiceUnavailable),
		log:         log,
		now:         time.Now,
	}
	if lbc.Sticky != nil && lbc.Sticky.Cookie != nil {
		s.cookie = lbc.Sticky.Cookie
		s.cookieName = cookieName(name, s.cookie)
	}
	backends := make([]*backend, 0, len(lbc.Servers))
	for _, srv := range lbc.Servers {
		t, err := newTarget(srv.URL)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		b := &backend{target: t, weight: 1}
		if srv.Weight != nil {
			b.weight = *srv.Weight
		}
		b.healthy.Store(true)
		backends = append(backends, b)
		s.byID[t.id] = b
	}
	s.lb = newBalancer(backends)
	s.lb.ejectionEnded = s.ejectionEnded
	flush := 100 * time.Millisecond
	if rf := lbc.ResponseForwarding; rf != nil && rf.FlushInterval != 0 {
		flush = rf.FlushInterval.Std()
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:       s.rewrite,
		Transport:     routeTransport{tr},
		BufferPool:    tr.buffers,
		FlushInterval: flush,
		ErrorHandler:  s.proxyError,
		ModifyResponse: func(resp *http.Response) error {
			if b, ok := resp.Request.Context().Value(backendKey).(*backend); ok {
				s.succeeded(b)
			}
			return nil
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// routeTransport sends h2c backends' requests through the HTTP/2
// transport.
type routeTransport struct{ tr transports }

func (rt routeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b, ok := r.Context().Value(backendKey).(*backend); ok && b.target.h2c {
		return rt.tr.h2c.RoundTrip(r)
	}
	return rt.tr.std.RoundTrip(r)
}

// ServeHTTP picks a server and forwards the request to it.
func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setService(r, s.name)
	b, sticky := s.pick(r)
	if b == nil {
		http.Error(w, "no available server", s.unavailable)
		return
	}
	if s.cookie != nil && !sticky {
		http.SetCookie(w, s.stickyCookie(b))
	}
	// As in Traefik v3, a response the server sent without a
	// Content-Type goes on without one: a key without values stops
	// net/http from guessing one. A contentType middleware guesses it.
	if _, ok := w.Header()["Content-Type"]; !ok {
		w.Header()["Content-Type"] = nil
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey, b)))
}

// pick returns the sticky server when the request names an available one,
// else the balancer's next.
func (s *service) pick(r *http.Request) (*backend, bool) {
	now := s.now()
	if s.cookie != nil {
		if c, err := r.Cookie(s.cookieName); err == nil {
			if b := s.byID[c.Value]; b != nil && b.available(now) {
				return b, true
			}
		}
	}
	return s.lb.next(now), false
}

func (s *service) stickyCookie(b *backend) *http.Cookie {
	return stickyCookie(s.cookie, s.cookieName, b.target.id)
}

// cookieName is the name of service's sticky cookie c: its own, or one
// derived from the service's name.
func cookieName(service string, c *config.Cookie) string {
	if c.Name != "" {
		return c.Name
	}
	sum := sha256.Sum256([]byte(service))
	return "_tollgate_" + hex.EncodeToString(sum[:4])
}

// stickyCookie is the sticky cookie cfg called name that pins a client to
// the server or child service value names.
func stickyCookie(cfg *config.Cookie, name, value string) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     cmp.Or(cfg.Path, "/"),
		Secure:   cfg.Secure,
		HttpOnly: cfg.HTTPOnly,
		MaxAge:   cfg.MaxAge,
	}
	switch cfg.SameSite {
	case "none":
		c.SameSite = http.SameSiteNoneMode
	case "lax":
		c.SameSite = http.SameSiteLaxMode
	case "strict":
		c.SameSite = http.SameSiteStrictMode
	}
	return c
}

// up reports whether s can take requests: one of its servers is
// available (see backend.available).
func (s *service) up() bool {
	now := s.now()
	for _, b := range s.lb.backends {
		if b.available(now) {
			return true
		}
	}
	return false
}

// rewrite points the outbound request at the chosen server. The inbound
// X-Forwarded-For was already cleaned of what untrusted clients sent.
func (s *service) rewrite(pr *httputil.ProxyRequest) {
	b := pr.In.Context().Value(backendKey).(*backend)
	pr.SetURL(b.target.url)
	pr.SetXForwarded()
	if s.passHost {
		pr.Out.Host = pr.In.Host
	}
	if out := pr.Out; out.ContentLength > 0 && out.Body != nil && out.Body != http.NoBody {
		out.Body = &declaredBody{ReadCloser: out.Body, left: out.ContentLength}
	}
}

// declaredBody ends a request body at its declared length without reading
// further. The HTTP/1 transport reads once more past Content-Length to
// check the body is not longer; by then the server may have answered and
// the client's connection closed the incoming body (net/http does so when
// the response headers are written), and that read's error would tear
// down the connection to the server mid-answer.
type declaredBody struct {
	io.ReadCloser
	left int64
}

func (b *declaredBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// proxyError answers a request the server did not answer: 502 when it
// could not be reached or failed, 504 when it timed out, and nothing (499
// recorded) when the client is gone. A Retry middleware may take the
// request over first.
func (s *service) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	b, _ := r.Context().Value(backendKey).(*backend)
	if r.Context().Err() != nil {
		// The client went away; nothing can be sent.
		setStatus(w, StatusClientClosedRequest)
		return
	}
	if b != nil {
		s.failed(b, err)
	}
	if takeRefusal(r, err) {
		s.log.Debug("backend refused the connection; the failover service tries its fallback", "service", s.name)
		return
	}
	if middleware.Retryable(r) {
		return
	}
	code := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		code = http.StatusGatewayTimeout
	}
	s.log.Debug("backend request failed", "service", s.name, "status", code, "err", err)
	http.Error(w, http.StatusText(code), code)
}

// failed counts a failed attempt against b, which failed with cause, and
// ejects it after MaxFailedAttempts in a row, when passive health checking
// is on.
func (s *service) failed(b *backend, cause error) {
	if s.passive == nil {
		return
	}
	limit := int32(max(s.passive.MaxFailedAttempts, 1))
	if n := b.failures.Add(1); n >= limit {
		window := s.passive.FailureWindow.Std()
		if window == 0 {
			window = 10 * time.Second
		}
		now := s.now()
		if b.endEjection(now) {
			s.ejectionEnded(b) // it was back: sticky requests skip the balancer
		}
		wasUp := b.up(now)
		b.ejectedUntil.Store(now.Add(window).UnixNano())
		b.failures.Store(0)
		s.logEjected(b, wasUp, n, window, cause)
	}
}

func (s *service) succeeded(b *backend) {
	if s.passive != nil && b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// setStatus records a status for the access log without writing it,
// looking through middleware wrappers for the router's recorder.
func setStatus(w http.ResponseWriter, code int) {
	for w != nil {
		if sr, ok := w.(interface{ recordStatus(int) }); ok {
			sr.recordStatus(code)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}
