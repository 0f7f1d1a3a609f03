package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// echoBackend returns a reverse proxy to a real server that answers with
// what it saw (echoSeen), so that a test sees the request as it went over
// the wire.
func echoBackend(t *testing.T) http.Handler {
	t.Helper()
	backend := httptest.NewServer(echoSeen)
	t.Cleanup(backend.Close)
	return proxyTo(t, backend.URL)
}

// proxyTo returns a reverse proxy to the server at target.
func proxyTo(t *testing.T, target string) http.Handler {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr}
}

// pathCase is a request through a path middleware and what the server
// behind it must see.
type pathCase struct {
	name           string
	path           string // as sent, escaped
	wantStatus     int    // 200 when zero
	wantPath       string // URL.Path the server decoded
	wantRequestURI string // as the server received it
	wantHeader     []string
}

// checkPathCases sends each case through h (built on echoBackend) and
// compares what the server saw, including the values of header.
func checkPathCases(t *testing.T, mk func(next http.Handler) (http.Handler, error), header string, cases []pathCase) {
	t.Helper()
	h, err := mk(echoBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL+tc.path, nil))
			if want := max(tc.wantStatus, 200); resp.StatusCode != want {
				t.Fatalf("got status %d, want %d (%s)", resp.StatusCode, want, body)
			}
			if resp.StatusCode != http.StatusOK {
				return
			}
			seen := decodeSeen(t, body)
			if seen.Path != tc.wantPath {
				t.Errorf("got path %q, want %q", seen.Path, tc.wantPath)
			}
			if seen.RequestURI != tc.wantRequestURI {
				t.Errorf("got request URI %q, want %q", seen.RequestURI, tc.wantRequestURI)
			}
			if got := seen.Header.Values(header); !slices.Equal(got, tc.wantHeader) {
				t.Errorf("got %s %q, want %q", header, got, tc.wantHeader)
			}
		})
	}
}

func TestReplacePath(t *testing.T) {
	for _, tt := range []struct {
		path  string
		cases []pathCase
	}{
		{"/new", []pathCase{
			{name: "plain", path: "/old/x?q=1&r=%2F", wantPath: "/new", wantRequestURI: "/new?q=1&r=%2F", wantHeader: []string{"/old/x"}},
			{name: "escaped slash of the original kept in the header", path: "/a%2Fb", wantPath: "/new", wantRequestURI: "/new", wantHeader: []string{"/a%2Fb"}},
			{name: "escaped space", path: "/a%20b", wantPath: "/new", wantRequestURI: "/new", wantHeader: []string{"/a%20b"}},
		}},
		{"/a%2Fb", []pathCase{
			{name: "escaped slash in the path", path: "/x", wantPath: "/a/b", wantRequestURI: "/a%2Fb", wantHeader: []string{"/x"}},
		}},
		{"/my space/%C3%A9", []pathCase{
			{name: "escaped on the wire", path: "/x", wantPath: "/my space/é", wantRequestURI: "/my%20space/%C3%A9", wantHeader: []string{"/x"}},
		}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			checkPathCases(t, func(next http.Handler) (http.Handler, error) {
				return NewReplacePath(next, &config.ReplacePath{Path: tt.path})
			}, ReplacedPathHeader, tt.cases)
		})
	}
}

