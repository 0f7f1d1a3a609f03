// Package rule parses router rules in the syntax of Traefik v3, such as
//
//	Host(`example.com`) && (PathPrefix(`/api`) || Header(`X-Api`, `1`))
//
// into a tree that the router turns into request matchers. Parse checks the
// syntax and every argument, and reports mistakes with their position in
// the rule, so that configuration errors can point at them.
//
// The grammar, with whitespace (space, tab, line breaks) allowed between
// tokens:
//
//	rule    = or
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" or ")" | matcher
//	matcher = name "(" [ string { "," string } [ "," ] ] ")"
//	string  = "`" raw text "`" | '"' text with Go escapes '"'
//
// The matchers and their arguments:
//
//	Host(`host`)                 host name or IP; "*.example.com" for one
//	                             label before example.com, "**.example.com"
//	                             for one or more
//	HostRegexp(`regexp`)         host matching a Go regexp
//	Path(`/path`)                exact path
//	PathPrefix(`/prefix`)        path prefix
//	PathRegexp(`regexp`)         path matching a Go regexp
//	Method(`GET`)                request method
//	Header(`name`, `value`)      header with that value
//	HeaderRegexp(`name`, `re`)   header with a value matching a Go regexp
//	Query(`key`[, `value`])      query parameter with that value (default empty)
//	QueryRegexp(`key`[, `re`])   query parameter with a value matching a Go regexp
//	ClientIP(`ip-or-cidr`)       client address
//
// The rules of TCP routers, which ParseTCP reads, have the same grammar,
// limits, spelling rules and errors, and their own matchers:
//
//	HostSNI(`host`)              server name of the TLS ClientHello; a
//	                             host name, "*.example.com" for one label
//	                             before example.com, or "*" for every
//	                             connection, TLS or not
//	HostSNIRegexp(`regexp`)      server name matching a Go regexp
//	ClientIP(`ip-or-cidr`)       client address
//	ALPN(`protocol`)             a protocol the TLS client offers
//
// Each parser refuses the other's matchers with what to write instead.
// ParseTCP refuses what cannot match: a HostSNI with a port or an IP
// address (TLS clients send neither), and ALPN(`acme-tls/1`), the protocol
// of the ACME TLS-ALPN-01 challenge, which tollgate answers itself.
//
// As in Traefik v3, a matcher takes one value: Host(`a`, `b`) from v2 is
// written Host(`a`) || Host(`b`). Matcher names are accepted as documented,
// in lower case, in upper case and capitalized ("Pathprefix"), strings are
// Go string literals (single quotes are not), and a trailing comma after
// the last argument is allowed.
//
// Parse is stricter than Traefik v3 where v3 accepts a rule that cannot
// match what its author meant: a Host with a port or a non-host character,
// an empty regexp (which matches everything, and is more often an unset
// variable than intended), a Query key containing "=", and values in the v2
// {name:regexp} syntax, which v3 reads literally. Its errors say what to
// write instead.
package rule
