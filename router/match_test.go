package router

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// matchCase is a rule and a request built with httptest.NewRequest from
// target, then given host (if not empty, or if noHost), header and remote
// (if not empty).
type matchCase struct {
	name   string
	rule   string
	method string // GET if empty
	target string
	host   string
	noHost bool // r.Host is ""
	header http.Header
	remote string
	want   bool
}

func (c matchCase) request() *http.Request {
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, c.target, nil)
	if c.host != "" || c.noHost {
		r.Host = c.host
	}
	for k, vs := range c.header {
		r.Header[k] = vs
	}
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	return r
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := rule.Parse(c.rule)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.rule, err)
			}
			m, err := compileRule(e)
			if err != nil {
				t.Fatalf("compileRule(%q): %v", c.rule, err)
			}
			if got := m(c.request()); got != c.want {
				t.Errorf("%s on %s %s (Host %q): got %v, want %v", c.rule, c.method, c.target, c.host, got, c.want)
			}
		})
	}
}

func TestHostMatcher(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "exact", rule: "Host(`example.com`)", target: "http://example.com/", want: true},
		{name: "other host", rule: "Host(`example.com`)", target: "http://example.org/", want: false},
		{name: "subdomain is not the host", rule: "Host(`example.com`)", target: "http://a.example.com/", want: false},
		{name: "request in upper case", rule: "Host(`example.com`)", target: "http://EXAMPLE.Com/", want: true},
		{name: "rule in upper case", rule: "Host(`Example.COM`)", target: "http://example.com/", want: true},
		{name: "port ignored", rule: "Host(`example.com`)", target: "http://example.com:8080/", want: true},
		{name: "empty port", rule: "Host(`example.com`)", target: "/", host: "example.com:", want: true},
		{name: "request trailing dot", rule: "Host(`example.com`)", target: "http://example.com./", want: true},
		{name: "request trailing dot and port", rule: "Host(`example.com`)", target: "http://example.com.:443/", want: true},
		{name: "rule trailing dot", rule: "Host(`example.com.`)", target: "http://example.com/", want: true},
		{name: "two trailing dots", rule: "Host(`example.com`)", target: "/", host: "example.com..", want: false},
		{name: "ipv4", rule: "Host(`192.0.2.1`)", target: "http://192.0.2.1:80/", want: true},
		{name: "ipv6 with port", rule: "Host(`::1`)", target: "http://[::1]:8080/", want: true},
		{name: "ipv6 without port", rule: "Host(`::1`)", target: "/", host: "[::1]", want: true},
		{name: "ipv6 hex case", rule: "Host(`2001:db8::a`)", target: "/", host: "[2001:DB8::A]:443", want: true},
		{name: "empty host", rule: "Host(`example.com`)", target: "/", noHost: true, want: false},
		{name: "colon only", rule: "Host(`example.com`)", target: "/", host: ":", want: false},
		{name: "non-ascii fold", rule: "Host(`k.com`)", target: "/", host: "\u212a.com", want: false},
		{name: "one label", rule: "Host(`*.example.com`)", target: "http://api.example.com/", want: true},
		{name: "one label upper", rule: "Host(`*.example.com`)", target: "http://API.Example.COM:443/", want: true},
		{name: "one label trailing dot", rule: "Host(`*.example.com`)", target: "http://api.example.com./", want: true},
		{name: "one label, not two", rule: "Host(`*.example.com`)", target: "http://a.b.example.com/", want: false},
		{name: "one label, not zero", rule: "Host(`*.example.com`)", target: "http://example.com/", want: false},
		{name: "one label, not empty", rule: "Host(`*.example.com`)", target: "/", host: ".example.com", want: false},
		{name: "one label, whole suffix", rule: "Host(`*.example.com`)", target: "http://aexample.com/", want: false},
		{name: "many labels, one", rule: "Host(`**.example.com`)", target: "http://api.example.com/", want: true},
		{name: "many labels, three", rule: "Host(`**.example.com`)", target: "http://a.b.c.example.com:80/", want: true},
		{name: "many labels, not zero", rule: "Host(`**.example.com`)", target: "http://example.com/", want: false},
		{name: "many labels, whole suffix", rule: "Host(`**.example.com`)", target: "http://aexample.com/", want: false},
		{name: "many labels, not empty", rule: "Host(`**.example.com`)", target: "/", host: ".example.com", want: false},
	})
}

