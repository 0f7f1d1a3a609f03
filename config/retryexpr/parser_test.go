package retryexpr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var validCases = []struct {
	expr      string
	canonical string
	state     State
	want      bool
}{
	{"IsNetworkError() && Attempts() < 2", "IsNetworkError() && Attempts() < 2", State{NetworkError: true, Attempts: 1}, true},
	{"IsNetworkError() && Attempts() < 2", "IsNetworkError() && Attempts() < 2", State{NetworkError: true, Attempts: 2}, false},
	{"IsNetworkError() && Attempts() < 2", "IsNetworkError() && Attempts() < 2", State{Attempts: 1}, false},
	{"IsNetworkError()", "IsNetworkError()", State{NetworkError: true}, true},
	{"!IsNetworkError()", "!IsNetworkError()", State{NetworkError: true}, false},
	{"! (ResponseCode() >= 500 && ResponseCode() < 600)", "!(ResponseCode() >= 500 && ResponseCode() < 600)", State{ResponseCode: 503}, false},
	{"ResponseCode() == 503 || IsNetworkError()", "ResponseCode() == 503 || IsNetworkError()", State{ResponseCode: 503}, true},
	{`RequestMethod() == "GET" && Attempts() <= 3`, `RequestMethod() == "GET" && Attempts() <= 3`, State{Method: "GET", Attempts: 3}, true},
	{`"POST" != RequestMethod()`, `"POST" != RequestMethod()`, State{Method: "POST"}, false},
	{`RequestMethod() == "a\"b"`, `RequestMethod() == "a\"b"`, State{Method: `a"b`}, true},
	{"(IsNetworkError() || Attempts() > 1) && !(Attempts() > 2 && !IsNetworkError())", "(IsNetworkError() || Attempts() > 1) && !(Attempts() > 2 && !IsNetworkError())", State{Attempts: 2}, true},
	{"IsNetworkError() || (Attempts() > 1 || ResponseCode() > 1)", "IsNetworkError() || (Attempts() > 1 || ResponseCode() > 1)", State{Attempts: 2}, true},
	{"3 > Attempts()", "3 > Attempts()", State{Attempts: 2}, true},
	{"Attempts() != -1.5", "Attempts() != -1.5", State{}, true},
	{"IsNetworkError() || Attempts() > 1 && ResponseCode() == 502", "IsNetworkError() || Attempts() > 1 && ResponseCode() == 502", State{Attempts: 2, ResponseCode: 502}, true},
}

var invalidCases = []struct {
	expr string
	want string
}{
	{"", "column 1: expected a function such as Attempts(), a number or a quoted string, found the end of the expression"},
	{"IsNetworkError", "column 15: expected ( after IsNetworkError, found the end of the expression"},
	{"IsNetworkError() == 1", "column 18: IsNetworkError() is true or false"},
	{"Attempts()", "column 11: expected a comparison operator"},
	{"Attempts(1) < 2", "column 10: Attempts takes no arguments"},
	{"Foo() < 2", "column 1: unknown function Foo"},
	{"1 < 2", "column 1: a comparison needs a function"},
	{`RequestMethod() == 1`, `column 1: RequestMethod() and 1 cannot be compared`},
	{`Attempts() == "GET"`, `column 1: Attempts() and "GET" cannot be compared`},
	{`RequestMethod() < "GET"`, `column 17: methods compare with == or !=, found <`},
	{`RequestMethod() == "GET`, `column 20: the string has no closing "`},
	{"IsNetworkError() &&", "column 20: expected a function"},
	{"(IsNetworkError()", "column 18: expected ) or && or ||"},
	{"IsNetworkError() IsNetworkError()", "column 18: expected && or || or the end"},
	{"IsNetworkError() & Attempts() < 2", "column 18: unexpected character '&'"},
	{"Attempts() < 2.", "column 16: expected a digit after the decimal point"},
	{strings.Repeat("!", 65) + "IsNetworkError()", "column 65: parentheses and ! nested more than 64 deep"},
	{"Attempts() < 2 # é", "column 16: unexpected character '#'"},
}

func TestParse(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := e.String(); got != tc.canonical {
				t.Errorf("String() = %q, want %q", got, tc.canonical)
			}
			if got := e.Eval(tc.state); got != tc.want {
				t.Errorf("Eval(%+v) = %v, want %v", tc.state, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := Parse(tc.expr)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want it to start with %q", err, tc.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that its errors point inside
// the expression, and that a parsed expression prints to a form that
// parses back to the same print.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.expr)
	}
	for _, tc := range invalidCases {
		f.Add(tc.expr)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("%q: got error %T %v, want *Error", src, err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(src) || pe.Column != utf8.RuneCountInString(src[:pe.Offset])+1 {
				t.Fatalf("%q: got column %d at offset %d, want a column matching an offset inside the expression", src, pe.Column, pe.Offset)
			}
			return
		}
		again, err := Parse(e.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", src, e.String(), err)
		}
		if again.String() != e.String() {
			t.Fatalf("%q printed as %q, which prints as %q", src, e.String(), again.String())
		}
	})
}
