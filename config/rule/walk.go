package rule

import (
	"slices"
	"strings"
)

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
func Hosts(e Expr) []string { return hostsOf(e, "Host") }

// ServerNames returns the names of the HostSNI matchers of e, a TCP rule,
// that are not under a "!", as Hosts does for the Host matchers of an HTTP
// rule: in order of first appearance, lower-cased, without trailing dot
// and without duplicates. This is the list for which ACME's onHostRule
// obtains certificates for a TCP router that terminates TLS.
//
// A value "*.example.com" is returned as it is: only a wildcard
// certificate, which the DNS-01 challenge alone can obtain, covers it.
// HostSNI(`*`), which matches every connection, names no host and is left
// out.
func ServerNames(e Expr) []string { return hostsOf(e, "HostSNI") }

// hostsOf returns the values of the matchers called name in e that are
// not under a "!", normalised, for Hosts and ServerNames.
func hostsOf(e Expr, name string) []string {
	var hosts []string
	seen := make(map[string]bool)
	Walk(e, func(x Expr) bool {
		switch x := x.(type) {
		case *Not:
			return false
		case *Matcher:
			if x.Name != name || len(x.Args) != 1 {
				return true
			}
			h := strings.TrimSuffix(strings.ToLower(x.Args[0]), ".")
			if h != "" && h != "*" && !strings.HasPrefix(h, "**.") && !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
		return true
	})
	return hosts
}

// RequiredHosts returns the exact hosts, lower-cased, without one trailing
// dot and sorted, such that e can only match a request whose normalised host is
// one of them; nil if there is no such list:
//
//	Host(a)    {a}; nil if a is a wildcard
//	X && Y     the intersection if both have a list, else the one that has
//	X || Y     the union if both have a list, else nil
//	!X, other  nil
//
// An empty, non-nil result means that e matches no host at all, as in
// Host(`a`) && Host(`b`). The router indexes routes by these hosts, and a
// TLS handshake picks the TLS options of the router that requires its
// server name.
//
// In a TCP rule, HostSNI plays the part of Host: HostSNI(`*`) and
// wildcards give nil like wildcards of Host.
func RequiredHosts(e Expr) []string {
	switch x := e.(type) {
	case *Matcher:
		if x == nil || x.Name != "Host" && x.Name != "HostSNI" || len(x.Args) != 1 || strings.Contains(x.Args[0], "*") {
			return nil
		}
		return []string{HostPattern(x.Args[0])}
	case *And:
		if x == nil {
			return nil
		}
		var hosts []string
		for _, op := range FlattenChain(x, true, nil) {
			switch h := RequiredHosts(op); {
			case h == nil:
			case hosts == nil:
				hosts = h
			default:
				hosts = slices.DeleteFunc(hosts, func(s string) bool {
					_, found := slices.BinarySearch(h, s)
					return !found
				})
			}
		}
		return hosts
	case *Or:
		if x == nil {
			return nil
		}
		hosts := []string{}
		for _, op := range FlattenChain(x, false, nil) {
			h := RequiredHosts(op)
			if h == nil {
				return nil
			}
			hosts = append(hosts, h...)
		}
		slices.Sort(hosts)
		return slices.Compact(hosts)
	}
	return nil
}

// FlattenChain appends to out the operands of the chain of "&&" (and is
// true) or "||" nodes at the top of e, left to right.
func FlattenChain(e Expr, and bool, out []Expr) []Expr {
	switch x := e.(type) {
	case *And:
		if and && x != nil {
			return FlattenChain(x.Right, and, FlattenChain(x.Left, and, out))
		}
	case *Or:
		if !and && x != nil {
			return FlattenChain(x.Right, and, FlattenChain(x.Left, and, out))
		}
	}
	return append(out, e)
}

// HostPattern returns the argument of a Host matcher as hosts are compared:
// ASCII letters lower-cased, without one trailing dot. The router indexes
// routes and TLS options by it, so there is one definition.
func HostPattern(v string) string { return lowerASCII(strings.TrimSuffix(v, ".")) }

// lowerASCII returns s with ASCII letters in lower case, and only those:
// a non-ASCII host never equals an ASCII one.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// MatchesWithoutTLS reports whether e, a TCP rule, can match a connection
// that does not start with a TLS ClientHello. Such a connection has no
// server name and no ALPN protocols: HostSNI(`*`) matches it, a named
// HostSNI, HostSNIRegexp and ALPN do not, and ClientIP may, depending on
// the client. MatchesWithoutTLS is false only if e matches no such
// connection whatever its client's address; it treats the ClientIP
// matchers of e as independent of each other, so it may be true for a
// rule such as ClientIP(`10.0.0.1`) && !ClientIP(`10.0.0.0/8`) that
// matches nothing at all.
func MatchesWithoutTLS(e Expr) bool {
	canTrue, _ := withoutTLS(e)
	return canTrue
}

// withoutTLS returns whether e can be true and whether it can be false
// for a connection without TLS.
func withoutTLS(e Expr) (canTrue, canFalse bool) {
	switch x := e.(type) {
	case *And:
		if x == nil {
			return false, true
		}
		lt, lf := withoutTLS(x.Left)
		rt, rf := withoutTLS(x.Right)
		return lt && rt, lf || rf
	case *Or:
		if x == nil {
			return false, true
		}
		lt, lf := withoutTLS(x.Left)
		rt, rf := withoutTLS(x.Right)
		return lt || rt, lf && rf
	case *Not:
		if x == nil {
			return false, true
		}
		t, f := withoutTLS(x.X)
		return f, t
	case *Matcher:
		switch {
		case x == nil:
		case x.Name == "ClientIP":
			return true, true
		case x.Name == "HostSNI" && len(x.Args) == 1 && x.Args[0] == "*":
			return true, false
		}
	}
	return false, true
}
