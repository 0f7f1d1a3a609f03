package rule_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

var validTCPCases = []struct {
	rule string
	want rule.Expr
	str  string // canonical form; empty if the same as rule
}{
	{"HostSNI(`*`)", m("HostSNI", "*"), ""},
	{"HostSNI(`db.example.com`)", m("HostSNI", "db.example.com"), ""},
	{"HostSNI(`DB.Example.com.`)", m("HostSNI", "DB.Example.com."), ""},
	{"HostSNI(`*.example.com`)", m("HostSNI", "*.example.com"), ""},
	{"HostSNI(`xn--bcher-kva.example`)", m("HostSNI", "xn--bcher-kva.example"), ""},
	{"HostSNI(`my_service`)", m("HostSNI", "my_service"), ""},
	{"HostSNIRegexp(`^.+\\.example\\.com$`)", m("HostSNIRegexp", `^.+\.example\.com$`), ""},
	{"ClientIP(`10.0.0.0/8`)", m("ClientIP", "10.0.0.0/8"), ""},
	{"ClientIP(`::1`)", m("ClientIP", "::1"), ""},
	{"ALPN(`h2`)", m("ALPN", "h2"), ""},
	{"ALPN(`postgresql`)", m("ALPN", "postgresql"), ""},
	{"ALPN(\"a\\x00b\")", m("ALPN", "a\x00b"), ""},

	// Names as documented, lower, upper and capitalized.
	{"hostsni(`a`)", m("HostSNI", "a"), "HostSNI(`a`)"},
	{"HOSTSNI(`a`)", m("HostSNI", "a"), "HostSNI(`a`)"},
	{"Hostsni(`a`)", m("HostSNI", "a"), "HostSNI(`a`)"},
	{"hostsniregexp(`a`)", m("HostSNIRegexp", "a"), "HostSNIRegexp(`a`)"},
	{"alpn(`h2`)", m("ALPN", "h2"), "ALPN(`h2`)"},
	{"Alpn(`h2`)", m("ALPN", "h2"), "ALPN(`h2`)"},
	{"clientip(`::1`)", m("ClientIP", "::1"), "ClientIP(`::1`)"},

	// Operators.
	{"HostSNI(`a`) && ALPN(`h2`)", and(m("HostSNI", "a"), m("ALPN", "h2")), ""},
	{"HostSNI(`*`) && (ClientIP(`10.0.0.0/8`) || ClientIP(`::1`))", and(m("HostSNI", "*"), or(m("ClientIP", "10.0.0.0/8"), m("ClientIP", "::1"))), ""},
	{"!ClientIP(`10.0.0.1`)&&HostSNI(`*`)", and(not(m("ClientIP", "10.0.0.1")), m("HostSNI", "*")), "!ClientIP(`10.0.0.1`) && HostSNI(`*`)"},
}

func TestParseTCPValid(t *testing.T) {
	for _, tc := range validTCPCases {
		e, err := rule.ParseTCP(tc.rule)
		if err != nil {
			t.Errorf("ParseTCP(%q): got error %v, want %v", tc.rule, err, tc.want)
			continue
		}
		if !equal(e, tc.want) {
			t.Errorf("ParseTCP(%q): got %#v, want %#v", tc.rule, e, tc.want)
		}
		want := tc.str
		if want == "" {
			want = tc.rule
		}
		if got := e.String(); got != want {
			t.Errorf("ParseTCP(%q).String(): got %q, want %q", tc.rule, got, want)
		}
		again, err := rule.ParseTCP(e.String())
		if err != nil || !equal(again, e) {
			t.Errorf("ParseTCP(%q) again: got %v, %v; want %v", e.String(), again, err, e)
		}
	}
}

