package config

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// generated returns a valid configuration with n routers, each with its
// own service, whose values all carry tag, so that two configurations
// with different tags differ in every router.
func generated(t testing.TB, n int, tag string) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("[entryPoints.web]\naddress = \":80\"\n[entryPoints.api]\naddress = \"127.0.0.1:8080\"\n[api]\n")
	for i := range n {
		fmt.Fprintf(&b, "[http.routers.r%d]\nrule = \"Host(`r%d.%s.example.com`)\"\nservice = \"s%d\"\nentryPoints = [\"web\"]\n", i, i, tag, i)
		fmt.Fprintf(&b, "[[http.services.s%d.loadBalancer.servers]]\nurl = \"http://%s-%d.internal:8080\"\n", i, tag, i)
	}
	cfg, err := Parse(tag+".toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
