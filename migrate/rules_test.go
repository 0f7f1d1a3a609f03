package migrate

import (
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

func TestParseV1Rule(t *testing.T) {
	for _, tc := range []struct {
		v1, want  string
		strip     []string
		addPrefix string
		hosts     []string
		stars     []string // Host values with a "*", left out
		never     bool     // the rule matches nothing
		// stripRegex, replace ("REGEXP REPLACEMENT" of ReplacePathRegex,
		// or the path of ReplacePath) and ignored (ReplacePathRegex left
		// out) are the modifiers that rewrite the path.
		stripRegex []string
		replace    string
		ignored    bool
		err        string
	}{
		{v1: "Host:example.com", want: "Host(`example.com`)", hosts: []string{"example.com"}},
		{v1: "Host: Example.COM. , www.example.com", want: "Host(`example.com`) || Host(`www.example.com`)", hosts: []string{"example.com", "www.example.com"}},
		{v1: "Host:a.com;PathPrefix:/api", want: "Host(`a.com`) && PathPrefix(`/api`)", hosts: []string{"a.com"}},
		{v1: "HostRegexp:{sub:[a-z]+}.example.com", want: "HostRegexp(`^(?:[a-z]+)\\.example\\.com$`)"},
		{v1: "HostRegexp:{sub}.example.com,example.com", want: "HostRegexp(`^(?:[^.]+)\\.example\\.com$`) || Host(`example.com`)"},
		{v1: "Path:/a,/b", want: "Path(`/a`) || Path(`/b`)"},
		{v1: "Path:/users/{id:[0-9]{3}}", want: "PathRegexp(`^/users/(?:[0-9]{3})$`)"},
		// Traefik 1.x split values at every comma, also inside a regexp.
		{v1: "Path:/users/{id:[0-9]{1,3}}", err: "unbalanced braces"},
		{v1: "PathPrefix:/users/{id}", want: "PathRegexp(`^/users/(?:[^/]+)`)"},
		{v1: "PathStrip:/x", want: "Path(`/x`)", strip: []string{"/x"}},
		{v1: "PathPrefixStrip:/a,/abc", want: "PathPrefix(`/a`) || PathPrefix(`/abc`)", strip: []string{"/abc", "/a"}},
		{v1: "AddPrefix:/p;PathPrefix:/", want: "PathPrefix(`/`)", addPrefix: "/p"},
		{v1: "Method:get,POST", want: "Method(`GET`) || Method(`POST`)"},
		{v1: "Headers:X-A,1,X-B,2", want: "Header(`X-A`, `1`) && Header(`X-B`, `2`)"},
		{v1: "HeadersRegexp:Content-Type,application/(text|json)", want: "HeaderRegexp(`Content-Type`, `application/(text|json)`)"},
		{v1: "Query:a=1,b={v:[0-9]+}", want: "Query(`a`, `1`) && QueryRegexp(`b`, `^(?:[0-9]+)$`)"},
		{v1: "Host:a.com;;", want: "Host(`a.com`)", hosts: []string{"a.com"}},
		// Traefik 1.x compared Host literally: "*" is no wildcard.
		{v1: "Host:*.a.io,a.io", want: "Host(`a.io`)", hosts: []string{"a.io"}, stars: []string{"*.a.io"}},
		{v1: "Host:*.a.io;Path:/x", want: "Path(`/x`)", stars: []string{"*.a.io"}, never: true},
		{v1: "HostRegexp:*.a.io,{s}.b.io", want: "HostRegexp(`^(?:[^.]+)\\.b\\.io$`)", stars: []string{"*.a.io"}},
		{v1: "", err: "empty rule"},
		{v1: "Host:", err: "Host has no value"},
		{v1: "Hots:a.com", err: `unknown matcher "Hots"`},
		{v1: "host:a.com", err: `unknown matcher "host"`},
		{v1: "Headers:X-A", err: "pairs of header name and value"},
		{v1: "Query:a", err: "write key=value"},
		{v1: "HostRegexp:{a:[}.com", err: "invalid regexp"},
		{v1: "Path:/{a", err: "unbalanced braces"},
		{v1: "ReplacePath:/x", want: "PathPrefix(`/`)", replace: "/x"},
		{v1: "Host:a.io;ReplacePath:/x,/y", want: "Host(`a.io`)", hosts: []string{"a.io"}, replace: "/y"},
		{v1: "PathPrefix:/api;ReplacePathRegex: ^/api/(.*) /v2/$1", want: "PathPrefix(`/api`)", replace: "^/api/(.*) /v2/$1"},
		// Traefik 1.x applied ReplacePathRegex only when one space
		// separated a regexp that compiles from a replacement.
		{v1: "PathPrefix:/;ReplacePathRegex: ^/a  /b", want: "PathPrefix(`/`)", ignored: true},
		{v1: "PathPrefix:/;ReplacePathRegex:^/(a /b", want: "PathPrefix(`/`)", ignored: true},
		{v1: "ReplacePathRegex:^/a", want: "PathPrefix(`/`)", ignored: true},
		{v1: "PathPrefixStripRegex:/v{n:[0-9]}", want: "PathRegexp(`^/v(?:[0-9])`)", stripRegex: []string{"/v(?:[0-9])"}},
		{v1: "PathStripRegex:/a/{id},/b", want: "PathRegexp(`^/a/(?:[^/]+)$`) || Path(`/b`)", stripRegex: []string{"/a/(?:[^/]+)", "/b"}},
		{v1: "PathPrefixStripRegex:/x.y,/{v:v[0-9]+}/api", want: "PathPrefix(`/x.y`) || PathRegexp(`^/(?:v[0-9]+)/api`)", stripRegex: []string{"/(?:v[0-9]+)/api", `/x\.y`}},
		{v1: "PathPrefixStrip:/{v:v[0-9]+}", err: "no equivalent"},
	} {
		t.Run(tc.v1, func(t *testing.T) {
			r, err := parseV1Rule(tc.v1)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseV1Rule(%q) = %v, want error containing %q", tc.v1, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseV1Rule(%q): %v", tc.v1, err)
			}
			if !slices.Equal(r.literalStars, tc.stars) || r.never != tc.never {
				t.Fatalf("literalStars %v never %v, want %v %v", r.literalStars, r.never, tc.stars, tc.never)
			}
			got := "PathPrefix(`/`)" // a rule of modifiers alone matches every path
			if len(r.exprs) > 0 {
				got = andAll(r.exprs).String()
			}
			if got != tc.want {
				t.Fatalf("parseV1Rule(%q) = %s, want %s", tc.v1, got, tc.want)
			}
			if _, err := rule.Parse(got); err != nil {
				t.Fatalf("%s does not parse as a tollgate rule: %v", got, err)
			}
			if !slices.Equal(r.strip, tc.strip) || r.addPrefix != tc.addPrefix || !slices.Equal(r.hosts, tc.hosts) {
				t.Fatalf("strip %v addPrefix %q hosts %v, want %v %q %v", r.strip, r.addPrefix, r.hosts, tc.strip, tc.addPrefix, tc.hosts)
			}
			replace := r.replacePath
			if r.replaceRegex != "" {
				replace = r.replaceRegex + " " + r.replaceWith
			}
			if !slices.Equal(r.stripRegex, tc.stripRegex) || replace != tc.replace || (len(r.ignored) > 0) != tc.ignored {
				t.Fatalf("stripRegex %q replace %q ignored %q, want %q %q ignored %v", r.stripRegex, replace, r.ignored, tc.stripRegex, tc.replace, tc.ignored)
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web", "web"},
		{"backend1.example.com", "backend1.example.com"},
		{"my backend/v2", "my-backend-v2"},
		{"-_x_-", "x"},
		{"é", "unnamed"},
		{strings.Repeat("a", 80), strings.Repeat("a", 64)},
	} {
		if got := sanitizeName(tc.in); got != tc.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTOMLString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a "quote"`, `"a \"quote\""`},
		{`^a\.b$`, `'^a\.b$'`},
		{`it's\d`, `"it's\\d"`},
		{"tab\there", `"tab\there"`},
		{"bell\x07", `"bell\u0007"`},
	} {
		if got := tomlString(tc.in); got != tc.want {
			t.Errorf("tomlString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