func TestHostRegexpMatcher(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "anchored", rule: "HostRegexp(`^[a-z]+\\.example\\.com$`)", target: "http://api.example.com/", want: true},
		{name: "lower-cased, port removed", rule: "HostRegexp(`^[a-z]+\\.example\\.com$`)", target: "http://API.example.com:8443/", want: true},
		{name: "ipv6 brackets removed", rule: "HostRegexp(`^::1$`)", target: "http://[::1]:80/", want: true},
		{name: "trailing dot kept", rule: "HostRegexp(`^[a-z]+\\.example\\.com$`)", target: "http://api.example.com./", want: false},
		{name: "unanchored", rule: "HostRegexp(`example`)", target: "http://www.example.org/", want: true},
		{name: "no match", rule: "HostRegexp(`^api\\.`)", target: "http://www.example.com/", want: false},
	})
}

func TestPathMatchers(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "path exact", rule: "Path(`/foo`)", target: "/foo", want: true},
		{name: "path not prefix", rule: "Path(`/foo`)", target: "/foo/", want: false},
		{name: "path ignores query", rule: "Path(`/foo`)", target: "/foo?a=1", want: true},
		{name: "path decoded space", rule: "Path(`/foo bar`)", target: "/foo%20bar", want: true},
		{name: "path decoded utf-8", rule: "Path(`/café`)", target: "/caf%C3%A9", want: true},
		{name: "path encoded slash stays", rule: "Path(`/a/b`)", target: "/a%2Fb", want: false},
		{name: "path encoded slash as written", rule: "Path(`/a%2Fb`)", target: "/a%2Fb", want: true},
		{name: "path encoded slash lower hex", rule: "Path(`/a%2Fb`)", target: "/a%2fb", want: true},
		{name: "path encoded percent stays", rule: "Path(`/100%25`)", target: "/100%25", want: true},
		{name: "path case sensitive", rule: "Path(`/Foo`)", target: "/foo", want: false},
		{name: "prefix", rule: "PathPrefix(`/api`)", target: "/api/users", want: true},
		{name: "prefix is a string prefix", rule: "PathPrefix(`/api`)", target: "/apiary", want: true},
		{name: "prefix equal", rule: "PathPrefix(`/api`)", target: "/api", want: true},
		{name: "prefix shorter path", rule: "PathPrefix(`/api`)", target: "/ap", want: false},
		{name: "prefix not through encoded slash", rule: "PathPrefix(`/admin/`)", target: "/admin%2Fsecret", want: false},
		{name: "prefix decoded", rule: "PathPrefix(`/a b/`)", target: "/a%20b/c", want: true},
		{name: "root prefix", rule: "PathPrefix(`/`)", target: "/anything", want: true},
		{name: "regexp", rule: "PathRegexp(`^/v[0-9]+/`)", target: "/v2/users", want: true},
		{name: "regexp unanchored", rule: "PathRegexp(`[0-9]`)", target: "/a1", want: true},
		{name: "regexp no match", rule: "PathRegexp(`^/v[0-9]+/`)", target: "/vx/users", want: false},
		{name: "regexp on decoded path", rule: "PathRegexp(`^/a b$`)", target: "/a%20b", want: true},
	})
}

func TestMethodMatcher(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "same", rule: "Method(`GET`)", target: "/", want: true},
		{name: "rule in lower case", rule: "Method(`post`)", method: "POST", target: "/", want: true},
		{name: "request in lower case", rule: "Method(`GET`)", method: "get", target: "/", want: false},
		{name: "other", rule: "Method(`POST`)", target: "/", want: false},
		{name: "extension method", rule: "Method(`PURGE`)", method: "PURGE", target: "/", want: true},
	})
}

