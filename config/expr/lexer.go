package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokError tokenKind = iota // the lexer failed; parser.err says why
	tokEOF
	tokIdent
	tokNumber
	tokString
	tokLParen
	tokRParen
	tokComma
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
	{"(", tokLParen}, {")", tokRParen}, {",", tokComma},
	{">=", tokOp}, {"<=", tokOp}, {"==", tokOp}, {"!=", tokOp}, {">", tokOp}, {"<", tokOp},
	{"&&", tokAnd}, {"||", tokOr}, {"!", tokNot},
}

// lexer splits an expression into tokens. The tokens a dialect has no use
// for are unexpected characters, so that its messages name the mistake
// where it is.
type lexer struct {
	src     string
	pos     int
	not     bool // lex "!"
	commas  bool // lex ","
	strings bool // lex quoted strings
}

func newLexer[E any](d *Dialect[E], src string) lexer {
	return lexer{src: src, not: d.Not, commas: d.hasArgs(), strings: d.hasStrings()}
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
	case c == '"' && lx.strings:
		return lx.string()
	}
	for _, p := range punctuation {
		if strings.HasPrefix(lx.src[start:], p.text) && lx.has(p.kind) {
			lx.pos += len(p.text)
			return token{kind: p.kind, pos: start, text: p.text}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(lx.src[start:])
	return token{}, lx.errorAt(start, fmt.Sprintf("unexpected character %q", r))
}

// has reports whether the dialect has punctuation of kind k.
func (lx *lexer) has(k tokenKind) bool {
	switch k {
	case tokNot:
		return lx.not
	case tokComma:
		return lx.commas
	}
	return true
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
