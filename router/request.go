package router

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// RequestIDHeader carries the request id to backends and back to clients.
const RequestIDHeader = "X-Request-Id"

// forwardedHeaders are removed from requests of untrusted clients, so that
// nobody can claim another client address, host or scheme.
var forwardedHeaders = [...]string{
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip",
}

// forwardTrust says whose X-Forwarded-* headers an entry point keeps,
// parsed once per generation rather than on every request.
type forwardTrust struct {
	all    bool
	ranges middleware.IPRanges
}

func newForwardTrust(fh *config.ForwardedHeaders) (forwardTrust, error) {
	if fh == nil {
		return forwardTrust{}, nil
	}
	ranges, err := middleware.ParseIPRanges(fh.TrustedIPs)
	return forwardTrust{all: fh.Insecure, ranges: ranges}, err
}

func (t forwardTrust) trusts(r *http.Request) bool {
	return t.all || t.ranges.ContainsHost(r.RemoteAddr)
}

// prepare cleans what an untrusted client may not set and gives the
// request an id when it has none.
func prepare(r *http.Request, trust forwardTrust) {
	if !trust.trusts(r) {
		for _, h := range forwardedHeaders {
			r.Header.Del(h)
		}
	}
	if r.Header.Get(RequestIDHeader) == "" {
		r.Header.Set(RequestIDHeader, newRequestID())
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// acmeChallengePrefix is left alone by entry point redirections, so that
// HTTP-01 challenges are answered on port 80.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// redirectToEntryPoint redirects the request when its entry point
// redirects to another one, and reports whether it did.
func redirectToEntryPoint(w http.ResponseWriter, r *http.Request, cfg *config.Config, ep *config.EntryPoint) bool {
	if ep.HTTP == nil || ep.HTTP.Redirections == nil || ep.HTTP.Redirections.EntryPoint == nil {
		return false
	}
	if strings.HasPrefix(r.URL.Path, acmeChallengePrefix) {
		return false
	}
	red := ep.HTTP.Redirections.EntryPoint
	target := cfg.EntryPoints[red.To]
	if target == nil {
		return false
	}
	scheme := red.Scheme
	if scheme == "" {
		scheme = "https"
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, port, err := net.SplitHostPort(target.Address); err == nil && port != "" && !defaultPort(scheme, port) {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	} else if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	u := *r.URL
	u.Scheme, u.Host = scheme, host
	code := http.StatusPermanentRedirect
	if red.Permanent != nil && !*red.Permanent {
		code = http.StatusTemporaryRedirect
	}
	http.Redirect(w, r, u.String(), code)
	return true
}

func defaultPort(scheme, port string) bool {
	return scheme == "https" && port == "443" || scheme == "http" && port == "80"
}