func TestHeaderMatchers(t *testing.T) {
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Add(kv[i], kv[i+1])
		}
		return hd
	}
	runMatchCases(t, []matchCase{
		{name: "value", rule: "Header(`X-Env`, `prod`)", target: "/", header: h("X-Env", "prod"), want: true},
		{name: "name in any case", rule: "Header(`x-env`, `prod`)", target: "/", header: h("X-Env", "prod"), want: true},
		{name: "one of the values", rule: "Header(`X-Env`, `prod`)", target: "/", header: h("X-Env", "dev", "X-Env", "prod"), want: true},
		{name: "value case sensitive", rule: "Header(`X-Env`, `prod`)", target: "/", header: h("X-Env", "Prod"), want: false},
		{name: "value is not split on commas", rule: "Header(`X-Env`, `prod`)", target: "/", header: h("X-Env", "dev, prod"), want: false},
		{name: "absent", rule: "Header(`X-Env`, `prod`)", target: "/", want: false},
		{name: "empty value", rule: "Header(`X-Env`, ``)", target: "/", header: h("X-Env", ""), want: true},
		{name: "host header is not a header", rule: "Header(`Host`, `example.com`)", target: "http://example.com/", want: false},
		{name: "regexp", rule: "HeaderRegexp(`X-Env`, `^pr`)", target: "/", header: h("X-Env", "dev", "X-Env", "prod"), want: true},
		{name: "regexp no match", rule: "HeaderRegexp(`X-Env`, `^st`)", target: "/", header: h("X-Env", "prod"), want: false},
		{name: "regexp absent", rule: "HeaderRegexp(`X-Env`, `.*`)", target: "/", want: false},
	})
}

func TestQueryMatchers(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "value", rule: "Query(`a`, `1`)", target: "/?a=1", want: true},
		{name: "one of the values", rule: "Query(`a`, `1`)", target: "/?a=2&a=1", want: true},
		{name: "other value", rule: "Query(`a`, `1`)", target: "/?a=2", want: false},
		{name: "other key", rule: "Query(`a`, `1`)", target: "/?b=1", want: false},
		{name: "no query", rule: "Query(`a`, `1`)", target: "/", want: false},
		{name: "key only, no value", rule: "Query(`a`)", target: "/?a", want: true},
		{name: "key only, empty value", rule: "Query(`a`)", target: "/?b=1&a=", want: true},
		{name: "key only, a value", rule: "Query(`a`)", target: "/?a=1", want: false},
		{name: "escapes", rule: "Query(`a b`, `c d/é`)", target: "/?a+b=c%20d%2F%C3%A9", want: true},
		{name: "escaped key", rule: "Query(`a`, `1`)", target: "/?%61=1", want: true},
		{name: "semicolon pair skipped", rule: "Query(`a`, `1`)", target: "/?a=1;b=2", want: false},
		{name: "invalid escape skipped", rule: "Query(`a`, `%zz`)", target: "/?a=%zz", want: false},
		{name: "invalid escape, next pair", rule: "Query(`a`, `1`)", target: "/?a=%zz&a=1", want: true},
		{name: "truncated escape", rule: "Query(`a`, `1`)", target: "/?a=1%2", want: false},
		{name: "empty pairs", rule: "Query(`a`, `1`)", target: "/?&&a=1&", want: true},
		{name: "value with equals", rule: "Query(`a`, `b=c`)", target: "/?a=b=c", want: true},
		{name: "regexp", rule: "QueryRegexp(`a`, `^[0-9]+$`)", target: "/?a=x&a=12", want: true},
		{name: "regexp no match", rule: "QueryRegexp(`a`, `^[0-9]+$`)", target: "/?a=x", want: false},
		{name: "regexp decoded", rule: "QueryRegexp(`q`, `^a b$`)", target: "/?q=a+b", want: true},
		{name: "regexp key only", rule: "QueryRegexp(`a`)", target: "/?a", want: true},
		{name: "regexp key only, a value", rule: "QueryRegexp(`a`)", target: "/?a=1", want: false},
		{name: "long query", rule: "Query(`k`, `v`)", target: "/?" + strings.Repeat("x=0&", 1500) + "k=v", want: true},
		{name: "over net/url's limit", rule: "Query(`k`, `v`)", target: "/?" + strings.Repeat("x=0&", 10000) + "k=v", want: false},
	})
}

