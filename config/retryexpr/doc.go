// Package retryexpr parses the expressions that decide whether a Buffering
// middleware sends a request again, such as
//
//	IsNetworkError() && Attempts() < 2
//
// Configuration validation parses every expression with Parse, so that a
// mistake is reported with its column before any replica serves it, and
// the router's Buffering middleware parses it with the same Parse.
//
// The language is package expr's; this package is its dialect of the
// state of a request's latest attempt.
//
// The grammar, with spaces, tabs and line breaks allowed between tokens:
//
//	expr       = and { "||" and }
//	and        = unary { "&&" unary }
//	unary      = "!" unary | "(" expr ")" | comparison | "IsNetworkError" "(" ")"
//	comparison = operand op operand     (at least one operand a function)
//	op         = ">" | "<" | ">=" | "<=" | "==" | "!="
//	operand    = number | string | function
//	function   = "Attempts" "(" ")" | "ResponseCode" "(" ")" | "RequestMethod" "(" ")"
//	number     = [ "-" ] digits [ "." digits ]
//	string     = '"' { any character but '"' and '\' | '\' any character } '"'
//
// Attempts and ResponseCode are numbers and compare with numbers;
// RequestMethod is a string and compares with a string, with == and !=
// only. ! binds tighter than &&, which binds tighter than ||; && and ||
// evaluate left to right and stop early. Parentheses and ! nest at most 64
// deep.
package retryexpr