func TestReplacePathRegex(t *testing.T) {
	for _, tt := range []struct {
		regex, replacement string
		cases              []pathCase
	}{
		{"^/api/(.*)$", "/v2/$1", []pathCase{
			{name: "group", path: "/api/users?id=1", wantPath: "/v2/users", wantRequestURI: "/v2/users?id=1", wantHeader: []string{"/api/users"}},
			{name: "no match passes unchanged", path: "/other/a%2Fb", wantPath: "/other/a/b", wantRequestURI: "/other/a%2Fb"},
			{name: "regex sees the escaped path", path: "/api/a%2Fb", wantPath: "/v2/a/b", wantRequestURI: "/v2/a%2Fb", wantHeader: []string{"/api/a%2Fb"}},
		}},
		{"^/(?P<first>[^/]+)/(?P<rest>.*)$", "/${rest}%2F${first}", []pathCase{
			{name: "named groups and an escape in the replacement", path: "/a/b", wantPath: "/b/a", wantRequestURI: "/b%2Fa", wantHeader: []string{"/a/b"}},
		}},
		{"^/x%2F", "/y/", []pathCase{
			{name: "escaped slash matched", path: "/x%2Fz", wantPath: "/y/z", wantRequestURI: "/y/z", wantHeader: []string{"/x%2Fz"}},
			{name: "plain slash not matched", path: "/x/z", wantPath: "/x/z", wantRequestURI: "/x/z"},
		}},
		{"^/(.*)$", "/%zz$1", []pathCase{
			{name: "a result that is no escaped path", path: "/a", wantStatus: http.StatusInternalServerError},
		}},
	} {
		t.Run(tt.regex, func(t *testing.T) {
			checkPathCases(t, func(next http.Handler) (http.Handler, error) {
				return NewReplacePathRegex(next, &config.ReplacePathRegex{Regex: tt.regex, Replacement: tt.replacement})
			}, ReplacedPathHeader, tt.cases)
		})
	}
}

func TestStripPrefixRegex(t *testing.T) {
	checkPathCases(t, func(next http.Handler) (http.Handler, error) {
		return NewStripPrefixRegex(next, &config.StripPrefixRegex{Regex: []string{"/b", "x*", "^/tenant/[a-z]+", "^/p/q"}})
	}, ForwardedPrefixHeader, []pathCase{
		{name: "stripped", path: "/tenant/acme/users?x=1", wantPath: "/users", wantRequestURI: "/users?x=1", wantHeader: []string{"/tenant/acme"}},
		{name: "nothing left", path: "/tenant/acme", wantPath: "/", wantRequestURI: "/", wantHeader: []string{"/tenant/acme"}},
		{name: "escaped slash after the prefix kept", path: "/tenant/acme/a%2Fb", wantPath: "/a/b", wantRequestURI: "/a%2Fb", wantHeader: []string{"/tenant/acme"}},
		{name: "escaped slash in the prefix", path: "/p%2Fq/a%2Fb", wantPath: "/a/b", wantRequestURI: "/a%2Fb", wantHeader: []string{"/p/q"}},
		{name: "a match not at the start is skipped", path: "/a/b/c", wantPath: "/a/b/c", wantRequestURI: "/a/b/c"},
		{name: "no match", path: "/other", wantPath: "/other", wantRequestURI: "/other"},
	})
}

func TestPathMiddlewaresConfig(t *testing.T) {
	for name, mk := range map[string]func() (http.Handler, error){
		"replacePath nil":        func() (http.Handler, error) { return NewReplacePath(echoSeen, nil) },
		"replacePath relative":   func() (http.Handler, error) { return NewReplacePath(echoSeen, &config.ReplacePath{Path: "a"}) },
		"replacePath bad escape": func() (http.Handler, error) { return NewReplacePath(echoSeen, &config.ReplacePath{Path: "/%"}) },
		"replacePathRegex nil":   func() (http.Handler, error) { return NewReplacePathRegex(echoSeen, nil) },
		"replacePathRegex bad": func() (http.Handler, error) {
			return NewReplacePathRegex(echoSeen, &config.ReplacePathRegex{Regex: "(", Replacement: "/"})
		},
		"replacePathRegex no replacement": func() (http.Handler, error) {
			return NewReplacePathRegex(echoSeen, &config.ReplacePathRegex{Regex: "a"})
		},
		"stripPrefixRegex nil":   func() (http.Handler, error) { return NewStripPrefixRegex(echoSeen, nil) },
		"stripPrefixRegex empty": func() (http.Handler, error) { return NewStripPrefixRegex(echoSeen, &config.StripPrefixRegex{}) },
		"stripPrefixRegex bad": func() (http.Handler, error) {
			return NewStripPrefixRegex(echoSeen, &config.StripPrefixRegex{Regex: []string{"["}})
		},
	} {
		if _, err := mk(); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}
