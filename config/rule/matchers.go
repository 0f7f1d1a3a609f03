package rule

import (
	"fmt"
	"strings"
)

// spec describes a matcher: its name, its arguments and how each is checked.
type spec struct {
	name  string
	about string // the arguments, for messages: "a header name and a value"
	min   int    // the number of arguments required
	// checks has one function per argument the matcher takes; each returns
	// what is wrong with the argument's value, or "" if nothing is.
	checks []func(matcher, value string) string
}

// dialect is the set of matchers of one kind of rule, HTTP or TCP.
type dialect struct {
	// specs are the matchers, in the order error messages list them.
	specs []spec
	// others are names of matchers of the other dialect or of older
	// Traefik versions, with what to write instead.
	others map[string]string
}

// The dialects. They are never modified.
var (
	httpDialect = &dialect{specs: httpSpecs, others: httpOthers}
	tcpDialect  = &dialect{specs: tcpSpecs, others: tcpOthers}
)

// httpSpecs are the HTTP matchers of Traefik v3.
var httpSpecs = []spec{
	{name: "ClientIP", about: "an IP address or CIDR prefix", min: 1, checks: checks(checkClientIP)},
	{name: "Header", about: "a header name and a value", min: 2, checks: checks(checkHeaderName, checkAny)},
	{name: "HeaderRegexp", about: "a header name and a regexp", min: 2, checks: checks(checkHeaderName, checkValueRegexp)},
	{name: "Host", about: "a host name", min: 1, checks: checks(checkHost)},
	{name: "HostRegexp", about: "a regexp", min: 1, checks: checks(checkHostRegexp)},
	{name: "Method", about: "an HTTP method", min: 1, checks: checks(checkMethod)},
	{name: "Path", about: "a path", min: 1, checks: checks(checkPath)},
	{name: "PathPrefix", about: "a path prefix", min: 1, checks: checks(checkPath)},
	{name: "PathRegexp", about: "a regexp", min: 1, checks: checks(checkPathRegexp)},
	{name: "Query", about: "a key and an optional value", min: 1, checks: checks(checkQueryKey, checkAny)},
	{name: "QueryRegexp", about: "a key and an optional regexp", min: 1, checks: checks(checkQueryKey, checkValueRegexp)},
}

func checks(fns ...func(matcher, value string) string) []func(matcher, value string) string {
	return fns
}

// tcpSpecs are the TCP matchers of Traefik v3.
var tcpSpecs = []spec{
	{name: "ALPN", about: "an ALPN protocol", min: 1, checks: checks(checkALPN)},
	{name: "ClientIP", about: "an IP address or CIDR prefix", min: 1, checks: checks(checkClientIP)},
	{name: "HostSNI", about: "a host name or \"*\"", min: 1, checks: checks(checkHostSNI)},
	{name: "HostSNIRegexp", about: "a regexp", min: 1, checks: checks(checkHostRegexp)},
}

// httpOthers are names users bring from Traefik v2 or from TCP routers,
// with what to write instead.
var httpOthers = map[string]string{
	"HostHeader":    "HostHeader was removed in Traefik v3; use Host",
	"HostSNI":       "HostSNI is a TCP router matcher; HTTP rules use Host",
	"HostSNIRegexp": "HostSNIRegexp is a TCP router matcher; HTTP rules use HostRegexp",
	"ALPN":          "ALPN is a TCP router matcher",
}

// tcpOthers are the names of HTTP matchers, which TCP rules cannot use: a
// TCP router sees no request, only the TLS ClientHello and the client's
// address.
var tcpOthers = map[string]string{
	"Host":         "Host is an HTTP router matcher; TCP rules use HostSNI",
	"HostRegexp":   "HostRegexp is an HTTP router matcher; TCP rules use HostSNIRegexp",
	"HostHeader":   "HostHeader is an HTTP matcher of Traefik v2; TCP rules use HostSNI",
	"Path":         tcpNoRequest("Path"),
	"PathPrefix":   tcpNoRequest("PathPrefix"),
	"PathRegexp":   tcpNoRequest("PathRegexp"),
	"Method":       tcpNoRequest("Method"),
	"Header":       tcpNoRequest("Header"),
	"HeaderRegexp": tcpNoRequest("HeaderRegexp"),
	"Query":        tcpNoRequest("Query"),
	"QueryRegexp":  tcpNoRequest("QueryRegexp"),
}

