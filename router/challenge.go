package router

import (
	"crypto/tls"
	"net/http"
	"strings"
)

// ACMETLSProto is the ALPN protocol of TLS-ALPN-01 validation handshakes.
const ACMETLSProto = "acme-tls/1"

// ChallengePath is where HTTP-01 challenges are asked for.
const ChallengePath = "/.well-known/acme-challenge/"

// Challenges answers ACME challenges; the ACME cache implements it.
// Both methods answer from memory. An answer not in memory yet may be
// read from the store, but only for a name whose order is in flight,
// within a bound the implementation documents and no longer than the
// request's or the handshake's context lasts (acme.Cache: MissTimeout,
// 2s by default, a bounded number of reads at once, one per name); any
// other miss is answered at once.
type Challenges interface {
	// ServeHTTP answers a request under ChallengePath (HTTP-01).
	ServeHTTP(w http.ResponseWriter, r *http.Request)
	// ChallengeCertificate returns the TLS-ALPN-01 certificate for the
	// hello's server name, or nil, nil when no challenge is pending.
	ChallengeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// withChallenges sends HTTP-01 requests to c before anything else, so that
// neither a redirect nor a router can hide them.
func withChallenges(c Challenges, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, ChallengePath) && r.Method == http.MethodGet {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// challengeTLS serves a TLS-ALPN-01 validation handshake: only the
// acme-tls/1 protocol and the challenge certificate. With no challenge
// pending for the name, the handshake fails for want of a common
// protocol.
func challengeTLS(c Challenges, hello *tls.ClientHelloInfo) (*tls.Config, error) {
	cert, err := c.ChallengeCertificate(hello)
	if err != nil || cert == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{ACMETLSProto},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errNoChallenge }}, nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{ACMETLSProto}, Certificates: []tls.Certificate{*cert}}, nil
}

type challengeError string

func (e challengeError) Error() string { return string(e) }

const errNoChallenge = challengeError("no TLS-ALPN-01 challenge pending for this name")
