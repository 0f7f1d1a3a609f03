package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// route is one router of an entry point: a compiled rule and the handler
// (middlewares and service) of the requests it matches.
type route struct {
	name     string
	priority int
	match    matcher
	// hosts are the exact hosts, as normalizeHost returns them, that the
	// rule requires: it matches no request whose host is not one of them.
	// Nil if the rule does not restrict the host that way; empty (not nil)
	// if it can match no host at all.
	hosts   []string
	handler http.Handler
}

// newRoute compiles the router called name. ruleText is the rule as
// written in the configuration and expr its parsed form. A priority of 0
// means the default of Traefik v3: the length of ruleText in bytes, less 2
// for each "**." Host matcher that is not negated (its stars do not count,
// so that a double wildcard ranks below the exact and single-wildcard
// hosts it covers). An empty ruleText means expr.String(), whose length
// may differ from the rule as written.
func newRoute(name string, expr rule.Expr, ruleText string, priority int, h http.Handler) (*route, error) {
	if h == nil {
		return nil, errors.New("nil handler")
	}
	m, err := compileRule(expr)
	if err != nil {
		return nil, fmt.Errorf("compiling rule: %w", err)
	}
	if priority == 0 {
		priority = defaultPriority(ruleText, expr)
	}
	return &route{name: name, priority: priority, match: m, hosts: rule.RequiredHosts(expr), handler: h}, nil
}

// defaultPriority returns Traefik v3's default priority of a rule, see
// newRoute.
func defaultPriority(ruleText string, expr rule.Expr) int {
	if ruleText == "" {
		ruleText = expr.String()
	}
	return len(ruleText) - len("**")*positiveDoubleWildcards(expr, false)
}

// positiveDoubleWildcards counts the Host(`**.…`) matchers of e under an
// even number of "!", as Traefik v3 counts the hosts of a rule.
func positiveDoubleWildcards(e rule.Expr, negated bool) int {
	switch e := e.(type) {
	case *rule.And:
		if e != nil {
			return positiveDoubleWildcards(e.Left, negated) + positiveDoubleWildcards(e.Right, negated)
		}
	case *rule.Or:
		if e != nil {
			return positiveDoubleWildcards(e.Left, negated) + positiveDoubleWildcards(e.Right, negated)
		}
	case *rule.Not:
		if e != nil {
			return positiveDoubleWildcards(e.X, !negated)
		}
	case *rule.Matcher:
		if e != nil && !negated && e.Name == "Host" && len(e.Args) == 1 && strings.HasPrefix(e.Args[0], "**.") {
			return 1
		}
	}
	return 0
}

// table routes the requests of one entry point. It is immutable once
// built and safe for concurrent use.
//
// Routes whose rule requires exact hosts are indexed by host, so a lookup
// tries only the routes of the request's host and the routes without
// required hosts: 10,000 routes with distinct hosts cost what 10 do.
type table struct {
	byHost   map[string][]*route // by normalised host, in lookup order
	hostless []*route            // routes without required hosts, in lookup order
}

// newTable builds the table of routes. Nil routes are skipped. A route
// whose required hosts are an empty list can match nothing and is left
// out.
func newTable(routes []*route) *table {
	t := &table{byHost: make(map[string][]*route)}
	for _, r := range routes {
		switch {
		case r == nil:
		case r.hosts == nil:
			t.hostless = append(t.hostless, r)
		default:
			for _, h := range r.hosts {
				t.byHost[h] = append(t.byHost[h], r)
			}
		}
	}
	for _, rs := range t.byHost {
		slices.SortStableFunc(rs, compareRoutes)
	}
	slices.SortStableFunc(t.hostless, compareRoutes)
	return t
}

// compareRoutes orders routes as lookup tries them: higher priority
// first, then, as Traefik v3 leaves equal priorities in no defined order,
// by name. Router names are unique within an entry point, so the order is
// total and does not depend on the order the routes were given in.
func compareRoutes(a, b *route) int {
	if c := cmp.Compare(b.priority, a.priority); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// lookup returns the route of highest priority (see compareRoutes) whose
// rule matches r, or nil. It merges the routes of r's host with the
// hostless ones in that order and stops at the first match; it does not
// allocate beyond what the matchers do.
func (t *table) lookup(r *http.Request) *route {
	hs, hl := t.hostRoutes(r.Host), t.hostless
	for len(hs) > 0 || len(hl) > 0 {
		var next *route
		if len(hl) == 0 || len(hs) > 0 && compareRoutes(hs[0], hl[0]) <= 0 {
			next, hs = hs[0], hs[1:]
		} else {
			next, hl = hl[0], hl[1:]
		}
		if next.match(r) {
			return next
		}
	}
	return nil
}

// hostRoutes returns the routes indexed under the normalised form of the
// Host header host.
func (t *table) hostRoutes(host string) []*route {
	if len(t.byHost) == 0 {
		return nil
	}
	h := requestHost(host)
	var buf [256]byte // longer than any host name, so the key stays on the stack
	if len(h) > len(buf) {
		return t.byHost[normalizeHost(host)]
	}
	return t.byHost[string(appendLowerASCII(buf[:0], h))]
}