func tcpNoRequest(name string) string {
	return name + " is an HTTP router matcher; a TCP router sees no request, only the TLS server name (HostSNI, HostSNIRegexp), the ALPN protocols and the client's address (ClientIP)"
}

// lookup returns the matcher called name, or nil.
func (d *dialect) lookup(name string) *spec {
	for i := range d.specs {
		if s := &d.specs[i]; spelledAs(name, s.name) {
			return s
		}
	}
	return nil
}

// spelledAs reports whether name is a spelling of the matcher name
// canonical. Like Traefik v3, it accepts the name as documented
// ("PathPrefix"), in lower case ("pathprefix"), in upper case
// ("PATHPREFIX") and capitalized ("Pathprefix"), and no other spelling.
func spelledAs(name, canonical string) bool {
	lower := strings.ToLower(canonical)
	switch name {
	case canonical, lower, strings.ToUpper(canonical), strings.ToUpper(lower[:1]) + lower[1:]:
		return true
	}
	return false
}

// unknownMatcher says that no matcher is called name and suggests one.
func (d *dialect) unknownMatcher(name string) string {
	for other, hint := range d.others {
		if spelledAs(name, other) {
			return fmt.Sprintf("unknown matcher %q: %s", name, hint)
		}
	}
	if s := d.closest(name); s != "" {
		return fmt.Sprintf("unknown matcher %q; did you mean %q?", name, s)
	}
	names := make([]string, len(d.specs))
	for i, s := range d.specs {
		names[i] = s.name
	}
	return fmt.Sprintf("unknown matcher %q; expected one of %s", shorten(name), strings.Join(names, ", "))
}

// closest returns the matcher name nearest to name, ignoring case, if it is
// near enough to be a typo; else "".
func (d *dialect) closest(name string) string {
	best, bestDist := "", 3
	lower := strings.ToLower(name)
	for _, s := range d.specs {
		limit := 2
		if len(s.name) >= 9 {
			limit = 3
		}
		if abs(len(lower)-len(s.name)) > limit {
			continue // also keeps the cost of editDistance bounded
		}
		if d := editDistance(lower, strings.ToLower(s.name)); d <= limit && d < bestDist {
			best, bestDist = s.name, d
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// arg is an argument of a matcher as written in the rule.
type arg struct {
	val string
	pos int // byte offset of its opening quote
}

// check validates the arguments of a matcher whose closing parenthesis is
// at closePos in src.
func (s *spec) check(src string, args []arg, closePos int) error {
	if err := s.checkCount(src, args, closePos); err != nil {
		return err
	}
	for i, a := range args {
		if msg := s.checks[i](s.name, a.val); msg != "" {
			return newError(src, a.pos, "%s: %s", s.name, msg)
		}
	}
	return nil
}

// checkCount checks the number of arguments. Too many is reported at the
// first extra argument, too few at the closing parenthesis.
func (s *spec) checkCount(src string, args []arg, closePos int) error {
	n, maxArgs := len(args), len(s.checks)
	if n >= s.min && n <= maxArgs {
		return nil
	}
	takes := fmt.Sprintf("%d arguments", s.min)
	switch {
	case s.min != maxArgs:
		takes = fmt.Sprintf("%d or %d arguments", s.min, maxArgs)
	case s.min == 1:
		takes = "1 argument"
	}
	if n < s.min {
		return newError(src, closePos, "%s takes %s (%s), found %d", s.name, takes, s.about, n)
	}
	msg := fmt.Sprintf("%s takes %s (%s), found %d", s.name, takes, s.about, n)
	if maxArgs == 1 {
		var alts []string
		for _, a := range args[:min(n, 3)] {
			alts = append(alts, suggest(s.name, a.val))
		}
		if n > 3 {
			alts = append(alts, "…")
		}
		msg += `; v3 matchers take one value each, combine them with "||": ` + strings.Join(alts, " || ")
	}
	return newError(src, args[maxArgs].pos, "%s", msg)
}
