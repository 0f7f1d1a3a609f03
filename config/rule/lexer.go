package rule

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenKind is the kind of a lexical token.
type tokenKind int

const (
	tokEOF     tokenKind = iota
	tokIdent             // a matcher name
	tokString            // `raw` or "interpreted"
	tokLParen            // (
	tokRParen            // )
	tokComma             // ,
	tokAnd               // &&
	tokOr                // ||
	tokNot               // !
	tokIllegal           // any other character, or a lone & or |
)

// token is one lexical token of a rule.
type token struct {
	kind tokenKind
	pos  int    // byte offset of the token's first character
	text string // the token as written in the rule
	val  string // for tokString, the string's value
}

// lexer splits a rule into tokens on demand. Its input must be valid UTF-8
// (Parse checks that first).
type lexer struct {
	src string
	pos int
}

// next returns the token after the whitespace at the lexer's position. It
// fails only on strings it cannot read; other characters it does not know
// come back as tokIllegal, for the parser to report with what it expected.
func (l *lexer) next() (token, error) {
	l.skipSpace()
	start := l.pos
	if start == len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	switch c := l.src[start]; c {
	case '`':
		return l.rawString()
	case '"':
		return l.quotedString()
	case '(':
		return l.emit(tokLParen, 1), nil
	case ')':
		return l.emit(tokRParen, 1), nil
	case ',':
		return l.emit(tokComma, 1), nil
	case '!':
		return l.emit(tokNot, 1), nil
	case '&', '|':
		if start+1 == len(l.src) || l.src[start+1] != c {
			return l.emit(tokIllegal, 1), nil
		}
		if c == '&' {
			return l.emit(tokAnd, 2), nil
		}
		return l.emit(tokOr, 2), nil
	}
	r, size := utf8.DecodeRuneInString(l.src[start:])
	if !isIdentStart(r) {
		return l.emit(tokIllegal, size), nil
	}
	end := start + size
	for end < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[end:])
		if !isIdentStart(r) && !unicode.IsDigit(r) {
			break
		}
		end += size
	}
	return l.emit(tokIdent, end-start), nil
}

// skipSpace skips the whitespace Go allows between tokens.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return
		}
	}
}

// emit returns the n bytes at the lexer's position as a token of kind k.
func (l *lexer) emit(k tokenKind, n int) token {
	t := token{kind: k, pos: l.pos, text: l.src[l.pos : l.pos+n]}
	l.pos += n
	return t
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

// rawString reads a backtick string. As in Go, its value is the text
// between the backticks with carriage returns removed, and has no escapes.
func (l *lexer) rawString() (token, error) {
	start := l.pos
	n := strings.IndexByte(l.src[start+1:], '`')
	if n < 0 {
		return token{}, newError(l.src, start, "unterminated string: expected a closing \"`\", found end of rule")
	}
	t := l.emit(tokString, n+2)
	t.val = strings.ReplaceAll(t.text[1:n+1], "\r", "")
	return t, nil
}

// quotedString reads a double-quoted string with Go escapes.
func (l *lexer) quotedString() (token, error) {
	start := l.pos
	var b strings.Builder
	for i := start + 1; i < len(l.src); {
		switch c := l.src[i]; c {
		case '"':
			t := l.emit(tokString, i+1-start)
			t.val = b.String()
			return t, nil
		case '\n':
			return token{}, newError(l.src, start, "unterminated string: expected a closing '\"', found a line break")
		case '\\':
			if i+1 == len(l.src) {
				break // a backslash at the end: the string is not terminated
			}
			r, multibyte, tail, err := strconv.UnquoteChar(l.src[i:], '"')
			if err != nil {
				return token{}, newError(l.src, i, "invalid escape in string: expected one of %s, found %s", validEscapes, printable(escapeAt(l.src, i)))
			}
			if multibyte {
				b.WriteRune(r)
			} else {
				b.WriteByte(byte(r))
			}
			i = len(l.src) - len(tail)
			continue
		default:
			b.WriteByte(c)
		}
		i++
	}
	return token{}, newError(l.src, start, "unterminated string: expected a closing '\"', found end of rule")
}

// validEscapes lists Go's escapes for error messages.
const validEscapes = `\a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH \OOO`

// escapeAt returns the escape sequence that starts with the backslash at
// src[i], as far as its kind says it extends, for error messages.
func escapeAt(src string, i int) string {
	n := 2
	switch src[i+1] {
	case 'x':
		n = 4
	case 'u':
		n = 6
	case 'U':
		n = 10
	case '0', '1', '2', '3', '4', '5', '6', '7':
		n = 4
	}
	end := i
	for range n {
		if end == len(src) || src[end] == '"' && end > i+1 {
			break
		}
		_, size := utf8.DecodeRuneInString(src[end:])
		end += size
	}
	return src[i:end]
}
