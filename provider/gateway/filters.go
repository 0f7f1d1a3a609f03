package gateway

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/tollgate-proxy/tollgate/config"
)

// note records something served only approximately.
func (b *routeBuild) note(format string, args ...any) {
	key := b.r.Namespace + "/" + b.r.Name
	b.notes[key] = append(b.notes[key], fmt.Sprintf(format, args...))
}

// filters turns a rule's filters into middlewares of the part, in order.
// bad says why the rule cannot be served; notes what is approximate.
//
// Headers: set maps to the headers middleware's custom headers (which
// replace a header's values), remove to an empty value there, add to its
// appended headers; a set or add with an empty value, which would remove
// the header, is refused.
func (b *routeBuild) filters(ri int, fs []gatewayv1.HTTPRouteFilter) (mws []string, bad string, notes []string) {
	built := map[string]*config.Middleware{} // added to the part if the rule is served
	b.mirrors = nil
	for fi, f := range fs {
		name := b.name(strconv.Itoa(ri), strconv.Itoa(fi))
		var mw *config.Middleware
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier, gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			m := f.RequestHeaderModifier
			if f.Type == gatewayv1.HTTPRouteFilterResponseHeaderModifier {
				m = f.ResponseHeaderModifier
			}
			if m == nil {
				return nil, fmt.Sprintf("filter %d: %s has no settings", fi, f.Type), nil
			}
			edits, adds, why := headerEdits(m)
			if why != "" {
				return nil, fmt.Sprintf("filter %d (%s): %s", fi, f.Type, why), nil
			}
			h := &config.Headers{}
			if f.Type == gatewayv1.HTTPRouteFilterRequestHeaderModifier {
				h.CustomRequestHeaders, h.AppendRequestHeaders = edits, adds
			} else {
				h.CustomResponseHeaders, h.AppendResponseHeaders = edits, adds
			}
			mw = &config.Middleware{Headers: h}
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			prefix, hasPrefix := matchPrefix(b.rule)
			m, why := redirect(f.RequestRedirect, prefix, hasPrefix)
			if why != "" {
				return nil, fmt.Sprintf("filter %d (RequestRedirect): %s", fi, why), nil
			}
			mw = m
		case gatewayv1.HTTPRouteFilterURLRewrite:
			prefix, hasPrefix := matchPrefix(b.rule)
			m, why := rewrite(f.URLRewrite, prefix, hasPrefix)
			if why != "" {
				return nil, fmt.Sprintf("filter %d (URLRewrite): %s", fi, why), nil
			}
			for _, one := range m {
				n := b.name(strconv.Itoa(ri), strconv.Itoa(fi), strconv.Itoa(len(mws)))
				built[n] = one
				mws = append(mws, n)
			}
			continue
		case gatewayv1.HTTPRouteFilterRequestMirror:
			m := f.RequestMirror
			if m == nil {
				return nil, fmt.Sprintf("filter %d: RequestMirror has no settings", fi), nil
			}
			if _, why := mirrorPercent(m); why != "" {
				return nil, fmt.Sprintf("filter %d (RequestMirror): %s", fi, why), nil
			}
			b.mirrors = append(b.mirrors, m)
			continue
		default:
			return nil, fmt.Sprintf("filter %d: %s is not supported yet", fi, f.Type), nil
		}
		built[name] = mw
		mws = append(mws, name)
	}
	maps.Copy(b.part.Middlewares, built)
	return mws, "", notes
}

// headerEdits maps a header modifier: the headers set (an empty value
// removes one) and the values added after a header's own.
func headerEdits(m *gatewayv1.HTTPHeaderFilter) (edits, adds map[string]string, why string) {
	edits, adds = map[string]string{}, map[string]string{}
	for _, h := range slices.Concat(m.Set, m.Add) {
		if why := badHeader(string(h.Name), h.Value); why != "" {
			return nil, nil, why
		}
	}
	for _, name := range m.Remove {
		if why := badHeader(name, ""); why != "" {
			return nil, nil, why
		}
	}
	for _, h := range m.Set {
		if h.Value == "" {
			return nil, nil, fmt.Sprintf("set %s to an empty value is not supported (it would remove the header)", h.Name)
		}
		edits[string(h.Name)] = h.Value
	}
	for _, h := range m.Add {
		switch {
		case h.Value == "":
			return nil, nil, fmt.Sprintf("add %s with an empty value is not supported", h.Name)
		case strings.EqualFold(string(h.Name), "Host"):
			return nil, nil, "add Host is not supported: a request has one host; use set"
		}
		if _, dup := edits[string(h.Name)]; dup {
			return nil, nil, fmt.Sprintf("header %s is both set and added", h.Name)
		}
		if _, dup := adds[string(h.Name)]; dup {
			return nil, nil, fmt.Sprintf("header %s is added twice", h.Name)
		}
		adds[string(h.Name)] = h.Value
	}
	for _, name := range m.Remove {
		_, set := edits[name]
		_, added := adds[name]
		if set || added {
			return nil, nil, fmt.Sprintf("header %s is both changed and removed", name)
		}
		edits[name] = ""
	}
	if len(adds) == 0 {
		adds = nil
	}
	return edits, adds, ""
}

