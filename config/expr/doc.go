// Package expr parses the small boolean expression language that
// circuit breakers (package breaker) and retries (package retryexpr) are
// configured with, such as
//
//	NetworkErrorRatio() > 0.5 || ResponseCodeRatio(500, 600, 0, 600) > 0.25
//
// The language is the same for both; what differs is a Dialect: the
// functions it offers (their names, number arguments, result type and how
// they are evaluated against an environment E), whether it has !, how it
// prints, and a few words of its error messages. The packages that own a
// dialect document its grammar.
//
// The grammar, with spaces, tabs and line breaks allowed between tokens:
//
//	expr       = and { "||" and }
//	and        = unary { "&&" unary }
//	unary      = "!" unary | "(" expr ")" | call | comparison
//	comparison = operand op operand     (at least one operand a call)
//	op         = ">" | "<" | ">=" | "<=" | "==" | "!="
//	operand    = number | string | call
//	call       = name "(" [ number { "," number } ] ")"
//	number     = [ "-" ] digits [ "." digits ]
//	string     = '"' { any character but '"' and '\' | '\' any character } '"'
//
// "!" exists only in a dialect that enables it, a string only in one with
// a string-valued function, "," only in one with a function that takes
// arguments; elsewhere they are unexpected characters. A call in unary
// position must be to a true-or-false function, and those never compare.
// Numbers compare with numbers by any op, strings with strings by == and
// != only. ! binds tighter than &&, which binds tighter than ||; && and ||
// evaluate left to right and stop early. Parentheses and ! nest at most 64
// deep.
package expr
