package rule

import (
	"regexp"
	"strings"
)

// fromV2 converts a gorilla/mux template as Traefik v2 took them, such as
// "{sub:[a-z]+}.example.com", to the Go regexp it stood for,
// "^[a-z]+\.example\.com$": text outside the braces is literal, and the
// template is anchored at the start and, if anchorEnd, at the end. It
// reports false if v has no {name:regexp} group. Traefik v3 reads such a
// value literally, so it never matches what its author meant.
func fromV2(v string, anchorEnd bool) (string, bool) {
	var b strings.Builder
	b.WriteString("^")
	found := false
	for {
		start, colon := v2Group(v)
		if start < 0 {
			break
		}
		end := closingBrace(v, start)
		if end < 0 {
			break
		}
		b.WriteString(regexp.QuoteMeta(v[:start]))
		if re := v[colon+1 : end]; strings.Contains(re, "|") {
			b.WriteString("(?:" + re + ")")
		} else {
			b.WriteString(re)
		}
		v, found = v[end+1:], true
	}
	if !found {
		return "", false
	}
	b.WriteString(regexp.QuoteMeta(v))
	if anchorEnd {
		b.WriteString("$")
	}
	return b.String(), true
}

// v2Group returns the offsets of the "{" and the ":" of the first
// "{name:" in v not preceded by a backslash, or -1, -1.
func v2Group(v string) (start, colon int) {
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' {
			i++ // skip the escaped character
			continue
		}
		if v[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(v) && isHostChar(v[j]) {
			j++
		}
		if j > i+1 && j < len(v) && v[j] == ':' {
			return i, j
		}
	}
	return -1, -1
}

// closingBrace returns the offset of the "}" closing the "{" at v[start],
// counting nested braces as gorilla/mux does, or -1.
func closingBrace(v string, start int) int {
	level := 0
	for i := start; i < len(v); i++ {
		switch v[i] {
		case '{':
			level++
		case '}':
			if level--; level == 0 {
				return i
			}
		}
	}
	return -1
}
