package rule_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

func TestHosts(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want []string
	}{
		{"Path(`/`)", nil},
		{"Host(`example.com`)", []string{"example.com"}},
		{"Host(`B.example`) || Host(`a.example`) || Host(`b.example.`)", []string{"b.example", "a.example"}},
		{"(Host(`a`) || Host(`b`)) && Path(`/`) && Host(`c`)", []string{"a", "b", "c"}},
		{"!Host(`a`) && Host(`b`)", []string{"b"}},
		{"!(Host(`a`) || Path(`/`)) || Host(`b`)", []string{"b"}},
		{"!!Host(`a`)", nil},
		{"HostRegexp(`^a$`) || Header(`Host`, `b`)", nil},
		{"Host(`*.example.com`) || Host(`**.example.org`)", []string{"*.example.com"}},
		{"Host(`10.0.0.1`)", []string{"10.0.0.1"}},
	} {
		e, err := rule.Parse(tc.rule)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.rule, err)
		}
		if got := rule.Hosts(e); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Hosts(%q): got %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestWalk(t *testing.T) {
	e, err := rule.Parse("Host(`a`) && !Path(`/`) || Method(`GET`)")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	rule.Walk(e, func(x rule.Expr) bool {
		got = append(got, x.String())
		_, isNot := x.(*rule.Not)
		return !isNot
	})
	want := []string{
		"Host(`a`) && !Path(`/`) || Method(`GET`)",
		"Host(`a`) && !Path(`/`)",
		"Host(`a`)",
		"!Path(`/`)",
		"Method(`GET`)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Walk: got %q, want %q", got, want)
	}
	rule.Walk(nil, func(rule.Expr) bool {
		t.Error("Walk(nil) called fn")
		return true
	})
}

func TestRequiredHosts(t *testing.T) {
	tests := []struct {
		rule string
		want []string // nil: no list; empty: no host at all
	}{
		{"Host(`example.com`)", []string{"example.com"}},
		{"Host(`Example.COM.`)", []string{"example.com"}},
		{"Host(`::1`)", []string{"::1"}},
		{"Host(`*.example.com`)", nil},
		{"Host(`**.example.com`)", nil},
		{"HostRegexp(`^a\\.com$`)", nil},
		{"Path(`/`)", nil},
		{"!Host(`a`)", nil},
		{"Host(`a`) && Path(`/`)", []string{"a"}},
		{"Path(`/`) && Host(`a`)", []string{"a"}},
		{"Host(`a`) && !Host(`b`)", []string{"a"}},
		{"Host(`a`) && Host(`b`)", []string{}},
		{"Host(`a`) && Host(`A.`)", []string{"a"}},
		{"(Host(`a`) || Host(`b`)) && Host(`b`)", []string{"b"}},
		{"(Host(`a`) || Host(`b`) || Host(`c`)) && (Host(`c`) || Host(`a`)) && Path(`/`)", []string{"a", "c"}},
		{"Host(`b`) || Host(`a`)", []string{"a", "b"}},
		{"Host(`a`) || Host(`b`) || Host(`a`)", []string{"a", "b"}},
		{"Host(`a`) || Path(`/`)", nil},
		{"Host(`a`) || Host(`*.b`)", nil},
		{"(Host(`a`) && Path(`/x`)) || (Host(`b`) && Method(`GET`))", []string{"a", "b"}},
		{"(Host(`a`) && Host(`b`)) || Host(`c`)", []string{"c"}},
		{"(Host(`a`) && Host(`b`)) || (Host(`c`) && Host(`d`))", []string{}},
		{"!(Host(`a`) || Host(`b`))", nil},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			e, err := rule.Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got := rule.RequiredHosts(e)
			if (got == nil) != (tt.want == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("RequiredHosts(%s): got %#v, want %#v", tt.rule, got, tt.want)
			}
		})
	}
	if got := rule.RequiredHosts(nil); got != nil {
		t.Errorf("rule.RequiredHosts(nil): got %#v, want nil", got)
	}
}
