package expr

import (
	"strconv"
	"strings"
)

// Dialect is one use of the language: its functions, evaluated against an
// environment E, and the choices in which such uses differ. A Dialect is
// read only by Parse and the expressions it returns; it must not change
// once used.
type Dialect[E any] struct {
	// Funcs are the functions, in the order error messages list them.
	Funcs []Func[E]
	// Not enables the ! operator.
	Not bool
	// ParenthesizeAll makes String put every && and || in parentheses;
	// when false, String prints only the parentheses precedence needs.
	ParenthesizeAll bool
	// Noun names a function that compares in error messages, such as
	// "metric" or "function".
	Noun string
	// Strings names the values of string-valued functions, plural, in the
	// message for an ordering operator on them, such as "methods". Unused
	// without a string-valued function.
	Strings string
	// Mismatch ends the message for a comparison of a number with a
	// string: it says which functions compare with what. Unused without a
	// string-valued function.
	Mismatch string
}

// Func is a function of a dialect. Exactly one of Number, Text and Bool
// is set; it gives the function's result type and evaluates it. Its
// arguments are numbers; they are constants, checked by Check at parse
// time.
type Func[E any] struct {
	// Name is what an expression calls the function by.
	Name string
	// Params names the arguments, for error messages; their count is
	// the number of arguments the function takes.
	Params []string
	// Check validates the arguments; nil accepts any. Its error's text
	// becomes the message of an *Error at the function's name.
	Check func(args []float64) error

	// Number evaluates a number-valued function.
	Number func(env E, args []float64) float64
	// Text evaluates a string-valued function.
	Text func(env E, args []float64) string
	// Bool evaluates a true-or-false function, which stands alone as an
	// operand of &&, || and ! and never compares.
	Bool func(env E, args []float64) bool
}

// signature prints the function with its parameter names, such as
// "LatencyAtQuantileMS(quantile)".
func (f *Func[E]) signature() string { return f.Name + "(" + strings.Join(f.Params, ", ") + ")" }

// Expr is a parsed expression. It is immutable and safe for concurrent
// use.
type Expr[E any] interface {
	// Eval reports whether the expression holds for env. && and ||
	// evaluate left to right and stop early, so a function on the right
	// of a decided operand is not evaluated.
	Eval(env E) bool
	// String prints the expression in its dialect's canonical form, with
	// single spaces, that parses back to the same Expr.
	String() string
}

// binary is a && or a ||.
type binary[E any] struct {
	l, r Expr[E]
	or   bool
	all  bool // Dialect.ParenthesizeAll
}

func (b binary[E]) Eval(env E) bool {
	if b.or {
		return b.l.Eval(env) || b.r.Eval(env)
	}
	return b.l.Eval(env) && b.r.Eval(env)
}

func (b binary[E]) String() string {
	if b.all {
		return "(" + b.l.String() + " " + b.op() + " " + b.r.String() + ")"
	}
	// || is associative and left-nested by the parser: only a || on the
	// right needs parentheses. && needs them around any ||, and around a
	// && on its right.
	return paren(b.l, !b.or, false) + " " + b.op() + " " + paren(b.r, true, !b.or)
}

func (b binary[E]) op() string {
	if b.or {
		return "||"
	}
	return "&&"
}

// paren prints e, in parentheses when it is a || and or is set or a &&
// and and is set. Only a dialect that prints minimal parentheses calls it.
func paren[E any](e Expr[E], or, and bool) string {
	if b, ok := e.(binary[E]); ok && (b.or && or || !b.or && and) {
		return "(" + e.String() + ")"
	}
	return e.String()
}

type not[E any] struct{ e Expr[E] }

func (n not[E]) Eval(env E) bool { return !n.e.Eval(env) }
func (n not[E]) String() string  { return "!" + paren(n.e, true, true) }

// call is a function with its arguments, a Bool one standing alone or
// any as an operand of a comparison.
type call[E any] struct {
	f    *Func[E]
	args []float64
}

func (c call[E]) Eval(env E) bool { return c.f.Bool(env, c.args) }

func (c call[E]) String() string {
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = formatNumber(a)
	}
	return c.f.Name + "(" + strings.Join(args, ", ") + ")"
}

// operand is one side of a comparison: a call or a constant.
type operand[E any] struct {
	call *call[E] // nil for a constant
	str  bool     // a string rather than a number
	num  float64
	text string
}

func (o operand[E]) number(env E) float64 {
	if o.call != nil {
		return o.call.f.Number(env, o.call.args)
	}
	return o.num
}

func (o operand[E]) string(env E) string {
	if o.call != nil {
		return o.call.f.Text(env, o.call.args)
	}
	return o.text
}

func (o operand[E]) String() string {
	switch {
	case o.call != nil:
		return o.call.String()
	case o.str:
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(o.text) + `"`
	}
	return formatNumber(o.num)
}

type comparison[E any] struct {
	l, r operand[E]
	op   string
}

func (c comparison[E]) Eval(env E) bool {
	if c.l.str {
		eq := c.l.string(env) == c.r.string(env)
		return eq == (c.op == "==")
	}
	a, b := c.l.number(env), c.r.number(env)
	switch c.op {
	case ">":
		return a > b
	case "<":
		return a < b
	case ">=":
		return a >= b
	case "<=":
		return a <= b
	case "==":
		return a == b
	default: // "!="
		return a != b
	}
}

func (c comparison[E]) String() string { return c.l.String() + " " + c.op + " " + c.r.String() }

// formatNumber prints f in the shortest form that parses back to it.
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
