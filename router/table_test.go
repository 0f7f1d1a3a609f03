package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// testRoute builds a route from a rule as written, with a handler that
// does nothing.
func testRoute(t testing.TB, name, ruleText string, priority int) *route {
	t.Helper()
	e, err := rule.Parse(ruleText)
	if err != nil {
		t.Fatalf("Parse(%q): %v", ruleText, err)
	}
	r, err := newRoute(name, e, ruleText, priority, http.NotFoundHandler())
	if err != nil {
		t.Fatalf("newRoute(%q): %v", ruleText, err)
	}
	return r
}

// linearLookup is what table.lookup must return: the first matching route
// of all routes in compareRoutes order.
func linearLookup(routes []*route, r *http.Request) *route {
	sorted := slices.Clone(routes)
	slices.SortStableFunc(sorted, compareRoutes)
	for _, rt := range sorted {
		if rt.match(r) {
			return rt
		}
	}
	return nil
}

func routeName(r *route) string {
	if r == nil {
		return "<nil>"
	}
	return r.name
}

func TestNewRoutePriority(t *testing.T) {
	tests := []struct {
		name     string
		rule     string
		priority int
		want     int
	}{
		{name: "rule length", rule: "Host(`a`)", want: 9},
		{name: "as written", rule: "Host( `a` )  &&  Path(\"/\")", want: 26},
		{name: "explicit", rule: "Host(`a`)", priority: 7, want: 7},
		{name: "negative", rule: "Host(`a`)", priority: -3, want: -3},
		{name: "single wildcard counts", rule: "Host(`*.a.com`)", want: 15},
		{name: "double wildcard stars do not count", rule: "Host(`**.a.com`)", want: 16 - 2},
		{name: "each double wildcard", rule: "Host(`**.a.com`) || Host(`**.b.com`)", want: 36 - 4},
		{name: "negated double wildcard counts", rule: "!Host(`**.a.com`)", want: 17},
		{name: "negated twice", rule: "!!Host(`**.a.com`)", want: 18 - 2},
		{name: "negated group", rule: "!(Host(`**.a.com`) && Path(`/`))", want: 32},
		{name: "lower-case name", rule: "host(`**.a.com`)", want: 16 - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRoute(t, "r", tt.rule, tt.priority)
			if r.priority != tt.want {
				t.Errorf("priority of %s (configured %d): got %d, want %d", tt.rule, tt.priority, r.priority, tt.want)
			}
		})
	}
	t.Run("canonical text when not given", func(t *testing.T) {
		e, err := rule.Parse("Host( `a` )")
		if err != nil {
			t.Fatal(err)
		}
		r, err := newRoute("r", e, "", 0, http.NotFoundHandler())
		if err != nil {
			t.Fatal(err)
		}
		if want := len("Host(`a`)"); r.priority != want {
			t.Errorf("priority: got %d, want %d", r.priority, want)
		}
	})
}

func TestNewRouteErrors(t *testing.T) {
	e, err := rule.Parse("Path(`/`)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newRoute("r", e, "", 0, nil); err == nil {
		t.Error("newRoute with a nil handler: got no error, want one")
	}
	bad := &rule.Matcher{Name: "PathRegexp", Args: []string{"("}}
	_, err = newRoute("r", bad, "", 0, http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "compiling rule: PathRegexp:") {
		t.Errorf("newRoute with a bad regexp: got %v, want a compile error", err)
	}
}

