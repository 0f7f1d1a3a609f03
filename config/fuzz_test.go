package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

func addFileSeeds(f *testing.F) {
	for _, pattern := range []string{"../examples/*.toml", "testdata/bad/*.toml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			doc, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(doc))
		}
	}
}

// FuzzParse feeds arbitrary documents to the TOML decoder and validator:
// they must never panic, and whatever decodes must round-trip through the
// store encoding exactly.
func FuzzParse(f *testing.F) {
	addFileSeeds(f)
	f.Add("entryPoints = { a = { address = \":1\" } }\nhttp.routers.x = {}\n[[acme.domains]]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, src, decoded, derr := decodeTOML("fuzz.toml", []byte(doc))
		if derr != nil {
			for _, p := range derr.Problems {
				if !strings.HasPrefix(p.Where, "fuzz.toml") {
					t.Fatalf("problem not located in the file: %q", p)
				}
			}
			return
		}
		if len(decoded.probs) > 0 {
			// A partly decoded configuration is validated too.
			probs := validateDecoded(cfg, decoded)
			if len(probs) < len(decoded.probs) {
				t.Fatalf("%d decoding problems, %d reported", len(decoded.probs), len(probs))
			}
			_ = src.locate(probs).Error()
			return
		}
		probs := validate(cfg)
		if len(probs) > 0 {
			_ = src.locate(probs).Error()
		}
		entries, err := Encode(cfg)
		if err != nil {
			if len(probs) == 0 {
				t.Fatalf("a valid configuration does not encode: %v", err)
			}
			return // a name that cannot be a key; validation reported it
		}
		if err := checkKeyLengths(DefaultPrefix, entries); err != nil && len(probs) == 0 {
			t.Fatalf("a valid configuration has keys too long to store: %v", err)
		}
		roundTrip(t, cfg)
	})
}

// FuzzDecode feeds arbitrary store contents ("key=value" lines) to the
// store decoder and validator: they must never panic, and whatever decodes
// must encode to entries that decode to the same configuration.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.toml")
	for _, file := range files {
		cfg, err := LoadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		entries, _ := Encode(cfg)
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.Key + "=" + e.Value + "\n")
		}
		f.Add(b.String())
	}
	f.Add("http/routers/a=true\nhttp/routers/a/rule=x\nacme/domains/1/main=a\n")
	f.Fuzz(func(t *testing.T, data string) {
		const root = "p/config/v1"
		var kvs []kvstore.KV
		for line := range strings.SplitSeq(data, "\n") {
			k, v, _ := strings.Cut(line, "=")
			kvs = append(kvs, kvstore.KV{Key: root + "/" + k, Value: []byte(v)})
		}
		cfg, decoded, derr := decodeTree(root, kvs)
		if derr != nil {
			_ = derr.Error()
			return
		}
		if len(decoded.probs) > 0 {
			_ = locateKV(root, validateDecoded(cfg, decoded)).Error()
			return
		}
		probs := validate(cfg)
		if len(probs) > 0 {
			_ = locateKV(root, probs).Error()
		}
		entries, err := Encode(cfg)
		if err != nil {
			if len(probs) == 0 {
				t.Fatalf("a valid configuration does not encode: %v", err)
			}
			return
		}
		again := make([]kvstore.KV, len(entries))
		for i, e := range entries {
			again[i] = kvstore.KV{Key: root + "/" + e.Key, Value: []byte(e.Value)}
		}
		back, derr := decodeEntries(root, again)
		if derr != nil {
			t.Fatalf("re-decoding failed: %v", derr)
		}
		if !reflect.DeepEqual(cfg, back) {
			t.Fatalf("re-decoding differs:\n got %+v\nwant %+v", back, cfg)
		}
	})
}
