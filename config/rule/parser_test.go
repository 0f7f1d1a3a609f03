package rule_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// Tree builders for the tables; positions are not compared.
func m(name string, args ...string) *rule.Matcher { return &rule.Matcher{Name: name, Args: args} }
func and(l, r rule.Expr) *rule.And                { return &rule.And{Left: l, Right: r} }
func or(l, r rule.Expr) *rule.Or                  { return &rule.Or{Left: l, Right: r} }
func not(x rule.Expr) *rule.Not                   { return &rule.Not{X: x} }

var validCases = []struct {
	rule string
	want rule.Expr
	str  string // canonical form; empty if the same as rule
}{
	{"Host(`example.com`)", m("Host", "example.com"), ""},
	{"  Host ( `example.com` )\t", m("Host", "example.com"), "Host(`example.com`)"},
	{"Host(\"example.com\")", m("Host", "example.com"), "Host(`example.com`)"},
	{"Host(`example.com`,)", m("Host", "example.com"), "Host(`example.com`)"},
	{"HostRegexp(`^.+\\.example\\.com$`)", m("HostRegexp", `^.+\.example\.com$`), ""},
	{"Path(`/products`)", m("Path", "/products"), ""},
	{"PathPrefix(`/`)", m("PathPrefix", "/"), ""},
	{"PathRegexp(`\\.(jpeg|jpg|png)$`)", m("PathRegexp", `\.(jpeg|jpg|png)$`), ""},
	{"Method(`OPTIONS`)", m("Method", "OPTIONS"), ""},
	{"Method(`get`)", m("Method", "get"), ""},
	{"Header(`Content-Type`, `application/yaml`)", m("Header", "Content-Type", "application/yaml"), ""},
	{"Header(`X-Empty`, ``)", m("Header", "X-Empty", ""), ""},
	{"HeaderRegexp(`Content-Type`, `(?i)^application/(json|yaml)$`)", m("HeaderRegexp", "Content-Type", "(?i)^application/(json|yaml)$"), ""},
	{"Query(`mobile`, `true`)", m("Query", "mobile", "true"), ""},
	{"Query(`mobile`)", m("Query", "mobile"), ""},
	{"QueryRegexp(`mobile`, `^(true|yes)$`)", m("QueryRegexp", "mobile", "^(true|yes)$"), ""},
	{"QueryRegexp(`mobile`)", m("QueryRegexp", "mobile"), ""},
	{"ClientIP(`10.76.105.11`)", m("ClientIP", "10.76.105.11"), ""},
	{"ClientIP(`::1`)", m("ClientIP", "::1"), ""},
	{"ClientIP(`192.168.1.0/24`)", m("ClientIP", "192.168.1.0/24"), ""},
	{"ClientIP(`fe80::/10`)", m("ClientIP", "fe80::/10"), ""},

	// Host values.
	{"Host(`EXAMPLE.com`)", m("Host", "EXAMPLE.com"), ""},
	{"Host(`example.com.`)", m("Host", "example.com."), ""},
	{"Host(`localhost`)", m("Host", "localhost"), ""},
	{"Host(`my_service`)", m("Host", "my_service"), ""},
	{"Host(`10.0.0.1`)", m("Host", "10.0.0.1"), ""},
	{"Host(`2001:db8::1`)", m("Host", "2001:db8::1"), ""},
	{"Host(`*.example.com`)", m("Host", "*.example.com"), ""},
	{"Host(`**.example.com`)", m("Host", "**.example.com"), ""},
	{"Host(`xn--bcher-kva.example`)", m("Host", "xn--bcher-kva.example"), ""},

	// Matcher names: as documented, lower, upper and capitalized.
	{"host(`a`)", m("Host", "a"), "Host(`a`)"},
	{"HOST(`a`)", m("Host", "a"), "Host(`a`)"},
	{"pathprefix(`/a`)", m("PathPrefix", "/a"), "PathPrefix(`/a`)"},
	{"PATHPREFIX(`/a`)", m("PathPrefix", "/a"), "PathPrefix(`/a`)"},
	{"Pathprefix(`/a`)", m("PathPrefix", "/a"), "PathPrefix(`/a`)"},
	{"Clientip(`::1`)", m("ClientIP", "::1"), "ClientIP(`::1`)"},

	// Strings: escapes, backticks and unprintable characters.
	{"Header(`X`, \"a\\tb\")", m("Header", "X", "a\tb"), ""},
	{"Header(`X`, \"a`b\")", m("Header", "X", "a`b"), ""},
	{"Header(`X`, \"\\x41\\u00e9\\U0001F600\\101\\\"\\\\\")", m("Header", "X", "Aé😀A\"\\"), "Header(`X`, `Aé😀A\"\\`)"},
	{"Header(`X`, \"\\xff\")", m("Header", "X", "\xff"), ""},
	{"Header(`X`, `a\r\nb`)", m("Header", "X", "a\nb"), "Header(`X`, \"a\\nb\")"},
	{"Header(`X`, `ünïcödé`)", m("Header", "X", "ünïcödé"), ""},
	{"Path(`/a b`)", m("Path", "/a b"), ""},

	// Operators, precedence and parentheses.
	{"Host(`a`) && Path(`/`)", and(m("Host", "a"), m("Path", "/")), ""},
	{"Host(`a`)&&Path(`/`)", and(m("Host", "a"), m("Path", "/")), "Host(`a`) && Path(`/`)"},
	{"Host(`a`) || Host(`b`) || Host(`c`)", or(or(m("Host", "a"), m("Host", "b")), m("Host", "c")), ""},
	{"Host(`a`) || (Host(`b`) || Host(`c`))", or(m("Host", "a"), or(m("Host", "b"), m("Host", "c"))), ""},
	{"Host(`a`) || Host(`b`) && Path(`/`)", or(m("Host", "a"), and(m("Host", "b"), m("Path", "/"))), ""},
	{"(Host(`a`) || Host(`b`)) && Path(`/`)", and(or(m("Host", "a"), m("Host", "b")), m("Path", "/")), ""},
	{"Host(`a`) && (Path(`/`) && Method(`GET`))", and(m("Host", "a"), and(m("Path", "/"), m("Method", "GET"))), ""},
	{"((Host(`a`)))", m("Host", "a"), "Host(`a`)"},
	{"!Path(`/`)", not(m("Path", "/")), ""},
	{"! Path(`/`)", not(m("Path", "/")), "!Path(`/`)"},
	{"!!Path(`/`)", not(not(m("Path", "/"))), ""},
	{"!(Path(`/`))", not(m("Path", "/")), "!Path(`/`)"},
	{"!Host(`a`) && Path(`/`)", and(not(m("Host", "a")), m("Path", "/")), ""},
	{"!(Host(`a`) && Path(`/`))", not(and(m("Host", "a"), m("Path", "/"))), ""},
	{"!(Host(`a`) || Path(`/`)) || Method(`GET`)", or(not(or(m("Host", "a"), m("Path", "/"))), m("Method", "GET")), ""},
	{"Host(`a`)\n\t&& Path(`/`)", and(m("Host", "a"), m("Path", "/")), "Host(`a`) && Path(`/`)"},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		e, err := rule.Parse(tc.rule)
		if err != nil {
			t.Errorf("Parse(%q): got error %v, want %v", tc.rule, err, tc.want)
			continue
		}
		if !equal(e, tc.want) {
			t.Errorf("Parse(%q): got %#v, want %#v", tc.rule, e, tc.want)
		}
		want := tc.str
		if want == "" {
			want = tc.rule
		}
		if got := e.String(); got != want {
			t.Errorf("Parse(%q).String(): got %q, want %q", tc.rule, got, want)
		}
		again, err := rule.Parse(e.String())
		if err != nil || !equal(again, e) {
			t.Errorf("Parse(%q) again: got %v, %v; want %v", e.String(), again, err, e)
		}
	}
}

