package migrate

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// v1Rule is one Traefik 1.x route rule, converted: the matchers, which
// all must match, and the modifiers that become middlewares.
type v1Rule struct {
	exprs []rule.Expr
	// strip are the prefixes PathStrip and PathPrefixStrip remove,
	// longest first.
	strip []string
	// stripRegex are the regexps of the prefixes PathStripRegex and
	// PathPrefixStripRegex remove (converted from their templates, the
	// longest template first).
	stripRegex []string
	// addPrefix is AddPrefix's prefix.
	addPrefix string
	// replacePath is ReplacePath's path; replaceRegex and replaceWith
	// are ReplacePathRegex's regexp and replacement.
	replacePath               string
	replaceRegex, replaceWith string
	// ignored says why a modifier Traefik 1.x accepted but did not apply
	// was left out.
	ignored []string
	// hosts are Host's names, for the certificate Traefik 1.x ordered.
	hosts []string
	// literalStars are the Host (and HostRegexp without variables) values
	// with a "*": Traefik 1.x compared them literally, so they matched no
	// request, where tollgate would read them as wildcards. They are left
	// out of exprs and hosts.
	literalStars []string
	// never is set when a matcher is left with no value (each was a
	// literalStars one): the rule matched no request in Traefik 1.x.
	never bool
	// exact is set by Path and PathStrip, which Traefik 1.x matched with
	// or without a trailing slash (it redirected to the form written).
	exact bool
}

// errNoEquivalent marks a rule that uses a modifier tollgate does not
// have: converting the matchers alone would send other paths to the
// backend. Only PathPrefixStrip with a template is such a rule.
var errNoEquivalent = errors.New("no equivalent in tollgate")

// parseV1Rule converts a rule such as "Host:a.com,b.com;PathPrefixStrip:/api".
// Matchers are separated by ";" (all must match), a matcher's values by
// "," (any may match), as Traefik 1.x split them.
func parseV1Rule(s string) (*v1Rule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty rule")
	}
	r := &v1Rule{}
	for part := range strings.FieldsFuncSeq(s, func(c rune) bool { return c == ';' }) {
		name, rest, _ := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		var args []string
		for a := range strings.FieldsFuncSeq(strings.Trim(rest, ":"), func(c rune) bool { return c == ',' }) {
			if a = strings.TrimSpace(a); a != "" {
				args = append(args, a)
			}
		}
		if name == "" {
			continue
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("%s has no value", name)
		}
		if err := r.matcher(name, args); err != nil {
			return nil, err
		}
	}
	if len(r.exprs) == 0 && len(r.strip) == 0 && len(r.stripRegex) == 0 && r.addPrefix == "" &&
		r.replacePath == "" && r.replaceRegex == "" && len(r.ignored) == 0 && !r.never {
		return nil, errors.New("no matcher")
	}
	return r, nil
}

// matcher converts one "Name:values" part.
func (r *v1Rule) matcher(name string, args []string) error {
	switch name {
	case "Host":
		var alts []rule.Expr
		for _, a := range args {
			if strings.Contains(a, "*") {
				r.literalStars = append(r.literalStars, a)
				continue
			}
			h := strings.TrimSuffix(strings.ToLower(a), ".")
			r.hosts = append(r.hosts, h)
			alts = append(alts, m("Host", h))
		}
		r.addAny(alts)
	case "HostRegexp":
		var alts []rule.Expr
		for _, a := range args {
			re, vars, err := muxTemplate(a, "[^.]+", true)
			if err != nil {
				return fmt.Errorf("HostRegexp %q: %w", a, err)
			}
			switch {
			case vars:
				alts = append(alts, m("HostRegexp", re))
			case strings.Contains(a, "*"):
				// Without a {variable}, gorilla/mux matched the text
				// literally, "*" included.
				r.literalStars = append(r.literalStars, a)
			default:
				alts = append(alts, m("Host", strings.TrimSuffix(strings.ToLower(a), ".")))
			}
		}
		r.addAny(alts)
	case "Path", "PathStrip":
		e, err := paths(args, true)
		if err != nil {
			return err
		}
		r.add(e)
		r.exact = true
		if name == "PathStrip" {
			r.stripPrefixes(args)
		}
	case "PathPrefix", "PathPrefixStrip":
		e, err := paths(args, false)
		if err != nil {
			return err
		}
		r.add(e)
		if name == "PathPrefixStrip" {
			if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "{") }) {
				return fmt.Errorf("%w: PathPrefixStrip with a {name:regexp} template: Traefik 1.x removed the template's text as written, which no path starts with, and answered 404", errNoEquivalent)
			}
			r.stripPrefixes(args)
		}
	case "Method":
		var alts []rule.Expr
		for _, a := range args {
			alts = append(alts, m("Method", strings.ToUpper(a)))
		}
		r.add(orAll(alts))
	case "Headers", "HeadersRegexp":
		if len(args)%2 != 0 {
			return fmt.Errorf("%s takes pairs of header name and value, found %d values", name, len(args))
		}
		matcher := "Header"
		if name == "HeadersRegexp" {
			matcher = "HeaderRegexp"
		}
		for i := 0; i < len(args); i += 2 {
			r.add(m(matcher, args[i], args[i+1]))
		}
	case "Query":
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				return fmt.Errorf("matcher Query %q: write key=value", a)
			}
			re, vars, err := muxTemplate(v, ".*", true)
			if err != nil {
				return fmt.Errorf("matcher Query %q: %w", a, err)
			}
			if vars {
				r.add(m("QueryRegexp", k, re))
			} else {
				r.add(m("Query", k, v))
			}
		}
	case "PathStripRegex", "PathPrefixStripRegex":
		exact := name == "PathStripRegex"
		e, err := paths(args, exact)
		if err != nil {
			return err
		}
		r.add(e)
		r.exact = r.exact || exact
		if err := r.stripRegexes(args); err != nil {
			return err
		}
	// Traefik 1.x kept the last value of the modifiers below.
	case "AddPrefix":
		r.addPrefix = args[len(args)-1]
	case "ReplacePath":
		r.replacePath = args[len(args)-1]
	case "ReplacePathRegex":
		r.replacePathRegex(args[len(args)-1])
	default:
		return fmt.Errorf("unknown matcher %q", name)
	}
	return nil
}

