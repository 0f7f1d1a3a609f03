// Package breaker parses the expressions that open a circuit breaker, in
// the language of oxy's cbreaker that Traefik uses, such as
//
//	NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(99) > 800
//
// Configuration validation parses every expression with Parse, so that a
// mistake is reported with its column before any replica serves it, and the
// router's circuit breaker parses it with the same Parse.
//
// The language is package expr's; this package is its dialect of metrics.
//
// The grammar, with spaces, tabs and line breaks allowed between tokens:
//
//	expr       = and { "||" and }
//	and        = primary { "&&" primary }
//	primary    = "(" expr ")" | comparison
//	comparison = operand op operand     (at least one operand a metric)
//	op         = ">" | "<" | ">=" | "<=" | "==" | "!="
//	operand    = number | metric
//	metric     = "NetworkErrorRatio" "(" ")"
//	           | "ResponseCodeRatio" "(" int "," int "," int "," int ")"
//	           | "LatencyAtQuantileMS" "(" number ")"
//	number     = [ "-" ] digits [ "." digits ]
//
// && binds tighter than ||; both evaluate left to right and stop early.
// Parentheses nest at most 64 deep.
package breaker