func TestLookup(t *testing.T) {
	routes := []*route{
		testRoute(t, "api", "Host(`api.example.com`) && PathPrefix(`/v1`)", 0),
		testRoute(t, "api-all", "Host(`api.example.com`)", 0),
		testRoute(t, "www", "Host(`www.example.com`) || Host(`example.com`)", 0),
		testRoute(t, "wild", "Host(`*.example.com`)", 0),
		testRoute(t, "deep", "Host(`**.example.com`)", 0),
		testRoute(t, "ipv6", "Host(`::1`)", 0),
		testRoute(t, "static", "PathPrefix(`/static`)", 1000),
		testRoute(t, "health-b", "Path(`/health`)", 500),
		testRoute(t, "health-a", "Path(`/health`)", 500),
		testRoute(t, "never", "Host(`a.com`) && Host(`b.com`)", 0),
		testRoute(t, "fallback", "PathPrefix(`/`)", 1),
	}
	tests := []struct {
		name   string
		target string
		host   string // r.Host, if not empty or if noHost
		noHost bool
		want   string
	}{
		{name: "longest rule of the host", target: "http://api.example.com/v1/users", want: "api"},
		{name: "host normalised", target: "http://API.Example.COM.:443/v1/users", want: "api"},
		{name: "other rule of the host", target: "http://api.example.com/v2", want: "api-all"},
		{name: "hostless route of higher priority", target: "http://api.example.com/static/app.js", want: "static"},
		{name: "second host of a route", target: "http://example.com/", want: "www"},
		{name: "first host of a route", target: "http://www.example.com:8080/", want: "www"},
		{name: "single wildcard above double", target: "http://shop.example.com/", want: "wild"},
		{name: "double wildcard", target: "http://a.b.example.com/", want: "deep"},
		{name: "ipv6 host", target: "http://[::1]:8080/", want: "ipv6"},
		{name: "ipv6 host without port", target: "/", host: "[::1]", want: "ipv6"},
		{name: "unknown host", target: "http://other.org/", want: "fallback"},
		{name: "tie broken by name", target: "http://other.org/health", want: "health-a"},
		{name: "route that matches no host", target: "http://a.com/", want: "fallback"},
		{name: "colon host", target: "/", host: ":", want: "fallback"},
		{name: "empty host", target: "/", noHost: true, want: "fallback"},
		{name: "odd host", target: "/", host: "[::1", want: "fallback"},
	}
	for _, order := range []string{"given", "reversed"} {
		rs := slices.Clone(routes)
		if order == "reversed" {
			slices.Reverse(rs)
		}
		tb := newTable(rs)
		for _, tt := range tests {
			t.Run(order+"/"+tt.name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, tt.target, nil)
				if tt.host != "" || tt.noHost {
					r.Host = tt.host
				}
				if got := routeName(tb.lookup(r)); got != tt.want {
					t.Errorf("lookup(%s, Host %q): got %s, want %s", tt.target, r.Host, got, tt.want)
				}
				if want := routeName(linearLookup(routes, r)); want != tt.want {
					t.Errorf("linear scan: got %s, want %s", want, tt.want)
				}
			})
		}
	}
}

