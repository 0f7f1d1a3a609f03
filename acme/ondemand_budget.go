package acme

import (
	"crypto/tls"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// A refusal is why a handshake for a name without a certificate was
// served the default certificate, as counted in
// tollgate_acme_ondemand_refused_total.
type refusal int

const (
	// refusedNone: the name is allowed.
	refusedNone refusal = iota
	// refusedDenied: the ask URL refused the name, now or in a kept answer.
	refusedDenied
	// refusedRate: the ask budget of the client's network, or of the
	// replica, was spent.
	refusedRate
	// refusedBusy: MaxAsking names were being asked about already.
	refusedBusy
	// refusedAskFailed: the ask URL did not answer in time, or failed.
	refusedAskFailed
	// refusedNotIssued: the name is allowed but its certificate did not
	// arrive within Wait.
	refusedNotIssued
	numRefusals
)

func (r refusal) String() string {
	switch r {
	case refusedDenied:
		return "denied"
	case refusedRate:
		return "rate_limited"
	case refusedBusy:
		return "busy"
	case refusedAskFailed:
		return "ask_failed"
	case refusedNotIssued:
		return "not_issued"
	}
	return "none"
}

// summaryEvery is how often, at most, the handshakes refused are logged:
// a flood of names makes one line a minute, not one a handshake.
const summaryEvery = time.Minute

// refusals counts the handshakes refused since the last summary.
type refusals struct {
	counts [numRefusals]int
	last   time.Time // of the last summary; zero before the first
}

// refuse counts a handshake served the default certificate for reason,
// and logs the counts since the last summary when summaryEvery has
// passed since it.
func (o *OnDemand) refuse(reason refusal) {
	o.metrics.onDemandRefused(reason.String())
	o.mu.Lock()
	now := o.cfg.Now()
	o.refused.counts[reason]++
	if !o.refused.last.IsZero() && now.Sub(o.refused.last) < summaryEvery {
		o.mu.Unlock()
		return
	}
	counts, since := o.refused.counts, o.refused.last
	o.refused = refusals{last: now}
	o.mu.Unlock()
	attrs := make([]any, 0, 2*int(numRefusals))
	for r := refusedDenied; r < numRefusals; r++ {
		attrs = append(attrs, r.String(), counts[r])
	}
	if !since.IsZero() {
		attrs = append(attrs, "since", since)
	}
	o.log.Warn("on-demand handshakes served the default certificate", attrs...)
}

// maxAllowed bounds the names remembered as allowed. Only the ask URL
// adds to them, so a client cannot fill them.
const maxAllowed = 100_000

// answers keeps the ask URL's answers. Allowed names stay after their
// answer expires, marking them allowed before; refusals are bounded,
// the oldest forgotten first. Its user holds the lock.
type answers struct {
	allowed   map[string]time.Time // until when the answer holds
	denied    map[string]time.Time
	order     []deniedAt // refusals by expiry: their time to live is one
	maxDenied int
}

type deniedAt struct {
	name  string
	until time.Time
}

func newAnswers(maxDenied int) answers {
	return answers{allowed: map[string]time.Time{}, denied: map[string]time.Time{}, maxDenied: maxDenied}
}

// get returns the answer kept for name, if any holds at now, and whether
// name was allowed before.
func (a *answers) get(name string, now time.Time) (allowed, known, before bool) {
	if until, ok := a.allowed[name]; ok {
		if now.Before(until) {
			return true, true, true
		}
		before = true
	}
	if until, ok := a.denied[name]; ok && now.Before(until) {
		return false, true, before
	}
	return false, false, before
}

// put keeps an answer for ttl.
func (a *answers) put(name string, allowed bool, now time.Time, allowTTL, denyTTL time.Duration) {
	if allowed {
		delete(a.denied, name)
		if _, ok := a.allowed[name]; !ok && len(a.allowed) >= maxAllowed {
			a.evictAllowed(now)
		}
		a.allowed[name] = now.Add(allowTTL)
		return
	}
	delete(a.allowed, name)
	for len(a.order) > 0 && (!now.Before(a.order[0].until) || len(a.denied) >= a.maxDenied) {
		if d := a.order[0]; a.denied[d.name].Equal(d.until) {
			delete(a.denied, d.name)
		}
		a.order[0] = deniedAt{}
		a.order = a.order[1:]
	}
	until := now.Add(denyTTL)
	a.denied[name] = until
	a.order = append(a.order, deniedAt{name, until})
}

// evictAllowed forgets an expired allowed name, or any if none has
// expired.
func (a *answers) evictAllowed(now time.Time) {
	victim := ""
	for name, until := range a.allowed {
		victim = name
		if !now.Before(until) {
			break
		}
	}
	delete(a.allowed, victim)
}

// netIdle is how long a client network that stopped asking keeps its
// share of the ask budget.
const netIdle = 30 * time.Second

// maxNetworks bounds the client networks given a share of their own;
// beyond it, new networks share one.
const maxNetworks = 4096

// budget bounds the asks about names never allowed before. Of n client
// networks that asked within netIdle, each gets one n+1th of the rate and
// half the burst at most, and all of them together no more than the rate
// and the burst: a network asking about thousands of made-up names
// spends its share only, and the share left over keeps the replica's
// budget filled for a client arriving from elsewhere, whose first names
// are asked about at once. Names allowed before are asked again on a
// budget of their own, so that no flood delays them. Its user holds the
// lock.
type budget struct {
	rate     float64
	burst    int
	all      *rate.Limiter
	priority *rate.Limiter
	nets     map[string]*netBudget
	pruned   time.Time
}

type netBudget struct {
	lim  *rate.Limiter
	seen time.Time
}

func newBudget(perSecond float64, burst int) *budget {
	return &budget{rate: perSecond, burst: burst,
		all:      rate.NewLimiter(rate.Limit(perSecond), burst),
		priority: rate.NewLimiter(rate.Limit(perSecond), burst),
		nets:     map[string]*netBudget{}}
}

// take spends one ask of network's share, if both it and the replica's
// budget have one left.
func (b *budget) take(network string, now time.Time) bool {
	b.prune(now)
	nb := b.nets[network]
	if nb == nil && len(b.nets) >= maxNetworks {
		network = "other"
		nb = b.nets[network]
	}
	if nb == nil {
		nb = &netBudget{lim: rate.NewLimiter(0, max(1, b.burst/2))}
		b.nets[network] = nb
	}
	nb.seen = now
	nb.lim.SetLimitAt(now, rate.Limit(b.rate/float64(len(b.nets)+1)))
	if nb.lim.TokensAt(now) < 1 || b.all.TokensAt(now) < 1 {
		return false
	}
	nb.lim.AllowN(now, 1)
	b.all.AllowN(now, 1)
	return true
}

// takePriority spends one ask of the budget of names allowed before.
func (b *budget) takePriority(now time.Time) bool { return b.priority.AllowN(now, 1) }

// prune forgets, at most once a second, the networks idle for netIdle.
func (b *budget) prune(now time.Time) {
	if now.Sub(b.pruned) < time.Second {
		return
	}
	b.pruned = now
	for k, nb := range b.nets {
		if now.Sub(nb.seen) > netIdle {
			delete(b.nets, k)
		}
	}
}

// clientNetwork is the network of the hello's client the ask budget is
// shared by: its /24 for IPv4, its /48 for IPv6; "" when unknown.
func clientNetwork(hello *tls.ClientHelloInfo) string {
	if hello.Conn == nil || hello.Conn.RemoteAddr() == nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(hello.Conn.RemoteAddr().String())
	if err != nil {
		return ""
	}
	addr := ap.Addr().Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