func (r *v1Rule) add(e rule.Expr) { r.exprs = append(r.exprs, e) }

// replacePathRegex reads "REGEXP REPLACEMENT". Traefik 1.x applied it
// only when a single space separated the two, the regexp compiled and the
// replacement was not empty; otherwise it served the frontend without it.
func (r *v1Rule) replacePathRegex(v string) {
	parts := strings.Split(v, " ")
	if len(parts) != 2 {
		r.ignored = append(r.ignored, fmt.Sprintf("ReplacePathRegex %q: Traefik 1.x ignored it, as one space does not separate the regular expression from the replacement", v))
		return
	}
	re, repl := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
	if _, err := regexp.Compile(re); err != nil {
		r.ignored = append(r.ignored, fmt.Sprintf("ReplacePathRegex %q: Traefik 1.x ignored it, as the regular expression does not compile", v))
		return
	}
	if repl == "" {
		r.ignored = append(r.ignored, fmt.Sprintf("ReplacePathRegex %q: Traefik 1.x ignored it, as the replacement is empty", v))
		return
	}
	r.replaceRegex, r.replaceWith = re, repl
}

// stripRegexes adds the prefixes of PathStripRegex and
// PathPrefixStripRegex: templates such as /api/{id:[0-9]+} whose match
// at the start of the path is removed. The longest template is tried
// first, as by Traefik 1.x.
func (r *v1Rule) stripRegexes(args []string) error {
	ts := slices.Clone(args)
	slices.SortStableFunc(ts, func(a, b string) int { return len(b) - len(a) })
	for _, t := range ts {
		re, vars, err := muxTemplate(t, "[^/]+", false)
		if err != nil {
			return fmt.Errorf("path %q: %w", t, err)
		}
		if vars {
			re = strings.TrimPrefix(re, "^") // stripPrefixRegex anchors it
		} else {
			re = regexp.QuoteMeta(t)
		}
		if !slices.Contains(r.stripRegex, re) {
			r.stripRegex = append(r.stripRegex, re)
		}
	}
	return nil
}

// addAny adds the alternatives of one matcher; with none left, the
// matcher, and so the rule, matches nothing.
func (r *v1Rule) addAny(alts []rule.Expr) {
	if len(alts) == 0 {
		r.never = true
		return
	}
	r.add(orAll(alts))
}

func (r *v1Rule) stripPrefixes(args []string) {
	ps := slices.Clone(args)
	slices.SortStableFunc(ps, func(a, b string) int { return len(b) - len(a) })
	for _, p := range ps {
		if !slices.Contains(r.strip, p) {
			r.strip = append(r.strip, p)
		}
	}
}

// paths converts Path (exact) or PathPrefix values: a value with a
// {name:regexp} template becomes a PathRegexp.
func paths(args []string, exact bool) (rule.Expr, error) {
	var alts []rule.Expr
	for _, a := range args {
		re, vars, err := muxTemplate(a, "[^/]+", exact)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", a, err)
		}
		switch {
		case vars:
			alts = append(alts, m("PathRegexp", re))
		case exact:
			alts = append(alts, m("Path", a))
		default:
			alts = append(alts, m("PathPrefix", a))
		}
	}
	return orAll(alts), nil
}

// muxTemplate converts a gorilla/mux template, "{sub:[a-z]+}.example.com",
// into the Go regexp it matched, "^(?:[a-z]+)\.example\.com$": text outside
// braces is literal, a variable without a pattern matches def. vars is
// false for a value without variables.
func muxTemplate(t, def string, anchorEnd bool) (re string, vars bool, err error) {
	var b strings.Builder
	b.WriteString("^")
	level, start := 0, 0
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '{':
			if level == 0 {
				b.WriteString(regexp.QuoteMeta(t[start:i]))
				start = i
			}
			level++
		case '}':
			level--
			if level < 0 {
				return "", false, errors.New("unbalanced braces")
			}
			if level == 0 {
				_, pattern, ok := strings.Cut(t[start+1:i], ":")
				if !ok || pattern == "" {
					pattern = def
				}
				b.WriteString("(?:" + pattern + ")")
				start, vars = i+1, true
			}
		}
	}
	if level != 0 {
		return "", false, errors.New("unbalanced braces")
	}
	b.WriteString(regexp.QuoteMeta(t[start:]))
	if anchorEnd {
		b.WriteString("$")
	}
	if !vars {
		return "", false, nil
	}
	if _, err := regexp.Compile(b.String()); err != nil {
		return "", false, fmt.Errorf("invalid regexp: %w", err)
	}
	return b.String(), true, nil
}

func m(name string, args ...string) rule.Expr { return &rule.Matcher{Name: name, Args: args} }

// orAll joins alternatives with ||.
func orAll(es []rule.Expr) rule.Expr {
	out := es[0]
	for _, e := range es[1:] {
		out = &rule.Or{Left: out, Right: e}
	}
	return out
}

// andAll joins conditions with &&.
func andAll(es []rule.Expr) rule.Expr {
	out := es[0]
	for _, e := range es[1:] {
		out = &rule.And{Left: out, Right: e}
	}
	return out
}