// badTCPCases are rules ParseTCP refuses, with the exact error.
var badTCPCases = []struct {
	rule string
	err  string
}{
	// The grammar is that of HTTP rules.
	{"", `column 1: expected a matcher, "!" or "(", found end of rule`},
	{"HostSNI(`a`) &&", `column 16: expected a matcher, "!" or "(", found end of rule`},
	{"HostSNI(`a`", `column 12: expected ")" or ",", found end of rule`},
	{"HostSNI(`a`)\xff", `column 13: expected UTF-8 text, found the byte 0xff`},
	{"HostSNI(`a`, `b`)", "column 14: HostSNI takes 1 argument (a host name or \"*\"), found 2; v3 matchers take one value each, combine them with \"||\": HostSNI(`a`) || HostSNI(`b`)"},
	{"ALPN()", `column 6: ALPN takes 1 argument (an ALPN protocol), found 0`},
	// Traefik 1.x had no TCP routers: no 1.x advice.
	{"HostSNI:a.example.com", `column 8: expected "(" after HostSNI, found ":"`},

	// Matcher names.
	{"Host(`a`)", `column 1: unknown matcher "Host": Host is an HTTP router matcher; TCP rules use HostSNI`},
	{"host(`a`)", `column 1: unknown matcher "host": Host is an HTTP router matcher; TCP rules use HostSNI`},
	{"HostRegexp(`a`)", `column 1: unknown matcher "HostRegexp": HostRegexp is an HTTP router matcher; TCP rules use HostSNIRegexp`},
	{"HostSNI(`a`) && PathPrefix(`/`)", `column 17: unknown matcher "PathPrefix": PathPrefix is an HTTP router matcher; a TCP router sees no request, only the TLS server name (HostSNI, HostSNIRegexp), the ALPN protocols and the client's address (ClientIP)`},
	{"HostSNl(`a`)", `column 1: unknown matcher "HostSNl"; did you mean "HostSNI"?`},
	{"HostSNIRegex(`a`)", `column 1: unknown matcher "HostSNIRegex"; did you mean "HostSNIRegexp"?`},
	{"X(`a`)", `column 1: unknown matcher "X"; expected one of ALPN, ClientIP, HostSNI, HostSNIRegexp`},

	// HostSNI.
	{"HostSNI(``)", `column 9: HostSNI: expected a host name or "*" (every connection), found ""`},
	{"HostSNI(`example.com:443`)", "column 9: HostSNI: \"example.com:443\" has a port; a server name has none (the entry point is the port): write HostSNI(`example.com`)"},
	{"HostSNI(`10.0.0.1`)", "column 9: HostSNI: \"10.0.0.1\" is an IP address, which TLS clients never send as server name (RFC 6066), so this never matches; write HostSNI(`*`) to match every connection, with ClientIP to restrict the clients"},
	{"HostSNI(`[::1]:443`)", "column 9: HostSNI: \"[::1]:443\" is an IP address, which TLS clients never send as server name (RFC 6066), so this never matches; write HostSNI(`*`) to match every connection, with ClientIP to restrict the clients"},
	{"HostSNI(`[::1]`)", "column 9: HostSNI: \"[::1]\" is an IP address, which TLS clients never send as server name (RFC 6066), so this never matches; write HostSNI(`*`) to match every connection, with ClientIP to restrict the clients"},
	{"HostSNI(`exa mple.com`)", `column 9: HostSNI: expected a host name (letters, digits, "-", "_" and "."), found " " in "exa mple.com"`},
	{"HostSNI(`bücher.de`)", `column 9: HostSNI: "bücher.de" is not ASCII; write an internationalized name in its punycode (xn--) form`},
	{"HostSNI(`tls://db.example.com`)", `column 9: HostSNI: "tls://db.example.com" is a URL; write the host name only`},
	{"HostSNI(`*example.com`)", `column 9: HostSNI: "*example.com": a wildcard must be the whole first label, as in "*.example.com" (one label); use HostSNIRegexp for other patterns`},
	{"HostSNI(`a.*.com`)", `column 9: HostSNI: "a.*.com": a wildcard must be the whole first label, as in "*.example.com" (one label); use HostSNIRegexp for other patterns`},
	{"HostSNI(`**.example.com`)", "column 9: HostSNI: \"**.example.com\": HostSNI takes \"*.\" for exactly one label; for any number write HostSNIRegexp(`^(?:[^.]+\\.)+example\\.com$`)"},
	{"HostSNI(`*.`)", `column 9: HostSNI: "*." has no domain after the wildcard, as in "*.example.com"`},
	{"HostSNI(`a..b`)", `column 9: HostSNI: "a..b" has an empty label`},
	{"HostSNI(`{sub:[a-z]+}.example.com`)", "column 9: HostSNI: \"{sub:[a-z]+}.example.com\" uses the v2 {name:regexp} syntax; write HostSNIRegexp(`^[a-z]+\\.example\\.com$`)"},

	// HostSNIRegexp.
	{"HostSNIRegexp(``)", "column 15: HostSNIRegexp: expected a regexp, found \"\", which would match every host; write `.*` if that is meant"},
	{"HostSNIRegexp(`(`)", "column 15: HostSNIRegexp: error parsing regexp: missing closing ): `(`"},
	{"HostSNIRegexp(`{sub:[a-z]+}.example.com`)", "column 15: HostSNIRegexp: \"{sub:[a-z]+}.example.com\" uses the v2 {name:regexp} syntax; v3 takes a plain Go regexp: HostSNIRegexp(`^[a-z]+\\.example\\.com$`)"},

	// ClientIP and ALPN.
	{"ClientIP(`10.0.0.0/33`)", `column 10: ClientIP: expected an IP address or CIDR prefix, found "10.0.0.0/33"`},
	{"ALPN(``)", `column 6: ALPN: expected an ALPN protocol such as "h2", found ""`},
	{"ALPN(`acme-tls/1`)", `column 6: ALPN: "acme-tls/1" is reserved for the ACME TLS-ALPN-01 challenge, which tollgate answers itself for the certificates of its [acme] section; match another protocol`},
	{"ALPN(`" + strings.Repeat("a", 256) + "`)", `column 6: ALPN: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" is longer than 255 bytes, the limit of an ALPN protocol`},
}

