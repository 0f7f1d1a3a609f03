package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// keyPatterns lists every store key the schema can produce, below a
// version folder, with placeholders for names and list indexes.
func keyPatterns() []string {
	var out []string
	var walk func(prefix string, t reflect.Type, field string)
	walk = func(prefix string, t reflect.Type, field string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == durationType || t.Kind() != reflect.Struct && t.Kind() != reflect.Map && t.Kind() != reflect.Slice:
			out = append(out, prefix)
		case t.Kind() == reflect.Map && strings.HasSuffix(prefix, "kubernetes-gateway/entry-points"):
			walk(join(prefix, "<port>"), t.Elem(), "")
		case t.Kind() == reflect.Map:
			walk(join(prefix, placeholder(field)), t.Elem(), "")
		case t.Kind() == reflect.Slice:
			walk(join(prefix, "<n>"), t.Elem(), "")
		default:
			for _, f := range fieldsOf(t) {
				if !f.skipKV {
					walk(join(prefix, f.kv), t.Field(f.index).Type, f.name)
				}
			}
		}
	}
	walk("", configType, "")
	slices.Sort(out)
	return out
}

func placeholder(field string) string {
	switch field {
	case "entryPoints":
		return "<entry-point>"
	case "routers", "services", "middlewares":
		return "<" + strings.TrimSuffix(field, "s") + ">"
	case "options":
		return "<tls-options>"
	case "targets":
		return "<header-value>"
	case "serversTransports":
		return "<servers-transport>"
	case "stores":
		return "<tls-store>"
	case "statusRewrites":
		return "<status>"
	}
	return "<header>"
}

// TestKVLayoutDoc keeps the key list in docs/kv-layout.md equal to the
// schema; go test -update rewrites it.
func TestKVLayoutDoc(t *testing.T) {
	const path = "../docs/kv-layout.md"
	const begin, end = "<!-- keys:begin -->\n", "<!-- keys:end -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the %q … %q markers", path, begin, end)
	}
	want := "```\n" + strings.Join(keyPatterns(), "\n") + "\n```\n"
	if *update {
		if err := os.WriteFile(path, []byte(before+begin+want+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, _, _ := strings.Cut(rest, end); got != want {
		t.Fatalf("the key list in %s is out of date with the schema; run go test ./config -run TestKVLayoutDoc -update", path)
	}
}

// TestConfigurationDocExamples: the complete examples of
// docs/configuration.md's sections (those that are not excerpts) validate
// as written.
func TestConfigurationDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"## TCP routers", "## HTTP/3"} {
		_, rest, ok := strings.Cut(string(doc), "\n"+section+"\n")
		if !ok {
			t.Fatalf("docs/configuration.md has no section %q", section)
		}
		_, block, ok := strings.Cut(rest, "```toml\n")
		if !ok {
			t.Fatalf("%s: no TOML example", section)
		}
		block, _, _ = strings.Cut(block, "```")
		if _, err := Parse("configuration.md", []byte(block)); err != nil {
			t.Errorf("the example of %q does not validate:\n%v", section, err)
		}
	}
}
