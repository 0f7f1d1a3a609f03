package nginx

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// headerName matches an HTTP header (or cookie) name.
var headerName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,256}$`)

func (t *translation) canary() {
	names := []string{"canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie", "canary-weight", "canary-weight-total"}
	on, ok := t.boolean("canary")
	if !ok || !on {
		if ok {
			t.report("canary", Supported, "")
		}
		t.orphans(names, "without canary: \"true\" it does nothing")
		return
	}
	c := &Canary{Total: 100}
	if n, ok := t.integer("canary-weight-total", 1, 1<<30); ok {
		c.Total = int(n)
		t.report("canary-weight-total", Supported, "")
	}
	if n, ok := t.integer("canary-weight", 0, int64(c.Total)); ok {
		w := int(n)
		c.Weight = &w
		t.report("canary-weight", Supported, "a weighted service replaces the main Ingress's backend: %d of %d requests go to the canary", w, c.Total)
	}
	// Header first, then cookie, then weight, as in ingress-nginx:
	// canary = hAlways || (!hNever && cAlways), main = hNever || (!hAlways && cNever).
	var hAlways, hNever, cAlways, cNever string
	if h, ok := t.get("canary-by-header"); ok {
		val, valOK := t.get("canary-by-header-value")
		pat, patOK := t.get("canary-by-header-pattern")
		switch {
		case !headerName.MatchString(h):
			t.report("canary-by-header", Unsupported, "%q is not a header name; ignored", h)
			for n, set := range map[string]bool{"canary-by-header-value": valOK, "canary-by-header-pattern": patOK} {
				if set {
					t.report(n, Unsupported, "canary-by-header is not a header name; ignored")
				}
			}
		case valOK:
			if !ruleText(val) {
				t.report("canary-by-header-value", Unsupported, "a value with a backquote, a control character or bytes that are not UTF-8 cannot be matched; ignored")
			} else {
				hAlways = "Header(`" + h + "`, `" + val + "`)"
				t.report("canary-by-header-value", Supported, "")
			}
			if patOK {
				t.report("canary-by-header-pattern", Unsupported, "canary-by-header-value is set and wins, as in ingress-nginx; ignored")
			}
			t.report("canary-by-header", Supported, "a router of higher priority with Header")
		case patOK:
			if _, err := compile(pat); err != nil || !ruleText(pat) {
				t.report("canary-by-header-pattern", Unsupported, "%q is not a regular expression tollgate can match (RE2 syntax, no backquote); ignored", pat)
			} else {
				hAlways = "HeaderRegexp(`" + h + "`, `" + pat + "`)"
				t.report("canary-by-header-pattern", Changed, "HeaderRegexp with Go's (RE2) syntax, where ingress-nginx uses PCRE")
			}
			t.report("canary-by-header", Supported, "a router of higher priority with HeaderRegexp")
		default:
			hAlways = "Header(`" + h + "`, `always`)"
			hNever = "Header(`" + h + "`, `never`)"
			t.report("canary-by-header", Supported, "routers of higher priority for the values always and never")
		}
	} else {
		t.orphans([]string{"canary-by-header-value", "canary-by-header-pattern"}, "without canary-by-header it does nothing")
	}
	if ck, ok := t.get("canary-by-cookie"); ok {
		if !headerName.MatchString(ck) {
			t.report("canary-by-cookie", Unsupported, "%q is not a cookie name; ignored", ck)
		} else {
			q := regexp.QuoteMeta(ck)
			cAlways = "HeaderRegexp(`Cookie`, `(^|;\\s*)" + q + "=always(;|$)`)"
			cNever = "HeaderRegexp(`Cookie`, `(^|;\\s*)" + q + "=never(;|$)`)"
			t.report("canary-by-cookie", Changed, "HeaderRegexp on the Cookie header (tollgate has no cookie matcher): the same for one Cookie header; a client sending several Cookie headers is matched on each")
		}
	}
	c.Match = or(hAlways, and(not(hNever), cAlways))
	c.NeverMatch = or(hNever, and(not(hAlways), cNever))
	if c.Match == "" && c.Weight == nil {
		t.report("canary", Changed, "no canary-weight, header or cookie: ingress-nginx sends no request to this canary, tollgate serves none of its routes")
	} else {
		t.report("canary", Supported, "")
	}
	t.r.Canary = c
}

func or(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + " || " + b + ")"
}

func and(a, b string) string {
	switch {
	case a == "" || b == "":
		// an absent "not" term is true; an absent positive one false.
		if b == "" {
			return ""
		}
		return b
	}
	return "(" + a + " && " + b + ")"
}

func not(a string) string {
	if a == "" {
		return ""
	}
	return "!" + a
}

// ruleText says s can be quoted in a rule: UTF-8 without a backquote or a
// control character.
func ruleText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r == '`' || unicode.IsControl(r) })
}
