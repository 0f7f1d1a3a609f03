package router

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// matcher reports whether a request satisfies a compiled rule. It only
// reads the request and is safe for concurrent use.
type matcher func(*http.Request) bool

// compileRule turns a rule into a matcher with the semantics of Traefik
// v3's HTTP muxer. Regexps are compiled here, once. Matchers do not
// allocate, except HostRegexp on a host with upper-case letters, the Path
// matchers on a path with percent-escapes, QueryRegexp on an escaped
// value, the Query matchers on a query of 1,000 pairs or more, and
// ClientIP on an address with a zone or without a port.
//
// Every matcher name of package rule is supported. The tree need not come
// from rule.Parse: a nil node, a wrong number of arguments or an invalid
// argument is an error, never a panic.
func compileRule(e rule.Expr) (matcher, error) {
	switch e := e.(type) {
	case *rule.And:
		if e == nil {
			break
		}
		ms, err := compileAll(rule.FlattenChain(e, true, nil)) // one loop for "a && b && c", not nested closures
		if err != nil {
			return nil, err
		}
		return allOf(ms), nil
	case *rule.Or:
		if e == nil {
			break
		}
		ms, err := compileAll(rule.FlattenChain(e, false, nil))
		if err != nil {
			return nil, err
		}
		return anyOf(ms), nil
	case *rule.Not:
		if e == nil {
			break
		}
		m, err := compileRule(e.X)
		if err != nil {
			return nil, err
		}
		return func(r *http.Request) bool { return !m(r) }, nil
	case *rule.Matcher:
		if e == nil {
			break
		}
		return compileMatcher(e)
	}
	return nil, fmt.Errorf("invalid rule node %T", e)
}

