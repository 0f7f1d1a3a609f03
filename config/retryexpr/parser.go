package retryexpr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of parentheses and !.
const maxDepth = 64

// Error is an expression that does not parse. Parse returns errors of this
// type only.
type Error struct {
	// Offset is the byte offset of the mistake in the expression.
	Offset int
	// Column is the 1-based column of the mistake, counted in runes.
	Column int
	// Msg says what was expected and what was found.
	Msg string
}

// Error returns the message with its column, such as
// "column 5: unknown function Foo".
func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Parse parses a retry expression. It returns an *Error for an expression
// that does not parse or compares values of different types.
func Parse(src string) (Expr, error) {
	p := &parser{lx: lexer{src: src}}
	p.advance()
	e, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("expected && or || or the end of the expression, found %s", p.tok)
	}
	return e, nil
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
	l, err := p.parseUnary(depth)
	for err == nil && p.tok.kind == tokAnd {
		p.advance()
		var r Expr
		if r, err = p.parseUnary(depth); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) parseUnary(depth int) (Expr, error) {
	if p.err != nil {
		return nil, p.err
	}
	switch p.tok.kind {
	case tokNot, tokLParen:
		if depth >= maxDepth {
			return nil, p.errorf("parentheses and ! nested more than %d deep", maxDepth)
		}
	}
	switch p.tok.kind {
	case tokNot:
		p.advance()
		e, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	case tokLParen:
		p.advance()
		e, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.errorf("expected ) or && or ||, found %s", p.tok)
		}
		p.advance()
		return e, nil
	case tokIdent:
		if p.tok.text == "IsNetworkError" {
			if err := p.parseCall(); err != nil {
				return nil, err
			}
			if p.tok.kind == tokOp {
				return nil, p.errorf("IsNetworkError() is true or false and compares with nothing; use it alone or with !")
			}
			return networkError{}, nil
		}
	}
	return p.parseComparison()
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
	op := p.tok
	p.advance()
	r, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	switch {
	case l.fn == "" && r.fn == "":
		return nil, p.lx.errorAt(start.pos, "a comparison needs a function: Attempts(), ResponseCode() or RequestMethod()")
	case l.kind != r.kind:
		return nil, p.lx.errorAt(start.pos, fmt.Sprintf("%s and %s cannot be compared: RequestMethod() compares with a quoted method such as \"GET\", Attempts() and ResponseCode() with numbers", l, r))
	case l.kind == kindString && op.text != "==" && op.text != "!=":
		return nil, p.lx.errorAt(op.pos, fmt.Sprintf("methods compare with == or !=, found %s", op.text))
	}
	return comparison{l: l, r: r, op: op.text}, nil
}

// functions lists the functions that may be compared, by result kind.
var functions = map[string]kind{"Attempts": kindNumber, "ResponseCode": kindNumber, "RequestMethod": kindString}

func (p *parser) parseOperand() (operand, error) {
	switch p.tok.kind {
	case tokNumber:
		o := operand{kind: kindNumber, num: p.tok.num}
		p.advance()
		return o, p.err
	case tokString:
		o := operand{kind: kindString, str: p.tok.str}
		p.advance()
		return o, p.err
	case tokIdent:
		name := p.tok.text
		k, ok := functions[name]
		if !ok {
			if name == "IsNetworkError" {
				return operand{}, p.errorf("IsNetworkError() is true or false and compares with nothing; use it alone or with !")
			}
			return operand{}, p.errorf("unknown function %s: expected IsNetworkError, Attempts, ResponseCode or RequestMethod", name)
		}
		if err := p.parseCall(); err != nil {
			return operand{}, err
		}
		return operand{kind: k, fn: name}, nil
	}
	return operand{}, p.errorf("expected a function such as Attempts(), a number or a quoted string, found %s", p.tok)
}

// parseCall consumes a function name and its empty argument list.
func (p *parser) parseCall() error {
	name := p.tok.text
	p.advance()
	if p.tok.kind != tokLParen {
		return p.errorf("expected ( after %s, found %s", name, p.tok)
	}
	p.advance()
	if p.tok.kind != tokRParen {
		return p.errorf("%s takes no arguments: expected ), found %s", name, p.tok)
	}
	p.advance()
	return p.err
}

type tokenKind int

const (
	tokError tokenKind = iota // the lexer failed; parser.err says why
	tokEOF
	tokIdent
	tokNumber
	tokString
	tokLParen
	tokRParen
	tokOp
	tokNot
	tokAnd
	tokOr
)

type token struct {
	kind tokenKind
	pos  int // byte offset
	text string
	num  float64
	str  string // the value of a string
}

// String describes the token for error messages.
func (t token) String() string {
	if t.kind == tokEOF {
		return "the end of the expression"
	}
	return strconv.Quote(t.text)
}

// punctuation lists the tokens that are not names, numbers or strings,
// longer ones before their prefixes.
var punctuation = [...]struct {
	text string
	kind tokenKind
}{
	{"(", tokLParen}, {")", tokRParen},
	{">=", tokOp}, {"<=", tokOp}, {"==", tokOp}, {"!=", tokOp}, {">", tokOp}, {"<", tokOp},
	{"&&", tokAnd}, {"||", tokOr}, {"!", tokNot},
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
	case c == '"':
		return lx.string()
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

// string lexes a double-quoted string in which \ escapes the next
// character.
func (lx *lexer) string() (token, error) {
	start := lx.pos
	var b strings.Builder
	for i := start + 1; i < len(lx.src); i++ {
		switch lx.src[i] {
		case '"':
			lx.pos = i + 1
			return token{kind: tokString, pos: start, text: lx.src[start:lx.pos], str: b.String()}, nil
		case '\\':
			i++
			if i == len(lx.src) {
				return token{}, lx.errorAt(start, "the string has no closing \"")
			}
		}
		b.WriteByte(lx.src[i])
	}
	return token{}, lx.errorAt(start, "the string has no closing \"")
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
