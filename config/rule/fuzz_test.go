package rule_test

import (
	"errors"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// FuzzParse checks that Parse never panics, fails only with *rule.Error
// pointing into the rule, and that every rule it accepts prints in a
// canonical form that parses back to the same tree and prints the same.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.rule)
	}
	for _, tc := range badCases {
		f.Add(tc.rule)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := rule.Parse(s)
		if err != nil {
			var re *rule.Error
			if !errors.As(err, &re) {
				t.Fatalf("Parse(%q): got %T %v, want *rule.Error", s, err, err)
			}
			if re.Offset < 0 || re.Offset > len(s) || re.Column < 1 || re.Column > re.Offset+1 {
				t.Fatalf("Parse(%q): offset %d, column %d out of range", s, re.Offset, re.Column)
			}
			return
		}
		canon := e.String()
		if len(canon) > rule.MaxRuleBytes {
			// The canonical form spaces operators and may quote strings
			// the rule did not, so a rule near the limit can outgrow it.
			return
		}
		again, err := rule.Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its canonical form %q fails: %v", s, canon, err)
		}
		if !equal(again, e) {
			t.Fatalf("Parse(%q): canonical form %q parses to %#v, want %#v", s, canon, again, e)
		}
		if got := again.String(); got != canon {
			t.Fatalf("Parse(%q): canonical form %q prints as %q", s, canon, got)
		}
		rule.Hosts(e)
	})
}
