package config

import "testing"

// TestMergeServersTransports: the merged configuration keeps the
// serversTransports of the base, and a provider's service may name one of
// them, but not one that does not exist.
func TestMergeServersTransports(t *testing.T) {
	base, err := Parse("base.toml", []byte(`[entryPoints.web]
address = ":80"
[http.serversTransports.backend]
insecureSkipVerify = true
`))
	if err != nil {
		t.Fatal(err)
	}
	part := func(transport string) *Part {
		name := "s-" + transport + "@kubernetes"
		return &Part{
			Owner:    "ingress default/" + transport,
			Routers:  map[string]*Router{"r-" + transport + "@kubernetes": {Rule: "Host(`" + transport + ".example.com`)", Service: name}},
			Services: map[string]*Service{name: {LoadBalancer: &LoadBalancer{ServersTransport: transport}}},
		}
	}
	merged, refused := Merge(base, &Provided{Provider: "kubernetes", Parts: []*Part{part("backend"), part("missing")}})
	if got := merged.HTTP.ServersTransports["backend"]; got == nil || !got.InsecureSkipVerify {
		t.Errorf("merged serversTransports = %v, want the base's", merged.HTTP.ServersTransports)
	}
	if merged.HTTP.Services["s-backend@kubernetes"] == nil {
		t.Error("the part naming a defined serversTransport was not merged")
	}
	if len(refused) != 1 || refused[0].Owner != "ingress default/missing" {
		t.Fatalf("refused = %v, want the part naming an undefined serversTransport", refused)
	}
	t.Log(refused[0].Err)
}
