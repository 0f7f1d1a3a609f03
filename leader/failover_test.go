package leader_test

import (
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// envTrials sets how many times each failover is measured (default 3; the
// figures in the docs come from 10).
const envTrials = "TOLLGATE_FAILOVER_TRIALS"

func trials() int {
	if n, err := strconv.Atoi(os.Getenv(envTrials)); err == nil && n > 0 {
		return n
	}
	return 3
}

// TestFailover runs three elector processes on each network backend and
// takes the leader down the ways a replica goes down: killed, terminated,
// paused past its TTL, and the store itself stopped for 30 seconds.
func TestFailover(t *testing.T) {
	for _, b := range []struct {
		name   string
		server func(testserver.TB) *testserver.Server
		scheme string
	}{
		{"consul", testserver.Consul, "consul://"},
		{"etcd", testserver.Etcd, "etcd://"},
	} {
		t.Run(b.name, func(t *testing.T) {
			srv := b.server(t)
			testFailover(t, b.name, srv, b.scheme+srv.Addr)
		})
	}
}

func testFailover(t *testing.T, name string, srv *testserver.Server, endpoint string) {
	const ttl = 10 * time.Second
	c := newCluster(t, endpoint, ttl, 3)
	c.waitFor("first leader", time.Time{}, func(ev event) bool { return ev.Kind == "lead" })

	kill := c.measure("SIGKILL", syscall.SIGKILL, trials())
	term := c.measure("SIGTERM", syscall.SIGTERM, trials())
	t.Logf("%s: failover after SIGKILL over %d trials: median %v, max %v (TTL %v)", name, len(kill), median(kill), slices.Max(kill).Round(time.Millisecond), ttl)
	t.Logf("%s: handover after SIGTERM over %d trials: median %v, max %v", name, len(term), median(term), slices.Max(term).Round(time.Millisecond))

	// Paused past its TTL: another node leads meanwhile, and the paused
	// one, resumed, must find its term over.
	old := c.leaderNow()
	oldTerm := c.lastLead(old)
	at := c.signal(old, syscall.SIGSTOP)
	next := c.waitFor("leader while one is paused", at, func(ev event) bool { return ev.Kind == "lead" && ev.Node != old })
	c.waitFor("write of the term after the pause", at, func(w event) bool { return w.Kind == "write" && w.Token == next.Token })
	resumed := c.signal(old, syscall.SIGCONT)
	c.waitFor("paused leader stepping down", resumed, func(ev event) bool {
		return ev.Node == old && ev.Token == oldTerm && (ev.Kind == "lost" || ev.Kind == "fenced")
	})
	t.Logf("%s: paused leader %s (token %d) replaced by %s (token %d) after %v", name, old, oldTerm, next.Node, next.Token, next.At.Sub(at).Round(time.Millisecond))

	// The store down for 30s: nobody exits, and one leader remains.
	srv.Stop(t)
	time.Sleep(30 * time.Second)
	restarted := time.Now()
	srv.Start(t)
	c.waitFor("a write after the outage", restarted, func(ev event) bool { return ev.Kind == "write" })
	for _, p := range c.running() {
		select {
		case <-p.done:
			t.Errorf("%s exited during the store outage", p.id)
		default:
		}
	}
	c.leaderNow()

	terms, writes := c.checkTerms()
	t.Logf("%s: %d terms and %d fenced writes checked: tokens strictly increase, no write of an older term after a newer one", name, terms, writes)
}

// measure takes the leader down with sig n times, starting a replacement
// each time, and returns how long until another node led.
func (c *cluster) measure(what string, sig syscall.Signal, n int) []time.Duration {
	c.t.Helper()
	var out []time.Duration
	for range n {
		old := c.leaderNow()
		at := c.signal(old, sig)
		ev := c.waitFor("leader after "+what, at, func(ev event) bool { return ev.Kind == "lead" && ev.Node != old })
		out = append(out, ev.At.Sub(at))
		c.start(old)
		// The new leader works: its fenced writes go through.
		c.waitFor("write of the new term", at, func(w event) bool { return w.Kind == "write" && w.Token == ev.Token })
	}
	return out
}

// lastLead returns the token of node's latest term.
func (c *cluster) lastLead(node string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if ev := c.events[i]; ev.Node == node && ev.Kind == "lead" {
			return ev.Token
		}
	}
	c.t.Fatalf("%s never led", node)
	return 0
}

func (c *cluster) running() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*proc
	for _, p := range c.procs {
		ps = append(ps, p)
	}
	return ps
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
