package router

import (
	"fmt"
	"net/http"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// middlewareBuilder builds configured middlewares by name; chains are
// expanded into their members (validation has ruled out cycles).
type middlewareBuilder struct {
	defs map[string]*config.Middleware
	// services are the generation's services by name, for middlewares
	// that call one (errors).
	services map[string]http.Handler
	// forward builds forwardAuth middlewares; see forwardAuthBuilder.
	forward forwardAuthBuilder
}

func newMiddlewareBuilder(defs map[string]*config.Middleware, services map[string]http.Handler) *middlewareBuilder {
	return &middlewareBuilder{defs: defs, services: services}
}

// build wraps next in the middleware called name.
func (b *middlewareBuilder) build(name string, next http.Handler) (http.Handler, error) {
	return b.buildDepth(name, next, 0)
}

func (b *middlewareBuilder) buildDepth(name string, next http.Handler, depth int) (http.Handler, error) {
	m := b.defs[name]
	if m == nil {
		return nil, fmt.Errorf("middleware %q is not defined", name)
	}
	if depth > len(b.defs) {
		return nil, fmt.Errorf("middleware %q: chains contain each other", name)
	}
	if m.Chain != nil {
		h := next
		for i := len(m.Chain.Middlewares) - 1; i >= 0; i-- {
			var err error
			if h, err = b.buildDepth(m.Chain.Middlewares[i], h, depth+1); err != nil {
				return nil, err
			}
		}
		return h, nil
	}
	h, err := b.newMiddleware(m, next)
	if err != nil {
		return nil, fmt.Errorf("middleware %s: %w", name, err)
	}
	return h, nil
}

// newMiddleware builds the one middleware type m sets.
func newMiddleware(m *config.Middleware, next http.Handler) (http.Handler, error) {
	switch {
	case m.AddPrefix != nil:
		return middleware.NewAddPrefix(next, m.AddPrefix)
	case m.StripPrefix != nil:
		return middleware.NewStripPrefix(next, m.StripPrefix)
	case m.RedirectScheme != nil:
		return middleware.NewRedirectScheme(next, m.RedirectScheme)
	case m.RedirectRegex != nil:
		return middleware.NewRedirectRegex(next, m.RedirectRegex)
	case m.HeaderRedirect != nil:
		return middleware.NewHeaderRedirect(next, m.HeaderRedirect)
	case m.Headers != nil:
		return middleware.NewHeaders(next, m.Headers)
	case m.BasicAuth != nil:
		return middleware.NewBasicAuth(next, m.BasicAuth)
	case m.IPAllowList != nil:
		return middleware.NewIPAllowList(next, m.IPAllowList)
	case m.RateLimit != nil:
		return middleware.NewRateLimit(next, m.RateLimit)
	case m.Retry != nil:
		return middleware.NewRetry(next, m.Retry)
	case m.CircuitBreaker != nil:
		return middleware.NewCircuitBreaker(next, m.CircuitBreaker)
	case m.Compress != nil:
		return middleware.NewCompress(next, m.Compress)
	case m.PassTLSClientCert != nil:
		return middleware.NewPassTLSClientCert(next, m.PassTLSClientCert)
	case m.ReplacePath != nil:
		return middleware.NewReplacePath(next, m.ReplacePath)
	case m.ReplacePathRegex != nil:
		return middleware.NewReplacePathRegex(next, m.ReplacePathRegex)
	case m.StripPrefixRegex != nil:
		return middleware.NewStripPrefixRegex(next, m.StripPrefixRegex)
	case m.InFlightReq != nil:
		return middleware.NewInFlightReq(next, m.InFlightReq)
	case m.Buffering != nil:
		return middleware.NewBuffering(next, m.Buffering)
	case m.ContentType != nil:
		return middleware.NewContentType(next, m.ContentType)
	}
	return nil, fmt.Errorf("no middleware type is set")
}
