package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func (v *validator) forwardAuth(path []string, f *ForwardAuth) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if f.Address == "" {
		v.add(at("address"), "address is required, such as \"http://auth.internal:4181/verify\"")
	} else {
		v.check(at("address"), checkURL(f.Address, "http", "https"))
	}
	headers := func(key string, names []string) {
		for i, h := range names {
			v.check(at(key, strconv.Itoa(i)), checkToken("header name", h))
		}
	}
	headers("authResponseHeaders", f.AuthResponseHeaders)
	headers("authRequestHeaders", f.AuthRequestHeaders)
	for i, c := range f.AddAuthCookiesToResponse {
		v.check(at("addAuthCookiesToResponse", strconv.Itoa(i)), checkToken("cookie name", c))
	}
	if f.AuthResponseHeadersRegex != "" {
		v.regexp(at("authResponseHeadersRegex"), "authResponseHeadersRegex", f.AuthResponseHeadersRegex)
	}
	if f.HeaderField != "" {
		v.check(at("headerField"), checkToken("header name", f.HeaderField))
	}
	if n := f.MaxBodySize; n != nil && *n < -1 {
		v.add(at("maxBodySize"), "maxBodySize %d: use a size in bytes, or -1 for no limit", *n)
	}
	if t := f.TLS; t != nil {
		if u, err := url.Parse(f.Address); err == nil && u.Scheme == "http" {
			v.add(at("tls"), "tls applies to an https address, and %q is http; write the address with https:// or remove tls", truncate(f.Address, 80))
		}
		if (t.Cert == "") != (t.Key == "") {
			v.add(at("tls"), "a client certificate needs both cert and key (PEM files); set the missing one or remove both")
		}
	}
}

func (v *validator) errorPages(path []string, e *ErrorPages) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if len(e.Status) == 0 {
		v.add(at("status"), "at least one status or range is required, such as [\"500-599\"]")
	}
	for i, s := range e.Status {
		if _, _, err := ParseStatusRange(s); err != nil {
			v.add(at("status", strconv.Itoa(i)), "%v", err)
		}
	}
	for _, k := range sorted(e.StatusRewrites) {
		if _, _, err := ParseStatusRange(k); err != nil {
			v.add(at("statusRewrites", k), "%v", err)
		}
		if c := e.StatusRewrites[k]; c < 100 || c > 599 {
			v.add(at("statusRewrites", k), "status %d: use a status from 100 to 599", c)
		}
	}
	if e.Service == "" {
		v.add(at("service"), "service is required: the service that serves the error pages")
	} else {
		v.ref(at("service"), "service", e.Service, v.serviceNames)
	}
	if e.Query != "" {
		if !strings.HasPrefix(e.Query, "/") {
			v.add(at("query"), "query %q must start with \"/\", such as \"/{status}.html\"", truncate(e.Query, 80))
		} else if strings.ContainsFunc(e.Query, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			v.add(at("query"), "query %q contains a space or a control character; escape it (%%20)", truncate(e.Query, 80))
		}
	}
}

// ParseStatusRange parses a status, "404", or an inclusive range of
// statuses, "500-599", each from 100 to 599.
func ParseStatusRange(s string) (from, to int, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	digits := func(s string) bool {
		return s != "" && !strings.ContainsFunc(s, func(c rune) bool { return c < '0' || c > '9' })
	}
	if !digits(lo) || !digits(hi) {
		return 0, 0, fmt.Errorf("%q is not a status or a range of statuses, such as \"404\" or \"500-599\"", truncate(s, 80))
	}
	from, _ = strconv.Atoi(lo)
	to, _ = strconv.Atoi(hi)
	switch {
	case len(lo) != 3 || len(hi) != 3 || from < 100 || to > 599:
		return 0, 0, fmt.Errorf("%q: statuses are three digits from 100 to 599", s)
	case from > to:
		return 0, 0, fmt.Errorf("range %q ends before it starts; write it as \"%d-%d\"", s, to, from)
	}
	return from, to, nil
}
