package middleware

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// redirectCase is a request to a redirect middleware and what should come
// of it; "{port}" in wantLocation stands for the test server's port.
type redirectCase struct {
	name         string
	method       string // GET when empty
	host         string // Host header; the server's address when empty
	path         string
	header       http.Header
	wantStatus   int
	wantLocation string
}

// checkRedirect sends c to ts and compares the answer; a 200 means the
// request reached echoSeen.
func checkRedirect(t *testing.T, ts *httptest.Server, c redirectCase) *http.Response {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	req := frontRequest(t, method, ts.URL+c.path, c.header)
	if c.host != "" {
		req.Host = c.host
	}
	resp, _ := fetchResponse(t, frontClient(ts), req)
	if resp.StatusCode != c.wantStatus {
		t.Errorf("got status %d, want %d", resp.StatusCode, c.wantStatus)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(ts.URL, "http://"), "https://"))
	want := strings.ReplaceAll(c.wantLocation, "{port}", port)
	if got := resp.Header.Get("Location"); got != want {
		t.Errorf("got Location %q, want %q", got, want)
	}
	return resp
}

func TestRedirectScheme(t *testing.T) {
	tests := []struct {
		cfg   config.RedirectScheme
		tls   bool
		cases []redirectCase
	}{
		{cfg: config.RedirectScheme{Scheme: "https"}, cases: []redirectCase{
			{name: "GET", path: "/a?b=1", wantStatus: 302, wantLocation: "https://127.0.0.1/a?b=1"},
			{name: "POST", method: "POST", path: "/a", wantStatus: 307, wantLocation: "https://127.0.0.1/a"},
			{name: "HEAD", method: "HEAD", path: "/a", wantStatus: 307, wantLocation: "https://127.0.0.1/a"},
			{name: "host port dropped", host: "example.com:8080", path: "/", wantStatus: 302, wantLocation: "https://example.com/"},
			{name: "IPv6 host", host: "[::1]:8080", path: "/x", wantStatus: 302, wantLocation: "https://[::1]/x"},
			{name: "encoded path kept", path: "/a%2Fb?c=%20", wantStatus: 302, wantLocation: "https://127.0.0.1/a%2Fb?c=%20"},
			{name: "forwarded https passes", path: "/", header: http.Header{"X-Forwarded-Proto": {"https"}}, wantStatus: 200},
			{name: "forwarded wss passes", path: "/", header: http.Header{"X-Forwarded-Proto": {"WSS"}}, wantStatus: 200},
			{name: "forwarded http redirects", path: "/", header: http.Header{"X-Forwarded-Proto": {"http"}}, wantStatus: 302, wantLocation: "https://127.0.0.1/"},
		}},
		{cfg: config.RedirectScheme{Scheme: "https", Permanent: true}, cases: []redirectCase{
			{name: "GET permanent", path: "/", wantStatus: 301, wantLocation: "https://127.0.0.1/"},
			{name: "PUT permanent", method: "PUT", path: "/", wantStatus: 308, wantLocation: "https://127.0.0.1/"},
		}},
		{cfg: config.RedirectScheme{Scheme: "https", Port: "8443"}, cases: []redirectCase{
			{name: "port added", path: "/a", wantStatus: 302, wantLocation: "https://127.0.0.1:8443/a"},
			{name: "IPv6 host with port", host: "[::1]", path: "/", wantStatus: 302, wantLocation: "https://[::1]:8443/"},
		}},
		{cfg: config.RedirectScheme{Scheme: "https", Port: "443"}, cases: []redirectCase{
			{name: "default port dropped", path: "/a", wantStatus: 302, wantLocation: "https://127.0.0.1/a"},
		}},
		{cfg: config.RedirectScheme{Scheme: "https"}, tls: true, cases: []redirectCase{
			{name: "already https", path: "/", wantStatus: 200},
		}},
		{cfg: config.RedirectScheme{Scheme: "https", Port: "8443"}, tls: true, cases: []redirectCase{
			{name: "https on another port", path: "/a", wantStatus: 302, wantLocation: "https://127.0.0.1:8443/a"},
			{name: "https on that port", host: "example.com:8443", path: "/a", wantStatus: 200},
		}},
		{cfg: config.RedirectScheme{Scheme: "http", Port: "8080"}, tls: true, cases: []redirectCase{
			{name: "to http", path: "/a", wantStatus: 302, wantLocation: "http://127.0.0.1:8080/a"},
		}},
		{cfg: config.RedirectScheme{Scheme: "http"}, cases: []redirectCase{
			{name: "already http", path: "/", wantStatus: 200},
			{name: "already http on another port", host: "example.com:8080", path: "/", wantStatus: 200},
		}},
	}
	for _, tt := range tests {
		h, err := NewRedirectScheme(echoSeen, &tt.cfg)
		if err != nil {
			t.Fatalf("NewRedirectScheme(%+v): %v", tt.cfg, err)
		}
		ts := newFrontServer(t, h, tt.tls)
		for _, c := range tt.cases {
			t.Run(c.name, func(t *testing.T) { checkRedirect(t, ts, c) })
		}
	}
}