// badHeader says why the headers middleware cannot set header name to
// value, as the router would refuse it: the name must be an HTTP token
// the configuration store can hold (at most 128 bytes, not "." or ".."),
// the value free of line breaks and NUL.
func badHeader(name, value string) string {
	switch {
	case name == "" || strings.IndexFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
	}) >= 0:
		return fmt.Sprintf("header name %.100q is not an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)", name)
	case len(name) > 128 || name == "." || name == "..":
		return fmt.Sprintf("header name %.100q cannot be stored: at most 128 bytes, not \".\" or \"..\"", name)
	case strings.ContainsAny(value, "\r\n\x00"):
		return fmt.Sprintf("the value of header %.100q contains a line break or NUL", name)
	}
	return ""
}

// redirect maps a RequestRedirect. One that changes the scheme and/or
// port only becomes a redirectScheme middleware; one with a hostname or a
// path a redirectRegex over the whole URL. 301 is permanent, 302 not (for
// methods other than GET the middlewares answer 308 and 307). Without a
// port, a new scheme drops the port (its well-known one) and otherwise
// the request's Host port is kept, which is the listener's unless the
// client left a default port out.
func redirect(r *gatewayv1.HTTPRequestRedirectFilter, prefix string, hasPrefix bool) (*config.Middleware, string) {
	if r == nil {
		return nil, "no settings"
	}
	code := ptrOr(r.StatusCode, 302)
	if code != 301 && code != 302 {
		return nil, fmt.Sprintf("status code %d is not supported", code)
	}
	if r.Hostname == nil && r.Path == nil && r.Port == nil && r.Scheme == nil {
		return nil, "a redirect that changes nothing is not supported"
	}
	if r.Hostname == nil && r.Path == nil && r.Scheme != nil {
		rs := &config.RedirectScheme{Scheme: *r.Scheme, Permanent: code == 301}
		if r.Port != nil {
			rs.Port = strconv.Itoa(int(*r.Port))
		}
		return &config.Middleware{RedirectScheme: rs}, ""
	}
	// Groups: 1 scheme, 2 host, 3 ":port", 4 path, 5 "?query".
	re := `^([a-z][a-z0-9+.-]*)://(\[[^\]]*\]|[^/:?]*)(:[0-9]+)?`
	path := "${4}"
	if p := r.Path; p != nil {
		switch {
		case p.Type == gatewayv1.FullPathHTTPPathModifier && p.ReplaceFullPath != nil:
			path = *p.ReplaceFullPath
		case p.Type == gatewayv1.PrefixMatchHTTPPathModifier && p.ReplacePrefixMatch != nil && hasPrefix:
			pre, repl := strings.TrimRight(prefix, "/"), strings.TrimRight(*p.ReplacePrefixMatch, "/")
			re += regexp.QuoteMeta(pre)
			path = repl + "${4}"
			if repl == "" {
				path = "/${4}"
				re += "/?"
			}
		default:
			return nil, "path redirect " + string(p.Type) + " needs ReplaceFullPath, or ReplacePrefixMatch with exactly one PathPrefix match"
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(strings.TrimSuffix(path, "${4}"), "%$") {
			return nil, fmt.Sprintf("path %q must start with / and contain no %% or $", path)
		}
	}
	if path == "/${4}" {
		re += `([^?]*)(\?.*)?$`
	} else {
		re += `(/[^?]*)?(\?.*)?$`
	}
	scheme := "${1}"
	if r.Scheme != nil {
		scheme = *r.Scheme
	}
	host := "${2}"
	if r.Hostname != nil {
		host = string(*r.Hostname)
	}
	port := "${3}"
	switch {
	case r.Port != nil && !(int(*r.Port) == 80 && scheme == "http") && !(int(*r.Port) == 443 && scheme == "https"):
		port = ":" + strconv.Itoa(int(*r.Port))
	case r.Port != nil || r.Scheme != nil:
		port = ""
	}
	return &config.Middleware{RedirectRegex: &config.RedirectRegex{Regex: re, Replacement: scheme + "://" + host + port + path + "${5}", Permanent: code == 301}}, ""
}

// matchPrefix is the path of a rule's only match when it is a PathPrefix
// one, which ReplacePrefixMatch requires; ok is false otherwise.
func matchPrefix(rule gatewayv1.HTTPRouteRule) (prefix string, ok bool) {
	if len(rule.Matches) != 1 || rule.Matches[0].Path == nil || ptrOr(rule.Matches[0].Path.Type, gatewayv1.PathMatchPathPrefix) != gatewayv1.PathMatchPathPrefix {
		return "", false
	}
	return ptrOr(rule.Matches[0].Path.Value, "/"), true
}

// rewrite maps a URLRewrite: the hostname to the request's Host (headers
// middleware), a full path to replacePath, a prefix replacement to
// replacePathRegex on the element-wise prefix of the rule's only match.
func rewrite(r *gatewayv1.HTTPURLRewriteFilter, prefix string, hasPrefix bool) ([]*config.Middleware, string) {
	if r == nil {
		return nil, "no settings"
	}
	var out []*config.Middleware
	if r.Hostname != nil {
		out = append(out, &config.Middleware{Headers: &config.Headers{CustomRequestHeaders: map[string]string{"Host": string(*r.Hostname)}}})
	}
	if p := r.Path; p != nil {
		if p.Type == gatewayv1.PrefixMatchHTTPPathModifier && p.ReplacePrefixMatch != nil {
			if !hasPrefix {
				return nil, "ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix"
			}
			mw, why := replacePrefix(prefix, *p.ReplacePrefixMatch)
			if why != "" {
				return nil, why
			}
			if mw != nil {
				out = append(out, mw)
			}
			return out, ""
		}
		if p.Type != gatewayv1.FullPathHTTPPathModifier || p.ReplaceFullPath == nil {
			return nil, "path rewrite " + string(p.Type) + " is not supported"
		}
		if !strings.HasPrefix(*p.ReplaceFullPath, "/") || strings.Contains(*p.ReplaceFullPath, "%") {
			return nil, fmt.Sprintf("path %q must start with / and contain no %%", *p.ReplaceFullPath)
		}
		out = append(out, &config.Middleware{ReplacePath: &config.ReplacePath{Path: *p.ReplaceFullPath}})
	}
	return out, ""
}

// mirrorPercent is the share of requests a mirror gets: 100 by default; a
// fraction must be a whole percentage, the mirroring service's unit.
func mirrorPercent(m *gatewayv1.HTTPRequestMirrorFilter) (int, string) {
	switch {
	case m.Percent != nil:
		return int(*m.Percent), ""
	case m.Fraction != nil:
		den := int(ptrOr(m.Fraction.Denominator, 100))
		num := int(m.Fraction.Numerator)
		if den <= 0 || (num*100)%den != 0 {
			return 0, fmt.Sprintf("fraction %d/%d is not a whole percentage, which is all mirroring can do", num, den)
		}
		return num * 100 / den, ""
	}
	return 100, ""
}

// mirror wraps service in a mirroring service that copies requests to the
// backends of the rule's RequestMirror filters; why and reason say what
// could not be resolved (that mirror gets no servers).
func (b *routeBuild) mirror(ri int, service string) (name, why, reason string) {
	if len(b.mirrors) == 0 {
		return service, "", ""
	}
	mr := &config.Mirroring{Service: service}
	for _, m := range b.mirrors {
		svc, w, r := b.backend(gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: m.BackendRef}})
		if w != "" && why == "" {
			why, reason = w, r
		}
		pct, _ := mirrorPercent(m)
		mr.Mirrors = append(mr.Mirrors, config.Mirror{Name: svc, Percent: pct})
	}
	name = b.name(strconv.Itoa(ri), "mirror")
	b.part.Services[name] = &config.Service{Mirroring: mr}
	return name, why, reason
}

// replacePrefix replaces the element-wise prefix of a path: with prefix
// /foo and replacement /bar, /foo becomes /bar and /foo/x /bar/x; with
// replacement /, /foo becomes / and /foo/x /x. Nil means nothing changes.
func replacePrefix(prefix, repl string) (*config.Middleware, string) {
	if !strings.HasPrefix(repl, "/") || strings.ContainsAny(repl, "%$") {
		return nil, fmt.Sprintf("replacement %q must start with / and contain no %% or $", repl)
	}
	p := strings.TrimRight(prefix, "/")
	r := strings.TrimRight(repl, "/")
	if p == r {
		return nil, ""
	}
	rr := &config.ReplacePathRegex{Regex: "^" + regexp.QuoteMeta(p) + "(/.*)?$", Replacement: r + "${1}"}
	if r == "" {
		rr = &config.ReplacePathRegex{Regex: "^" + regexp.QuoteMeta(p) + "/?(.*)$", Replacement: "/${1}"}
	}
	return &config.Middleware{ReplacePathRegex: rr}, ""
}
