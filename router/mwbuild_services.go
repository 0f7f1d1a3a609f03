package router

import (
	"log/slog"
	"net/http"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/middleware"
)

// forwardAuthBuilder builds the forwardAuth middlewares of a generation
// with the Router's clients, and collects the clients they use.
type forwardAuthBuilder struct {
	clients *middleware.AuthClients
	log     *slog.Logger
	// readFiles reads the TLS files the middlewares name; without it
	// (Check) they are built without TLS settings.
	readFiles bool
	handles   []*middleware.ForwardAuthHandle
}

func (f *forwardAuthBuilder) build(next http.Handler, cfg *config.ForwardAuth) (http.Handler, error) {
	if !f.readFiles && cfg.TLS != nil {
		c := *cfg
		c.TLS = nil
		cfg = &c
	}
	h, handle, err := middleware.NewForwardAuth(next, cfg, f.clients, f.log)
	if err != nil {
		return nil, err
	}
	f.handles = append(f.handles, handle)
	return h, nil
}

// newMiddleware builds the middleware types that need more than their
// configuration, and the others with newMiddleware.
func (b *middlewareBuilder) newMiddleware(m *config.Middleware, next http.Handler) (http.Handler, error) {
	switch {
	case m.ForwardAuth != nil:
		return b.forward.build(next, m.ForwardAuth)
	case m.Errors != nil:
		var pages http.Handler
		if svc := b.services[m.Errors.Service]; svc != nil {
			pages = pageService{svc}
		}
		return middleware.NewErrorPages(next, m.Errors, pages)
	}
	return newMiddleware(m, next)
}

// pageService asks a service for an error page without making it the
// request's service in the access log and the metrics.
type pageService struct{ svc http.Handler }

func (p pageService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := infoOf(r)
	if info == nil {
		p.svc.ServeHTTP(w, r)
		return
	}
	service := info.service
	p.svc.ServeHTTP(w, r)
	info.service = service
}
