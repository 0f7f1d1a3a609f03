package config

import (
	"reflect"
	"testing"
)

// TestMergeKeepsTCP: providers add HTTP routes only; the merged
// configuration has the base's [tcp] as it is, and base is not modified.
func TestMergeKeepsTCP(t *testing.T) {
	base, err := Parse("tcp.toml", []byte(tcpEverything))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("tcp.toml", []byte(tcpEverything))
	if err != nil {
		t.Fatal(err)
	}
	part := &Part{
		Owner: "ingress default/db",
		// A provider's HTTP router may share its name with a TCP router.
		Routers:  map[string]*Router{"db@kubernetes": {Rule: "Host(`db.example.com`)", Service: "db@kubernetes"}},
		Services: map[string]*Service{"db@kubernetes": {LoadBalancer: &LoadBalancer{Servers: []Server{{URL: "http://10.0.0.9:80"}}}}},
	}
	merged, refused := Merge(base, &Provided{Provider: "kubernetes", Parts: []*Part{part}})
	if len(refused) > 0 {
		t.Fatalf("refused: %v", refused[0].Err)
	}
	if merged.HTTP.Routers["db@kubernetes"] == nil {
		t.Error("the provider's router was not merged")
	}
	if !reflect.DeepEqual(merged.TCP, again.TCP) {
		t.Errorf("merged [tcp] = %+v, want the base's %+v", merged.TCP, again.TCP)
	}
	if !reflect.DeepEqual(base, again) {
		t.Error("Merge modified base")
	}
	if merged, _ := Merge(base); !reflect.DeepEqual(merged.TCP, again.TCP) {
		t.Error("Merge without providers dropped [tcp]")
	}
}
