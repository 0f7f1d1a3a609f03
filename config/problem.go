package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is, which key
// it concerns, and what to do about it.
type Problem struct {
	// Where locates the problem: "file.toml:12:3" for a file, the full
	// store key for the store.
	Where string
	// Path is the configuration key in TOML dotted form, such as
	// "http.routers.web.service". Empty for syntax errors and for problems
	// in the store, whose Where is already the key.
	Path string
	// Message says what is wrong and how to fix it.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Where)
	if p.Path != "" {
		b.WriteString(": ")
		b.WriteString(p.Path)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// Error is an invalid configuration: every problem found, in the order of
// the source.
type Error struct {
	// Source names what was read: a file name or "store PREFIX/config".
	Source   string
	Problems []Problem
}

// maxPrinted bounds the problems Error prints; Problems keeps them all.
const maxPrinted = 100

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		fmt.Fprintf(&b, "invalid configuration: %s", e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "invalid configuration: %d problems in %s:", len(e.Problems), e.Source)
	for i, p := range e.Problems {
		if i == maxPrinted {
			if more := len(e.Problems) - maxPrinted; more == 1 {
				b.WriteString("\n  … and 1 more problem")
			} else {
				fmt.Fprintf(&b, "\n  … and %d more problems", more)
			}
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problem is a Problem before it is located: the path is logical (TOML
// names, map keys, list indexes), turned into a position or a store key by
// the source it came from.
type problem struct {
	path []string
	msg  string
}

// problems collects problems.
type problems []problem

func (ps *problems) add(path []string, format string, args ...any) {
	*ps = append(*ps, problem{path: clonePath(path), msg: fmt.Sprintf(format, args...)})
}

func clonePath(path []string) []string { return append([]string(nil), path...) }

// isIndex reports whether seg is a list index as paths write them: a
// decimal number without leading zeros.
func isIndex(seg string) bool {
	if seg == "" || len(seg) > 9 || (len(seg) > 1 && seg[0] == '0') {
		return false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
