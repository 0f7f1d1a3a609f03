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

// specs are the HTTP matchers of Traefik v3, in the order error messages
// list them. It is never modified.
var specs = []spec{
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

// otherMatchers are names users bring from Traefik v2 or from TCP routers,
// with what to write instead.
var otherMatchers = map[string]string{
	"HostHeader":    "HostHeader was removed in Traefik v3; use Host",
	"HostSNI":       "HostSNI is a TCP router matcher; HTTP rules use Host",
	"HostSNIRegexp": "HostSNIRegexp is a TCP router matcher; HTTP rules use HostRegexp",
	"ALPN":          "ALPN is a TCP router matcher",
}

// lookup returns the matcher called name, or nil. Like Traefik v3, it
// accepts the name as documented ("PathPrefix"), in lower case
// ("pathprefix"), in upper case ("PATHPREFIX") and capitalized
// ("Pathprefix"), and no other spelling.
func lookup(name string) *spec {
	for i := range specs {
		s := &specs[i]
		lower := strings.ToLower(s.name)
		switch name {
		case s.name, lower, strings.ToUpper(s.name), strings.ToUpper(lower[:1]) + lower[1:]:
			return s
		}
	}
	return nil
}

// unknownMatcher says that no matcher is called name and suggests one.
func unknownMatcher(name string) string {
	if hint, ok := otherMatchers[name]; ok {
		return fmt.Sprintf("unknown matcher %q: %s", name, hint)
	}
	if s := closest(name); s != "" {
		return fmt.Sprintf("unknown matcher %q; did you mean %q?", name, s)
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return fmt.Sprintf("unknown matcher %q; expected one of %s", shorten(name), strings.Join(names, ", "))
}

// closest returns the matcher name nearest to name, ignoring case, if it is
// near enough to be a typo; else "".
func closest(name string) string {
	best, bestDist := "", 3
	lower := strings.ToLower(name)
	for _, s := range specs {
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
