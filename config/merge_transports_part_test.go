package config

import (
	"strings"
	"testing"
	"time"
)

// TestMergePartTransports: a part's loadBalancers may name its own
// serversTransports, merged with it without touching the base's map; one
// with files or defined differently refuses the part, and another part
// cannot name them.
func TestMergePartTransports(t *testing.T) {
	base, err := Parse("base.toml", []byte(`[entryPoints.web]
address = ":80"
[http.serversTransports.shared]
maxIdleConnsPerHost = 4
`))
	if err != nil {
		t.Fatal(err)
	}
	part := func(name string, sts map[string]*ServersTransport, use string) *Part {
		return &Part{
			Owner:             "route " + name,
			Routers:           map[string]*Router{name + "@gw": {Rule: "Host(`" + name + ".example.com`)", Service: name + "-s@gw"}},
			Services:          map[string]*Service{name + "-s@gw": {LoadBalancer: &LoadBalancer{ServersTransport: use}}},
			ServersTransports: sts,
		}
	}
	timeout := &ServersTransport{ForwardingTimeouts: &ForwardingTimeouts{ResponseHeaderTimeout: Duration(time.Second)}}
	merged, refused := Merge(base, &Provided{Provider: "gw", Parts: []*Part{
		part("good", map[string]*ServersTransport{"t@gw": timeout}, "t@gw"),
		part("same", map[string]*ServersTransport{"t@gw": {ForwardingTimeouts: &ForwardingTimeouts{ResponseHeaderTimeout: Duration(time.Second)}}}, "t@gw"),
		part("base", nil, "shared"),
		part("files", map[string]*ServersTransport{"f@gw": {RootCAs: []string{"/etc/ca.pem"}}}, "f@gw"),
		part("differs", map[string]*ServersTransport{"t@gw": {ForwardingTimeouts: &ForwardingTimeouts{ResponseHeaderTimeout: Duration(2 * time.Second)}}}, "t@gw"),
		part("foreign", nil, "t@gw"),
	}})
	if merged.HTTP.ServersTransports["t@gw"] != timeout || merged.HTTP.ServersTransports["shared"] == nil {
		t.Errorf("the good part's transport was not merged: %v", merged.HTTP.ServersTransports)
	}
	if _, leaked := base.HTTP.ServersTransports["t@gw"]; leaked {
		t.Error("the merge added a provider's transport to the base configuration")
	}
	want := map[string]string{
		"route files":   "cannot name files",
		"route differs": "defined differently",
		"route foreign": `"t@gw"`,
	}
	for _, r := range refused {
		if w, ok := want[r.Owner]; !ok || !strings.Contains(r.Err.Error(), w) {
			t.Errorf("refused %s: %v; want an error with %q", r.Owner, r.Err, w)
		}
		delete(want, r.Owner)
	}
	for owner := range want {
		t.Errorf("%s was not refused", owner)
	}
}
