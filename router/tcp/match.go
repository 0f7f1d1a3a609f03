package tcp

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Hello is what a connection is matched on, read before any of its bytes
// are consumed.
type Hello struct {
	// TLS is true when the connection starts with a TLS ClientHello.
	TLS bool
	// ServerName is the lowercased server name of the ClientHello, ""
	// without one (or without TLS).
	ServerName string
	// ALPN lists the protocols the client offers, nil without TLS.
	ALPN []string
	// ClientIP is the client's address (the one a PROXY protocol header
	// gave, when the entry point reads them).
	ClientIP netip.Addr
}

// matcher reports whether a connection matches a rule or part of one.
type matcher func(h *Hello) bool

// compileBoth compiles the two operands of && or ||.
func compileBoth(left, right rule.Expr) (l, r matcher, err error) {
	if l, err = compile(left); err != nil {
		return nil, nil, err
	}
	if r, err = compile(right); err != nil {
		return nil, nil, err
	}
	return l, r, nil
}

// compile turns a parsed TCP rule into a matcher. The rule's syntax and
// matcher names were checked by rule.ParseTCP; the arguments are checked
// here again, since a configuration may reach the router unvalidated.
func compile(e rule.Expr) (matcher, error) {
	switch e := e.(type) {
	case *rule.And:
		l, r, err := compileBoth(e.Left, e.Right)
		if err != nil {
			return nil, err
		}
		return func(h *Hello) bool { return l(h) && r(h) }, nil
	case *rule.Or:
		l, r, err := compileBoth(e.Left, e.Right)
		if err != nil {
			return nil, err
		}
		return func(h *Hello) bool { return l(h) || r(h) }, nil
	case *rule.Not:
		x, err := compile(e.X)
		if err != nil {
			return nil, err
		}
		return func(h *Hello) bool { return !x(h) }, nil
	case *rule.Matcher:
		return compileMatcher(e)
	}
	return nil, fmt.Errorf("unexpected rule node %T", e)
}

func compileMatcher(m *rule.Matcher) (matcher, error) {
	if len(m.Args) == 0 {
		return nil, fmt.Errorf("%s needs an argument", m.Name)
	}
	var ms []matcher
	for _, arg := range m.Args {
		one, err := compileArg(m.Name, arg)
		if err != nil {
			return nil, err
		}
		ms = append(ms, one)
	}
	if len(ms) == 1 {
		return ms[0], nil
	}
	return func(h *Hello) bool {
		return slices.ContainsFunc(ms, func(one matcher) bool { return one(h) })
	}, nil
}

// compileArg compiles one argument of a matcher; several arguments match
// when any does.
func compileArg(name, arg string) (matcher, error) {
	switch name {
	case "HostSNI":
		return hostSNI(arg), nil
	case "HostSNIRegexp":
		re, err := regexp.Compile(arg)
		if err != nil {
			return nil, fmt.Errorf("HostSNIRegexp(%q): %w", arg, err)
		}
		return func(h *Hello) bool { return h.ServerName != "" && re.MatchString(h.ServerName) }, nil
	case "ClientIP":
		if p, err := netip.ParsePrefix(arg); err == nil {
			p = p.Masked()
			return func(h *Hello) bool { return p.Contains(h.ClientIP.Unmap()) || p.Contains(h.ClientIP) }, nil
		}
		a, err := netip.ParseAddr(arg)
		if err != nil {
			return nil, fmt.Errorf("ClientIP(%q): not an IP address or CIDR range", arg)
		}
		a = a.Unmap()
		return func(h *Hello) bool { return h.ClientIP.Unmap() == a }, nil
	case "ALPN":
		return func(h *Hello) bool { return slices.Contains(h.ALPN, arg) }, nil
	}
	return nil, fmt.Errorf("%s is not a TCP matcher: use HostSNI, HostSNIRegexp, ClientIP or ALPN", name)
}

// hostSNI matches a server name exactly (case-insensitively), "*.x" one
// label under x, and "*" every connection, TLS or not.
func hostSNI(arg string) matcher {
	pattern := strings.TrimSuffix(strings.ToLower(arg), ".")
	if pattern == "*" {
		return func(*Hello) bool { return true }
	}
	if parent, ok := strings.CutPrefix(pattern, "*."); ok {
		return func(h *Hello) bool {
			label, rest, found := strings.Cut(h.ServerName, ".")
			return found && label != "" && rest == parent
		}
	}
	return func(h *Hello) bool { return h.ServerName == pattern }
}

// needsTLS reports whether e can match only TLS connections: whether it
// has a matcher other than HostSNI(`*`) and ClientIP that is not negated.
// It decides nothing; Build uses it to refuse a router without TLS whose
// rule could never match.
func needsTLS(e rule.Expr) bool {
	switch e := e.(type) {
	case *rule.And:
		return needsTLS(e.Left) || needsTLS(e.Right)
	case *rule.Or:
		return needsTLS(e.Left) && needsTLS(e.Right)
	case *rule.Not:
		return false
	case *rule.Matcher:
		switch e.Name {
		case "ClientIP":
			return false
		case "HostSNI":
			return !slices.Contains(e.Args, "*")
		}
		return true
	}
	return false
}
