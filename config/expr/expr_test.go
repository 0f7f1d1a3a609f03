package expr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// env is what the test dialects evaluate against.
type env struct {
	set  map[float64]bool
	name string
	n    float64
}

// full has every feature at once: !, a true-or-false function with an
// argument, a string-valued function with arguments and a checked
// number-valued one. Neither package's dialect has them all.
var full = Dialect[env]{
	Funcs: []Func[env]{
		{Name: "Has", Params: []string{"item"}, Bool: func(e env, a []float64) bool { return e.set[a[0]] }},
		{Name: "Name", Params: []string{"part"}, Text: func(e env, a []float64) string { return fmt.Sprint(e.name, a[0]) }},
		{Name: "N", Number: func(e env, _ []float64) float64 { return e.n }},
		{
			Name: "Scaled", Params: []string{"by"}, Number: func(e env, a []float64) float64 { return e.n * a[0] },
			Check: func(a []float64) error {
				if a[0] == 0 {
					return errors.New("Scaled: by must not be 0")
				}
				return nil
			},
		},
	},
	Not:      true,
	Noun:     "function",
	Strings:  "names",
	Mismatch: "Name(part) compares with a quoted string, N() and Scaled(by) with numbers",
}

// bare has neither !, strings nor arguments, and prints every && and ||
// in parentheses.
var bare = Dialect[env]{
	Funcs: []Func[env]{
		{Name: "Set", Bool: func(e env, _ []float64) bool { return len(e.set) > 0 }},
		{Name: "N", Number: func(e env, _ []float64) float64 { return e.n }},
	},
	ParenthesizeAll: true,
	Noun:            "value",
}

func TestParse(t *testing.T) {
	e0 := env{set: map[float64]bool{3: true}, name: "x", n: 2}
	for _, tc := range []struct {
		d         *Dialect[env]
		src       string
		canonical string
		want      bool
	}{
		{&full, "Has(3) && !Has(4)", "Has(3) && !Has(4)", true},
		{&full, `Name(1) == "x1" || N() > 5 && Scaled(2) == 4`, `Name(1) == "x1" || N() > 5 && Scaled(2) == 4`, true},
		{&full, `(Name(1) != "x1" || N() > 5) && Scaled(-1.5) < 0`, `(Name(1) != "x1" || N() > 5) && Scaled(-1.5) < 0`, false},
		{&full, "!(Has(1) || Has(2))", "!(Has(1) || Has(2))", true},
		{&bare, "Set() && N() == 2 || N() < 1", "((Set() && N() == 2) || N() < 1)", true},
		{&bare, "((N() >= 3))", "N() >= 3", false},
	} {
		t.Run(tc.src, func(t *testing.T) {
			e, err := Parse(tc.d, tc.src)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := e.String(); got != tc.canonical {
				t.Errorf("got %q, want %q", got, tc.canonical)
			}
			if got := e.Eval(e0); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

var invalidCases = []struct {
	d    *Dialect[env]
	src  string
	want string
}{
	{&full, "", "column 1: expected a function such as Name(part), a number or a quoted string, found the end of the expression"},
	{&full, "Has(1) == 1", "column 8: Has(item) is true or false and compares with nothing; use it alone or with !"},
	{&full, "Has() || Has(1)", "column 5: Has takes 1 arguments, found 0"},
	{&full, "Scaled(0) > 1", "column 1: Scaled: by must not be 0"},
	{&full, "Foo() > 1", "column 1: unknown function Foo: expected Has, Name, N or Scaled"},
	{&full, "1 > 2", "column 1: a comparison needs a function: Name(part), N() or Scaled(by)"},
	{&full, `N() == "a"`, `column 1: N() and "a" cannot be compared: Name(part) compares with a quoted string, N() and Scaled(by) with numbers`},
	{&full, `Name(1) >= "a"`, "column 9: names compare with == or !=, found >="},
	{&bare, "", "column 1: expected a value such as N() or a number, found the end of the expression"},
	{&bare, "Set() != 1", "column 7: Set() is true or false and compares with nothing; use it alone"},
	{&bare, "!Set()", "column 1: unexpected character '!'"},
	{&bare, `N() == "a"`, `column 8: unexpected character '"'`},
	{&bare, "N(1) == 1", `column 3: N takes no arguments: expected ), found "1"`},
	{&bare, "N(,) == 1", "column 3: unexpected character ','"},
	{&bare, strings.Repeat("(", 65) + "Set()", "column 65: parentheses nested more than 64 deep"},
	{&full, strings.Repeat("!(", 33) + "Has(1)", "column 65: parentheses and ! nested more than 64 deep"},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.src, func(t *testing.T) {
			_, err := Parse(tc.d, tc.src)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParse checks, in both test dialects, that Parse never panics, that
// its errors point inside the expression, and that a parsed expression
// prints to a form that parses back to the same print and value.
func FuzzParse(f *testing.F) {
	for _, tc := range invalidCases {
		f.Add(tc.src)
	}
	f.Add(`!(Has(1) || Name(2) == "a\"") && Scaled(2) > N()`)
	f.Add("Set() && N() == 2 || N() < 1")
	f.Fuzz(func(t *testing.T, src string) {
		for _, d := range []*Dialect[env]{&full, &bare} {
			if msg := roundTrip(d, src); msg != "" {
				t.Fatalf("%q: %s", src, msg)
			}
		}
	})
}

// roundTrip parses src in d and says what is wrong with the outcome, or
// returns "".
func roundTrip(d *Dialect[env], src string) string {
	e, err := Parse(d, src)
	var pe *Error
	switch {
	case err != nil && !errors.As(err, &pe):
		return fmt.Sprintf("got error %T %v, want *Error", err, err)
	case err != nil && (pe.Offset < 0 || pe.Offset > len(src) || pe.Column != utf8.RuneCountInString(src[:pe.Offset])+1):
		return fmt.Sprintf("got column %d at offset %d, want one matching an offset inside the expression", pe.Column, pe.Offset)
	case err != nil:
		return ""
	}
	printed := e.String()
	again, err := Parse(d, printed)
	switch {
	case err != nil:
		return fmt.Sprintf("printed as %q, which does not parse: %v", printed, err)
	case again.String() != printed:
		return fmt.Sprintf("printed as %q, which prints as %q", printed, again.String())
	}
	for _, v := range []env{{}, {set: map[float64]bool{1: true}, name: "a", n: 3}} {
		if e.Eval(v) != again.Eval(v) {
			return fmt.Sprintf("printed as %q, which evaluates differently", printed)
		}
	}
	return ""
}
