package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-proxy/tollgate/router/wrr"
)

// backend is one server of a service as the balancer sees it.
type backend struct {
	target *serverTarget
	weight int

	// healthy is the verdict of active health checks; true until a check
	// fails.
	healthy atomic.Bool
	// ejectedUntil is the Unix nanosecond time until which passive health
	// checking keeps the server out; 0 when it is in.
	ejectedUntil atomic.Int64
	// failures counts consecutive failed attempts, for passive ejection.
	failures atomic.Int32
}

// available reports whether the balancer may send new requests to b.
func (b *backend) available(now time.Time) bool {
	return b.weight > 0 && b.healthy.Load() && !b.ejected(now)
}

// ejected reports whether passive health checking keeps b out at now.
func (b *backend) ejected(now time.Time) bool {
	return now.UnixNano() < b.ejectedUntil.Load()
}

// up reports whether b is up (see setHealthy): its active health check
// passes and it is not ejected. Its weight does not count.
func (b *backend) up(now time.Time) bool {
	return b.healthy.Load() && !b.ejected(now)
}

// endEjection clears an ejection that has run out at now, and reports
// whether this call did: once per ejection.
func (b *backend) endEjection(now time.Time) bool {
	until := b.ejectedUntil.Load()
	return until != 0 && now.UnixNano() >= until && b.ejectedUntil.CompareAndSwap(until, 0)
}

// balancer picks backends by smooth weighted round robin: over any run of
// requests each available backend gets its share by weight, and heavy
// backends are interleaved with light ones rather than served in bursts.
type balancer struct {
	backends []*backend
	// ejectionEnded, when set, is told once of each ejection that ran
	// out, when next first sees it.
	ejectionEnded func(*backend)

	mu      sync.Mutex
	current []int // smooth WRR state, one per backend
}

func newBalancer(backends []*backend) *balancer {
	return &balancer{backends: backends, current: make([]int, len(backends))}
}

// next returns the next available backend, or nil when none is.
func (lb *balancer) next(now time.Time) *backend {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	i := wrr.Pick(lb.current, func(i int) int {
		b := lb.backends[i]
		if b.endEjection(now) && lb.ejectionEnded != nil {
			lb.ejectionEnded(b)
		}
		if !b.available(now) {
			return 0
		}
		return b.weight
	})
	if i < 0 {
		return nil
	}
	return lb.backends[i]
}