func TestRedirectSchemeWithoutHost(t *testing.T) {
	h, err := NewRedirectScheme(echoSeen, &config.RedirectScheme{Scheme: "https"})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got status %d, want 400", resp.StatusCode)
	}
}

func TestRedirectSchemeConfig(t *testing.T) {
	bad := []*config.RedirectScheme{nil, {}, {Scheme: "ftp"}, {Scheme: "https", Port: "0"}, {Scheme: "https", Port: "x"}, {Scheme: "https", Port: "65536"}}
	for _, cfg := range bad {
		if _, err := NewRedirectScheme(echoSeen, cfg); err == nil {
			t.Errorf("NewRedirectScheme(%+v): got no error, want one", cfg)
		}
	}
}

func TestRedirectRegex(t *testing.T) {
	tests := []struct {
		cfg   config.RedirectRegex
		tls   bool
		cases []redirectCase
	}{
		{cfg: config.RedirectRegex{Regex: `^http://[^/]+/old/(.*)$`, Replacement: "http://example.com/new/$1"}, cases: []redirectCase{
			{name: "match with query", path: "/old/x?y=1", wantStatus: 302, wantLocation: "http://example.com/new/x?y=1"},
			{name: "POST", method: "POST", path: "/old/x", wantStatus: 307, wantLocation: "http://example.com/new/x"},
			{name: "no match", path: "/other", wantStatus: 200},
			{name: "escaped path", path: "/old/a%2Fb", wantStatus: 302, wantLocation: "http://example.com/new/a%2Fb"},
		}},
		{cfg: config.RedirectRegex{Regex: `^http://(?P<host>[^:/]+)(:\d+)?/(.*)`, Replacement: "https://${host}/v2/$3", Permanent: true}, cases: []redirectCase{
			{name: "named group permanent", host: "example.com:8080", path: "/a", wantStatus: 301, wantLocation: "https://example.com/v2/a"},
			{name: "DELETE permanent", method: "DELETE", path: "/a", wantStatus: 308, wantLocation: "https://127.0.0.1/v2/a"},
		}},
		{cfg: config.RedirectRegex{Regex: `^(.*)$`, Replacement: "$1"}, cases: []redirectCase{
			{name: "unchanged URL passes", path: "/a", wantStatus: 200},
		}},
		{cfg: config.RedirectRegex{Regex: `^https://([^/]+)/(.*)`, Replacement: "https://www.example.com/$2"}, tls: true, cases: []redirectCase{
			{name: "https scheme on TLS", path: "/a", wantStatus: 302, wantLocation: "https://www.example.com/a"},
		}},
		{cfg: config.RedirectRegex{Regex: `^https://`, Replacement: "http://"}, cases: []redirectCase{
			{name: "forwarded proto is not considered", path: "/a", header: http.Header{"X-Forwarded-Proto": {"https"}}, wantStatus: 200},
		}},
		{cfg: config.RedirectRegex{Regex: `^.*$`, Replacement: "http://%zz/"}, cases: []redirectCase{
			{name: "replacement not a URL", path: "/", wantStatus: 500},
		}},
	}
	for _, tt := range tests {
		h, err := NewRedirectRegex(echoSeen, &tt.cfg)
		if err != nil {
			t.Fatalf("NewRedirectRegex(%+v): %v", tt.cfg, err)
		}
		ts := newFrontServer(t, h, tt.tls)
		for _, c := range tt.cases {
			t.Run(c.name, func(t *testing.T) { checkRedirect(t, ts, c) })
		}
	}
}

func TestRedirectRegexConfig(t *testing.T) {
	bad := []*config.RedirectRegex{nil, {}, {Regex: "(", Replacement: "x"}, {Regex: "a"}, {Replacement: "x"}}
	for _, cfg := range bad {
		if _, err := NewRedirectRegex(echoSeen, cfg); err == nil {
			t.Errorf("NewRedirectRegex(%+v): got no error, want one", cfg)
		}
	}
}

