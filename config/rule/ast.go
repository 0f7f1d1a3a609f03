package rule

import (
	"strconv"
	"strings"
	"unicode"
)

// Expr is a parsed rule or part of one: *And, *Or, *Not or *Matcher. Its
// String method prints it in canonical syntax, which Parse reads back into
// an equal tree.
type Expr interface {
	String() string
	expr() // limits Expr to the types of this package
}

// And matches when both Left and Right match.
type And struct {
	Left, Right Expr
}

// Or matches when Left or Right matches.
type Or struct {
	Left, Right Expr
}

// Not matches when X does not.
type Not struct {
	X Expr
}

// Matcher is a call such as Host(`example.com`).
type Matcher struct {
	// Name is the matcher's documented name, such as "PathPrefix", however
	// the rule spelled it.
	Name string
	// Args are the values of the arguments, quotes removed and escapes
	// resolved. Parse has checked their number and validity.
	Args []string
	// Pos is the byte offset of the name in the rule, for messages about
	// this matcher; it is zero in trees not made by Parse.
	Pos int
}

func (*And) expr()     {}
func (*Or) expr()      {}
func (*Not) expr()     {}
func (*Matcher) expr() {}

// Binding strength of each node in the syntax, to print minimal parentheses.
const (
	precOr = iota + 1
	precAnd
	precUnary // ! and matchers
)

func prec(e Expr) int {
	switch e.(type) {
	case *Or:
		return precOr
	case *And:
		return precAnd
	}
	return precUnary
}

// String returns the canonical form of e, such as "Host(`a`) || Path(`/`)".
func (e *Or) String() string { return binary(e.Left, " || ", e.Right, precOr) }

// String returns the canonical form of e, such as "Host(`a`) && Path(`/`)".
func (e *And) String() string { return binary(e.Left, " && ", e.Right, precAnd) }

// String returns the canonical form of e, such as "!Path(`/`)".
func (e *Not) String() string { return "!" + operand(e.X, precUnary) }

// String returns the canonical form of m, such as
// "Header(`X-Env`, `prod`)". An argument is in backticks unless it contains
// a backtick or a character that is not printable (a tab, a line break, an
// invalid byte); then it is a double-quoted Go string.
func (m *Matcher) String() string {
	var b strings.Builder
	b.WriteString(m.Name)
	b.WriteByte('(')
	for i, a := range m.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(a))
	}
	b.WriteByte(')')
	return b.String()
}

// binary prints a left-associative operator: the right operand needs
// parentheses already at the operator's own strength.
func binary(left Expr, op string, right Expr, p int) string {
	return operand(left, p) + op + operand(right, p+1)
}

// operand prints e, in parentheses if it binds more loosely than p.
func operand(e Expr, p int) string {
	if e == nil {
		return "<nil>"
	}
	if prec(e) < p {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// quote returns v as a rule string: in backticks if it can be, else
// double-quoted with Go escapes.
func quote(v string) string {
	for _, r := range v {
		if r == '`' || r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return "`" + v + "`"
}
