package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// BenchmarkForwardAuth measures a request through a route with a
// forwardAuth middleware, whose authentication server is on loopback,
// against the same route without it. Both reach a loopback backend.
func BenchmarkForwardAuth(b *testing.B) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-User", "alice")
	}))
	defer auth.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer app.Close()
	for _, tc := range []struct{ name, middlewares string }{
		{"plain", ""},
		{"forwardAuth", `middlewares = ["auth"]`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			doc := catchAll + fmt.Sprintf("%s\n[[http.services.s.loadBalancer.servers]]\nurl = %q\n[http.middlewares.auth.forwardAuth]\naddress = %q\nauthResponseHeaders = [\"X-User\"]\n", tc.middlewares, app.URL, auth.URL)
			cfg, err := config.Parse("bench.toml", []byte(doc))
			if err != nil {
				b.Fatal(err)
			}
			rt := New(Config{})
			defer rt.Close()
			if err := rt.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			h := rt.Handler("web")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://app.example/x?y=1", nil))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
