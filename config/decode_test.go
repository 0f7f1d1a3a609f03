package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-proxy/tollgate/kvstore"
)

// TestDecodeAndValidateTogether checks that a value of the wrong type does
// not hide the meaning checks of the rest of the file or store: one pass
// reports both, and nothing about the value that did not decode or the
// key a typo meant.
func TestDecodeAndValidateTogether(t *testing.T) {
	problems := func(t *testing.T, err error) []string {
		t.Helper()
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("got %v, want an *Error", err)
		}
		var out []string
		for _, p := range ce.Problems {
			out = append(out, p.String())
		}
		return out
	}
	t.Run("file", func(t *testing.T) {
		doc := "[entryPoints.web]\naddress = \":80\"\n" +
			"[http.routers.a]\nrule = \"Path(`/`)\"\nservice = \"s\"\npriority = \"high\"\n" +
			"[http.routers.b]\nrule = 7\nservce = \"s\"\n" +
			"[http.routers.c]\nrule = \"Path(`/c`)\"\nservice = \"missing\"\n" +
			"[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n"
		_, err := Parse("t.toml", []byte(doc))
		got := problems(t, err)
		want := []string{
			`t.toml:6:1: http.routers.a.priority: expected an integer, found the string "high"`,
			`t.toml:8:1: http.routers.b.rule: expected a string, found the integer 7`,
			`t.toml:9:1: http.routers.b.servce: unknown key "servce"; did you mean "service"?`,
			`t.toml:12:1: http.routers.c.service: service "missing" is not defined (defined: s)`,
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("store", func(t *testing.T) {
		const root = "tg/config/v1"
		kvs := []kvstore.KV{
			{Key: root + "/entry-points/web/address", Value: []byte(":80")},
			{Key: root + "/http/routers/a/priority", Value: []byte("high")},
			{Key: root + "/http/routers/a/rule", Value: []byte("Path(`/`)")},
			{Key: root + "/http/routers/a/service", Value: []byte("s")},
			{Key: root + "/http/routers/c/rule", Value: []byte("Path(`/c`)")},
			{Key: root + "/http/routers/c/service", Value: []byte("missing")},
			{Key: root + "/http/services/s/load-balancer/servers/0/url", Value: []byte("http://127.0.0.1:1")},
		}
		_, err := Decode(root, kvs)
		got := problems(t, err)
		want := []string{
			root + `/http/routers/a/priority: expected an integer, found "high"`,
			root + `/http/routers/c/service: service "missing" is not defined (defined: s)`,
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
