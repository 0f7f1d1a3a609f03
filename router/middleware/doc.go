// Package middleware builds tollgate's HTTP middlewares from their
// configuration (package config). Each type has one constructor,
// New<Type>(next, cfg) (http.Handler, error), which validates its
// configuration again, so that a middleware is never built from one the
// configuration validator would refuse, and returns an error rather than
// panicking. The router chooses the constructor from the configured type.
//
// Semantics follow Traefik v3 wherever the concept exists, so that a
// Traefik user recognises every option; where tollgate deviates, the
// constructor's doc says so and why. HeaderRedirect is tollgate's own.
//
// Handlers are safe for concurrent use. The rate limiter, the in-flight
// request counter, the circuit breaker and basic auth's cache of verified
// passwords keep bounded state across requests; a new configuration
// builds new handlers, so that state starts afresh on reload. Response
// writer wrappers keep http.Flusher, http.Hijacker and Unwrap (for
// http.ResponseController) working, so that streaming responses and
// protocol upgrades pass through every middleware but Buffering, which
// holds the whole response before sending it.
//
// Middlewares that read request headers rely on the router having removed
// the X-Forwarded-* headers of untrusted clients before they run.
// Header values are never logged.
package middleware
