package middleware

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file parses circuit breaker expressions, the language of oxy's
// cbreaker that Traefik uses:
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

// maxExprDepth bounds the nesting of parentheses.
const maxExprDepth = 64

// breakerMetrics is what an expression is evaluated against.
type breakerMetrics interface {
	// networkErrorRatio is the share of requests answered 502 or 504.
	networkErrorRatio() float64
	// responseCodeRatio is the count of statuses in [from, to) divided
	// by the count in [dividendFrom, dividendTo), or 0 when the latter
	// is 0.
	responseCodeRatio(from, to, dividendFrom, dividendTo int) float64
	// latencyAtQuantileMS is the latency in milliseconds below which q
	// percent of requests completed.
	latencyAtQuantileMS(q float64) float64
}

// exprCond is a parsed expression.
type exprCond interface {
	eval(m breakerMetrics) bool
	String() string
}

// exprOperand is one side of a comparison.
type exprOperand interface {
	value(m breakerMetrics) float64
	String() string
}

type exprOr struct{ l, r exprCond }

func (c exprOr) eval(m breakerMetrics) bool { return c.l.eval(m) || c.r.eval(m) }
func (c exprOr) String() string             { return "(" + c.l.String() + " || " + c.r.String() + ")" }

type exprAnd struct{ l, r exprCond }

func (c exprAnd) eval(m breakerMetrics) bool { return c.l.eval(m) && c.r.eval(m) }
func (c exprAnd) String() string             { return "(" + c.l.String() + " && " + c.r.String() + ")" }

type exprComparison struct {
	l, r exprOperand
	op   string
}

func (c exprComparison) eval(m breakerMetrics) bool {
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

func (c exprComparison) String() string { return c.l.String() + " " + c.op + " " + c.r.String() }

type exprNumber float64

func (n exprNumber) value(breakerMetrics) float64 { return float64(n) }
func (n exprNumber) String() string               { return formatNumber(float64(n)) }

type exprMetric struct {
	name string
	args []float64
}

func (c exprMetric) value(m breakerMetrics) float64 {
	switch c.name {
	case "NetworkErrorRatio":
		return m.networkErrorRatio()
	case "ResponseCodeRatio":
		return m.responseCodeRatio(int(c.args[0]), int(c.args[1]), int(c.args[2]), int(c.args[3]))
	default: // "LatencyAtQuantileMS"
		return m.latencyAtQuantileMS(c.args[0])
	}
}

func (c exprMetric) String() string {
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = formatNumber(a)
	}
	return c.name + "(" + strings.Join(args, ", ") + ")"
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// exprError is a syntax error at a column, counted in characters from 1.
type exprError struct {
	col int
	msg string
}

func (e *exprError) Error() string { return fmt.Sprintf("column %d: %s", e.col, e.msg) }

// parseExpression parses a circuit breaker expression.
func parseExpression(src string) (exprCond, error) {
	p := &exprParser{lx: exprLexer{src: src}}
	p.advance()
	c, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("expected && or || or the end of the expression, found %s", p.tok)
	}
	return c, nil
}

type exprParser struct {
	lx  exprLexer
	tok exprToken
	err error // from the lexer
}

func (p *exprParser) advance() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.next()
	if p.err != nil {
		p.tok = exprToken{kind: tokError}
	}
}

func (p *exprParser) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &exprError{col: p.lx.col(p.tok.pos), msg: fmt.Sprintf(format, args...)}
}

func (p *exprParser) parseOr(depth int) (exprCond, error) {
	l, err := p.parseAnd(depth)
	for err == nil && p.tok.kind == tokOr {
		p.advance()
		var r exprCond
		if r, err = p.parseAnd(depth); err == nil {
			l = exprOr{l, r}
		}
	}
	return l, err
}

func (p *exprParser) parseAnd(depth int) (exprCond, error) {
	l, err := p.parsePrimary(depth)
	for err == nil && p.tok.kind == tokAnd {
		p.advance()
		var r exprCond
		if r, err = p.parsePrimary(depth); err == nil {
			l = exprAnd{l, r}
		}
	}
	return l, err
}

func (p *exprParser) parsePrimary(depth int) (exprCond, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.tok.kind != tokLParen {
		return p.parseComparison()
	}
	if depth >= maxExprDepth {
		return nil, p.errorf("parentheses nested more than %d deep", maxExprDepth)
	}
	p.advance()
	c, err := p.parseOr(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		return nil, p.errorf("expected ) or && or ||, found %s", p.tok)
	}
	p.advance()
	return c, nil
}

func (p *exprParser) parseComparison() (exprCond, error) {
	start := p.tok
	l, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokOp {
		return nil, p.errorf("expected a comparison operator (>, <, >=, <=, ==, !=), found %s", p.tok)
	}
	op := p.tok.text
	p.advance()
	r, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	_, lnum := l.(exprNumber)
	_, rnum := r.(exprNumber)
	if lnum && rnum {
		return nil, &exprError{col: p.lx.col(start.pos), msg: "a comparison needs a metric: NetworkErrorRatio(), ResponseCodeRatio(from, to, dividendFrom, dividendTo) or LatencyAtQuantileMS(quantile)"}
	}
	return exprComparison{l: l, r: r, op: op}, nil
}

func (p *exprParser) parseOperand() (exprOperand, error) {
	switch p.tok.kind {
	case tokNumber:
		n := p.tok.num
		p.advance()
		return exprNumber(n), p.err
	case tokIdent:
		return p.parseMetric()
	}
	return nil, p.errorf("expected a metric such as NetworkErrorRatio() or a number, found %s", p.tok)
}

// metricArity is the number of arguments of each metric.
var metricArity = map[string]int{"NetworkErrorRatio": 0, "ResponseCodeRatio": 4, "LatencyAtQuantileMS": 1}