func TestClientIPMatcher(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "address", rule: "ClientIP(`192.0.2.1`)", target: "/", remote: "192.0.2.1:1234", want: true},
		{name: "other address", rule: "ClientIP(`192.0.2.2`)", target: "/", remote: "192.0.2.1:1234", want: false},
		{name: "prefix", rule: "ClientIP(`192.0.2.0/24`)", target: "/", remote: "192.0.2.200:1", want: true},
		{name: "prefix with host bits", rule: "ClientIP(`192.0.2.7/24`)", target: "/", remote: "192.0.2.200:1", want: true},
		{name: "outside prefix", rule: "ClientIP(`10.0.0.0/8`)", target: "/", remote: "192.0.2.1:1", want: false},
		{name: "ipv4-mapped client", rule: "ClientIP(`192.0.2.0/24`)", target: "/", remote: "[::ffff:192.0.2.1]:1", want: true},
		{name: "ipv4-mapped rule", rule: "ClientIP(`::ffff:192.0.2.1`)", target: "/", remote: "192.0.2.1:1", want: true},
		{name: "ipv6 prefix", rule: "ClientIP(`2001:db8::/32`)", target: "/", remote: "[2001:db8:1::5]:443", want: true},
		{name: "ipv6 outside", rule: "ClientIP(`2001:db8::/32`)", target: "/", remote: "[2001:db9::5]:443", want: false},
		{name: "ipv4 client, ipv6 rule", rule: "ClientIP(`::/0`)", target: "/", remote: "192.0.2.1:1", want: false},
		{name: "zone ignored", rule: "ClientIP(`fe80::/10`)", target: "/", remote: "[fe80::1%eth0]:1", want: true},
		{name: "no port", rule: "ClientIP(`192.0.2.1`)", target: "/", remote: "192.0.2.1", want: true},
		{name: "not an address", rule: "ClientIP(`0.0.0.0/0`)", target: "/", remote: "@", want: false},
		{name: "x-forwarded-for ignored", rule: "ClientIP(`10.0.0.1`)", target: "/", remote: "192.0.2.1:1",
			header: http.Header{"X-Forwarded-For": {"10.0.0.1"}}, want: false},
	})
}

func TestOperators(t *testing.T) {
	const r = "Host(`a.com`) && (Path(`/x`) || PathPrefix(`/y/`)) && !Method(`DELETE`)"
	runMatchCases(t, []matchCase{
		{name: "and/or/not, first path", rule: r, target: "http://a.com/x", want: true},
		{name: "and/or/not, second path", rule: r, target: "http://a.com/y/z", want: true},
		{name: "and/or/not, not", rule: r, method: "DELETE", target: "http://a.com/x", want: false},
		{name: "and/or/not, host", rule: r, target: "http://b.com/x", want: false},
		{name: "and/or/not, path", rule: r, target: "http://a.com/z", want: false},
		{name: "or chain, last", rule: "Path(`/a`) || Path(`/b`) || Path(`/c`) || Path(`/d`)", target: "/d", want: true},
		{name: "or chain, none", rule: "Path(`/a`) || Path(`/b`) || Path(`/c`) || Path(`/d`)", target: "/e", want: false},
		{name: "and chain, all", rule: "PathPrefix(`/a`) && PathPrefix(`/ab`) && PathPrefix(`/abc`)", target: "/abcd", want: true},
		{name: "and chain, one fails", rule: "PathPrefix(`/a`) && PathPrefix(`/ab`) && PathPrefix(`/abc`)", target: "/abd", want: false},
		{name: "double negation", rule: "!!Path(`/a`)", target: "/a", want: true},
		{name: "precedence", rule: "Path(`/a`) || Path(`/b`) && Method(`POST`)", target: "/a", want: true},
	})
}