// equal reports whether two trees are equal but for positions.
func equal(a, b rule.Expr) bool {
	switch a := a.(type) {
	case *rule.And:
		b, ok := b.(*rule.And)
		return ok && equal(a.Left, b.Left) && equal(a.Right, b.Right)
	case *rule.Or:
		b, ok := b.(*rule.Or)
		return ok && equal(a.Left, b.Left) && equal(a.Right, b.Right)
	case *rule.Not:
		b, ok := b.(*rule.Not)
		return ok && equal(a.X, b.X)
	case *rule.Matcher:
		b, ok := b.(*rule.Matcher)
		return ok && a.Name == b.Name && reflect.DeepEqual(a.Args, b.Args)
	}
	return false
}

func TestParsePositions(t *testing.T) {
	const src = "  Path(`/ä`) && !HOST(`b`)"
	e, err := rule.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	rule.Walk(e, func(x rule.Expr) bool {
		if m, ok := x.(*rule.Matcher); ok {
			got = append(got, m.Pos)
		}
		return true
	})
	if want := []int{2, strings.Index(src, "HOST")}; !reflect.DeepEqual(got, want) {
		t.Errorf("positions: got %v, want %v", got, want)
	}
}

func TestParseLimits(t *testing.T) {
	host := "Host(`a`)"
	for _, tc := range []struct {
		name string
		rule string
		err  string // "" if valid
	}{
		{"nested 100", strings.Repeat("(", 100) + host + strings.Repeat(")", 100), ""},
		{"nested 101", strings.Repeat("(", 101) + host + strings.Repeat(")", 101),
			`column 101: rule nested too deeply: expected at most 100 levels of "(" and "!", found more`},
		{"not 100", strings.Repeat("!", 100) + host, ""},
		{"not 101", strings.Repeat("!", 101) + host,
			`column 101: rule nested too deeply: expected at most 100 levels of "(" and "!", found more`},
		{"mixed 101", strings.Repeat("!(", 51) + host + strings.Repeat(")", 51),
			`column 101: rule nested too deeply: expected at most 100 levels of "(" and "!", found more`},
		{"unclosed deep", strings.Repeat("(", 1<<15), `column 101: rule nested too deeply: expected at most 100 levels of "(" and "!", found more`},
		{"long chain", host + strings.Repeat(" || "+host, 5000), ""},
		{"longest", "Path(`/" + strings.Repeat("a", rule.MaxRuleBytes-9) + "`)", ""},
		{"too long", "Path(`/" + strings.Repeat("a", rule.MaxRuleBytes-8) + "`)",
			"column 65537: rule too long: expected at most 65536 bytes, found 65537"},
	} {
		_, err := rule.Parse(tc.rule)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: got %v, want success", tc.name, err)
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.err)
		}
	}
}

func TestErrorType(t *testing.T) {
	_, err := rule.Parse("Path(`/äö`) && Hots(`x`)")
	var re *rule.Error
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want *rule.Error", err, err)
	}
	if re.Offset != 17 || re.Column != 16 {
		t.Errorf("got offset %d, column %d; want 17, 16", re.Offset, re.Column)
	}
}
