package router

import (
	"context"
	"testing"
	"time"
)

// TestShutdownRightAfterServe: a Shutdown that begins while Serve is
// still starting its goroutines (a SIGTERM at start) waits for all of
// them, and Serve returns; run with -race, it found Serve adding to the
// wait groups Shutdown was already waiting on.
func TestShutdownRightAfterServe(t *testing.T) {
	cfg := parseConfig(t, `
[entryPoints.web]
address = "127.0.0.1:0"
[entryPoints.websecure]
address = "127.0.0.1:0"
[entryPoints.websecure.http.tls]
[entryPoints.websecure.http3]
[entryPoints.db]
address = "127.0.0.1:0"
[tcp.routers.db]
rule = "HostSNI(`+"`*`"+`)"
entryPoints = ["db"]
service = "db"
[[tcp.services.db.loadBalancer.servers]]
address = "127.0.0.1:9"
`)
	for range 20 {
		rt := New(Config{})
		if err := rt.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		servers, err := Listen(ServersConfig{Config: cfg, Router: rt})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- servers.Serve() }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := servers.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after Shutdown")
		}
		rt.Close()
	}
}
