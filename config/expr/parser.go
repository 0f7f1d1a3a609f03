package expr

import (
	"fmt"
	"strings"
)

// maxDepth bounds the nesting of parentheses and !.
const maxDepth = 64

// Error is an expression that does not parse or whose function arguments
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

// Parse parses src in dialect d. It returns an *Error for an expression
// that does not parse, calls a function with arguments its Check refuses,
// or compares values of different types.
func Parse[E any](d *Dialect[E], src string) (Expr[E], error) {
	p := &parser[E]{d: d, lx: newLexer(d, src)}
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

type parser[E any] struct {
	d   *Dialect[E]
	lx  lexer
	tok token
	err error // from the lexer
}

func (p *parser[E]) advance() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.next()
	if p.err != nil {
		p.tok = token{kind: tokError}
	}
}

func (p *parser[E]) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return p.lx.errorAt(p.tok.pos, fmt.Sprintf(format, args...))
}

func (p *parser[E]) parseOr(depth int) (Expr[E], error) {
	l, err := p.parseAnd(depth)
	for err == nil && p.tok.kind == tokOr {
		p.advance()
		var r Expr[E]
		if r, err = p.parseAnd(depth); err == nil {
			l = binary[E]{l: l, r: r, or: true, all: p.d.ParenthesizeAll}
		}
	}
	return l, err
}

func (p *parser[E]) parseAnd(depth int) (Expr[E], error) {
	l, err := p.parseUnary(depth)
	for err == nil && p.tok.kind == tokAnd {
		p.advance()
		var r Expr[E]
		if r, err = p.parseUnary(depth); err == nil {
			l = binary[E]{l: l, r: r, all: p.d.ParenthesizeAll}
		}
	}
	return l, err
}

func (p *parser[E]) parseUnary(depth int) (Expr[E], error) {
	if p.err != nil {
		return nil, p.err
	}
	switch p.tok.kind {
	case tokNot, tokLParen:
		if depth >= maxDepth {
			nesting := "parentheses"
			if p.d.Not {
				nesting = "parentheses and !"
			}
			return nil, p.errorf("%s nested more than %d deep", nesting, maxDepth)
		}
	}
	switch p.tok.kind {
	case tokNot:
		p.advance()
		e, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return not[E]{e}, nil
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
		if f := p.d.lookup(p.tok.text); f != nil && f.Bool != nil {
			c, err := p.parseCall(f)
			if err != nil {
				return nil, err
			}
			if p.tok.kind == tokOp {
				return nil, p.errorf("%s", p.d.standsAlone(f))
			}
			return c, nil
		}
	}
	return p.parseComparison()
}

func (p *parser[E]) parseComparison() (Expr[E], error) {
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
	case l.call == nil && r.call == nil:
		return nil, p.lx.errorAt(start.pos, fmt.Sprintf("a comparison needs a %s: %s", p.d.Noun, p.d.comparable()))
	case l.str != r.str:
		return nil, p.lx.errorAt(start.pos, fmt.Sprintf("%s and %s cannot be compared: %s", l, r, p.d.Mismatch))
	case l.str && op.text != "==" && op.text != "!=":
		return nil, p.lx.errorAt(op.pos, fmt.Sprintf("%s compare with == or !=, found %s", p.d.Strings, op.text))
	}
	return comparison[E]{l: l, r: r, op: op.text}, nil
}

func (p *parser[E]) parseOperand() (operand[E], error) {
	switch p.tok.kind {
	case tokNumber:
		o := operand[E]{num: p.tok.num}
		p.advance()
		return o, p.err
	case tokString:
		o := operand[E]{str: true, text: p.tok.str}
		p.advance()
		return o, p.err
	case tokIdent:
		f := p.d.lookup(p.tok.text)
		switch {
		case f == nil:
			return operand[E]{}, p.errorf("unknown function %s: expected %s", p.tok.text, p.d.names())
		case f.Bool != nil:
			return operand[E]{}, p.errorf("%s", p.d.standsAlone(f))
		}
		c, err := p.parseCall(f)
		if err != nil {
			return operand[E]{}, err
		}
		return operand[E]{call: &c, str: f.Text != nil}, nil
	}
	return operand[E]{}, p.errorf("expected %s, found %s", p.d.operands(), p.tok)
}

