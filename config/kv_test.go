package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

func TestKebab(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"address", "address"},
		{"entryPoints", "entry-points"},
		{"passHostHeader", "pass-host-header"},
		{"trustedIPs", "trusted-ips"},
		{"excludedIPs", "excluded-ips"},
		{"passTLSClientCert", "pass-tls-client-cert"},
		{"forceSTSHeader", "force-sts-header"},
		{"caServer", "ca-server"},
		{"httpOnly", "http-only"},
		{"ipAllowList", "ip-allow-list"},
		{"sniStrict", "sni-strict"},
	} {
		if got := kebab(tc.in); got != tc.want {
			t.Errorf("kebab(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSchema checks every struct of the model: exported fields all have a
// TOML name, names and store names are unique within a struct, and store
// names are lower case.
func TestSchema(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == durationType || seen[typ] {
			return
		}
		seen[typ] = true
		names, kvs := map[string]bool{}, map[string]bool{}
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() && f.Tag.Get("toml") == "" {
				t.Errorf("%s.%s has no toml tag", typ.Name(), f.Name)
			}
		}
		for _, f := range fieldsOf(typ) {
			if names[f.name] || kvs[f.kv] {
				t.Errorf("%s: field name %q or store name %q is used twice", typ.Name(), f.name, f.kv)
			}
			names[f.name], kvs[f.kv] = true, true
			if f.kv != strings.ToLower(f.kv) {
				t.Errorf("%s.%s: store name %q is not lower case", typ.Name(), f.name, f.kv)
			}
			walk(typ.Field(f.index).Type)
		}
	}
	walk(configType)
	if len(seen) < 40 {
		t.Errorf("walked %d structs; the walk is broken", len(seen))
	}
}

// roundTrip encodes cfg, decodes the entries as the store would return
// them, and reports any difference.
func roundTrip(t testing.TB, cfg *Config) {
	t.Helper()
	entries, err := Encode(cfg)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	const root = "tollgate/config/v1"
	kvs := make([]kvstore.KV, len(entries))
	for i, e := range entries {
		if err := kvstore.ValidateKey(root + "/" + e.Key); err != nil {
			t.Fatalf("Encode made an invalid key: %v", err)
		}
		kvs[i] = kvstore.KV{Key: root + "/" + e.Key, Value: []byte(e.Value)}
	}
	back, derr := decodeEntries(root, kvs)
	if derr != nil {
		t.Fatalf("decoding the encoded configuration failed: %v", derr)
	}
	want := *cfg
	want.Store = nil
	if !reflect.DeepEqual(&want, back) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", back, &want)
	}
	again, err := Encode(back)
	if err != nil || !slices.Equal(again, entries) {
		t.Fatalf("encoding the decoded configuration differs: %v", err)
	}
}

// TestExamples validates every example and checks that it round-trips
// through the store encoding exactly.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v, %d files", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, cfg)
		})
	}
}

