package nginx

import (
	"errors"
	"regexp"
	"regexp/syntax"
)

// maxRegexpSize bounds the size of a regular expression once its counted
// repetitions are expanded: "x{2,1000}" counts a thousand x. Go compiles
// such expressions in time and memory growing with it, so a few kilobytes
// of "(x{1000})" would take seconds in every replica.
const maxRegexpSize = 20000

// compile compiles a regular expression whose expanded size is bounded.
func compile(expr string) (*regexp.Regexp, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	if regexpSize(re, maxRegexpSize) > maxRegexpSize {
		return nil, errors.New("the expression is too large once its repetitions are expanded")
	}
	return regexp.Compile(expr)
}

// regexpSize estimates the size of re with its repetitions expanded,
// stopping once it exceeds limit.
func regexpSize(re *syntax.Regexp, limit int) int {
	n := 1
	for _, sub := range re.Sub {
		n += regexpSize(sub, limit)
		if n > limit {
			return n
		}
	}
	if re.Op == syntax.OpRepeat {
		m := max(re.Min, re.Max)
		if m > 1 && n > limit/m {
			return limit + 1
		}
		n *= max(m, 1)
	}
	return n
}