// parseCall parses a call to f, from its name on, and checks its
// arguments.
func (p *parser[E]) parseCall(f *Func[E]) (call[E], error) {
	name := p.tok
	p.advance()
	if p.tok.kind != tokLParen {
		return call[E]{}, p.errorf("expected ( after %s, found %s", f.Name, p.tok)
	}
	p.advance()
	var args []float64
	if !p.lx.commas {
		// No function of the dialect takes arguments: a call is
		// name(), and anything inside says so.
		if p.tok.kind != tokRParen {
			return call[E]{}, p.errorf("%s takes no arguments: expected ), found %s", f.Name, p.tok)
		}
	}
	for p.tok.kind != tokRParen {
		if len(args) > 0 {
			if p.tok.kind != tokComma {
				return call[E]{}, p.errorf("expected , or ) in the arguments of %s, found %s", f.Name, p.tok)
			}
			p.advance()
		}
		if p.tok.kind != tokNumber {
			return call[E]{}, p.errorf("expected a number as argument %d of %s, found %s", len(args)+1, f.Name, p.tok)
		}
		args = append(args, p.tok.num)
		p.advance()
	}
	if len(args) != len(f.Params) {
		return call[E]{}, p.errorf("%s takes %d arguments, found %d", f.Name, len(f.Params), len(args))
	}
	p.advance()
	if f.Check != nil {
		if err := f.Check(args); err != nil {
			return call[E]{}, p.lx.errorAt(name.pos, err.Error())
		}
	}
	return call[E]{f: f, args: args}, p.err
}

// lookup returns the function called name, or nil.
func (d *Dialect[E]) lookup(name string) *Func[E] {
	for i := range d.Funcs {
		if d.Funcs[i].Name == name {
			return &d.Funcs[i]
		}
	}
	return nil
}

// names lists the names of all functions, for an unknown one.
func (d *Dialect[E]) names() string {
	var names []string
	for _, f := range d.Funcs {
		names = append(names, f.Name)
	}
	return list(names)
}

// comparable lists the signatures of the functions that compare.
func (d *Dialect[E]) comparable() string {
	var sigs []string
	for i := range d.Funcs {
		if d.Funcs[i].Bool == nil {
			sigs = append(sigs, d.Funcs[i].signature())
		}
	}
	return list(sigs)
}

// operands describes what may stand on a side of a comparison.
func (d *Dialect[E]) operands() string {
	var kinds []string
	for i := range d.Funcs {
		if d.Funcs[i].Bool == nil {
			kinds = append(kinds, fmt.Sprintf("a %s such as %s", d.Noun, d.Funcs[i].signature()))
			break
		}
	}
	kinds = append(kinds, "a number")
	if d.hasStrings() {
		kinds = append(kinds, "a quoted string")
	}
	return list(kinds)
}

// standsAlone is the message for a true-or-false function that compares.
func (d *Dialect[E]) standsAlone(f *Func[E]) string {
	use := "use it alone"
	if d.Not {
		use = "use it alone or with !"
	}
	return fmt.Sprintf("%s is true or false and compares with nothing; %s", f.signature(), use)
}

func (d *Dialect[E]) hasStrings() bool {
	for _, f := range d.Funcs {
		if f.Text != nil {
			return true
		}
	}
	return false
}

func (d *Dialect[E]) hasArgs() bool {
	for _, f := range d.Funcs {
		if len(f.Params) > 0 {
			return true
		}
	}
	return false
}

// list joins items as "a, b or c".
func list(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