// compileAll compiles the operands of a chain.
func compileAll(es []rule.Expr) ([]matcher, error) {
	ms := make([]matcher, len(es))
	for i, e := range es {
		m, err := compileRule(e)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	return ms, nil
}

// allOf matches when every one of ms does, evaluated left to right.
func allOf(ms []matcher) matcher {
	if len(ms) == 2 {
		a, b := ms[0], ms[1]
		return func(r *http.Request) bool { return a(r) && b(r) }
	}
	return func(r *http.Request) bool {
		for _, m := range ms {
			if !m(r) {
				return false
			}
		}
		return true
	}
}

// anyOf matches when one of ms does, evaluated left to right.
func anyOf(ms []matcher) matcher {
	if len(ms) == 2 {
		a, b := ms[0], ms[1]
		return func(r *http.Request) bool { return a(r) || b(r) }
	}
	return func(r *http.Request) bool {
		return slices.ContainsFunc(ms, func(m matcher) bool { return m(r) })
	}
}

// checkArgs checks the name of a matcher and its number of arguments.
func checkArgs(m *rule.Matcher) error {
	minArgs, maxArgs := 1, 1
	switch m.Name {
	case "Host", "HostRegexp", "Path", "PathPrefix", "PathRegexp", "Method", "ClientIP":
	case "Header", "HeaderRegexp":
		minArgs, maxArgs = 2, 2
	case "Query", "QueryRegexp":
		maxArgs = 2
	default:
		return fmt.Errorf("unknown matcher %q", m.Name)
	}
	n := len(m.Args)
	switch {
	case n >= minArgs && n <= maxArgs:
		return nil
	case maxArgs == 1:
		return fmt.Errorf("%s: expected 1 argument, found %d", m.Name, n)
	case minArgs == maxArgs:
		return fmt.Errorf("%s: expected %d arguments, found %d", m.Name, minArgs, n)
	}
	return fmt.Errorf("%s: expected %d or %d arguments, found %d", m.Name, minArgs, maxArgs, n)
}

// compileMatcher compiles one matcher call.
func compileMatcher(m *rule.Matcher) (matcher, error) {
	if err := checkArgs(m); err != nil {
		return nil, err
	}
	a := m.Args
	var mt matcher
	var err error
	switch m.Name {
	case "Host":
		mt, err = hostMatcher(a[0])
	case "HostRegexp":
		mt, err = hostRegexpMatcher(a[0])
	case "Path", "PathPrefix", "PathRegexp":
		mt, err = pathMatcher(m.Name, a[0])
	case "Method":
		method := strings.ToUpper(a[0])
		mt = func(r *http.Request) bool { return r.Method == method }
	case "Header", "HeaderRegexp":
		mt, err = headerMatcher(a[0], a[1], m.Name == "HeaderRegexp")
	case "Query", "QueryRegexp":
		mt, err = queryMatcher(a, m.Name == "QueryRegexp")
	case "ClientIP":
		mt, err = clientIPMatcher(a[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	return mt, nil
}

// hostMatcher matches the request host (r.Host without port or IPv6
// brackets) against a host name or IP, ignoring ASCII case and one
// trailing dot on either side. "*.example.com" matches exactly one
// non-empty label before example.com, "**.example.com" one or more; neither
// matches example.com itself. An empty request host matches nothing.
func hostMatcher(v string) (matcher, error) {
	if v == "" || !asciiOnly(v) {
		return nil, fmt.Errorf("expected an ASCII host name, found %q", v)
	}
	p := hostPattern(v)
	if suffix, ok := strings.CutPrefix(p, "**"); ok && strings.HasPrefix(suffix, ".") && !strings.Contains(suffix, "*") {
		// suffix is ".example.com": at least one byte must precede it.
		return func(r *http.Request) bool {
			h := requestHost(r.Host)
			return len(h) > len(suffix) && equalFoldASCII(h[len(h)-len(suffix):], suffix)
		}, nil
	}
	if suffix, ok := strings.CutPrefix(p, "*"); ok && strings.HasPrefix(suffix, ".") && !strings.Contains(suffix, "*") {
		return func(r *http.Request) bool {
			h := requestHost(r.Host)
			n := len(h) - len(suffix)
			return n > 0 && equalFoldASCII(h[n:], suffix) && strings.IndexByte(h[:n], '.') < 0
		}, nil
	}
	if strings.Contains(p, "*") {
		return nil, fmt.Errorf("%q: a wildcard must be the whole first label, \"*.\" or \"**.\"", v)
	}
	return func(r *http.Request) bool {
		h := requestHost(r.Host)
		return h != "" && equalFoldASCII(h, p)
	}, nil
}

// hostRegexpMatcher matches the request host, lower-cased and without
// port or brackets, against a regexp. As in Traefik v3, a trailing dot is
// kept: the regexp sees the host as the client sent it.
func hostRegexpMatcher(v string) (matcher, error) {
	if !asciiOnly(v) {
		return nil, fmt.Errorf("expected an ASCII regexp, found %q", v)
	}
	re, err := regexp.Compile(v)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) bool {
		return re.MatchString(strings.ToLower(hostWithoutPort(r.Host)))
	}, nil
}

// pathMatcher compiles Path (equal), PathPrefix and PathRegexp (unanchored,
// as written). They test the routing path, see routingPath.
func pathMatcher(name, v string) (matcher, error) {
	var test func(string) bool
	switch name {
	case "Path":
		test = func(p string) bool { return p == v }
	case "PathPrefix":
		test = func(p string) bool { return strings.HasPrefix(p, v) }
	default:
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, err
		}
		test = re.MatchString
	}
	if name != "PathRegexp" && !strings.HasPrefix(v, "/") {
		return nil, fmt.Errorf("path %q does not start with \"/\"", v)
	}
	return func(r *http.Request) bool {
		if r.URL == nil {
			return false
		}
		p, ok := routingPath(r.URL)
		return ok && test(p)
	}, nil
}

// headerMatcher matches a request with a header named name (in any case)
// that has a value equal to value, or matching it as an unanchored regexp.
// Like Traefik v3 it reads r.Header, so the Host header, which net/http
// moves to r.Host, never matches.
func headerMatcher(name, value string, isRegexp bool) (matcher, error) {
	if name == "" {
		return nil, errors.New("empty header name")
	}
	key := http.CanonicalHeaderKey(name)
	if !isRegexp {
		return func(r *http.Request) bool { return slices.Contains(r.Header[key], value) }, nil
	}
	re, err := regexp.Compile(value)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) bool { return slices.ContainsFunc(r.Header[key], re.MatchString) }, nil
}

// asciiOnly reports whether s has no byte above 0x7f.
func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// maxScannedQueryPairs bounds the query strings queryMatcher scans itself.
// Longer ones go through url.URL.Query, so that net/url's limit on the
// number of parameters (and its GODEBUG setting) applies unchanged.
const maxScannedQueryPairs = 1000

// queryMatcher matches a request whose query has the key args[0] with a
// value equal to args[1] (or, if isRegexp, matching it as an unanchored
// regexp). Without a second argument the value must be empty, as in
// Traefik v3: Query(`k`) matches "?k" and "?k=", not "?k=1". The query is
// read as url.ParseQuery reads it: pairs joined by "&", "+" for a space,
// and pairs containing ";" or an invalid escape skipped.
func queryMatcher(args []string, isRegexp bool) (matcher, error) {
	key, value := args[0], ""
	if len(args) == 2 {
		value = args[1]
	}
	// test reports whether an escaped value, known to be a value of key,
	// matches; decoded is the same test for a decoded value.
	test := func(escaped string) bool { return queryUnescapedEqual(escaped, value) }
	decoded := func(v string) bool { return v == value }
	if isRegexp && len(args) == 2 {
		re, err := regexp.Compile(value)
		if err != nil {
			return nil, err
		}
		decoded = re.MatchString
		test = func(escaped string) bool {
			v, err := url.QueryUnescape(escaped)
			return err == nil && re.MatchString(v)
		}
	}
	return func(r *http.Request) bool {
		if r.URL == nil {
			return false
		}
		raw := r.URL.RawQuery
		if strings.Count(raw, "&") >= maxScannedQueryPairs {
			return slices.ContainsFunc(r.URL.Query()[key], decoded)
		}
		for raw != "" {
			var pair string
			pair, raw, _ = strings.Cut(raw, "&")
			if pair == "" || strings.IndexByte(pair, ';') >= 0 {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			if queryUnescapedEqual(k, key) && test(v) {
				return true
			}
		}
		return false
	}, nil
}

// queryUnescapedEqual reports whether s is a valid query escape of want
// ("+" for a space, "%XX" for any byte) without allocating.
func queryUnescapedEqual(s, want string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// reservedInPath are the characters that Traefik v3 keeps percent-encoded
// in the routing path: the reserved characters of RFC 3986, section 2.2,
// and "%" itself, since decoding them would change the path's meaning.
const reservedInPath = ":/?#[]@!$&'()*+,;=%"

// routingPath returns the path the Path matchers test, as Traefik v3
// computes it: the escaped path (url.URL.EscapedPath) with every
// percent-encoded character decoded except the reserved ones. So
// PathPrefix(`/foo bar`) matches "/foo%20bar", while "/a%2Fb" stays
// "/a%2Fb" and does not match PathPrefix(`/a/`). Unlike v3, which keeps
// only upper-case escapes of reserved characters, the hex digits are
// compared in any case and written in upper case, so "/a%2fb" is "/a%2Fb"
// too. It allocates only when the path has a "%". The second result is
// false for an invalid escape, which net/http never lets through.
func routingPath(u *url.URL) (string, bool) {
	p := u.EscapedPath()
	i := strings.IndexByte(p, '%')
	if i < 0 {
		return p, true
	}
	b := make([]byte, i, len(p))
	copy(b, p[:i])
	for ; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if strings.IndexByte(reservedInPath, d) >= 0 {
			const upperHex = "0123456789ABCDEF"
			b = append(b, '%', upperHex[d>>4], upperHex[d&15])
		} else {
			b = append(b, d)
		}
		i += 2
	}
	return string(b), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// ipRange is an inclusive range of canonical addresses (see canonicalIP).
type ipRange struct{ first, last netip.Addr }

// clientIPMatcher matches the client address against an IP or CIDR
// prefix. Like Traefik v3 (ip.RemoteAddrStrategy) it reads r.RemoteAddr,
// the peer of the connection, and never X-Forwarded-For: forwarded
// addresses, trusted or not, do not change what ClientIP sees. An IPv4
// address written as IPv6 (::ffff:192.0.2.1) is the IPv4 address, and a
// zone is ignored.
func clientIPMatcher(v string) (matcher, error) {
	rng, err := parseIPRange(v)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request) bool {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return false
		}
		a = canonicalIP(a)
		return rng.first.Compare(a) <= 0 && a.Compare(rng.last) <= 0
	}, nil
}

// parseIPRange reads an IP address or a CIDR prefix (host bits may be set,
// as in 192.0.2.1/24).
func parseIPRange(v string) (ipRange, error) {
	if a, err := netip.ParseAddr(v); err == nil {
		a = canonicalIP(a)
		return ipRange{first: a, last: a}, nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return ipRange{}, fmt.Errorf("expected an IP address or CIDR prefix, found %q", v)
	}
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return ipRange{first: canonicalIP(p.Addr()), last: canonicalIP(last)}, nil
}

// canonicalIP unmaps IPv4-mapped IPv6 addresses and drops the zone, as
// Traefik v3's IP checker does on both sides of the comparison.
func canonicalIP(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// requestHost returns the host of a Host header as Host matchers compare
// it: without port, IPv6 brackets and one trailing dot, in its own case.
func requestHost(host string) string {
	return strings.TrimSuffix(hostWithoutPort(host), ".")
}

// normalizeHost returns host as the table indexes it: requestHost in ASCII
// lower case. A Host matcher can match a request only if normalizeHost of
// its Host equals hostPattern of the matcher's value.
func normalizeHost(host string) string { return lowerASCII(requestHost(host)) }

// hostPattern returns the value of a Host matcher as it is compared (see
// rule.HostPattern, which also keys the TLS options by host).
func hostPattern(v string) string { return rule.HostPattern(v) }

// hostWithoutPort removes the port of a Host header like Traefik v3's
// request decorator: "example.com:80" and "example.com" give
// "example.com", "[::1]:80" and "[::1]" give "::1". A value that is not
// host[:port] ("::1", "a:b:c", "[::1") is returned as it is. Unlike
// net.SplitHostPort, it never allocates.
func hostWithoutPort(h string) string {
	if strings.IndexByte(h, ':') < 0 {
		return h
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return h
		}
		rest := h[end+1:]
		if rest == "" || rest[0] == ':' && !strings.ContainsAny(rest[1:], ":[]") {
			return h[1:end]
		}
		return h
	}
	i := strings.LastIndexByte(h, ':')
	if strings.ContainsAny(h[:i], ":[]") || strings.ContainsAny(h[i+1:], "[]") {
		return h
	}
	return h[:i]
}

// lowerASCII returns s with ASCII letters in lower case; it allocates only
// if s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return string(appendLowerASCII(make([]byte, 0, len(s)), s))
		}
	}
	return s
}

// appendLowerASCII appends s to b with ASCII letters in lower case.
func appendLowerASCII(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// equalFoldASCII reports whether a and b are equal ignoring the case of
// ASCII letters only, so that no non-ASCII host equals an ASCII pattern.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
