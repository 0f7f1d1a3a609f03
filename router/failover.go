package router

import (
	"context"
	"errors"
	"net/http"
	"syscall"
)

// failover sends requests to main while it is up and to fallback while
// it is down; main's health comes from its servers' active and passive
// health checks, or from its own children's (validation makes sure main
// can report it).
//
// Beyond that, a request main's server refuses the connection of goes to
// the fallback at once, when nothing was sent to the client yet and the
// request has no body (so it can be sent again): the first requests after
// main's servers stop are not lost to the time health checks take to
// notice.
type failover struct {
	name           string
	main, fallback serviceHandler
	// check propagates health: up while main or fallback is. Without it
	// the service is always up.
	check bool
}

// serviceHandler is a built service of any type.
type serviceHandler interface {
	http.Handler
	// up reports whether the service can take requests now: for a
	// loadBalancer, whether one of its servers is available; for the
	// others, see their types. It is safe for concurrent use.
	up() bool
}

var (
	_ serviceHandler = (*service)(nil)
	_ serviceHandler = (*weighted)(nil)
	_ serviceHandler = (*mirroring)(nil)
	_ serviceHandler = (*failover)(nil)
)

func (f *failover) up() bool {
	return !f.check || f.main.up() || f.fallback.up()
}

// failoverKey is the context key of a request's *refusal, set while a
// failover service tries its main service.
type failoverKey struct{}

// refusal records that a server refused the connection of a request a
// failover service sent to its main service, and wrote nothing.
type refusal struct{ refused bool }

func (f *failover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setService(r, f.name)
	if !f.main.up() {
		f.fallback.ServeHTTP(w, r)
		return
	}
	if !replayable(r) {
		f.main.ServeHTTP(w, r)
		return
	}
	ref := &refusal{}
	cookies := len(w.Header()["Set-Cookie"])
	f.main.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), failoverKey{}, ref)))
	if ref.refused {
		// Sticky cookies main's services set would pin the client to
		// where the request did not go.
		switch h := w.Header(); {
		case cookies == 0:
			h.Del("Set-Cookie")
		case len(h["Set-Cookie"]) > cookies:
			h["Set-Cookie"] = h["Set-Cookie"][:cookies]
		}
		f.fallback.ServeHTTP(w, r)
	}
}

// setService records name as the service of r for its metrics and access
// log line: the innermost service that handles a request is recorded, and
// the request is counted once.
func setService(r *http.Request, name string) {
	if info := infoOf(r); info != nil {
		info.service = name
	}
}

// replayable reports whether r can be sent again after a refused
// connection: it has no body.
func replayable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody
}

// takeRefusal reports whether err, a failed attempt of r, is a refused
// connection that a failover service sends to its fallback; it then
// records it, and the caller must write nothing.
func takeRefusal(r *http.Request, err error) bool {
	ref, _ := r.Context().Value(failoverKey{}).(*refusal)
	if ref == nil || ref.refused || !errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	ref.refused = true
	return true
}
