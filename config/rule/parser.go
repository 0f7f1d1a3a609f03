package rule

import "unicode/utf8"

// MaxRuleBytes is the length of the longest rule Parse accepts.
const MaxRuleBytes = 64 << 10

// MaxDepth is the deepest nesting of parentheses and "!" Parse accepts.
const MaxDepth = 100

// Parse parses rule and validates every matcher in it: its name, its number
// of arguments and each argument (host names, regexps, paths, methods,
// header names, query keys, IP addresses). Rules longer than MaxRuleBytes
// or nested deeper than MaxDepth are refused. The error, of type *Error, is
// for the first mistake in the rule.
func Parse(rule string) (Expr, error) {
	if err := checkSource(rule); err != nil {
		return nil, err
	}
	e, err := parse(rule, httpDialect)
	if err != nil && IsTraefikV1(rule) {
		return nil, v1Error(rule)
	}
	return e, err
}

// ParseTCP parses the rule of a TCP router and validates every matcher in
// it, as Parse does for HTTP rules: the grammar, the limits, the spelling
// of matcher names and the *Error are the same, the matchers are HostSNI,
// HostSNIRegexp, ClientIP and ALPN. The names of HTTP matchers are refused
// with what to write instead.
func ParseTCP(rule string) (Expr, error) {
	if err := checkSource(rule); err != nil {
		return nil, err
	}
	return parse(rule, tcpDialect)
}

// checkSource checks the length and encoding of a rule.
func checkSource(rule string) error {
	if len(rule) > MaxRuleBytes {
		return newError(rule, MaxRuleBytes, "rule too long: expected at most %d bytes, found %d", MaxRuleBytes, len(rule))
	}
	if off := invalidUTF8(rule); off >= 0 {
		return newError(rule, off, "expected UTF-8 text, found the byte %#x", rule[off])
	}
	return nil
}

func parse(rule string, d *dialect) (Expr, error) {
	p := &parser{lex: lexer{src: rule}, dialect: d}
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.expected(`"&&", "||" or end of rule`)
	}
	return e, nil
}

// invalidUTF8 returns the offset of the first byte of s that is not valid
// UTF-8, or -1.
func invalidUTF8(s string) int {
	if utf8.ValidString(s) {
		return -1
	}
	for i := 0; ; {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
}

// parser is a recursive-descent parser reading one token ahead.
type parser struct {
	lex     lexer
	tok     token    // the current token
	depth   int      // nesting of "(" and "!" around the current token
	dialect *dialect // the matchers of this kind of rule
}

// advance moves to the next token.
func (p *parser) advance() error {
	t, err := p.lex.next()
	p.tok = t
	return err
}

// expected returns an error at the current token saying what was expected.
func (p *parser) expected(what string) error {
	return newError(p.lex.src, p.tok.pos, "expected %s, found %s", what, describe(p.tok))
}

// or parses: and { "||" and }.
func (p *parser) or() (Expr, error) {
	left, err := p.and()
	for err == nil && p.tok.kind == tokOr {
		var right Expr
		if err = p.advance(); err == nil {
			right, err = p.and()
		}
		left = &Or{Left: left, Right: right}
	}
	if err != nil {
		return nil, err
	}
	return left, nil
}

// and parses: unary { "&&" unary }.
func (p *parser) and() (Expr, error) {
	left, err := p.unary()
	for err == nil && p.tok.kind == tokAnd {
		var right Expr
		if err = p.advance(); err == nil {
			right, err = p.unary()
		}
		left = &And{Left: left, Right: right}
	}
	if err != nil {
		return nil, err
	}
	return left, nil
}

// unary parses: "!" unary | "(" or ")" | matcher.
func (p *parser) unary() (Expr, error) {
	switch p.tok.kind {
	case tokNot, tokLParen:
	case tokIdent:
		return p.matcher()
	default:
		return nil, p.expected(`a matcher, "!" or "("`)
	}
	if p.depth == MaxDepth {
		return nil, newError(p.lex.src, p.tok.pos, "rule nested too deeply: expected at most %d levels of \"(\" and \"!\", found more", MaxDepth)
	}
	p.depth++
	defer func() { p.depth-- }()
	open := p.tok
	if err := p.advance(); err != nil {
		return nil, err
	}
	if open.kind == tokNot {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	x, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		return nil, p.expected(`"&&", "||" or ")"`)
	}
	return x, p.advance()
}

// matcher parses: name "(" [ string { "," string } [ "," ] ] ")", and
// checks the name and arguments.
func (p *parser) matcher() (Expr, error) {
	name := p.tok
	s := p.dialect.lookup(name.text)
	if s == nil {
		return nil, newError(p.lex.src, name.pos, "%s", p.dialect.unknownMatcher(name.text))
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokLParen {
		return nil, p.expected(`"(" after ` + s.name)
	}
	var args []arg
	for {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tokRParen {
			break
		}
		if p.tok.kind != tokString {
			return nil, p.expected(`a string or ")"`)
		}
		args = append(args, arg{val: p.tok.val, pos: p.tok.pos})
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tokRParen {
			break
		}
		if p.tok.kind != tokComma {
			return nil, p.expected(`")" or ","`)
		}
	}
	if err := s.check(p.lex.src, args, p.tok.pos); err != nil {
		return nil, err
	}
	m := &Matcher{Name: s.name, Args: make([]string, len(args)), Pos: name.pos}
	for i, a := range args {
		m.Args[i] = a.val
	}
	return m, p.advance()
}
