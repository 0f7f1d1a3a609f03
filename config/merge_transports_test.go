package config

import (
	"strings"
	"testing"
)

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

// TestMergePartServersTransports: a part may define serversTransports its
// services name; the base's map is not modified; one naming files, or
// defined differently by two parts, is refused.
func TestMergePartServersTransports(t *testing.T) {
	base, err := Parse("base.toml", []byte(`[entryPoints.web]
address = ":80"
[http.serversTransports.backend]
insecureSkipVerify = true
`))
	if err != nil {
		t.Fatal(err)
	}
	part := func(owner, transport string, st *ServersTransport) *Part {
		svc := "s-" + owner + "@kubernetes"
		return &Part{
			Owner:             "ingress default/" + owner,
			Routers:           map[string]*Router{"r-" + owner + "@kubernetes": {Rule: "Host(`" + owner + ".example.com`)", Service: svc}},
			Services:          map[string]*Service{svc: {LoadBalancer: &LoadBalancer{ServersTransport: transport}}},
			ServersTransports: map[string]*ServersTransport{transport: st},
		}
	}
	merged, refused := Merge(base, &Provided{Provider: "kubernetes", Parts: []*Part{
		part("a", "t-a@kubernetes", &ServersTransport{InsecureSkipVerify: true, ForwardingTimeouts: &ForwardingTimeouts{DialTimeout: Duration(5e9)}}),
		part("files", "t-files@kubernetes", &ServersTransport{RootCAs: []string{"/etc/ca.pem"}}),
		part("twice", "t-a@kubernetes", &ServersTransport{}),
		part("unsuffixed", "t-plain", &ServersTransport{}),
	}})
	if got := merged.HTTP.ServersTransports["t-a@kubernetes"]; got == nil || !got.InsecureSkipVerify {
		t.Errorf("merged serversTransports = %v, want the part's", merged.HTTP.ServersTransports)
	}
	if merged.HTTP.ServersTransports["backend"] == nil || len(base.HTTP.ServersTransports) != 1 {
		t.Errorf("the base's serversTransports: merged %v, base %v", merged.HTTP.ServersTransports, base.HTTP.ServersTransports)
	}
	var owners []string
	for _, r := range refused {
		owners = append(owners, r.Owner)
	}
	if want := "ingress default/files ingress default/twice ingress default/unsuffixed"; strings.Join(owners, " ") != want {
		t.Fatalf("refused %v, want %s", refused, want)
	}
	for i, want := range []string{"cannot name files", "already defined differently", `names end in "@kubernetes"`} {
		if !strings.Contains(refused[i].Err.Error(), want) {
			t.Errorf("refusal of %s: %v, want %q", refused[i].Owner, refused[i].Err, want)
		}
	}
}
