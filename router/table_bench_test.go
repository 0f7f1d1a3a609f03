package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchTable returns a table of n routes with distinct hosts, as in
// Host(`s42.example.com`) && PathPrefix(`/api`), and a few hostless
// routes.
func benchTable(b *testing.B, n int) *table {
	b.Helper()
	routes := make([]*route, 0, n+4)
	for i := range n {
		routes = append(routes, testRoute(b, fmt.Sprintf("svc%d", i),
			fmt.Sprintf("Host(`s%d.example.com`) && PathPrefix(`/api`)", i), 0))
	}
	routes = append(routes,
		testRoute(b, "static", "PathPrefix(`/static`)", 0),
		testRoute(b, "health", "Path(`/health`)", 100),
		testRoute(b, "metrics", "PathPrefix(`/metrics`) && Method(`GET`)", 0),
		testRoute(b, "fallback", "PathPrefix(`/`)", 1),
	)
	return newTable(routes)
}

// BenchmarkLookup looks up a route among 10, 1,000 and 10,000 routes with
// distinct hosts: "host" matches a host route after trying the hostless
// route of higher priority, "hostless" a hostless route for a known host
// after trying its host route, "unknown" the fallback for a host no route
// names. The cost must not grow with the number of routes.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		tb := benchTable(b, n)
		host := fmt.Sprintf("s%d.example.com", n/2)
		cases := []struct {
			name, target, want string
		}{
			{"host", "http://" + host + "/api/users", fmt.Sprintf("svc%d", n/2)},
			{"hostless", "http://" + host + ":443/static/app.js", "static"},
			{"unknown", "http://unknown.example.org/index.html", "fallback"},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("routes=%d/%s", n, c.name), func(b *testing.B) {
				r := httptest.NewRequest(http.MethodGet, c.target, nil)
				if got := routeName(tb.lookup(r)); got != c.want {
					b.Fatalf("lookup(%s): got %s, want %s", c.target, got, c.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					tb.lookup(r)
				}
			})
		}
	}
}
