package router

import (
	"sync"
	"sync/atomic"
	"time"
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
	return b.weight > 0 && b.healthy.Load() && now.UnixNano() >= b.ejectedUntil.Load()
}

// balancer picks backends by smooth weighted round robin: over any run of
// requests each available backend gets its share by weight, and heavy
// backends are interleaved with light ones rather than served in bursts.
type balancer struct {
	backends []*backend

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
	best, total := -1, 0
	for i, b := range lb.backends {
		if !b.available(now) {
			continue
		}
		lb.current[i] += b.weight
		total += b.weight
		if best < 0 || lb.current[i] > lb.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	lb.current[best] -= total
	return lb.backends[best]
}
