package rule

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The checks below return what is wrong with one argument, or "". The
// matcher's name and the argument's position are added by spec.check.

// checkAny accepts any value, the empty one included: a Header with an
// empty value matches a header sent empty, a Query one a key without value.
func checkAny(_, _ string) string { return "" }

// checkHost accepts what Traefik v3's Host compares with the request's host
// once the port is removed: a host name, optionally with a trailing dot, an
// IP address, or a name whose first label is "*" (exactly one label) or
// "**" (one or more labels).
func checkHost(_, v string) string {
	if v == "" {
		return "expected a host name, found \"\""
	}
	if !isASCII(v) {
		return fmt.Sprintf("%s is not ASCII; write an internationalized name in its punycode (xn--) form", q(v))
	}
	if re, ok := fromV2(v, true); ok {
		return fmt.Sprintf("%s uses the v2 {name:regexp} syntax; write %s", q(v), suggest("HostRegexp", re))
	}
	if strings.Contains(v, "://") {
		return fmt.Sprintf("%s is a URL; write the host name only", q(v))
	}
	if inner, ok := strings.CutPrefix(v, "["); ok {
		if ip, err := netip.ParseAddr(strings.TrimSuffix(inner, "]")); err == nil && ip.Is6() {
			return fmt.Sprintf("%s: write the IPv6 address without brackets, %s", q(v), q(ip.String()))
		}
	}
	if ip, err := netip.ParseAddr(v); err == nil {
		if ip.Zone() != "" {
			return fmt.Sprintf("%s has a zone; write the address without it", q(v))
		}
		return ""
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		return fmt.Sprintf("%s has a port; Host compares the host without its port: write %s", q(v), suggest("Host", host))
	}
	name, ok := strings.CutPrefix(v, "**.")
	if !ok {
		name, ok = strings.CutPrefix(v, "*.")
	}
	if ok && strings.TrimSuffix(name, ".") == "" {
		return fmt.Sprintf("%s has no domain after the wildcard, as in \"*.example.com\"", q(v))
	}
	return checkHostname(v, strings.TrimSuffix(name, "."), hostWildcards)
}

// How checkHostname explains a misplaced wildcard, for Host and HostSNI.
const (
	hostWildcards = `a wildcard must be the whole first label, as in "*.example.com" (one label) or "**.example.com" (any number); use HostRegexp for other patterns`
	sniWildcards  = `a wildcard must be the whole first label, as in "*.example.com" (one label); use HostSNIRegexp for other patterns`
)

// checkHostSNI accepts "*", which matches every connection, TLS or not,
// and the server names a TLS client may send: a host name, optionally with
// a trailing dot (a client sends none, the name matches without it) or a
// first label "*" standing for exactly one label.
func checkHostSNI(_, v string) string {
	switch {
	case v == "*":
		return ""
	case v == "":
		return `expected a host name or "*" (every connection), found ""`
	case !isASCII(v):
		return fmt.Sprintf("%s is not ASCII; write an internationalized name in its punycode (xn--) form", q(v))
	case strings.Contains(v, "://"):
		return fmt.Sprintf("%s is a URL; write the host name only", q(v))
	}
	if re, ok := fromV2(v, true); ok {
		return fmt.Sprintf("%s uses the v2 {name:regexp} syntax; write %s", q(v), suggest("HostSNIRegexp", re))
	}
	host, _, err := net.SplitHostPort(v)
	hasPort := err == nil
	if !hasPort {
		host = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return fmt.Sprintf("%s is an IP address, which TLS clients never send as server name (RFC 6066), so this never matches; write HostSNI(`*`) to match every connection, with ClientIP to restrict the clients", q(v))
	}
	if hasPort {
		return fmt.Sprintf("%s has a port; a server name has none (the entry point is the port): write %s", q(v), suggest("HostSNI", host))
	}
	if strings.HasPrefix(v, "**.") {
		return fmt.Sprintf("%s: HostSNI takes \"*.\" for exactly one label; for any number write %s", q(v), suggest("HostSNIRegexp", `^(?:[^.]+\.)+`+regexp.QuoteMeta(strings.TrimSuffix(v[3:], "."))+`$`))
	}
	name, ok := strings.CutPrefix(v, "*.")
	if ok && strings.TrimSuffix(name, ".") == "" {
		return fmt.Sprintf("%s has no domain after the wildcard, as in \"*.example.com\"", q(v))
	}
	return checkHostname(v, strings.TrimSuffix(name, "."), sniWildcards)
}

// checkHostname checks name, the host v without its wildcard label and
// trailing dot: labels of 1 to 63 letters, digits, "-" and "_", at most 253
// bytes in all. wildcards explains where a "*" may be.
func checkHostname(v, name, wildcards string) string {
	if len(name) > 253 {
		return fmt.Sprintf("%s is longer than 253 bytes", q(v))
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return fmt.Sprintf("%s has an empty label", q(v))
		case len(label) > 63:
			return fmt.Sprintf("%s has a label longer than 63 bytes", q(v))
		}
		for _, c := range []byte(label) {
			switch {
			case c == '*':
				return fmt.Sprintf("%s: %s", q(v), wildcards)
			case !isHostChar(c):
				return fmt.Sprintf("expected a host name (letters, digits, \"-\", \"_\" and \".\"), found %s in %s", quoteChar(c), q(v))
			}
		}
	}
	return ""
}

