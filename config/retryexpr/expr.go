package retryexpr

import "github.com/tollgate-proxy/tollgate/config/expr"

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

// Expr is a parsed expression, immutable and safe for concurrent use. Its
// Eval reports whether it holds for a State; its String prints a canonical
// form, with single spaces and only the parentheses precedence needs, that
// parses back to the same Expr.
type Expr = expr.Expr[State]

// Error is an expression that does not parse, such as
// "column 5: unknown function Foo".
type Error = expr.Error

// Parse parses a retry expression. It returns an *Error for an expression
// that does not parse or compares values of different types.
func Parse(src string) (Expr, error) { return expr.Parse(&dialect, src) }

// dialect is the language of retry expressions: a true-or-false function,
// two numbers and a string, with !, printed with the parentheses
// precedence needs.
var dialect = expr.Dialect[State]{
	Funcs: []expr.Func[State]{
		{Name: "IsNetworkError", Bool: func(s State, _ []float64) bool { return s.NetworkError }},
		{Name: "Attempts", Number: func(s State, _ []float64) float64 { return float64(s.Attempts) }},
		{Name: "ResponseCode", Number: func(s State, _ []float64) float64 { return float64(s.ResponseCode) }},
		{Name: "RequestMethod", Text: func(s State, _ []float64) string { return s.Method }},
	},
	Not:      true,
	Noun:     "function",
	Strings:  "methods",
	Mismatch: `RequestMethod() compares with a quoted method such as "GET", Attempts() and ResponseCode() with numbers`,
}
