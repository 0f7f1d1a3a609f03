package migrate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// finish renders the configuration and validates it with tollgate's own
// parser. A router, service, middleware, ACME domain or certificate that
// tollgate rejects is left out (with the routers that depend on it) and
// reported, and the rest is validated again; any other problem means the
// source itself holds a value tollgate cannot take, reported at its place.
func (c *converter) finish() ([]byte, error) {
	header := []string{
		fmt.Sprintf("Converted from the Traefik 1.x configuration %s by \"tollgate migrate traefik-v1\".", c.name),
		"Read the conversion report before you use it; see docs/migration.md.",
	}
	c.unusedMiddlewares()
	// Each round removes at least one object, so this ends.
	for {
		doc := emitConfig(c.cfg, header, c.comments)
		_, err := c.parse(c.name+" (converted)", doc)
		if err == nil {
			return doc, nil
		}
		var ce *config.Error
		if !errors.As(err, &ce) {
			return nil, err
		}
		var fatal []Item
		removed := false
		for _, p := range ce.Problems {
			switch ok, done := c.drop(p); {
			case !ok:
				fatal = append(fatal, c.locate(p))
			case done:
				removed = true
			}
		}
		if len(fatal) > 0 || !removed {
			if len(fatal) == 0 {
				for _, p := range ce.Problems {
					fatal = append(fatal, c.locate(p))
				}
			}
			sortItems(fatal)
			return nil, &Error{Source: c.name, Problems: fatal}
		}
	}
}

// locate turns a problem of the converted configuration into a problem of
// the source, at the place its key came from.
func (c *converter) locate(p config.Problem) Item {
	src := c.originOf(p.Path)
	it := c.item(src, "", p.Message, "")
	if p.Path != "" {
		it.Message = fmt.Sprintf("%s (tollgate key %s)", p.Message, p.Path)
	}
	return it
}

// originOf finds the source path of a tollgate key: the origin recorded
// for the longest prefix of it.
func (c *converter) originOf(key string) []string {
	best, bestLen := []string(nil), -1
	for k, src := range c.origins {
		if (key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[")) && len(k) > bestLen {
			best, bestLen = src, len(k)
		}
	}
	return best
}

// drop removes what a problem is about, when that can be left out: ok is
// false when it cannot; done is false when it was already removed in this
// round.
func (c *converter) drop(p config.Problem) (ok, done bool) {
	h := c.cfg.HTTP
	under := func(prefix string) bool {
		return p.Path == prefix || strings.HasPrefix(p.Path, prefix+".") || strings.HasPrefix(p.Path, prefix+"[")
	}
	// A problem of the servers transport, or of a service's use of it,
	// leaves the transport out, not the services.
	if strings.HasPrefix(p.Path, "http.serversTransports.") || strings.HasPrefix(p.Path, "http.services.") && strings.HasSuffix(p.Path, ".loadBalancer.serversTransport") {
		if h == nil || h.ServersTransports[transportName] == nil {
			return true, false // dropped earlier in this round
		}
		c.dropTransport(p.Message)
		return true, true
	}
	if h != nil {
		for _, name := range slices.Sorted(mapKeys(h.Routers)) {
			if under("http.routers." + dn(name)) {
				c.dropRouter(name, p.Message)
				return true, true
			}
		}
		for _, name := range slices.Sorted(mapKeys(h.Services)) {
			if under("http.services." + dn(name)) {
				c.dropService(name, p.Message)
				return true, true
			}
		}
		for _, name := range slices.Sorted(mapKeys(h.Middlewares)) {
			if under("http.middlewares." + dn(name)) {
				c.dropMiddleware(name, p.Message)
				return true, true
			}
		}
		for _, prefix := range []string{"http.routers.", "http.services.", "http.middlewares."} {
			if strings.HasPrefix(p.Path, prefix) {
				return true, false // dropped earlier in this round
			}
		}
	}
	if a := c.cfg.ACME; a != nil {
		for i := len(a.Domains) - 1; i >= 0; i-- {
			if under("acme.domains[" + strconv.Itoa(i) + "]") {
				c.add(c.domainSrc[i], Unsupported, "not converted: "+p.Message, "")
				a.Domains = slices.Delete(a.Domains, i, i+1)
				c.domainSrc = slices.Delete(c.domainSrc, i, i+1)
				return true, true
			}
		}
	}
	if t := c.cfg.TLS; t != nil {
		for i := len(t.Certificates) - 1; i >= 0; i-- {
			if under("tls.certificates[" + strconv.Itoa(i) + "]") {
				c.add(c.certSrc[i], Unsupported, "not converted: "+p.Message, "")
				t.Certificates = slices.Delete(t.Certificates, i, i+1)
				c.certSrc = slices.Delete(c.certSrc, i, i+1)
				return true, true
			}
		}
	}
	return false, false
}

func (c *converter) dropRouter(name, why string) {
	src := c.routers[name].src
	c.add(src, Unsupported, fmt.Sprintf("router %q was left out: %s", name, why), "fix the frontend and convert again")
	delete(c.cfg.HTTP.Routers, name)
}

func (c *converter) dropService(name, why string) {
	key := "http.services." + dn(name)
	c.add(c.origins[key], Unsupported, fmt.Sprintf("service %q was left out: %s", name, why), "fix the backend and convert again")
	delete(c.cfg.HTTP.Services, name)
	for _, r := range slices.Sorted(mapKeys(c.cfg.HTTP.Routers)) {
		if c.cfg.HTTP.Routers[r].Service == name {
			c.dropRouter(r, fmt.Sprintf("its service %q was left out", name))
		}
	}
}

// dropMiddleware removes a middleware and, rather than serving without
// it, the routers that use it.
func (c *converter) dropMiddleware(name, why string) {
	key := "http.middlewares." + dn(name)
	msg := fmt.Sprintf("middleware %q was left out: %s", name, why)
	if at, ok := c.mwAt[name]; ok {
		c.addAt(at, Unsupported, msg, "fix the annotation and convert again; until then the Ingress is served without it")
	} else {
		c.add(c.origins[key], Unsupported, msg, "fix it and convert again")
	}
	delete(c.cfg.HTTP.Middlewares, name)
	for _, r := range slices.Sorted(mapKeys(c.cfg.HTTP.Routers)) {
		if slices.Contains(c.cfg.HTTP.Routers[r].Middlewares, name) {
			c.dropRouter(r, fmt.Sprintf("its middleware %q was left out", name))
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// unusedMiddlewares removes the middlewares no router uses (those of an
// entry point no router listens on, an HTTPS redirection of a frontend
// that only listens on HTTPS).
func (c *converter) unusedMiddlewares() {
	h := c.cfg.HTTP
	if h == nil {
		return
	}
	used := map[string]bool{}
	for _, r := range h.Routers {
		for _, mw := range r.Middlewares {
			used[mw] = true
		}
	}
	for _, name := range slices.Sorted(mapKeys(h.Middlewares)) {
		if !used[name] && !c.keep[name] {
			c.add(c.origins["http.middlewares."+dn(name)], Converted, fmt.Sprintf("middleware %q is not written: no router needs it", name), "")
			delete(h.Middlewares, name)
		}
	}
}