func (p *exprParser) parseMetric() (exprOperand, error) {
	name := p.tok
	arity, ok := metricArity[name.text]
	if !ok {
		return nil, p.errorf("unknown function %s: expected NetworkErrorRatio, ResponseCodeRatio or LatencyAtQuantileMS", name.text)
	}
	p.advance()
	if p.tok.kind != tokLParen {
		return nil, p.errorf("expected ( after %s, found %s", name.text, p.tok)
	}
	p.advance()
	var args []float64
	for p.tok.kind != tokRParen {
		if len(args) > 0 {
			if p.tok.kind != tokComma {
				return nil, p.errorf("expected , or ) in the arguments of %s, found %s", name.text, p.tok)
			}
			p.advance()
		}
		if p.tok.kind != tokNumber {
			return nil, p.errorf("expected a number as argument %d of %s, found %s", len(args)+1, name.text, p.tok)
		}
		args = append(args, p.tok.num)
		p.advance()
	}
	if len(args) != arity {
		return nil, p.errorf("%s takes %d arguments, found %d", name.text, arity, len(args))
	}
	p.advance()
	c := exprMetric{name: name.text, args: args}
	if err := c.check(); err != nil {
		return nil, &exprError{col: p.lx.col(name.pos), msg: err.Error()}
	}
	return c, p.err
}

// check validates the arguments of a metric.
func (c exprMetric) check() error {
	switch c.name {
	case "ResponseCodeRatio":
		for i, a := range c.args {
			if a != math.Trunc(a) || a < 0 || a > 1000 {
				return fmt.Errorf("ResponseCodeRatio: argument %d (%s) is not a status code from 0 to 1000", i+1, formatNumber(a))
			}
		}
		if c.args[0] >= c.args[1] || c.args[2] >= c.args[3] {
			return fmt.Errorf("ResponseCodeRatio(from, to, dividendFrom, dividendTo): from must be below to and dividendFrom below dividendTo, as ranges are [from, to)")
		}
	case "LatencyAtQuantileMS":
		if q := c.args[0]; q <= 0 || q > 100 {
			return fmt.Errorf("LatencyAtQuantileMS: quantile %s is not a percentage above 0 and at most 100", formatNumber(q))
		}
	}
	return nil
}

type exprTokenKind int

const (
	tokError exprTokenKind = iota // the lexer failed; exprParser.err says why
	tokEOF
	tokIdent
	tokNumber
	tokLParen
	tokRParen
	tokComma
	tokOp
	tokAnd
	tokOr
)

type exprToken struct {
	kind exprTokenKind
	pos  int // byte offset
	text string
	num  float64
}

// String describes the token for error messages.
func (t exprToken) String() string {
	if t.kind == tokEOF {
		return "the end of the expression"
	}
	return strconv.Quote(t.text)
}

// exprPunctuation lists the tokens that are not names or numbers, longer
// ones before their prefixes.
var exprPunctuation = [...]struct {
	text string
	kind exprTokenKind
}{
	{"(", tokLParen}, {")", tokRParen}, {",", tokComma},
	{">=", tokOp}, {"<=", tokOp}, {"==", tokOp}, {"!=", tokOp}, {">", tokOp}, {"<", tokOp},
	{"&&", tokAnd}, {"||", tokOr},
}

type exprLexer struct {
	src string
	pos int
}

// col turns a byte offset into a column counted in characters from 1.
func (lx *exprLexer) col(off int) int { return utf8.RuneCountInString(lx.src[:off]) + 1 }

func (lx *exprLexer) next() (exprToken, error) {
	for lx.pos < len(lx.src) && strings.IndexByte(" \t\r\n", lx.src[lx.pos]) >= 0 {
		lx.pos++
	}
	start := lx.pos
	if start == len(lx.src) {
		return exprToken{kind: tokEOF, pos: start}, nil
	}
	c := lx.src[start]
	switch {
	case exprIsLetter(c):
		for lx.pos < len(lx.src) && (exprIsLetter(lx.src[lx.pos]) || exprIsDigit(lx.src[lx.pos])) {
			lx.pos++
		}
		return exprToken{kind: tokIdent, pos: start, text: lx.src[start:lx.pos]}, nil
	case exprIsDigit(c) || c == '-':
		return lx.number()
	}
	for _, p := range exprPunctuation {
		if strings.HasPrefix(lx.src[start:], p.text) {
			lx.pos += len(p.text)
			return exprToken{kind: p.kind, pos: start, text: p.text}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(lx.src[start:])
	return exprToken{}, &exprError{col: lx.col(start), msg: fmt.Sprintf("unexpected character %q", r)}
}

// number lexes [-]digits[.digits].
func (lx *exprLexer) number() (exprToken, error) {
	start := lx.pos
	if lx.src[lx.pos] == '-' {
		lx.pos++
	}
	digits := func() int {
		n := 0
		for lx.pos < len(lx.src) && exprIsDigit(lx.src[lx.pos]) {
			lx.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return exprToken{}, &exprError{col: lx.col(lx.pos), msg: "expected a digit"}
	}
	if lx.pos < len(lx.src) && lx.src[lx.pos] == '.' {
		lx.pos++
		if digits() == 0 {
			return exprToken{}, &exprError{col: lx.col(lx.pos), msg: "expected a digit after the decimal point"}
		}
	}
	text := lx.src[start:lx.pos]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return exprToken{}, &exprError{col: lx.col(start), msg: fmt.Sprintf("number %s is out of range", text)}
	}
	return exprToken{kind: tokNumber, pos: start, text: text, num: f}, nil
}

func exprIsLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func exprIsDigit(c byte) bool  { return c >= '0' && c <= '9' }
