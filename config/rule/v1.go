package rule

import (
	"regexp"
	"strings"
)

// v1Rule matches a rule in Traefik 1.x syntax, such as "Host:a.example.com"
// or "Host: a.example.com;PathPrefix:/api": a name followed by a colon,
// which is never valid in a rule of matchers.
var v1Rule = regexp.MustCompile(`^\s*[A-Za-z]+\s*:`)

// IsTraefikV1 reports whether rule is written in Traefik 1.x syntax
// (Name:value;Name:value) rather than as matchers (Name(`value`)).
func IsTraefikV1(rule string) bool { return v1Rule.MatchString(rule) }

// v1Matchers are the Traefik 1.x matchers whose meaning a matcher of the
// same name keeps; the others (PathStrip, AddPrefix, …) also modified the
// request and need a middleware.
var v1Matchers = map[string]bool{"Host": true, "Path": true, "PathPrefix": true, "Method": true}

// v1Error explains a rule in Traefik 1.x syntax and, when it can, gives
// the same rule as matchers.
func v1Error(rule string) *Error {
	off := strings.IndexByte(rule, ':')
	if v3, ok := fromV1(rule); ok {
		return newError(rule, off, "this is Traefik 1.x syntax; write it as %s", shortenTo(v3, 200))
	}
	return newError(rule, off, "this is Traefik 1.x syntax; write matchers such as Host(`a.example.com`) && PathPrefix(`/api`); tollgate migrate traefik-v1 converts 1.x rules, with the middlewares that PathStrip and the like need")
}

// fromV1 converts a Traefik 1.x rule of Host, Path, PathPrefix and Method
// matchers to matchers: parts separated by ";" are all required, values
// separated by "," are alternatives. It reports false for other matchers
// and when the result does not parse.
func fromV1(rule string) (string, bool) {
	var parts []string
	segments := strings.Split(rule, ";")
	for _, seg := range segments {
		name, values, ok := strings.Cut(seg, ":")
		name = strings.TrimSpace(name)
		if !ok || !v1Matchers[name] {
			return "", false
		}
		var alts []string
		for v := range strings.SplitSeq(values, ",") {
			v = strings.TrimSpace(v)
			if v == "" || strings.Contains(v, "`") {
				return "", false
			}
			alts = append(alts, (&Matcher{Name: name, Args: []string{v}}).String())
		}
		if len(alts) == 0 {
			return "", false
		}
		p := strings.Join(alts, " || ")
		if len(alts) > 1 && len(segments) > 1 {
			p = "(" + p + ")"
		}
		parts = append(parts, p)
	}
	v3 := strings.Join(parts, " && ")
	if _, err := Parse(v3); err != nil {
		return "", false
	}
	return v3, true
}