func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// checkHostRegexp accepts a Go regexp of ASCII characters, as Traefik v3 does.
func checkHostRegexp(m, v string) string {
	if !isASCII(v) {
		return fmt.Sprintf("%s is not ASCII; match internationalized names in their punycode (xn--) form", q(v))
	}
	return checkRegexp(m, v, "host", true)
}

// checkPathRegexp accepts a Go regexp.
func checkPathRegexp(m, v string) string { return checkRegexp(m, v, "path", true) }

// checkValueRegexp accepts a Go regexp for a header or query value.
func checkValueRegexp(m, v string) string { return checkRegexp(m, v, "value", false) }

// checkRegexp accepts a non-empty Go regexp. An empty one would match every
// host, path or value, which is more often an unset variable than meant.
// Regexps in the v2 {name:regexp} syntax still compile, but match only
// their own text; they are refused with their v3 form when v2 is true.
func checkRegexp(m, v, what string, v2 bool) string {
	if v == "" {
		return fmt.Sprintf("expected a regexp, found \"\", which would match every %s; write `.*` if that is meant", what)
	}
	if re, ok := fromV2(v, true); v2 && ok {
		return fmt.Sprintf("%s uses the v2 {name:regexp} syntax; v3 takes a plain Go regexp: %s", q(v), suggest(m, re))
	}
	if _, err := regexp.Compile(v); err != nil {
		var serr *syntax.Error
		if errors.As(err, &serr) {
			return fmt.Sprintf("error parsing regexp: %s: `%s`", serr.Code, shorten(serr.Expr))
		}
		return err.Error()
	}
	return ""
}

// checkALPN accepts a protocol of the ALPN extension (RFC 7301), such as
// "h2" or "postgresql": 1 to 255 bytes, compared exactly. "acme-tls/1" is
// refused: that protocol is the ACME TLS-ALPN-01 challenge, which tollgate
// answers itself.
func checkALPN(_, v string) string {
	switch {
	case v == "":
		return `expected an ALPN protocol such as "h2", found ""`
	case len(v) > 255:
		return fmt.Sprintf("%s is longer than 255 bytes, the limit of an ALPN protocol", q(v))
	case v == "acme-tls/1":
		return `"acme-tls/1" is reserved for the ACME TLS-ALPN-01 challenge, which tollgate answers itself for the certificates of its [acme] section; match another protocol`
	}
	return ""
}

// checkPath accepts a path or path prefix: it starts with "/". Paths in the
// v2 {name:regexp} syntax are refused with their PathRegexp equivalent.
func checkPath(m, v string) string {
	if re, ok := fromV2(v, m == "Path"); ok {
		return fmt.Sprintf("%s uses the v2 {name:regexp} syntax; write %s", q(v), suggest("PathRegexp", re))
	}
	if !strings.HasPrefix(v, "/") {
		return fmt.Sprintf("expected a path starting with \"/\", found %s", q(v))
	}
	return ""
}

// checkMethod accepts an HTTP method: a token (RFC 9110, section 5.6.2).
// Traefik v3 compares it in upper case, so "get" means GET.
func checkMethod(_, v string) string {
	if !isToken(v) {
		return fmt.Sprintf("expected an HTTP method such as GET, found %s", q(v))
	}
	return ""
}

// checkHeaderName accepts a header field name: a token.
func checkHeaderName(_, v string) string {
	if !isToken(v) {
		return fmt.Sprintf("expected a header name (letters, digits and !#$%%&'*+-.^_`|~), found %s", q(v))
	}
	return ""
}

// checkQueryKey accepts a non-empty key without "=": no key in a parsed
// query can contain one. A key with "=" is most likely the v2 form
// Query(`key=value`).
func checkQueryKey(m, v string) string {
	if v == "" {
		return "expected a query key, found \"\""
	}
	if key, value, ok := strings.Cut(v, "="); ok {
		return fmt.Sprintf("key %s contains \"=\"; v3 takes the value as a second argument, as in %s", q(v),
			suggest(m, key, value))
	}
	return ""
}

// checkClientIP accepts an IP address or a CIDR prefix, without zone.
func checkClientIP(_, v string) string {
	if ip, err := netip.ParseAddr(v); err == nil {
		if ip.Zone() != "" {
			return fmt.Sprintf("%s has a zone; write the address without it", q(v))
		}
		return ""
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return ""
	}
	return fmt.Sprintf("expected an IP address or CIDR prefix, found %s", q(v))
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHostChar(c) && !strings.ContainsRune("!#$%&'*+.^`|~", rune(c)) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// quoteChar returns the character c Go-quoted, for messages.
func quoteChar(c byte) string { return strconv.Quote(string(rune(c))) }
