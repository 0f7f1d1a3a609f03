package breaker

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of parentheses.
const maxDepth = 64

// Error is an expression that does not parse or whose metric arguments
// are out of range. Parse returns errors of this type only.
type Error struct {
	// Offset is the byte offset of the mistake in the expression.
	Offset int
	// Column is the 1-based column of the mistake, counted in runes.
	Column int
	// Msg says what was expected and what was found.
	Msg string
}

// Error returns the message with its column, such as
// "column 21: unexpected character '='".
func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Parse parses a circuit breaker expression. It returns an *Error for an
// expression that does not parse, and checks the arguments of metrics: a
// ResponseCodeRatio's ranges, a LatencyAtQuantileMS's quantile.
func Parse(src string) (Expr, error) {
	p := &parser{lx: lexer{src: src}}
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

type parser struct {
	lx  lexer
	tok token
	err error // from the lexer
}

func (p *parser) advance() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.next()
	if p.err != nil {
		p.tok = token{kind: tokError}
	}
}

func (p *parser) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return p.lx.errorAt(p.tok.pos, fmt.Sprintf(format, args...))
}

func (p *parser) parseOr(depth int) (Expr, error) {
	l, err := p.parseAnd(depth)
	for err == nil && p.tok.kind == tokOr {
		p.advance()
		var r Expr
		if r, err = p.parseAnd(depth); err == nil {
			l = orExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) parseAnd(depth int) (Expr, error) {
	l, err := p.parsePrimary(depth)
	for err == nil && p.tok.kind == tokAnd {
		p.advance()
		var r Expr
		if r, err = p.parsePrimary(depth); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) parsePrimary(depth int) (Expr, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.tok.kind != tokLParen {
		return p.parseComparison()
	}
	if depth >= maxDepth {
		return nil, p.errorf("parentheses nested more than %d deep", maxDepth)
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

func (p *parser) parseComparison() (Expr, error) {
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
	_, lnum := l.(number)
	_, rnum := r.(number)
	if lnum && rnum {
		return nil, p.lx.errorAt(start.pos, "a comparison needs a metric: NetworkErrorRatio(), ResponseCodeRatio(from, to, dividendFrom, dividendTo) or LatencyAtQuantileMS(quantile)")
	}
	return comparison{l: l, r: r, op: op}, nil
}

func (p *parser) parseOperand() (operand, error) {
	switch p.tok.kind {
	case tokNumber:
		n := p.tok.num
		p.advance()
		return number(n), p.err
	case tokIdent:
		return p.parseMetric()
	}
	return nil, p.errorf("expected a metric such as NetworkErrorRatio() or a number, found %s", p.tok)
}

// metricArity is the number of arguments of each metric.
var metricArity = map[string]int{"NetworkErrorRatio": 0, "ResponseCodeRatio": 4, "LatencyAtQuantileMS": 1}

func (p *parser) parseMetric() (operand, error) {
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
	c := metric{name: name.text, args: args}
	if err := c.check(); err != nil {
		return nil, p.lx.errorAt(name.pos, err.Error())
	}
	return c, p.err
}

// check validates the arguments of a metric.
func (c metric) check() error {
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

type tokenKind int

const (
	tokError tokenKind = iota // the lexer failed; parser.err says why
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

type token struct {
	kind tokenKind
	pos  int // byte offset
	text string
	num  float64
}

// String describes the token for error messages.
func (t token) String() string {
	if t.kind == tokEOF {
		return "the end of the expression"
	}
	return strconv.Quote(t.text)
}

// punctuation lists the tokens that are not names or numbers, longer
// ones before their prefixes.
var punctuation = [...]struct {
	text string
	kind tokenKind
}{
	{"(", tokLParen}, {")", tokRParen}, {",", tokComma},
	{">=", tokOp}, {"<=", tokOp}, {"==", tokOp}, {"!=", tokOp}, {">", tokOp}, {"<", tokOp},
	{"&&", tokAnd}, {"||", tokOr},
}

type lexer struct {
	src string
	pos int
}

// errorAt returns an *Error at byte offset off.
func (lx *lexer) errorAt(off int, msg string) *Error {
	return &Error{Offset: off, Column: utf8.RuneCountInString(lx.src[:off]) + 1, Msg: msg}
}

func (lx *lexer) next() (token, error) {
	for lx.pos < len(lx.src) && strings.IndexByte(" \t\r\n", lx.src[lx.pos]) >= 0 {
		lx.pos++
	}
	start := lx.pos
	if start == len(lx.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := lx.src[start]
	switch {
	case isLetter(c):
		for lx.pos < len(lx.src) && (isLetter(lx.src[lx.pos]) || isDigit(lx.src[lx.pos])) {
			lx.pos++
		}
		return token{kind: tokIdent, pos: start, text: lx.src[start:lx.pos]}, nil
	case isDigit(c) || c == '-':
		return lx.number()
	}
	for _, p := range punctuation {
		if strings.HasPrefix(lx.src[start:], p.text) {
			lx.pos += len(p.text)
			return token{kind: p.kind, pos: start, text: p.text}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(lx.src[start:])
	return token{}, lx.errorAt(start, fmt.Sprintf("unexpected character %q", r))
}

// number lexes [-]digits[.digits].
func (lx *lexer) number() (token, error) {
	start := lx.pos
	if lx.src[lx.pos] == '-' {
		lx.pos++
	}
	digits := func() int {
		n := 0
		for lx.pos < len(lx.src) && isDigit(lx.src[lx.pos]) {
			lx.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return token{}, lx.errorAt(lx.pos, "expected a digit")
	}
	if lx.pos < len(lx.src) && lx.src[lx.pos] == '.' {
		lx.pos++
		if digits() == 0 {
			return token{}, lx.errorAt(lx.pos, "expected a digit after the decimal point")
		}
	}
	text := lx.src[start:lx.pos]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, lx.errorAt(start, fmt.Sprintf("number %s is out of range", text))
	}
	return token{kind: tokNumber, pos: start, text: text, num: f}, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