func TestCompileRuleErrors(t *testing.T) {
	m := func(name string, args ...string) *rule.Matcher { return &rule.Matcher{Name: name, Args: args} }
	tests := []struct {
		name string
		expr rule.Expr
		want string
	}{
		{name: "nil", expr: nil, want: "invalid rule node"},
		{name: "nil and", expr: (*rule.And)(nil), want: "invalid rule node"},
		{name: "nil operand", expr: &rule.Or{Left: m("Path", "/"), Right: nil}, want: "invalid rule node"},
		{name: "nil not", expr: &rule.Not{}, want: "invalid rule node"},
		{name: "nil matcher", expr: (*rule.Matcher)(nil), want: "invalid rule node"},
		{name: "unknown matcher", expr: m("HostSNI", "a"), want: `unknown matcher "HostSNI"`},
		{name: "non-canonical name", expr: m("host", "a"), want: `unknown matcher "host"`},
		{name: "too few arguments", expr: m("Header", "X"), want: "Header: expected 2 arguments, found 1"},
		{name: "too many arguments", expr: m("Host", "a", "b"), want: "Host: expected 1 argument, found 2"},
		{name: "no arguments", expr: m("Query"), want: "Query: expected 1 or 2 arguments, found 0"},
		{name: "empty host", expr: m("Host", ""), want: "Host: expected an ASCII host name"},
		{name: "non-ascii host", expr: m("Host", "café.com"), want: "Host: expected an ASCII host name"},
		{name: "inner wildcard", expr: m("Host", "a.*.com"), want: "wildcard must be the whole first label"},
		{name: "lone wildcard", expr: m("Host", "*"), want: "wildcard must be the whole first label"},
		{name: "non-ascii host regexp", expr: m("HostRegexp", "é"), want: "HostRegexp: expected an ASCII regexp"},
		{name: "bad host regexp", expr: m("HostRegexp", "("), want: "HostRegexp: error parsing regexp"},
		{name: "relative path", expr: m("Path", "a"), want: `Path: path "a" does not start with "/"`},
		{name: "bad path regexp", expr: m("PathRegexp", "["), want: "PathRegexp: error parsing regexp"},
		{name: "empty header name", expr: m("Header", "", "v"), want: "Header: empty header name"},
		{name: "bad header regexp", expr: m("HeaderRegexp", "X", "("), want: "HeaderRegexp: error parsing regexp"},
		{name: "bad query regexp", expr: m("QueryRegexp", "k", "("), want: "QueryRegexp: error parsing regexp"},
		{name: "bad client ip", expr: m("ClientIP", "192.0.2.300"), want: "ClientIP: expected an IP address or CIDR prefix"},
		{name: "deep error", expr: &rule.And{Left: m("Path", "/"), Right: &rule.Not{X: m("Method")}}, want: "Method: expected 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compileRule(tt.expr)
			if err == nil {
				t.Fatalf("compileRule(%v): got a matcher, want an error containing %q", tt.expr, tt.want)
			}
			if got != nil {
				t.Errorf("compileRule(%v): got a matcher with the error %v, want nil", tt.expr, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compileRule(%v): got error %q, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestRoutingPath(t *testing.T) {
	tests := []struct {
		target string
		want   string
	}{
		{"/", "/"},
		{"/plain/path", "/plain/path"},
		{"/a%20b", "/a b"},
		{"/a%2Fb", "/a%2Fb"},
		{"/a%2fb", "/a%2Fb"},
		{"/%3a%3A%40", "/%3A%3A%40"},
		{"/%25%2525", "/%25%2525"},
		{"/%7Euser", "/~user"},
		{"/caf%c3%a9", "/café"},
		{"/a!b", "/a!b"},
		{"/a%21b", "/a%21b"},
		{"/a b", "/a b"},
		{"*", "*"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := routingPath(u)
			if !ok || got != tt.want {
				t.Errorf("routingPath(%q): got %q, %v, want %q, true", tt.target, got, ok, tt.want)
			}
		})
	}
}

func TestHostWithoutPort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com:80", "example.com"},
		{"example.com:", "example.com"},
		{"[::1]:80", "::1"},
		{"[::1]", "::1"},
		{"[::1]:", "::1"},
		{"::1", "::1"},
		{"a:b:c", "a:b:c"},
		{"[::1", "[::1"},
		{"[::1]x", "[::1]x"},
		{"[::1]:80:90", "[::1]:80:90"},
		{"a]:80", "a]:80"},
		{":", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := hostWithoutPort(tt.in); got != tt.want {
			t.Errorf("hostWithoutPort(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQueryUnescapedEqual(t *testing.T) {
	tests := []struct {
		s, want string
		equal   bool
	}{
		{"", "", true},
		{"a", "a", true},
		{"a", "b", false},
		{"a+b", "a b", true},
		{"a%2Bb", "a+b", true},
		{"a%2bb", "a+b", true},
		{"%", "%", false},
		{"%2", "%2", false},
		{"%zz", "%zz", false},
		{"ab", "a", false},
		{"a", "ab", false},
	}
	for _, tt := range tests {
		if got := queryUnescapedEqual(tt.s, tt.want); got != tt.equal {
			t.Errorf("queryUnescapedEqual(%q, %q): got %v, want %v", tt.s, tt.want, got, tt.equal)
		}
		if want, err := url.QueryUnescape(tt.s); (err == nil && want == tt.want) != tt.equal {
			t.Errorf("queryUnescapedEqual(%q, %q) disagrees with url.QueryUnescape", tt.s, tt.want)
		}
	}
}

// TestMatchersDoNotAllocate checks the promise of compileRule for the
// common request.
func TestMatchersDoNotAllocate(t *testing.T) {
	rules := []string{
		"Host(`api.example.com`)",
		"Host(`*.example.com`)",
		"Host(`**.example.com`)",
		"HostRegexp(`^api\\.`)",
		"Path(`/v1/users`) || PathPrefix(`/v1/`) && PathRegexp(`^/v[0-9]/`)",
		"Method(`GET`) && Header(`X-Env`, `prod`) && HeaderRegexp(`X-Env`, `^p`)",
		"Query(`page`, `2`) && QueryRegexp(`sort`, `^name$`)",
		"ClientIP(`192.0.2.0/24`)",
	}
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com:8080/v1/users?page=2&sort=name", nil)
	r.Header.Set("X-Env", "prod")
	for _, s := range rules {
		e, err := rule.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		m, err := compileRule(e)
		if err != nil {
			t.Fatal(err)
		}
		if !m(r) {
			t.Errorf("%s: got no match, want a match", s)
		}
		if n := testing.AllocsPerRun(100, func() { m(r) }); n != 0 {
			t.Errorf("%s: got %v allocations per request, want 0", s, n)
		}
	}
}

// FuzzCompile checks that every rule Parse accepts compiles, and that its
// matcher does not panic on odd requests.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzRules {
		f.Add(s, "example.com:80", "/a%2Fb?x=1&y")
	}
	f.Add("Host(`**.a`) || !HostRegexp(`^x`)", "[::1]:80", "/%41?%zz")
	f.Add("ClientIP(`::/0`)", "", "*")
	f.Fuzz(func(t *testing.T, ruleText, host, target string) {
		e, err := rule.Parse(ruleText)
		if err != nil {
			return
		}
		m, err := compileRule(e)
		if err != nil {
			t.Fatalf("compileRule(%q) after a successful Parse: %v", ruleText, err)
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		for _, remote := range []string{"192.0.2.1:1", "[fe80::1%lo]:2", "", "x"} {
			r := &http.Request{Method: "GET", Host: host, URL: u, Header: http.Header{}, RemoteAddr: remote}
			m(r)
		}
		m(&http.Request{Host: host, Header: http.Header{}})
	})
}

// fuzzRules seed the fuzzers with every matcher and operator.
var fuzzRules = []string{
	"Host(`example.com`)",
	"Host(`*.example.com`) && PathPrefix(`/api`)",
	"Host(`**.example.com`) || Host(`example.com.`)",
	"Host(`::1`) || Host(`192.0.2.1`)",
	"HostRegexp(`^[a-z]+\\.example\\.com$`)",
	"Path(`/a b`) || PathRegexp(`^/v[0-9]+/`)",
	"Method(`get`) && !Header(`X-Env`, `prod`)",
	"HeaderRegexp(`X-Env`, `^p`) || Query(`a`) || QueryRegexp(`b`, `^[0-9]+$`)",
	"Query(`a b`, `c`) && ClientIP(`192.0.2.0/24`)",
	"(Host(`a`) || Host(`b`)) && Host(`b`) && !ClientIP(`::1`)",
}