// TestStoreErrors checks that problems in the store name the key.
func TestStoreErrors(t *testing.T) {
	const root = "tg/config/v3"
	base := []kvstore.KV{
		{Key: root + "/entry-points/web/address", Value: []byte(":80")},
		{Key: root + "/http/routers/app/rule", Value: []byte("Host(`a.example.com`)")},
		{Key: root + "/http/routers/app/service", Value: []byte("app")},
		{Key: root + "/http/services/app/load-balancer/servers/0/url", Value: []byte("http://127.0.0.1:1")},
	}
	for _, tc := range []struct {
		name string
		kvs  []kvstore.KV
		want string
	}{
		{"bad integer", []kvstore.KV{{Key: root + "/http/routers/app/priority", Value: []byte("high")}},
			root + `/http/routers/app/priority: expected an integer, found "high"`},
		{"bad bool", []kvstore.KV{{Key: root + "/http/services/app/load-balancer/pass-host-header", Value: []byte("yes")}},
			root + `/http/services/app/load-balancer/pass-host-header: expected true or false, found "yes"`},
		{"unknown key", []kvstore.KV{{Key: root + "/http/routers/app/servce", Value: []byte("x")}},
			root + `/http/routers/app/servce: unknown key "servce"; did you mean "service"?`},
		{"camel case", []kvstore.KV{{Key: root + "/http/routers/app/entryPoints/0", Value: []byte("web")}},
			root + `/http/routers/app/entryPoints: unknown key "entryPoints"; did you mean "entry-points"?`},
		{"list gap", []kvstore.KV{{Key: root + "/http/services/app/load-balancer/servers/2/url", Value: []byte("http://h:1")}},
			root + `/http/services/app/load-balancer/servers/2: list items must be numbered 0 to 1 without gaps; renumber the items`},
		{"value and folder", []kvstore.KV{{Key: root + "/http/routers/app", Value: []byte("x")}},
			root + `/http/routers/app: this key has a value and also keys below it; delete the value or move the keys`},
		{"value before folder", []kvstore.KV{{Key: root + "/http/routers/a", Value: []byte("x")}, {Key: root + "/http/routers/a/rule", Value: []byte("Path(`/`)")}},
			root + `/http/routers/a: this key has a value and also keys below it; delete the value or move the keys`},
		{"store section", []kvstore.KV{{Key: root + "/store/endpoint", Value: []byte("consul://x:1")}},
			root + `/store: the store section is never kept in the store`},
		{"undefined service", []kvstore.KV{{Key: root + "/http/routers/other/rule", Value: []byte("Path(`/`)")}, {Key: root + "/http/routers/other/service", Value: []byte("nope")}},
			root + `/http/routers/other/service: service "nope" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kvs := append(slices.Clone(base), tc.kvs...)
			slices.SortFunc(kvs, func(a, b kvstore.KV) int { return strings.Compare(a.Key, b.Key) })
			_, err := Decode(root, kvs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Decode(root, base); err != nil {
		t.Fatalf("the base configuration is invalid: %v", err)
	}
}

// TestDottedPaths checks how paths are printed for a file and a store.
func TestDottedPaths(t *testing.T) {
	for _, tc := range []struct {
		path       []string
		dotted, kv string
	}{
		{[]string{"http", "routers", "web", "entryPoints", "0"}, "http.routers.web.entryPoints[0]", "http/routers/web/entry-points/0"},
		{[]string{"http", "routers", "0", "rule"}, "http.routers.0.rule", "http/routers/0/rule"},
		{[]string{"http", "routers", "a.b", "rule"}, `http.routers."a.b".rule`, "http/routers/a.b/rule"},
		{[]string{"entryPoints", "web", "unknownKey"}, "entryPoints.web.unknownKey", "entry-points/web/unknownKey"},
	} {
		if got := dotted(tc.path); got != tc.dotted {
			t.Errorf("dotted(%q) = %s, want %s", tc.path, got, tc.dotted)
		}
		if got := kvRelPath(tc.path); got != tc.kv {
			t.Errorf("kvRelPath(%q) = %s, want %s", tc.path, got, tc.kv)
		}
	}
}

func ExampleEncode() {
	cfg, err := Parse("example.toml", []byte(`
[entryPoints.web]
address = ":80"

[http.routers.app]
rule = "Host(`+"`app.example.com`"+`)"
entryPoints = ["web"]
service = "app"

[http.services.app.loadBalancer]
passHostHeader = false

  [[http.services.app.loadBalancer.servers]]
  url = "http://10.0.0.7:8080"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := Encode(cfg)
	for _, e := range entries {
		fmt.Printf("%s = %s\n", e.Key, e.Value)
	}
	// Output:
	// entry-points/web/address = :80
	// http/routers/app/entry-points/0 = web
	// http/routers/app/rule = Host(`app.example.com`)
	// http/routers/app/service = app
	// http/services/app/load-balancer/pass-host-header = false
	// http/services/app/load-balancer/servers/0/url = http://10.0.0.7:8080
}