func TestParseTCPErrors(t *testing.T) {
	for _, tc := range badTCPCases {
		e, err := rule.ParseTCP(tc.rule)
		if err == nil {
			t.Errorf("ParseTCP(%q): got %v, want error %s", tc.rule, e, tc.err)
			continue
		}
		if got := err.Error(); got != tc.err {
			t.Errorf("ParseTCP(%q):\ngot  %s\nwant %s", tc.rule, got, tc.err)
		}
		var re *rule.Error
		if !errors.As(err, &re) {
			t.Errorf("ParseTCP(%q): got %T, want *rule.Error", tc.rule, err)
		}
	}
}

// TestDialectsApart checks that each parser refuses the other's matchers.
func TestDialectsApart(t *testing.T) {
	for _, tc := range validTCPCases {
		if strings.Contains(strings.ToLower(tc.rule), "clientip") && !strings.Contains(strings.ToLower(tc.rule), "sni") && !strings.Contains(strings.ToLower(tc.rule), "alpn") {
			continue // ClientIP is in both
		}
		if _, err := rule.Parse(tc.rule); err == nil {
			t.Errorf("Parse(%q): got success, want an error", tc.rule)
		}
	}
	for _, tc := range validCases {
		if strings.HasPrefix(strings.ToLower(tc.rule), "clientip") {
			continue
		}
		if _, err := rule.ParseTCP(tc.rule); err == nil {
			t.Errorf("ParseTCP(%q): got success, want an error", tc.rule)
		}
	}
}

