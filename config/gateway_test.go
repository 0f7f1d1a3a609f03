package config

import (
	"maps"
	"testing"
)

// TestGatewayEntryPoints: the listener ports of [providers.kubernetesGateway]
// come from its entryPoints table, or else from the entry points'
// addresses, leaving out a port two entry points share; the section
// round-trips through the store encoding.
func TestGatewayEntryPoints(t *testing.T) {
	cfg, err := Parse("test.toml", []byte(`
[entryPoints.web]
address = ":80"
[entryPoints.websecure]
address = "127.0.0.1:8443"
[entryPoints.other]
address = "127.0.0.2:9000"
[entryPoints.more]
address = "127.0.0.3:9000"
[providers.kubernetesGateway]
entryPoints = { "443" = "websecure", "80" = "web" }
namespaces = ["shop"]
controllerName = "example.com/gateway"
throttleDuration = "100ms"
  [providers.kubernetesGateway.statusAddress]
  hostname = "lb.example.com"
`))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Providers.KubernetesGateway
	roundTrip(t, cfg)
	if got, want := k.ListenerEntryPoints(cfg.EntryPoints), map[int32]string{443: "websecure", 80: "web"}; !maps.Equal(got, want) {
		t.Errorf("with a table: %v, want %v", got, want)
	}
	k.EntryPoints = nil
	if got, want := k.ListenerEntryPoints(cfg.EntryPoints), map[int32]string{8443: "websecure", 80: "web"}; !maps.Equal(got, want) {
		t.Errorf("by address: %v, want %v", got, want)
	}
}
