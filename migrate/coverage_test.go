package migrate

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTraefikV1EveryKeyReported walks every key of each input and checks
// that the report has a line for it. A line on a key covers that key; a
// line on a table covers the keys inside it (a router's line speaks for
// its rule, backend and entry points), except for the tables whose keys
// are settings of their own — the top level, its sections ([acme],
// [consul], [kubernetes], …) and each entry point — where every key needs
// its own line, so that a value such as acme.email or an entry point's
// address is never carried over unmentioned. A table reported as not
// converted (unsupported or unknown) covers everything in it.
func TestTraefikV1EveryKeyReported(t *testing.T) {
	files, err := filepath.Glob("testdata/traefik-v1/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	inputs := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = string(b)
	}
	// Settings that are off, and others the examples do not hold.
	inputs["off.toml"] = `
debug = false
[entryPoints.http]
address = ":80"
[retry]
[api]
dashboard = false
[acme]
email = "ops@example.com"
storage = "acme.json"
onHostRule = false
onDemand = false
acmeLogging = false
storageFile = "old.json"
  [acme.httpChallenge]
  entryPoint = "http"
[kubernetes]
endpoint = "https://10.0.0.1:6443"
token = "not-a-real-token"
certAuthFilePath = "/ca.pem"
namespaces = []
labelselector = ""
disablePassHostHeaders = false
enablePassTLSCert = false
throttleDuration = "0s"
  [kubernetes.ingressEndpoint]
`
	for name, src := range inputs {
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			res, err := TraefikV1(name, []byte(src))
			if err != nil {
				t.Fatalf("TraefikV1: %v", err)
			}
			tree, _, err := decodeSource(name, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range unreported(res, tree) {
				t.Errorf("%s: key %s has no line in the report", name, key)
			}
			if t.Failed() {
				t.Logf("report:\n%s", reportText(res))
			}
		})
	}
}

// unreported lists the keys of tree that no report line covers (see
// TestTraefikV1EveryKeyReported).
func unreported(res *Result, tree map[string]any) []string {
	// lines: whether each key with lines was dropped (every line of it
	// unsupported or unknown).
	lines := map[string]bool{}
	for _, it := range res.Items {
		dropped := it.Kind == Unsupported || it.Kind == Unknown
		if was, ok := lines[it.Key]; ok {
			dropped = dropped && was
		}
		lines[it.Key] = dropped
	}
	// keyed: the tables whose keys each need a line.
	keyed := func(path []string) bool {
		return len(path) <= 1 || len(path) == 2 && path[0] == "entryPoints" ||
			len(path) == 2 && path[0] == "kubernetes" && path[1] == "ingressEndpoint"
	}
	covered := func(path []string) bool {
		if _, ok := lines[dottedPath(path)]; ok {
			return true
		}
		// Walk up: a line on an enclosing table covers the key when no
		// keyed table lies between (or when it dropped the table).
		for n := len(path) - 1; n >= 1; n-- {
			dropped, ok := lines[dottedPath(path[:n])]
			if ok && dropped {
				return true
			}
			if keyed(path[:n]) {
				return false
			}
			if ok {
				return true
			}
		}
		return false
	}
	var out []string
	var walk func(path []string, v any)
	walk = func(path []string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 && !covered(path) {
				out = append(out, dottedPath(path))
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(append(slices.Clip(path), k), x[k])
			}
			return
		case []any:
			if len(x) > 0 {
				if _, tables := x[0].(map[string]any); tables {
					for i, e := range x {
						walk(append(slices.Clip(path), indexSeg(i)), e)
					}
					return
				}
			}
		}
		if !covered(path) {
			out = append(out, dottedPath(path))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(tree)) {
		walk([]string{k}, tree[k])
	}
	return out
}
