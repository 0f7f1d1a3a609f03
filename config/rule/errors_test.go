package rule_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// badCases are rules Parse refuses, with the exact error.
var badCases = []struct {
	rule string
	err  string
}{
	// Syntax.
	{"", `column 1: expected a matcher, "!" or "(", found end of rule`},
	{"   ", `column 4: expected a matcher, "!" or "(", found end of rule`},
	{"Host", `column 5: expected "(" after Host, found end of rule`},
	{"Host(", `column 6: expected a string or ")", found end of rule`},
	{"Host(`a`", `column 9: expected ")" or ",", found end of rule`},
	{"Host(`a`,", `column 10: expected a string or ")", found end of rule`},
	{"Host(`a.com` && Path(`/`))", `column 14: expected ")" or ",", found "&&"`},
	{"Host(`a`))", `column 10: expected "&&", "||" or end of rule, found ")"`},
	{"(Host(`a`)", `column 11: expected "&&", "||" or ")", found end of rule`},
	{"Host(`a`) &&", `column 13: expected a matcher, "!" or "(", found end of rule`},
	{"Host(`a`) ||", `column 13: expected a matcher, "!" or "(", found end of rule`},
	{"&& Host(`a`)", `column 1: expected a matcher, "!" or "(", found "&&"`},
	{"Host(`a`) Path(`/`)", `column 11: expected "&&", "||" or end of rule, found "Path"`},
	{"Host(`a`) and Path(`/`)", `column 11: expected "&&", "||" or end of rule, found "and"`},
	{"Host(`a`) & Path(`/`)", `column 11: expected "&&", "||" or end of rule, found "&"`},
	{"Host(`a`) | Path(`/`)", `column 11: expected "&&", "||" or end of rule, found "|"`},
	{"Host(`a` `b`)", "column 10: expected \")\" or \",\", found string `b`"},
	{"Host(,)", `column 6: expected a string or ")", found ","`},
	{"Host(example.com)", `column 6: expected a string or ")", found "example"`},
	{"Host('a')", `column 6: expected a string or ")", found "'" (single quotes are not allowed: use backticks or double quotes)`},
	{"!", `column 2: expected a matcher, "!" or "(", found end of rule`},
	{"()", `column 2: expected a matcher, "!" or "(", found ")"`},
	{"123", `column 1: expected a matcher, "!" or "(", found "1"`},
	// Traefik 1.x syntax: the same rule as matchers when it has one.
	{"Host:a.example.com", "column 5: this is Traefik 1.x syntax; write it as Host(`a.example.com`)"},
	{"PathPrefix:/api", "column 11: this is Traefik 1.x syntax; write it as PathPrefix(`/api`)"},
	{"Host: a.com, b.com; Path:/x", "column 5: this is Traefik 1.x syntax; write it as (Host(`a.com`) || Host(`b.com`)) && Path(`/x`)"},
	{"Method:GET,POST", "column 7: this is Traefik 1.x syntax; write it as Method(`GET`) || Method(`POST`)"},
	{"PathPrefixStrip:/api", "column 16: this is Traefik 1.x syntax; write matchers such as Host(`a.example.com`) && PathPrefix(`/api`); tollgate migrate traefik-v1 converts 1.x rules, with the middlewares that PathStrip and the like need"},
	{"Host:a.example.com;Path:", "column 5: this is Traefik 1.x syntax; write matchers such as Host(`a.example.com`) && PathPrefix(`/api`); tollgate migrate traefik-v1 converts 1.x rules, with the middlewares that PathStrip and the like need"},
	{"Path:relative", "column 5: this is Traefik 1.x syntax; write matchers such as Host(`a.example.com`) && PathPrefix(`/api`); tollgate migrate traefik-v1 converts 1.x rules, with the middlewares that PathStrip and the like need"},
	{"Host(`a`)\u00a0&& Path(`/`)", `column 10: expected "&&", "||" or end of rule, found "\u00a0"`},
	{"Path(`/é`) @", `column 12: expected "&&", "||" or end of rule, found "@"`},
	{"Host(`a`)\xa0", `column 10: expected UTF-8 text, found the byte 0xa0`},

	// Strings.
	{"Host(`a) && Path(`/`)", `column 19: expected ")" or ",", found "/"`},
	{"Host(`a)", "column 6: unterminated string: expected a closing \"`\", found end of rule"},
	{`Host("a)`, `column 6: unterminated string: expected a closing '"', found end of rule`},
	{"Host(\"a\nb\")", `column 6: unterminated string: expected a closing '"', found a line break`},
	{`Host("a\`, `column 6: unterminated string: expected a closing '"', found end of rule`},
	{`Header("X", "\q")`, `column 14: invalid escape in string: expected one of \a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH \OOO, found \q`},
	{`Header("X", "\x4")`, `column 14: invalid escape in string: expected one of \a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH \OOO, found \x4`},
	{`Header("X", "\400")`, `column 14: invalid escape in string: expected one of \a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH \OOO, found \400`},
	{`Header("X", "\'")`, `column 14: invalid escape in string: expected one of \a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH \OOO, found \'`},

	// Matcher names.
	{"Hots(`a`)", `column 1: unknown matcher "Hots"; did you mean "Host"?`},
	{"Host(`a`) && Hots(`b`)", `column 14: unknown matcher "Hots"; did you mean "Host"?`},
	{"PathPrefx(`/`)", `column 1: unknown matcher "PathPrefx"; did you mean "PathPrefix"?`},
	{"pathPrefix(`/`)", `column 1: unknown matcher "pathPrefix"; did you mean "PathPrefix"?`},
	{"Headers(`X`, `y`)", `column 1: unknown matcher "Headers"; did you mean "Header"?`},
	{"Hóst(`a`)", `column 1: unknown matcher "Hóst"; did you mean "Host"?`},
	{"HostHeader(`a`)", `column 1: unknown matcher "HostHeader": HostHeader was removed in Traefik v3; use Host`},
	{"HostSNI(`a`)", `column 1: unknown matcher "HostSNI": HostSNI is a TCP router matcher; HTTP rules use Host`},
	{"X(`a`)", `column 1: unknown matcher "X"; expected one of ClientIP, Header, HeaderRegexp, Host, HostRegexp, Method, Path, PathPrefix, PathRegexp, Query, QueryRegexp`},

	// Argument counts.
	{"Host()", `column 6: Host takes 1 argument (a host name), found 0`},
	{"Host(`a`, `b`)", "column 11: Host takes 1 argument (a host name), found 2; v3 matchers take one value each, combine them with \"||\": Host(`a`) || Host(`b`)"},
	{"Host(`a`,`b`,`c`)", "column 10: Host takes 1 argument (a host name), found 3; v3 matchers take one value each, combine them with \"||\": Host(`a`) || Host(`b`) || Host(`c`)"},
	{"Method(`GET`,`POST`)", "column 14: Method takes 1 argument (an HTTP method), found 2; v3 matchers take one value each, combine them with \"||\": Method(`GET`) || Method(`POST`)"},
	{"Header(`X`)", `column 11: Header takes 2 arguments (a header name and a value), found 1`},
	{"Header(`a`,`b`,`c`)", `column 16: Header takes 2 arguments (a header name and a value), found 3`},
	{"Query()", `column 7: Query takes 1 or 2 arguments (a key and an optional value), found 0`},
	{"Query(`a`,`b`,`c`)", `column 15: Query takes 1 or 2 arguments (a key and an optional value), found 3`},

	// Host.
	{"Host(``)", `column 6: Host: expected a host name, found ""`},
	{"Host(`bücher.de`)", `column 6: Host: "bücher.de" is not ASCII; write an internationalized name in its punycode (xn--) form`},
	{"Host(`https://example.com`)", `column 6: Host: "https://example.com" is a URL; write the host name only`},
	{"Host(`example.com/foo`)", `column 6: Host: expected a host name (letters, digits, "-", "_" and "."), found "/" in "example.com/foo"`},
	{"Host(`exa mple.com`)", `column 6: Host: expected a host name (letters, digits, "-", "_" and "."), found " " in "exa mple.com"`},
	{"Host(`example.com:8080`)", "column 6: Host: \"example.com:8080\" has a port; Host compares the host without its port: write Host(`example.com`)"},
	{"Host(`[::1]:443`)", "column 6: Host: \"[::1]:443\" has a port; Host compares the host without its port: write Host(`::1`)"},
	{"Host(`[::1]`)", `column 6: Host: "[::1]": write the IPv6 address without brackets, "::1"`},
	{"Host(`fe80::1%eth0`)", `column 6: Host: "fe80::1%eth0" has a zone; write the address without it`},
	{"Host(`*`)", `column 6: Host: "*": a wildcard must be the whole first label, as in "*.example.com" (one label) or "**.example.com" (any number); use HostRegexp for other patterns`},
	{"Host(`*example.com`)", `column 6: Host: "*example.com": a wildcard must be the whole first label, as in "*.example.com" (one label) or "**.example.com" (any number); use HostRegexp for other patterns`},
	{"Host(`a.*.com`)", `column 6: Host: "a.*.com": a wildcard must be the whole first label, as in "*.example.com" (one label) or "**.example.com" (any number); use HostRegexp for other patterns`},
	{"Host(`*.`)", `column 6: Host: "*." has no domain after the wildcard, as in "*.example.com"`},
	{"Host(`a..b`)", `column 6: Host: "a..b" has an empty label`},
	{"Host(`.`)", `column 6: Host: "." has an empty label`},
	{"Host(`" + strings.Repeat("a", 64) + ".com`)", `column 6: Host: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" has a label longer than 63 bytes`},
	{"Host(`" + strings.Repeat("a.", 127) + "ab`)", `column 6: Host: "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a…" is longer than 253 bytes`},
	{"Host(`{sub:[a-z]+}.example.com`)", "column 6: Host: \"{sub:[a-z]+}.example.com\" uses the v2 {name:regexp} syntax; write HostRegexp(`^[a-z]+\\.example\\.com$`)"},

	// Regexps.
	{"HostRegexp(``)", "column 12: HostRegexp: expected a regexp, found \"\", which would match every host; write `.*` if that is meant"},
	{"HostRegexp(`bücher`)", `column 12: HostRegexp: "bücher" is not ASCII; match internationalized names in their punycode (xn--) form`},
	{"HostRegexp(`(`)", "column 12: HostRegexp: error parsing regexp: missing closing ): `(`"},
	{"HostRegexp(`{host:.+}`)", "column 12: HostRegexp: \"{host:.+}\" uses the v2 {name:regexp} syntax; v3 takes a plain Go regexp: HostRegexp(`^.+$`)"},
	{"PathRegexp(``)", "column 12: PathRegexp: expected a regexp, found \"\", which would match every path; write `.*` if that is meant"},
	{"PathRegexp(`[`)", "column 12: PathRegexp: error parsing regexp: missing closing ]: `[`"},
	{"HeaderRegexp(`X`, ``)", "column 19: HeaderRegexp: expected a regexp, found \"\", which would match every value; write `.*` if that is meant"},
	{"HeaderRegexp(`X`, `a(`)", "column 19: HeaderRegexp: error parsing regexp: missing closing ): `a(`"},
	{"QueryRegexp(`k`, `*`)", "column 18: QueryRegexp: error parsing regexp: missing argument to repetition operator: `*`"},

	// Paths.
	{"Path(``)", `column 6: Path: expected a path starting with "/", found ""`},
	{"Path(`api`)", `column 6: Path: expected a path starting with "/", found "api"`},
	{"PathPrefix(`api/`)", `column 12: PathPrefix: expected a path starting with "/", found "api/"`},
	{"Path(`/users/{id:[0-9]+}`)", "column 6: Path: \"/users/{id:[0-9]+}\" uses the v2 {name:regexp} syntax; write PathRegexp(`^/users/[0-9]+$`)"},
	{"PathPrefix(`/api/{v:v[0-9]}`)", "column 12: PathPrefix: \"/api/{v:v[0-9]}\" uses the v2 {name:regexp} syntax; write PathRegexp(`^/api/v[0-9]`)"},
	{"Path(`/a/{x:a|b}/c`)", "column 6: Path: \"/a/{x:a|b}/c\" uses the v2 {name:regexp} syntax; write PathRegexp(`^/a/(?:a|b)/c$`)"},

	// Methods, headers, queries, client IPs.
	{"Method(``)", `column 8: Method: expected an HTTP method such as GET, found ""`},
	{"Method(`GE T`)", `column 8: Method: expected an HTTP method such as GET, found "GE T"`},
	{"Header(``, `v`)", "column 8: Header: expected a header name (letters, digits and !#$%&'*+-.^_`|~), found \"\""},
	{"Header(`X:`, `v`)", "column 8: Header: expected a header name (letters, digits and !#$%&'*+-.^_`|~), found \"X:\""},
	{"Query(``)", `column 7: Query: expected a query key, found ""`},
	{"Query(`mobile=true`)", "column 7: Query: key \"mobile=true\" contains \"=\"; v3 takes the value as a second argument, as in Query(`mobile`, `true`)"},
	{"ClientIP(``)", `column 10: ClientIP: expected an IP address or CIDR prefix, found ""`},
	{"ClientIP(`10.0.0.300`)", `column 10: ClientIP: expected an IP address or CIDR prefix, found "10.0.0.300"`},
	{"ClientIP(`10.0.0.0/33`)", `column 10: ClientIP: expected an IP address or CIDR prefix, found "10.0.0.0/33"`},
	{"ClientIP(`fe80::1%eth0`)", `column 10: ClientIP: "fe80::1%eth0" has a zone; write the address without it`},

	// The error is at the offending argument, counted in runes.
	{"Path(`/é`) && Header(`X`, `1`) && ClientIP(`x`)", `column 44: ClientIP: expected an IP address or CIDR prefix, found "x"`},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range badCases {
		e, err := rule.Parse(tc.rule)
		if err == nil {
			t.Errorf("Parse(%q): got %v, want error %s", tc.rule, e, tc.err)
			continue
		}
		if got := err.Error(); got != tc.err {
			t.Errorf("Parse(%q):\ngot  %s\nwant %s", tc.rule, got, tc.err)
		}
		var re *rule.Error
		if !errors.As(err, &re) {
			t.Errorf("Parse(%q): got %T, want *rule.Error", tc.rule, err)
		} else if re.Offset < 0 || re.Offset > len(tc.rule) {
			t.Errorf("Parse(%q): got offset %d, want 0 to %d", tc.rule, re.Offset, len(tc.rule))
		}
	}
}

// TestErrorsStayShort checks that messages quote long values shortened, so
// that a 64 KiB rule cannot make a 64 KiB log line.
func TestErrorsStayShort(t *testing.T) {
	n := rule.MaxRuleBytes
	for name, s := range map[string]string{
		"nested":         strings.Repeat("(", n),
		"long name":      strings.Repeat("a", n-1) + "(",
		"many arguments": "Host(" + strings.Repeat("`a`,", (n-10)/4) + ")",
		"long host":      "Host(`" + strings.Repeat("a.", (n-10)/2) + "`)",
		"long path":      "Path(`" + strings.Repeat("a", n-10) + "`)",
		"long regexp":    "PathRegexp(`" + strings.Repeat("a{1000}", (n-20)/7) + "`)",
		"long v2":        "Path(`/" + strings.Repeat("{a:b}", (n-20)/5) + "`)",
		"long query key": "Query(`" + strings.Repeat("a=", (n-10)/2) + "`)",
		"long string":    "Host(`a`) `" + strings.Repeat("a", n-20) + "`",
	} {
		_, err := rule.Parse(s)
		if err == nil {
			t.Errorf("%s: got success, want an error", name)
		} else if len(err.Error()) > 300 {
			t.Errorf("%s: got a message of %d bytes, want at most 300: %.300s", name, len(err.Error()), err)
		}
	}
}
