package retryexpr

import (
	"strconv"
	"strings"
)

// State is what an expression is evaluated against: the outcome of the
// latest attempt at a request.
type State struct {
	// NetworkError is true when the attempt did not reach the server or
	// got no answer from it: IsNetworkError().
	NetworkError bool
	// Attempts made so far, 1 after the first: Attempts().
	Attempts int
	// ResponseCode of the attempt, the status tollgate answered with
	// when NetworkError is true: ResponseCode().
	ResponseCode int
	// Method of the request: RequestMethod().
	Method string
}

// Expr is a parsed expression. It is immutable and safe for concurrent
// use.
type Expr interface {
	// Eval reports whether the expression holds for s.
	Eval(s State) bool
	// String prints the expression in a canonical form, with single
	// spaces and only the parentheses precedence needs, that parses back
	// to the same Expr.
	String() string
}

// paren prints e, in parentheses when it is one of the given kinds of
// operations.
func paren(e Expr, or, and bool) string {
	switch e.(type) {
	case orExpr:
		if or {
			return "(" + e.String() + ")"
		}
	case andExpr:
		if and {
			return "(" + e.String() + ")"
		}
	}
	return e.String()
}

type orExpr struct{ l, r Expr }

func (c orExpr) Eval(s State) bool { return c.l.Eval(s) || c.r.Eval(s) }
func (c orExpr) String() string    { return c.l.String() + " || " + paren(c.r, true, false) }

type andExpr struct{ l, r Expr }

func (c andExpr) Eval(s State) bool { return c.l.Eval(s) && c.r.Eval(s) }
func (c andExpr) String() string    { return paren(c.l, true, false) + " && " + paren(c.r, true, true) }

type notExpr struct{ e Expr }

func (c notExpr) Eval(s State) bool { return !c.e.Eval(s) }
func (c notExpr) String() string    { return "!" + paren(c.e, true, true) }

type networkError struct{}

func (networkError) Eval(s State) bool { return s.NetworkError }
func (networkError) String() string    { return "IsNetworkError()" }

// kind is the type of an operand.
type kind int

const (
	kindNumber kind = iota
	kindString
)

// operand is one side of a comparison.
type operand struct {
	kind kind
	fn   string // "" for a constant
	num  float64
	str  string
}

func (o operand) number(s State) float64 {
	switch o.fn {
	case "Attempts":
		return float64(s.Attempts)
	case "ResponseCode":
		return float64(s.ResponseCode)
	}
	return o.num
}

func (o operand) text(s State) string {
	if o.fn == "RequestMethod" {
		return s.Method
	}
	return o.str
}

func (o operand) String() string {
	switch {
	case o.fn != "":
		return o.fn + "()"
	case o.kind == kindString:
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(o.str) + `"`
	}
	return strconv.FormatFloat(o.num, 'f', -1, 64)
}

type comparison struct {
	l, r operand
	op   string
}

func (c comparison) Eval(s State) bool {
	if c.l.kind == kindString {
		eq := c.l.text(s) == c.r.text(s)
		return eq == (c.op == "==")
	}
	a, b := c.l.number(s), c.r.number(s)
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

func (c comparison) String() string { return c.l.String() + " " + c.op + " " + c.r.String() }
