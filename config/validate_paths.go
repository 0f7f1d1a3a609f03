package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/retryexpr"
)

// This file checks the middlewares that rewrite paths (replacePath,
// replacePathRegex, stripPrefixRegex) and those that shape traffic
// (inFlightReq, buffering).

func (v *validator) replacePath(path []string, r *ReplacePath) {
	at := append(slices.Clip(path), "path")
	if r.Path == "" {
		v.add(at, "path is required, such as \"/api/v2\"")
		return
	}
	v.check(at, checkPath(r.Path))
	if _, err := url.PathUnescape(r.Path); err != nil {
		v.add(at, "path %q has a %% that does not start an escape such as %%2F; write a literal %% as %%25", truncate(r.Path, 80))
	}
}

func (v *validator) replacePathRegex(path []string, r *ReplacePathRegex) {
	v.regexp(append(slices.Clip(path), "regex"), "regex", r.Regex)
	if r.Replacement == "" {
		v.add(append(slices.Clip(path), "replacement"), "replacement is required, such as \"/api/${1}\"")
	}
}

func (v *validator) stripPrefixRegex(path []string, s *StripPrefixRegex) {
	if len(s.Regex) == 0 {
		v.add(append(slices.Clip(path), "regex"), "at least one regular expression is required, such as [\"/tenant/[a-z0-9]+\"]")
	}
	for i, re := range s.Regex {
		v.regexp(append(slices.Clip(path), "regex", fmt.Sprint(i)), "regex", re)
	}
}

func (v *validator) inFlightReq(path []string, r *InFlightReq) {
	if r.Amount < 1 {
		v.add(append(slices.Clip(path), "amount"), "amount must be at least 1 request at once")
	}
	v.sourceCriterion(append(slices.Clip(path), "sourceCriterion"), r.SourceCriterion)
}

func (v *validator) buffering(path []string, b *Buffering) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	for _, f := range []struct {
		name, zero string
		n          int64
	}{
		{"maxRequestBodyBytes", "no limit", b.MaxRequestBodyBytes},
		{"memRequestBodyBytes", "1 MiB", b.MemRequestBodyBytes},
		{"maxResponseBodyBytes", "no limit", b.MaxResponseBodyBytes},
		{"memResponseBodyBytes", "1 MiB", b.MemResponseBodyBytes},
	} {
		if f.n < 0 {
			v.add(at(f.name), "%s %d is negative; 0 means %s", f.name, f.n, f.zero)
		}
	}
	if b.RetryExpression != "" {
		if _, err := retryexpr.Parse(b.RetryExpression); err != nil {
			v.add(at("retryExpression"), "invalid expression: %v", err)
		}
	}
}

// checkPath accepts a URL path: it starts with "/" and has no control
// characters.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with \"/\"", truncate(p, 80))
	}
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return fmt.Errorf("path %q contains a control character", truncate(p, 80))
	}
	return nil
}
