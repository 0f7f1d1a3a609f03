package breaker

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tollgate-proxy/tollgate/config/expr"
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

// Expr is a parsed expression, immutable and safe for concurrent use. Its
// Eval evaluates && and || left to right and stops early, so a metric on
// the right of a decided operand is not asked for. Its String prints a
// canonical form, with every && and || in parentheses, that parses back to
// the same Expr.
type Expr = expr.Expr[Metrics]

// Error is an expression that does not parse or whose metric arguments
// are out of range, such as "column 21: unexpected character '='".
type Error = expr.Error

// Parse parses a circuit breaker expression. It returns an *Error for an
// expression that does not parse, and checks the arguments of metrics: a
// ResponseCodeRatio's ranges, a LatencyAtQuantileMS's quantile.
func Parse(src string) (Expr, error) { return expr.Parse(&dialect, src) }

// dialect is the language of circuit breaker expressions: three metrics,
// no !, and every && and || printed in parentheses.
var dialect = expr.Dialect[Metrics]{
	Funcs: []expr.Func[Metrics]{
		{
			Name:   "NetworkErrorRatio",
			Number: func(m Metrics, _ []float64) float64 { return m.NetworkErrorRatio() },
		},
		{
			Name:   "ResponseCodeRatio",
			Params: []string{"from", "to", "dividendFrom", "dividendTo"},
			Check:  checkCodeRatio,
			Number: func(m Metrics, a []float64) float64 {
				return m.ResponseCodeRatio(int(a[0]), int(a[1]), int(a[2]), int(a[3]))
			},
		},
		{
			Name:   "LatencyAtQuantileMS",
			Params: []string{"quantile"},
			Check:  checkQuantile,
			Number: func(m Metrics, a []float64) float64 { return m.LatencyAtQuantileMS(a[0]) },
		},
	},
	ParenthesizeAll: true,
	Noun:            "metric",
}

// checkCodeRatio validates the arguments of ResponseCodeRatio.
func checkCodeRatio(args []float64) error {
	for i, a := range args {
		if a != math.Trunc(a) || a < 0 || a > 1000 {
			return fmt.Errorf("ResponseCodeRatio: argument %d (%s) is not a status code from 0 to 1000", i+1, formatNumber(a))
		}
	}
	if args[0] >= args[1] || args[2] >= args[3] {
		return fmt.Errorf("ResponseCodeRatio(from, to, dividendFrom, dividendTo): from must be below to and dividendFrom below dividendTo, as ranges are [from, to)")
	}
	return nil
}

// checkQuantile validates the argument of LatencyAtQuantileMS.
func checkQuantile(args []float64) error {
	if q := args[0]; q <= 0 || q > 100 {
		return fmt.Errorf("LatencyAtQuantileMS: quantile %s is not a percentage above 0 and at most 100", formatNumber(q))
	}
	return nil
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