func TestHeaderRedirect(t *testing.T) {
	targets := map[string]string{
		"eu":   "https://eu.example.com",
		"us":   "https://us.example.com/base/?src=tg",
		"self": "http://self.test/eu",
		"root": "http://self.test",
	}
	region := func(v string) http.Header { return http.Header{"X-Region": {v}} }
	tests := []struct {
		cfg   config.HeaderRedirect
		cases []redirectCase
	}{
		{cfg: config.HeaderRedirect{Header: "x-region", Targets: targets}, cases: []redirectCase{
			{name: "target", path: "/a/b?x=1", header: region("eu"), wantStatus: 307, wantLocation: "https://eu.example.com/a/b?x=1"},
			{name: "target path and query joined", path: "/a/b?x=1", header: region("us"), wantStatus: 307, wantLocation: "https://us.example.com/base/a/b?src=tg&x=1"},
			{name: "target query alone", path: "/", header: region("us"), wantStatus: 307, wantLocation: "https://us.example.com/base/?src=tg"},
			{name: "POST", method: "POST", path: "/a", header: region("eu"), wantStatus: 307, wantLocation: "https://eu.example.com/a"},
			{name: "escaped path", path: "/a%2Fb", header: region("eu"), wantStatus: 307, wantLocation: "https://eu.example.com/a%2Fb"},
			{name: "case-sensitive", path: "/", header: region("EU"), wantStatus: 200},
			{name: "no header", path: "/", wantStatus: 200},
			{name: "first line counts", path: "/", header: http.Header{"X-Region": {"eu", "us"}}, wantStatus: 307, wantLocation: "https://eu.example.com/"},
			{name: "already under the target", host: "self.test", path: "/eu/x", header: region("self"), wantStatus: 200},
			{name: "same host outside the target path", host: "self.test", path: "/x", header: region("self"), wantStatus: 307, wantLocation: "http://self.test/eu/x"},
			{name: "path prefix is a segment", host: "self.test", path: "/europe", header: region("self"), wantStatus: 307, wantLocation: "http://self.test/eu/europe"},
			{name: "already on the target host", host: "SELF.test:80", path: "/x", header: region("root"), wantStatus: 200},
		}},
		{cfg: config.HeaderRedirect{Header: "X-Region", Targets: targets, Default: "https://www.example.com/", Permanent: true}, cases: []redirectCase{
			{name: "permanent", path: "/a", header: region("eu"), wantStatus: 308, wantLocation: "https://eu.example.com/a"},
			{name: "default for unknown", path: "/a?q", header: region("EU"), wantStatus: 308, wantLocation: "https://www.example.com/a?q"},
			{name: "default without header", path: "/", wantStatus: 308, wantLocation: "https://www.example.com/"},
		}},
	}
	for _, tt := range tests {
		h, err := NewHeaderRedirect(echoSeen, &tt.cfg)
		if err != nil {
			t.Fatalf("NewHeaderRedirect(%+v): %v", tt.cfg, err)
		}
		ts := newFrontServer(t, h, false)
		for _, c := range tt.cases {
			t.Run(c.name, func(t *testing.T) {
				resp := checkRedirect(t, ts, c)
				if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "X-Region" {
					t.Errorf("got Vary %q, want [X-Region]", got)
				}
			})
		}
	}
}

// TestHeaderRedirectVaryKept checks that Vary is added to, not replaced,
// when the service sets its own.
func TestHeaderRedirectVaryKept(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Origin")
		w.WriteHeader(http.StatusTeapot)
	})
	h, err := NewHeaderRedirect(backend, &config.HeaderRedirect{Header: "X-Region", Targets: map[string]string{"eu": "https://eu.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := newFrontServer(t, h, false)
	resp, _ := fetchResponse(t, frontClient(ts), frontRequest(t, "GET", ts.URL, nil))
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("got status %d, want %d", resp.StatusCode, http.StatusTeapot)
	}
	if got := strings.Join(resp.Header.Values("Vary"), ", "); got != "Origin, X-Region" {
		t.Errorf("got Vary %q, want %q", got, "Origin, X-Region")
	}
}

func TestHeaderRedirectConfig(t *testing.T) {
	ok := map[string]string{"eu": "https://eu.example.com"}
	bad := []*config.HeaderRedirect{
		nil,
		{Targets: ok},
		{Header: "X Region", Targets: ok},
		{Header: "X-Region"},
		{Header: "X-Region", Targets: map[string]string{"eu": "ftp://eu.example.com"}},
		{Header: "X-Region", Targets: map[string]string{"eu": "/relative"}},
		{Header: "X-Region", Targets: map[string]string{"eu": "https://%zz"}},
		{Header: "X-Region", Targets: ok, Default: "eu.example.com"},
	}
	for _, cfg := range bad {
		if _, err := NewHeaderRedirect(echoSeen, cfg); err == nil {
			t.Errorf("NewHeaderRedirect(%+v): got no error, want one", cfg)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	tests := []struct{ target, request, want string }{
		{"https://a.example", "/x", "https://a.example/x"},
		{"https://a.example/", "/x?y=1", "https://a.example/x?y=1"},
		{"https://a.example/p%2Fq/", "/x%2Fy", "https://a.example/p%2Fq/x%2Fy"},
		{"https://a.example/p?k=v#frag", "/x?y", "https://a.example/p/x?k=v&y#frag"},
	}
	for _, tt := range tests {
		target, err := url.Parse(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		r, err := http.NewRequest("GET", "http://in.example"+tt.request, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := redirectLocation(target, r); got != tt.want {
			t.Errorf("redirectLocation(%q, %q): got %q, want %q", tt.target, tt.request, got, tt.want)
		}
	}
}
