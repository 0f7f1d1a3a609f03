package rule

import "strings"

// Walk calls fn for e and, while fn returns true, for the nodes below it,
// depth first and left to right: the operand of a *Not, then the Left and
// Right of an *And or *Or. When fn returns false for a node, Walk skips the
// nodes below it. A nil e is not visited.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch e := e.(type) {
	case *And:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Or:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Not:
		Walk(e.X, fn)
	}
}

// Hosts returns the hosts of the Host matchers of e that are not under a
// "!", in order of first appearance, lower-cased, without trailing dot and
// without duplicates. This is the list for which ACME's onHostRule obtains
// certificates.
//
// A value "*.example.com" is returned as it is: only a wildcard certificate,
// which the DNS-01 challenge alone can obtain, covers it. A value
// "**.example.com" is left out, as no certificate covers every depth of
// subdomain. IP addresses are returned too; callers that cannot obtain
// certificates for them must skip them.
func Hosts(e Expr) []string {
	var hosts []string
	seen := make(map[string]bool)
	Walk(e, func(x Expr) bool {
		switch x := x.(type) {
		case *Not:
			return false
		case *Matcher:
			if x.Name != "Host" || len(x.Args) != 1 {
				return true
			}
			h := strings.TrimSuffix(strings.ToLower(x.Args[0]), ".")
			if h != "" && !strings.HasPrefix(h, "**.") && !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
		return true
	})
	return hosts
}
