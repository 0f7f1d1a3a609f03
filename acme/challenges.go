package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// ChallengeCertificate implements router.Challenges for TLS-ALPN-01: the
// validation certificate of the answer pending for the hello's server
// name, or nil, nil when there is none. An answer not in memory is read
// from the store, within MissTimeout and the handshake's context, only
// while an order for the name is in flight (see readMiss); any other
// miss is answered at once.
func (c *Cache) ChallengeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if name == "" {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, nil
	}
	v := c.view.Load()
	e := v.tlsalpn[name]
	result := resultAnswered
	if e == nil && v.ordered[name] {
		ctx := hello.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		e = c.readMiss(ctx, kindTLSALPN01, name)
		result = resultStore
	}
	if e == nil {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, nil
	}
	cert, err := e.cert()
	if err != nil {
		c.metrics.challenge(kindTLSALPN01, resultMissing)
		return nil, fmt.Errorf("acme: TLS-ALPN-01 certificate for %s: %w", name, err)
	}
	c.answered(kindTLSALPN01, result, name)
	return cert, nil
}

// ServeHTTP implements router.Challenges for HTTP-01: GET
// /.well-known/acme-challenge/<token> answers the key authorization of
// the token when the request's Host is the name being validated, else
// 404. An answer not in memory is read from the store, within
// MissTimeout, only while an order for the Host is in flight: any other
// miss is answered at once.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, challengePath)
	if !ok || !validToken(token) {
		c.metrics.challenge(kindHTTP01, resultMissing)
		http.NotFound(w, r)
		return
	}
	host := requestHost(r.Host)
	v := c.view.Load()
	e := v.http01[token]
	result := resultAnswered
	if e == nil && v.ordered[host] {
		e = c.readMiss(r.Context(), kindHTTP01, token)
		result = resultStore
	}
	if e == nil || e.domain != host {
		c.metrics.challenge(kindHTTP01, resultMissing)
		http.NotFound(w, r)
		return
	}
	c.answered(kindHTTP01, result, host)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(e.keyAuth))
	}
}

// answered counts a validation request of kind answered for domain.
func (c *Cache) answered(kind, result, domain string) {
	c.metrics.challenge(kind, result)
	if c.onAnswered != nil {
		c.onAnswered(domain)
	}
}

// validToken reports whether token can be an ACME token: one non-empty
// path segment of base64url characters (RFC 8555 §8.1).
func validToken(token string) bool {
	if token == "" || len(token) > 512 {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// requestHost is the normalized host of a Host header, without its port.
func requestHost(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = host
	}
	return normalize(hostport)
}

// readMiss reads the challenge answer of kind for name (a token or a
// domain) from the store with a consistent read bounded by MissTimeout
// and ctx. Misses of the same key at once share one read, which runs
// bounded by MissTimeout alone, so that a client that hangs up does not
// end it for the others; at most maxMissReads reads run at once. It
// returns nil when there is none or the store cannot tell in time.
func (c *Cache) readMiss(ctx context.Context, kind, name string) *challengeEntry {
	var key string
	var err error
	if kind == kindHTTP01 {
		key, err = c.keys.HTTP01(name)
	} else {
		key, err = c.keys.TLSALPN01(name)
	}
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.missTimeout)
	defer cancel()
	read := context.WithoutCancel(ctx)
	ch := c.missFlights.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(read, c.missTimeout)
		defer cancel()
		return c.readOne(rctx, key, kind, name), nil
	})
	select {
	case r := <-ch:
		e, _ := r.Val.(*challengeEntry)
		return e
	case <-ctx.Done():
		return nil
	}
}

// readOne is readMiss's store read of key.
func (c *Cache) readOne(ctx context.Context, key, kind, name string) *challengeEntry {
	select {
	case c.missReads <- struct{}{}:
		defer func() { <-c.missReads }()
	case <-ctx.Done():
		return nil
	}
	kv, err := c.store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, kvstore.ErrNotFound) {
			c.log.Warn("acme challenge read from the store failed", "key", key, "err", err)
		}
		return nil
	}
	e, err := decodeChallenge(kv, kind, name)
	if err != nil {
		c.reject(kind, key, err)
		return nil
	}
	return e
}
