package router

import (
	"fmt"
	"testing"

	"github.com/tollgate-proxy/tollgate/config"
)

// BenchmarkApply measures building and swapping in a routing generation
// of n routers, each with its own host and service: the cost of a reload,
// paid off the request path.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routers=%d", n), func(b *testing.B) {
			cfg := generatedConfig(b, n)
			rt := New(Config{})
			defer rt.Close()
			for b.Loop() {
				if err := rt.Apply(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func generatedConfig(tb testing.TB, n int) *config.Config {
	tb.Helper()
	cfg := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}},
		HTTP: &config.HTTP{
			Routers:  make(map[string]*config.Router, n),
			Services: make(map[string]*config.Service, n),
		},
	}
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		cfg.HTTP.Routers[name] = &config.Router{
			Rule:    fmt.Sprintf("Host(`h%d.example.com`) && PathPrefix(`/api`)", i),
			Service: name,
		}
		cfg.HTTP.Services[name] = &config.Service{LoadBalancer: &config.LoadBalancer{
			Servers: []config.Server{{URL: fmt.Sprintf("http://10.0.%d.%d:8080", i/250, i%250)}},
		}}
	}
	return cfg
}
