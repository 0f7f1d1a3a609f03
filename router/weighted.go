package router

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/router/wrr"
)

// weighted spreads requests over child services by smooth weighted round
// robin, the algorithm of a loadBalancer's servers. With a sticky cookie,
// a client whose cookie names a child that can take requests goes back to
// it. With healthCheck, children that are down are skipped (503 when none
// is up) and the service is up while one child with a weight is.
type weighted struct {
	name     string
	children []weightedChild
	byID     map[string]int // child index by sticky cookie value
	check    bool
	// cookie, when set, is the sticky cookie, called cookieName.
	cookie     *config.Cookie
	cookieName string

	mu      sync.Mutex
	current []int // smooth round robin state, one per child
}

type weightedChild struct {
	name   string
	h      serviceHandler
	weight int
	// id names the child in sticky cookies without revealing its name.
	id string
}

func newWeighted(name string, cfg *config.Weighted, handlers map[string]serviceHandler) *weighted {
	w := &weighted{name: name, byID: map[string]int{}, check: cfg.HealthCheck != nil, current: make([]int, len(cfg.Services))}
	for i, c := range cfg.Services {
		weight := 1
		if c.Weight != nil {
			weight = *c.Weight
		}
		sum := sha256.Sum256([]byte(c.Name))
		id := hex.EncodeToString(sum[:8])
		w.children = append(w.children, weightedChild{name: c.Name, h: handlers[c.Name], weight: weight, id: id})
		if _, dup := w.byID[id]; !dup {
			w.byID[id] = i
		}
	}
	if cfg.Sticky != nil && cfg.Sticky.Cookie != nil {
		w.cookie = cfg.Sticky.Cookie
		w.cookieName = cookieName(name, w.cookie)
	}
	return w
}

// available reports whether c may get new requests.
func (w *weighted) available(c *weightedChild) bool {
	return c.weight > 0 && (!w.check || c.h.up())
}

func (w *weighted) up() bool {
	if !w.check {
		return true
	}
	for i := range w.children {
		if w.available(&w.children[i]) {
			return true
		}
	}
	return false
}

func (w *weighted) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	setService(r, w.name)
	c, sticky := w.pick(r)
	if c == nil {
		http.Error(rw, "no available service", http.StatusServiceUnavailable)
		return
	}
	if w.cookie != nil && !sticky {
		http.SetCookie(rw, stickyCookie(w.cookie, w.cookieName, c.id))
	}
	c.h.ServeHTTP(rw, r)
}

// pick returns the child the sticky cookie names when it is available,
// else the round robin's next; nil when no child is available.
func (w *weighted) pick(r *http.Request) (*weightedChild, bool) {
	if w.cookie != nil {
		if ck, err := r.Cookie(w.cookieName); err == nil {
			if i, ok := w.byID[ck.Value]; ok && w.available(&w.children[i]) {
				return &w.children[i], true
			}
		}
	}
	// The children's health is read before the lock: it may take locks
	// of its own (a child's balancer).
	var avail [8]bool
	ok := avail[:0]
	for i := range w.children {
		ok = append(ok, w.available(&w.children[i]))
	}
	w.mu.Lock()
	i := wrr.Pick(w.current, func(i int) int {
		if !ok[i] {
			return 0
		}
		return w.children[i].weight
	})
	w.mu.Unlock()
	if i < 0 {
		return nil, false
	}
	return &w.children[i], false
}
