package config

import (
	"strings"
	"testing"
)

// TestMergePartMiddlewares: a part's routers may name its own middlewares,
// which are merged with it; a bad one refuses the part, and another part
// cannot name them.
func TestMergePartMiddlewares(t *testing.T) {
	base, err := Parse("base.toml", []byte(`[entryPoints.web]
address = ":80"
`))
	if err != nil {
		t.Fatal(err)
	}
	part := func(name string, mws map[string]*Middleware, use ...string) *Part {
		return &Part{
			Owner:       "route " + name,
			Routers:     map[string]*Router{name + "@gw": {Rule: "Host(`" + name + ".example.com`)", Service: "s@gw", Middlewares: use}},
			Services:    map[string]*Service{"s@gw": {LoadBalancer: &LoadBalancer{}}},
			Middlewares: mws,
		}
	}
	headers := &Middleware{Headers: &Headers{CustomRequestHeaders: map[string]string{"X-A": "1"}}}
	merged, refused := Merge(base, &Provided{Provider: "gw", Parts: []*Part{
		part("good", map[string]*Middleware{"h@gw": headers}, "h@gw"),
		part("noname", map[string]*Middleware{"h": headers}, "h"),
		part("bad", map[string]*Middleware{"bad@gw": {ReplacePath: &ReplacePath{}}}, "bad@gw"),
		part("chain", map[string]*Middleware{"c@gw": {Chain: &Chain{Middlewares: []string{"h@gw"}}}}, "c@gw"),
		part("differs", map[string]*Middleware{"h@gw": {Headers: &Headers{CustomRequestHeaders: map[string]string{"X-A": "2"}}}}, "h@gw"),
		part("foreign", nil, "h@gw"),
	}})
	if merged.HTTP.Middlewares["h@gw"] != headers || merged.HTTP.Routers["good@gw"] == nil {
		t.Errorf("the good part's middleware was not merged: %v", merged.HTTP.Middlewares)
	}
	want := map[string]string{
		"route noname":  `a provider's names end in "@gw"`,
		"route bad":     "path",
		"route chain":   "cannot be a chain",
		"route differs": "defined differently",
		"route foreign": `"h@gw"`,
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
