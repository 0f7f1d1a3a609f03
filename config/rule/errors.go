package rule

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Error is a rule that does not parse or does not validate. Offset and
// Column point at the offending token or argument, so that a configuration
// error can show the rule with a caret under the mistake. Parse returns
// errors of this type only.
type Error struct {
	// Offset is the byte offset of the mistake in the rule.
	Offset int
	// Column is the 1-based column of the mistake, counted in runes from
	// the start of the rule (line breaks included).
	Column int
	// Msg says what was expected and what was found, or what is wrong with
	// an argument and how to fix it.
	Msg string
}

// Error returns the message with its column, such as
// `column 17: expected ")" or ",", found "&&"`.
func (e *Error) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// newError returns an Error at byte offset off of src.
func newError(src string, off int, format string, args ...any) *Error {
	return &Error{
		Offset: off,
		Column: utf8.RuneCountInString(src[:off]) + 1,
		Msg:    fmt.Sprintf(format, args...),
	}
}

// describe names a token for "found ..." in error messages.
func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of rule"
	case tokString:
		return "string " + printable(shorten(t.text))
	}
	s := strconv.Quote(t.text)
	if t.text == "'" {
		s += " (single quotes are not allowed: use backticks or double quotes)"
	}
	return s
}

// printable returns s as it is if it has only printable characters, and
// else Go-quoted, so that error messages show control characters.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// q quotes a value from the rule for an error message, shortened.
func q(v string) string { return strconv.Quote(shorten(v)) }

// suggest prints a matcher for an error message, shortened.
func suggest(name string, args ...string) string {
	return shortenTo((&Matcher{Name: name, Args: args}).String(), 100)
}

// shorten cuts s to 40 runes for error messages.
func shorten(s string) string { return shortenTo(s, 40) }

// shortenTo cuts s to limit runes, the last of them "…".
func shortenTo(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// editDistance is the optimal string alignment distance between a and b:
// the number of rune insertions, deletions, substitutions and transpositions
// of adjacent runes that turn one into the other.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
