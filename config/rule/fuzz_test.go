package rule_test

import (
	"errors"
	"testing"

	"github.com/tollgate-proxy/tollgate/config/rule"
)

// FuzzParse checks that Parse and ParseTCP never panic, fail only with
// *rule.Error pointing into the rule, and that every rule they accept
// prints in a canonical form that parses back to the same tree and prints
// the same.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.rule)
	}
	for _, tc := range badCases {
		f.Add(tc.rule)
	}
	for _, tc := range validTCPCases {
		f.Add(tc.rule)
	}
	for _, tc := range badTCPCases {
		f.Add(tc.rule)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e := roundTrip(t, "Parse", rule.Parse, s); e != nil {
			rule.Hosts(e)
			rule.RequiredHosts(e)
		}
		if e := roundTrip(t, "ParseTCP", rule.ParseTCP, s); e != nil {
			rule.ServerNames(e)
			rule.RequiredHosts(e)
			rule.MatchesWithoutTLS(e)
		}
	})
}

// roundTrip parses s with parse, called name in messages, checks the
// error or the canonical form, and returns the tree or nil.
func roundTrip(t *testing.T, name string, parse func(string) (rule.Expr, error), s string) rule.Expr {
	t.Helper()
	e, err := parse(s)
	if err != nil {
		var re *rule.Error
		if !errors.As(err, &re) {
			t.Fatalf("%s(%q): got %T %v, want *rule.Error", name, s, err, err)
		}
		if re.Offset < 0 || re.Offset > len(s) || re.Column < 1 || re.Column > re.Offset+1 {
			t.Fatalf("%s(%q): offset %d, column %d out of range", name, s, re.Offset, re.Column)
		}
		return nil
	}
	canon := e.String()
	if len(canon) > rule.MaxRuleBytes {
		// The canonical form spaces operators and may quote strings the
		// rule did not, so a rule near the limit can outgrow it.
		return e
	}
	again, err := parse(canon)
	if err != nil {
		t.Fatalf("%s(%q) accepted, but its canonical form %q fails: %v", name, s, canon, err)
	}
	if !equal(again, e) {
		t.Fatalf("%s(%q): canonical form %q parses to %#v, want %#v", name, s, canon, again, e)
	}
	if got := again.String(); got != canon {
		t.Fatalf("%s(%q): canonical form %q prints as %q", name, s, canon, got)
	}
	return e
}