func TestLookupTies(t *testing.T) {
	tests := []struct {
		name   string
		routes []*route
		want   string
	}{
		{name: "hostless name first", want: "a", routes: []*route{
			testRoute(t, "b", "Host(`x.com`)", 5), testRoute(t, "a", "PathPrefix(`/`)", 5)}},
		{name: "host name first", want: "a", routes: []*route{
			testRoute(t, "a", "Host(`x.com`)", 5), testRoute(t, "b", "PathPrefix(`/`)", 5)}},
		{name: "higher priority hostless", want: "b", routes: []*route{
			testRoute(t, "a", "Host(`x.com`)", 5), testRoute(t, "b", "PathPrefix(`/`)", 6)}},
		{name: "same host", want: "a", routes: []*route{
			testRoute(t, "c", "Host(`x.com`)", 5), testRoute(t, "a", "Host(`x.com`) || Host(`y.com`)", 5)}},
		{name: "no route", want: "<nil>", routes: nil},
		{name: "no match", want: "<nil>", routes: []*route{testRoute(t, "a", "Host(`y.com`)", 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://x.com/", nil)
			if got := routeName(newTable(tt.routes).lookup(r)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLookupAgainstLinearScan compares the indexed lookup with a scan of
// every route, over routes whose priorities collide and requests that hit
// exact hosts, wildcards and no host.
func TestLookupAgainstLinearScan(t *testing.T) {
	var routes []*route
	for i := range 120 {
		host := fmt.Sprintf("h%d.example.com", i%15)
		var text string
		switch i % 6 {
		case 0:
			text = fmt.Sprintf("Host(`%s`)", host)
		case 1:
			text = fmt.Sprintf("Host(`%s`) && PathPrefix(`/p%d`)", host, i%4)
		case 2:
			text = fmt.Sprintf("Host(`%s`) || Host(`h%d.example.com`)", host, (i+1)%15)
		case 3:
			text = fmt.Sprintf("PathPrefix(`/p%d`) && !Method(`POST`)", i%4)
		case 4:
			text = "Host(`*.example.com`) && Method(`POST`)"
		case 5:
			text = fmt.Sprintf("Host(`**.com`) && Path(`/p%d`)", i%4)
		}
		routes = append(routes, testRoute(t, fmt.Sprintf("r%03d", 119-i), text, i%3*10))
	}
	tb := newTable(routes)
	for h := range 17 {
		for p := range 5 {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				target := fmt.Sprintf("http://H%d.example.com/p%d", h, p)
				r := httptest.NewRequest(method, target, nil)
				if got, want := tb.lookup(r), linearLookup(routes, r); got != want {
					t.Errorf("%s %s: got %s, want %s", method, target, routeName(got), routeName(want))
				}
			}
		}
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	var routes []*route
	for i := range 100 {
		routes = append(routes, testRoute(t, fmt.Sprint(i), fmt.Sprintf("Host(`s%d.example.com`) && PathPrefix(`/api`)", i), 0))
	}
	routes = append(routes, testRoute(t, "static", "PathPrefix(`/static`)", 0))
	tb := newTable(routes)
	for _, target := range []string{"http://S42.Example.com:443/api/x", "http://s7.example.com/static/x", "http://none.org/x"} {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if n := testing.AllocsPerRun(100, func() { tb.lookup(r) }); n != 0 {
			t.Errorf("lookup(%s): got %v allocations, want 0", target, n)
		}
	}
}

// FuzzRouteLookup checks, for any rule and request host and target, that
// lookup does not panic, agrees with a scan of every route, and that a
// route matches only hosts among its required hosts.
func FuzzRouteLookup(f *testing.F) {
	hosts := []string{"example.com", ":", "[::1]:80", "[::1]", "example.com.", "EXAMPLE.COM", "", "[::1",
		"a:b:c", "\u212a.com", "api.example.com:", strings.Repeat("a", 300) + ".com"}
	for i, s := range fuzzRules {
		f.Add(s, hosts[i%len(hosts)], "/api?a=1")
	}
	for _, h := range hosts {
		f.Add("Host(`example.com`) || Host(`::1`)", h, "/")
	}
	f.Fuzz(func(t *testing.T, ruleText, host, target string) {
		e, err := rule.Parse(ruleText)
		if err != nil {
			return
		}
		fuzzed, err := newRoute("fuzz", e, ruleText, 0, http.NotFoundHandler())
		if err != nil {
			t.Fatalf("newRoute(%q): %v", ruleText, err)
		}
		routes := []*route{fuzzed}
		for i, s := range fuzzRules {
			routes = append(routes, testRoute(t, fmt.Sprint(i), s, 0))
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		r := &http.Request{Method: http.MethodGet, Host: host, URL: u, Header: http.Header{}, RemoteAddr: "192.0.2.1:1"}
		if got, want := newTable(routes).lookup(r), linearLookup(routes, r); got != want {
			t.Errorf("lookup(Host %q): got %s, want %s", host, routeName(got), routeName(want))
		}
		if fuzzed.hosts != nil && fuzzed.match(r) && !slices.Contains(fuzzed.hosts, normalizeHost(host)) {
			t.Errorf("%s matches Host %q, not among its required hosts %q", ruleText, host, fuzzed.hosts)
		}
	})
}
