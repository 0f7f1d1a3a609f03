package breaker

import (
	"strconv"
	"strings"
)

// Metrics is what an expression is evaluated against: the measurements of
// the requests a circuit breaker let through.
type Metrics interface {
	// NetworkErrorRatio is the share of requests answered 502 or 504.
	NetworkErrorRatio() float64
	// ResponseCodeRatio is the count of statuses in [from, to) divided
	// by the count in [dividendFrom, dividendTo), or 0 when the latter
	// is 0.
	ResponseCodeRatio(from, to, dividendFrom, dividendTo int) float64
	// LatencyAtQuantileMS is the latency in milliseconds below which q
	// percent of requests completed.
	LatencyAtQuantileMS(q float64) float64
}

// Expr is a parsed expression. It is immutable and safe for concurrent
// use.
type Expr interface {
	// Eval reports whether the expression holds for m. && and ||
	// evaluate left to right and stop early, so a metric on the right
	// of a decided operand is not asked for.
	Eval(m Metrics) bool
	// String prints the expression in a canonical form, with every
	// && and || in parentheses, that parses back to the same Expr.
	String() string
}

// operand is one side of a comparison.
type operand interface {
	value(m Metrics) float64
	String() string
}

type orExpr struct{ l, r Expr }

func (c orExpr) Eval(m Metrics) bool { return c.l.Eval(m) || c.r.Eval(m) }
func (c orExpr) String() string      { return "(" + c.l.String() + " || " + c.r.String() + ")" }

type andExpr struct{ l, r Expr }

func (c andExpr) Eval(m Metrics) bool { return c.l.Eval(m) && c.r.Eval(m) }
func (c andExpr) String() string      { return "(" + c.l.String() + " && " + c.r.String() + ")" }

type comparison struct {
	l, r operand
	op   string
}

func (c comparison) Eval(m Metrics) bool {
	a, b := c.l.value(m), c.r.value(m)
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

type number float64

func (n number) value(Metrics) float64 { return float64(n) }
func (n number) String() string        { return formatNumber(float64(n)) }

type metric struct {
	name string
	args []float64
}

func (c metric) value(m Metrics) float64 {
	switch c.name {
	case "NetworkErrorRatio":
		return m.NetworkErrorRatio()
	case "ResponseCodeRatio":
		return m.ResponseCodeRatio(int(c.args[0]), int(c.args[1]), int(c.args[2]), int(c.args[3]))
	default: // "LatencyAtQuantileMS"
		return m.LatencyAtQuantileMS(c.args[0])
	}
}

func (c metric) String() string {
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = formatNumber(a)
	}
	return c.name + "(" + strings.Join(args, ", ") + ")"
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