func TestParseTCPLimits(t *testing.T) {
	sni := "HostSNI(`a`)"
	if _, err := rule.ParseTCP(strings.Repeat("(", 100) + sni + strings.Repeat(")", 100)); err != nil {
		t.Errorf("nested 100: %v", err)
	}
	_, err := rule.ParseTCP(strings.Repeat("!", 101) + sni)
	if want := `column 101: rule nested too deeply: expected at most 100 levels of "(" and "!", found more`; err == nil || err.Error() != want {
		t.Errorf("nested 101: got %v, want %s", err, want)
	}
	long := "HostSNIRegexp(`" + strings.Repeat("a", rule.MaxRuleBytes) + "`)"
	if _, err := rule.ParseTCP(long); err == nil || !strings.Contains(err.Error(), "rule too long") {
		t.Errorf("too long: got %v", err)
	}
}

func TestServerNames(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want []string
	}{
		{"HostSNI(`*`)", nil},
		{"ClientIP(`::1`)", nil},
		{"HostSNI(`DB.example.com.`)", []string{"db.example.com"}},
		{"HostSNI(`b`) || HostSNI(`a`) || HostSNI(`B`) || HostSNI(`*`)", []string{"b", "a"}},
		{"HostSNI(`*.example.com`) && ALPN(`h2`)", []string{"*.example.com"}},
		{"!HostSNI(`a`) && HostSNI(`b`)", []string{"b"}},
		{"HostSNIRegexp(`^a$`)", nil},
	} {
		e, err := rule.ParseTCP(tc.rule)
		if err != nil {
			t.Fatalf("ParseTCP(%q): %v", tc.rule, err)
		}
		if got := rule.ServerNames(e); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ServerNames(%q): got %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestRequiredHostsTCP(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want []string
	}{
		{"HostSNI(`*`)", nil},
		{"HostSNI(`*.example.com`)", nil},
		{"HostSNI(`B.example.`) || HostSNI(`a.example`)", []string{"a.example", "b.example"}},
		{"HostSNI(`a`) && ALPN(`h2`)", []string{"a"}},
		{"HostSNI(`a`) || ClientIP(`::1`)", nil},
	} {
		e, err := rule.ParseTCP(tc.rule)
		if err != nil {
			t.Fatalf("ParseTCP(%q): %v", tc.rule, err)
		}
		if got := rule.RequiredHosts(e); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RequiredHosts(%q): got %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestMatchesWithoutTLS(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want bool
	}{
		{"HostSNI(`*`)", true},
		{"ClientIP(`10.0.0.0/8`)", true},
		{"HostSNI(`*`) && ClientIP(`10.0.0.0/8`)", true},
		{"HostSNI(`*`) && !ClientIP(`10.0.0.0/8`)", true},
		{"HostSNI(`a`)", false},
		{"HostSNI(`*.a`)", false},
		{"HostSNIRegexp(`.*`)", false},
		{"ALPN(`h2`)", false},
		{"HostSNI(`*`) && ALPN(`h2`)", false},
		{"HostSNI(`a`) || HostSNI(`*`)", true},
		{"ClientIP(`::1`) && HostSNI(`a`)", false},
		{"!HostSNI(`a`)", true},
		{"!ALPN(`h2`)", true},
		{"!HostSNI(`*`)", false},
		{"!(HostSNI(`*`) || ClientIP(`::1`))", false},
		{"!(HostSNI(`a`) && ClientIP(`::1`))", true},
		{"!!HostSNI(`*`)", true},
	} {
		e, err := rule.ParseTCP(tc.rule)
		if err != nil {
			t.Fatalf("ParseTCP(%q): %v", tc.rule, err)
		}
		if got := rule.MatchesWithoutTLS(e); got != tc.want {
			t.Errorf("MatchesWithoutTLS(%q): got %v, want %v", tc.rule, got, tc.want)
		}
	}
	if rule.MatchesWithoutTLS(nil) || rule.MatchesWithoutTLS((*rule.And)(nil)) {
		t.Error("MatchesWithoutTLS of nil trees: got true, want false")
	}
}
