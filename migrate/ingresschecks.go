package migrate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-proxy/tollgate/config"
)

// paths converts rule-type (traefik.frontend.rule.type), rewrite-target,
// request-modifier and app-root: how Traefik 1.x matched and rewrote the
// Ingress's paths. The middlewares run in Traefik 1.x's order: strip,
// add a prefix, replace the path by a regexp, replace the path.
func (ic *ingressCheck) paths() {
	c, a := ic.c, ic.a
	const (
		ruleType = v1Prefix + "rule-type"
		rewrite  = v1Prefix + "rewrite-target"
		modifier = v1Prefix + "request-modifier"
		appRoot  = v1Prefix + "app-root"
	)
	strip, stripAt := false, ""
	// replace are the replacePath and replacePathRegex middlewares, which
	// come last.
	var replace []string
	if rt, ok := a.get(ruleType); ok {
		switch rt {
		case "PathPrefix":
			c.report(a, ruleType, Converted, "PathPrefix, Traefik's default: the paths match as prefixes (pathType: Prefix)", "")
		case "Path":
			c.report(a, ruleType, Changed, "Path: the paths match exactly", "set pathType: Exact on them (networking.k8s.io/v1)")
			ic.todo = append(ic.todo, "set pathType: Exact on its paths")
		case "PathPrefixStrip", "PathStrip":
			strip, stripAt = true, ruleType
			if rt == "PathStrip" {
				ic.todo = append(ic.todo, "set pathType: Exact on its paths")
			}
		case "ReplacePath":
			switch {
			case a.has(rewrite), a.has(modifier):
				c.report(a, ruleType, Unsupported, "Traefik 1.x refused ReplacePath beside rewrite-target or request-modifier and did not serve these paths; not converted", "remove one of them")
			default:
				if mw := ic.replacePathRule(); mw != "" {
					replace = append(replace, mw)
				}
			}
		default:
			c.report(a, ruleType, Changed, fmt.Sprintf("%q is not a rule type Traefik 1.x accepted here: it did not serve these paths, tollgate does (as PathPrefix)", truncate(rt, 40)), "remove it, or keep the Ingress away from tollgate")
		}
	}
	type addPrefix struct{ prefix, at string }
	var adds []addPrefix
	if t, ok := a.get(rewrite); ok {
		if a.vals[ruleType] == "ReplacePath" {
			c.report(a, rewrite, Unsupported, "Traefik 1.x refused rewrite-target beside rule-type ReplacePath and did not serve these paths; not converted", "remove one of them")
		} else {
			strip, stripAt = true, cmp.Or(stripAt, rewrite)
			if to := strings.TrimRight(t, "/"); to != "" {
				adds = append(adds, addPrefix{to, rewrite})
			} else if stripAt != rewrite {
				c.report(a, rewrite, Converted, "/: the Ingress path is stripped, as rule-type says too", "")
			}
		}
	}
	if m, ok := a.get(modifier); ok {
		kind, value, _ := strings.Cut(strings.TrimRight(m, " :"), ":")
		kind, value = strings.TrimSpace(kind), strings.TrimSpace(value)
		switch kind {
		case "AddPrefix":
			adds = append(adds, addPrefix{value, modifier})
		case "ReplacePath", "ReplacePathRegex":
			if mw := ic.replaceModifier(kind, value); mw != "" {
				replace = append(replace, mw)
			}
		default:
			c.report(a, modifier, Unsupported, fmt.Sprintf("%q is not a request modifier Traefik 1.x accepted (AddPrefix, ReplacePath or ReplacePathRegex): it did not serve these paths; not converted", truncate(kind, 40)),
				"remove it, or keep the Ingress away from tollgate")
		}
	}
	if strip {
		var prefixes []string
		for _, p := range ic.o.ing.paths {
			if strings.HasPrefix(p, "/") && p != "/" {
				prefixes = append(prefixes, strings.TrimRight(p, "/"))
			}
		}
		// The longest first: stripPrefix removes the first that matches.
		slices.SortStableFunc(prefixes, func(x, y string) int { return cmp.Compare(len(y), len(x)) })
		prefixes = slices.Compact(prefixes)
		msg := "the Ingress has no path but /, which leaves nothing to strip"
		if len(prefixes) > 0 {
			mw := c.ingressMiddleware(ic.o, a.keys[stripAt], "strip-prefix", &config.Middleware{StripPrefix: &config.StripPrefix{Prefixes: prefixes}})
			ic.path = append(ic.path, mw)
			msg = fmt.Sprintf("middleware %q (stripPrefix %s)", mw, strings.Join(prefixes, ", "))
		}
		c.report(a, stripAt, Converted, msg, "")
	}
	for _, ap := range adds {
		kind, note, p := Converted, "", ap.prefix
		if !strings.HasPrefix(p, "/") {
			p, kind, note = "/"+p, Changed, ": a leading / is added"
		}
		mw := c.ingressMiddleware(ic.o, a.keys[ap.at], "add-prefix", &config.Middleware{AddPrefix: &config.AddPrefix{Prefix: p}})
		ic.path = append(ic.path, mw)
		c.report(a, ap.at, kind, fmt.Sprintf("middleware %q (addPrefix %s, after the stripPrefix)%s", mw, p, note), "")
	}
	ic.path = append(ic.path, replace...)
	if t, ok := a.get(appRoot); ok {
		switch {
		case !slices.Contains(ic.o.ing.paths, "/"):
			c.report(a, appRoot, Converted, "the Ingress has no path /: Traefik 1.x redirected nothing, nor does tollgate", "")
		case !strings.HasPrefix(t, "/"):
			c.report(a, appRoot, Unsupported, fmt.Sprintf("%q is not a path; not converted", truncate(t, 60)), "write a path starting with /")
		default:
			mw := c.ingressMiddleware(ic.o, a.keys[appRoot], "app-root", &config.Middleware{RedirectRegex: &config.RedirectRegex{
				Regex: `^(https?://[^/]+)/$`, Replacement: "${1}" + t,
			}})
			ic.redirect = append(ic.redirect, mw)
			c.report(a, appRoot, Converted, fmt.Sprintf("middleware %q (redirectRegex of / to %s)", mw, t), "")
		}
	}
}

// replacePathRule converts rule-type ReplacePath: Traefik 1.x replaced the
// path of every request for the Ingress's hosts with the Ingress path
// (its rule had no path matcher). tollgate routes the Ingress path only,
// and one middleware serves every path of the Ingress, so only an
// Ingress with one path converts.
func (ic *ingressCheck) replacePathRule() string {
	c, a := ic.c, ic.a
	const ruleType = v1Prefix + "rule-type"
	var paths []string
	for _, p := range ic.o.ing.paths {
		if p != "" && !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	if len(paths) != 1 {
		c.report(a, ruleType, Unsupported, fmt.Sprintf("ReplacePath replaced each request's path with the path of its rule, and the Ingress has %d paths, where a tollgate middleware serves every path of an Ingress alike; not converted", len(paths)),
			"split the Ingress into one per path and convert again, or rewrite the path in the backend")
		return ""
	}
	mw := c.ingressMiddleware(ic.o, a.keys[ruleType], "replace-path", &config.Middleware{ReplacePath: &config.ReplacePath{Path: paths[0]}})
	c.report(a, ruleType, Changed, fmt.Sprintf("middleware %q (replacePath to %s); Traefik 1.x sent every request for the Ingress's hosts there, whatever its path, where tollgate routes the requests under %s only", mw, paths[0], paths[0]),
		"to send every path as Traefik 1.x did, change the Ingress path to / (the middleware keeps replacing it with "+paths[0]+")")
	return mw
}

// replaceModifier converts request-modifier ReplacePath and
// ReplacePathRegex.
func (ic *ingressCheck) replaceModifier(kind, value string) string {
	c, a := ic.c, ic.a
	const modifier = v1Prefix + "request-modifier"
	if a.vals[v1Prefix+"rule-type"] == "ReplacePath" {
		c.report(a, modifier, Unsupported, "Traefik 1.x refused request-modifier beside rule-type ReplacePath and did not serve these paths; not converted", "remove one of them")
		return ""
	}
	// Traefik 1.x read the value up to a second ":".
	value, _, _ = strings.Cut(value, ":")
	value = strings.TrimSpace(value)
	var r v1Rule
	var args []string
	for v := range strings.SplitSeq(value, ",") {
		if v = strings.TrimSpace(v); v != "" {
			args = append(args, v)
		}
	}
	if len(args) == 0 {
		c.report(a, modifier, Unsupported, kind+" without a value: Traefik 1.x did not serve these paths; not converted", "")
		return ""
	}
	// Traefik 1.x kept the last value, as in a frontend's rule.
	if kind == "ReplacePath" {
		r.replacePath = args[len(args)-1]
	} else {
		r.replacePathRegex(args[len(args)-1])
	}
	if len(r.ignored) > 0 {
		c.report(a, modifier, Changed, r.ignored[0]+"; it is left out", "")
		return ""
	}
	if kind == "ReplacePath" {
		mw := c.ingressMiddleware(ic.o, a.keys[modifier], "replace-path", &config.Middleware{ReplacePath: &config.ReplacePath{Path: r.replacePath}})
		c.report(a, modifier, Converted, fmt.Sprintf("middleware %q (replacePath to %s)", mw, r.replacePath), "")
		return mw
	}
	mw := c.ingressMiddleware(ic.o, a.keys[modifier], "replace-path-regex", &config.Middleware{ReplacePathRegex: &config.ReplacePathRegex{Regex: r.replaceRegex, Replacement: r.replaceWith}})
	c.report(a, modifier, Converted, fmt.Sprintf("middleware %q (replacePathRegex)", mw), "")
	return mw
}

// redirects converts redirect-entry-point, redirect-regex,
// redirect-replacement, redirect-permanent, ssl-redirect and
// ssl-temporary-redirect.
func (ic *ingressCheck) redirects() {
	c, a := ic.c, ic.a
	const (
		toEP      = v1Prefix + "redirect-entry-point"
		regex     = v1Prefix + "redirect-regex"
		repl      = v1Prefix + "redirect-replacement"
		permanent = v1Prefix + "redirect-permanent"
	)
	perm := a.bool(permanent, false)
	if a.has(permanent) {
		c.report(a, permanent, Converted, fmt.Sprintf("permanent = %v: part of the redirection", perm), "")
	}
	switch target, ok := a.get(toEP); {
	case ok:
		for _, k := range []string{regex, repl} {
			if _, ok := a.get(k); ok {
				c.report(a, k, Converted, "ignored, as by Traefik 1.x, since redirect-entry-point is set", "remove it")
			}
		}
		to, defined := c.eps[target]
		if !defined {
			c.report(a, toEP, Unsupported, fmt.Sprintf("entry point %q is not defined; Traefik 1.x did not redirect either; not converted", target), "")
			return
		}
		if ic.redirectedBy(to) {
			c.report(a, toEP, Converted, fmt.Sprintf("requests on its other entry points are redirected to %q by those entry points", to.name), "")
			return
		}
		rs := &config.RedirectScheme{Scheme: "http", Permanent: perm}
		if to.tls {
			rs.Scheme = "https"
		}
		if (to.tls && to.port != 443 || !to.tls && to.port != 80) && to.port != 0 {
			rs.Port = strconv.Itoa(to.port)
		}
		mw := c.ingressMiddleware(ic.o, a.keys[toEP], "redirect", &config.Middleware{RedirectScheme: rs})
		ic.redirect = append(ic.redirect, mw)
		c.report(a, toEP, Converted, fmt.Sprintf("middleware %q (redirectScheme to %s): requests already on %s pass", mw, rs.Scheme, rs.Scheme), "")
	case a.has(regex) || a.has(repl):
		re, _ := a.get(regex)
		to, _ := a.get(repl)
		if re == "" || to == "" {
			for _, k := range []string{regex, repl} {
				if a.has(k) {
					c.report(a, k, Converted, "no effect: Traefik 1.x redirected only with both redirect-regex and redirect-replacement", "remove it")
				}
			}
			break
		}
		if _, err := regexp.Compile(re); err != nil {
			c.report(a, regex, Unsupported, fmt.Sprintf("not a regular expression tollgate reads: %v; not converted", err), "fix it")
			c.report(a, repl, Unsupported, "goes with redirect-regex; not converted", "")
			break
		}
		mw := c.ingressMiddleware(ic.o, a.keys[regex], "redirect", &config.Middleware{RedirectRegex: &config.RedirectRegex{Regex: re, Replacement: to, Permanent: perm}})
		ic.redirect = append(ic.redirect, mw)
		c.report(a, regex, Converted, fmt.Sprintf("middleware %q (redirectRegex)", mw), "")
		c.report(a, repl, Converted, fmt.Sprintf("the replacement of middleware %q", mw), "")
	}
	const (
		ssl     = v1Prefix + "ssl-redirect"
		sslTemp = v1Prefix + "ssl-temporary-redirect"
	)
	on := a.bool(ssl, false)
	temp := a.bool(sslTemp, false)
	at := ssl
	if !a.has(ssl) {
		at = sslTemp
	}
	if !a.has(ssl) && !a.has(sslTemp) {
		return
	}
	if !on && !temp {
		c.report(a, at, Converted, "false: no redirection to HTTPS", "")
		if a.has(ssl) && a.has(sslTemp) {
			c.report(a, sslTemp, Converted, "false: no redirection to HTTPS", "")
		}
		return
	}
	if a.has(ssl) && a.has(sslTemp) {
		c.report(a, sslTemp, Converted, "part of the HTTPS redirection", "")
	}
	var tlsEP *entryPoint
	for _, ep := range ic.eps {
		if ep.tls {
			tlsEP = ep
			break
		}
	}
	if tlsEP != nil && ic.redirectedBy(tlsEP) {
		c.report(a, at, Converted, fmt.Sprintf("HTTPS redirection: the Ingress's plain-HTTP entry points redirect every request to %q already", tlsEP.name), "")
		return
	}
	mw := c.ingressMiddleware(ic.o, a.keys[at], "https", &config.Middleware{RedirectScheme: &config.RedirectScheme{Scheme: "https", Permanent: !temp}})
	ic.https = append(ic.https, mw)
	c.report(a, at, Converted, fmt.Sprintf("middleware %q (redirectScheme to https): HTTPS requests pass", mw),
		"to redirect every Ingress instead, redirect the plain-HTTP entry point: [entryPoints.NAME.http.redirections.entryPoint] to = the TLS one")
}

// redirectedBy reports whether every plain entry point of the Ingress
// redirects to "to" (and it has one).
func (ic *ingressCheck) redirectedBy(to *entryPoint) bool {
	n := 0
	for _, ep := range ic.eps {
		if ep == to || ep.tls {
			continue
		}
		if ep.redirect == "" || ic.c.eps[ep.redirect] != to {
			return false
		}
		n++
	}
	return n > 0
}

// allowList converts whitelist-source-range and
// whitelist-x-forwarded-for.
func (ic *ingressCheck) allowList() {
	c, a := ic.c, ic.a
	const (
		ranges = v1Prefix + "whitelist-source-range"
		xff    = v1Prefix + "whitelist-x-forwarded-for"
	)
	if a.has(xff) {
		if a.bool(xff, false) {
			c.report(a, xff, Changed, "the allow list checks the connection's address",
				"trust your load balancers in the entry point's forwardedHeaders.trustedIPs and add ipStrategy to the ipAllowList middleware to check the client's address from X-Forwarded-For")
		} else {
			c.report(a, xff, Converted, "false: the allow list checks the connection's address, as tollgate's does", "")
		}
	}
	if !a.has(ranges) {
		return
	}
	list := a.list(ranges)
	var bad []string
	for _, r := range list {
		if _, err := netip.ParsePrefix(r); err != nil {
			if _, err := netip.ParseAddr(r); err != nil {
				bad = append(bad, r)
			}
		}
	}
	switch {
	case len(list) == 0:
		c.report(a, ranges, Converted, "empty: Traefik 1.x let every client through, as tollgate does without an allow list", "")
	case len(bad) > 0:
		c.report(a, ranges, Action, fmt.Sprintf("not a range: %s; Traefik 1.x then let every client through; no allow list is written", quoteList(bad)),
			"fix the ranges and convert again; until then tollgate lets every client through too")
	default:
		mw := c.ingressMiddleware(ic.o, a.keys[ranges], "ipallowlist", &config.Middleware{IPAllowList: &config.IPAllowList{SourceRange: list}})
		ic.allow = append(ic.allow, mw)
		c.report(a, ranges, Converted, fmt.Sprintf("middleware %q (ipAllowList)", mw), "")
	}
}

// headerAnnotations converts the custom and security header annotations
// into a headers middleware.
func (ic *ingressCheck) headerAnnotations() {
	c, a := ic.c, ic.a
	h := &config.Headers{}
	var from []string
	mark := func(name string) { from = append(from, name) }
	for _, f := range []struct {
		name string
		out  *map[string]string
	}{{"custom-request-headers", &h.CustomRequestHeaders}, {"custom-response-headers", &h.CustomResponseHeaders}} {
		if v, ok := a.get(v1Prefix + f.name); ok {
			*f.out = headerMap(v)
			mark(f.name)
		}
	}
	if v, ok := a.get(v1Prefix + "hsts-max-age"); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			h.STSSeconds = n
		}
		mark("hsts-max-age")
	}
	for _, f := range []struct {
		name string
		out  *bool
	}{
		{"hsts-include-subdomains", &h.STSIncludeSubdomains}, {"hsts-preload", &h.STSPreload}, {"force-hsts", &h.ForceSTSHeader},
		{"frame-deny", &h.FrameDeny}, {"content-type-nosniff", &h.ContentTypeNosniff},
	} {
		if a.has(v1Prefix + f.name) {
			*f.out = a.bool(v1Prefix+f.name, false)
			mark(f.name)
		}
	}
	for _, f := range []struct {
		name string
		out  *string
	}{
		{"custom-frame-options-value", &h.CustomFrameOptionsValue}, {"content-security-policy", &h.ContentSecurityPolicy},
		{"referrer-policy", &h.ReferrerPolicy},
	} {
		if v, ok := a.get(v1Prefix + f.name); ok {
			*f.out = v
			mark(f.name)
		}
	}
	set := len(h.CustomRequestHeaders) > 0 || len(h.CustomResponseHeaders) > 0 || h.STSSeconds > 0 || h.STSIncludeSubdomains || h.STSPreload ||
		h.ForceSTSHeader || h.FrameDeny || h.ContentTypeNosniff || h.CustomFrameOptionsValue != "" || h.ContentSecurityPolicy != "" || h.ReferrerPolicy != ""
	switch {
	case len(from) == 0:
	case !set:
		for _, name := range from {
			c.report(a, v1Prefix+name, Converted, "sets nothing (false, 0 or empty), as in Traefik 1.x", "")
		}
	default:
		mw := c.ingressMiddleware(ic.o, a.keys[v1Prefix+from[0]], "headers", &config.Middleware{Headers: h})
		ic.headers = append(ic.headers, mw)
		for _, name := range from {
			c.report(a, v1Prefix+name, Converted, fmt.Sprintf("middleware %q (headers)", mw), "")
		}
	}
	for _, name := range []string{"allowed-hosts", "proxy-headers", "ssl-host", "ssl-force-host", "ssl-proxy-headers", "browser-xss-filter", "custom-browser-xss-value", "public-key", "is-development"} {
		if _, ok := a.get(v1Prefix + name); !ok {
			continue
		}
		advice := "set it in the backend if you still need it"
		switch name {
		case "allowed-hosts":
			advice = "tollgate routes by the Ingress's hosts only: list exactly the allowed hosts in its rules"
		case "ssl-proxy-headers":
			advice = "with trusted load balancers, tollgate takes the scheme from their X-Forwarded-Proto"
		case "browser-xss-filter", "custom-browser-xss-value":
			advice = "browsers no longer use X-XSS-Protection; add it to custom-response-headers' middleware if you must"
		}
		c.report(a, v1Prefix+name, Unsupported, "has no equivalent in tollgate's headers middleware; not converted", advice)
	}
}

// headerMap reads Traefik's "Name:value||Name2:value2".
func headerMap(v string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(v, "||") {
		name, value, ok := strings.Cut(part, ":")
		if name = strings.TrimSpace(name); ok && name != "" {
			out[name] = strings.TrimSpace(value)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// basicAuthDir is where the converted basicAuth middlewares read the
// users of an Ingress's Secret: <dir>/<namespace>/<secret>.
const basicAuthDir = "/etc/tollgate/basic-auth"

// authentication converts auth-type and the annotations that go with it.
func (ic *ingressCheck) authentication() {
	c, a := ic.c, ic.a
	const (
		authType = v1Prefix + "auth-type"
		secret   = v1Prefix + "auth-secret"
		realm    = v1Prefix + "auth-realm"
		header   = v1Prefix + "auth-header-field"
		remove   = v1Prefix + "auth-remove-header"
	)
	forward := []string{"auth-url", "auth-trust-headers", "auth-response-headers", "auth-tls-secret", "auth-tls-insecure"}
	t, ok := a.get(authType)
	if !ok {
		for _, name := range append([]string{"auth-secret", "auth-realm", "auth-header-field", "auth-remove-header"}, forward...) {
			if _, ok := a.get(v1Prefix + name); ok {
				c.report(a, v1Prefix+name, Converted, "no effect without auth-type, as in Traefik 1.x", "remove it")
			}
		}
		return
	}
	switch strings.ToLower(t) {
	case "basic":
		s, _ := a.get(secret)
		if s == "" {
			c.report(a, authType, Changed, "basic without auth-secret: Traefik 1.x refused the Ingress and did not serve it; tollgate would, without authentication", "add auth-secret, or keep the Ingress away from tollgate")
			ic.unsafe = append(ic.unsafe, "the basic authentication Traefik 1.x required (it even refused to serve it without auth-secret)")
			break
		}
		ba := &config.BasicAuth{UsersFile: basicAuthDir + "/" + ic.o.namespace() + "/" + s, Realm: defaultV1IngressClass}
		if r, ok := a.get(realm); ok && r != "" && r != defaultV1IngressClass {
			c.report(a, realm, Changed, fmt.Sprintf("Traefik 1.x refused realm %q and did not serve the Ingress; tollgate serves it with realm %q", truncate(r, 40), r), "")
			ba.Realm = r
		}
		ba.HeaderField, _ = a.get(header)
		if a.has(remove) {
			ba.RemoveHeader = a.bool(remove, false)
		}
		mw := c.ingressMiddleware(ic.o, a.keys[authType], "auth", &config.Middleware{BasicAuth: ba})
		ic.auth = append(ic.auth, mw)
		c.report(a, authType, Action, fmt.Sprintf("middleware %q (basicAuth, realm %q) reads the users from %s", mw, ba.Realm, ba.UsersFile),
			fmt.Sprintf("give every replica the Secret %s/%s's users in that file (mount the Secret's only key there); lines hashed with MD5 ($apr1$) or SHA-1 must be hashed again with htpasswd -nB NAME, tollgate checks bcrypt only", ic.o.namespace(), s))
		c.report(a, secret, Converted, fmt.Sprintf("the users of middleware %q", mw), "")
		for _, k := range []string{header, remove} {
			if a.has(k) {
				c.report(a, k, Converted, fmt.Sprintf("part of middleware %q", mw), "")
			}
		}
		if a.used[realm] && ba.Realm == defaultV1IngressClass {
			c.report(a, realm, Converted, "the realm of middleware "+strconv.Quote(mw), "")
		}
	case "forward":
		ic.forwardAuth()
	case "digest":
		c.report(a, authType, Unsupported, "digest authentication has no equivalent in tollgate; not converted",
			"authenticate in the backend, or in a proxy in front of it")
		ic.unsafe = append(ic.unsafe, "the digest authentication Traefik 1.x required")
	default:
		c.report(a, authType, Changed, fmt.Sprintf("%q: Traefik 1.x refused the Ingress and did not serve it; tollgate would, without authentication", truncate(t, 40)), "fix or remove it")
		ic.unsafe = append(ic.unsafe, "the authentication its auth-type asked for")
	}
	for _, name := range append([]string{"auth-secret", "auth-realm", "auth-header-field", "auth-remove-header"}, forward...) {
		if _, ok := a.get(v1Prefix + name); ok && !ic.reported(v1Prefix+name) {
			c.report(a, v1Prefix+name, Unsupported, "part of the authentication, which is not converted", "")
		}
	}
}

// forwardAuthDir is where the converted forwardAuth middlewares read the
// client certificate of an Ingress's auth-tls-secret:
// <dir>/<namespace>/<secret>/tls.crt and tls.key.
const forwardAuthDir = "/etc/tollgate/forward-auth"

// forwardAuth converts auth-type forward with auth-url,
// auth-trust-headers, auth-response-headers, auth-tls-secret and
// auth-tls-insecure into a forwardAuth middleware.
func (ic *ingressCheck) forwardAuth() {
	c, a := ic.c, ic.a
	const (
		authType = v1Prefix + "auth-type"
		authURL  = v1Prefix + "auth-url"
		trust    = v1Prefix + "auth-trust-headers"
		headers  = v1Prefix + "auth-response-headers"
		secret   = v1Prefix + "auth-tls-secret"
		insecure = v1Prefix + "auth-tls-insecure"
	)
	addr, _ := a.get(authURL)
	if addr == "" {
		c.report(a, authType, Changed, "forward without auth-url: Traefik 1.x refused the Ingress and did not serve it; tollgate would, without authentication", "add auth-url, or keep the Ingress away from tollgate")
		ic.unsafe = append(ic.unsafe, "the forward authentication Traefik 1.x required (it even refused to serve it without auth-url)")
		return
	}
	fa := &config.ForwardAuth{Address: addr, TrustForwardHeader: a.bool(trust, false), AuthResponseHeaders: a.list(headers)}
	// Traefik 1.x read auth-tls-insecure only with auth-tls-secret.
	s, _ := a.get(secret)
	if s != "" {
		dir := forwardAuthDir + "/" + ic.o.namespace() + "/" + s
		fa.TLS = &config.ClientTLS{Cert: dir + "/tls.crt", Key: dir + "/tls.key", InsecureSkipVerify: a.bool(insecure, false)}
	} else if a.has(insecure) {
		c.report(a, insecure, Converted, "no effect without auth-tls-secret, as in Traefik 1.x", "remove it")
	}
	mw := c.ingressMiddleware(ic.o, a.keys[authType], "auth", &config.Middleware{ForwardAuth: fa})
	ic.auth = append(ic.auth, mw)
	c.report(a, authType, Converted, fmt.Sprintf("middleware %q (forwardAuth): every request is first sent, as a GET, to %s, as in Traefik 1.x", mw, addr), "")
	c.report(a, authURL, Converted, fmt.Sprintf("the address of middleware %q", mw), "")
	for _, k := range []string{trust, headers, insecure} {
		if a.has(k) && (k != insecure || s != "") {
			c.report(a, k, Converted, fmt.Sprintf("part of middleware %q", mw), "")
		}
	}
	if s != "" {
		c.report(a, secret, Action, fmt.Sprintf("middleware %q presents the client certificate of %s/tls.crt and tls.key", mw, forwardAuthDir+"/"+ic.o.namespace()+"/"+s),
			fmt.Sprintf("give every replica the Secret %s/%s's tls.crt and tls.key in that directory (mount the Secret there)", ic.o.namespace(), s))
	}
}

// reported tells whether an annotation of the Ingress has a report line.
func (ic *ingressCheck) reported(name string) bool {
	key := ic.o.id() + " " + ic.a.keys[name]
	return slices.ContainsFunc(ic.c.items, func(it Item) bool { return it.src == ic.o.src && it.Key == key })
}

// clientCert converts pass-tls-cert (traefik.frontend.passTLSCert) and
// pass-client-tls-cert.
func (ic *ingressCheck) clientCert() {
	c, a := ic.c, ic.a
	const (
		passCert   = v1Prefix + "pass-tls-cert"
		passClient = v1Prefix + "pass-client-tls-cert"
	)
	var p *config.PassTLSClientCert
	at := ""
	if a.has(passCert) {
		on := a.bool(passCert, ic.k.passTLSCert)
		if on {
			p, at = &config.PassTLSClientCert{PEM: true}, passCert
		} else {
			ic.certDone = true // overrides enablePassTLSCert
			c.report(a, passCert, Converted, "false: the client certificate is not passed", "")
		}
	}
	if v, ok := a.get(passClient); ok {
		var spec struct {
			PEM   bool `json:"pem"`
			Infos *struct {
				NotAfter  bool            `json:"notafter"`
				NotBefore bool            `json:"notbefore"`
				Sans      bool            `json:"sans"`
				Subject   *v1CertSubjects `json:"subject"`
				Issuer    *v1CertSubjects `json:"issuer"`
			} `json:"infos"`
		}
		if err := yaml.Unmarshal([]byte(v), &spec); err != nil {
			c.report(a, passClient, Unsupported, fmt.Sprintf("not the YAML Traefik 1.x read (%v); it passed nothing; not converted", cleanYAMLError(err)), "")
		} else {
			q := &config.PassTLSClientCert{PEM: spec.PEM}
			if in := spec.Infos; in != nil {
				q.Info = &config.TLSClientCertInfo{NotAfter: in.NotAfter, NotBefore: in.NotBefore, SANs: in.Sans, Subject: in.Subject.subject(), Issuer: in.Issuer.subject()}
			}
			if !q.PEM && q.Info == nil {
				c.report(a, passClient, Converted, "passes nothing, as in Traefik 1.x", "")
			} else {
				if p != nil {
					c.report(a, passCert, Converted, "pass-client-tls-cert is set too and says what is passed", "")
				}
				p, at = q, passClient
			}
		}
	}
	if p == nil {
		return
	}
	mw := c.ingressMiddleware(ic.o, a.keys[at], "client-cert", &config.Middleware{PassTLSClientCert: p})
	ic.auth = append(ic.auth, mw)
	ic.certDone = true
	c.report(a, at, Converted, fmt.Sprintf("middleware %q (passTLSClientCert)", mw), "the header is X-Forwarded-Tls-Client-Cert (and -Info), as in Traefik")
}

// v1CertSubjects are the subject fields pass-client-tls-cert chose.
type v1CertSubjects struct {
	Country         bool `json:"country"`
	Province        bool `json:"province"`
	Locality        bool `json:"locality"`
	Organization    bool `json:"organization"`
	CommonName      bool `json:"commonname"`
	SerialNumber    bool `json:"serialnumber"`
	DomainComponent bool `json:"domaincomponent"`
}

func (s *v1CertSubjects) subject() *config.TLSClientCertSubject {
	if s == nil {
		return nil
	}
	return &config.TLSClientCertSubject{Country: s.Country, Province: s.Province, Locality: s.Locality, Organization: s.Organization,
		CommonName: s.CommonName, SerialNumber: s.SerialNumber, DomainComponent: s.DomainComponent}
}

// hostHeader converts preserve-host (traefik.frontend.passHostHeader).
func (ic *ingressCheck) hostHeader() {
	const name = v1Prefix + "preserve-host"
	if !ic.a.has(name) {
		return
	}
	if ic.a.bool(name, true) {
		ic.c.report(ic.a, name, Converted, "true: the client's Host header is passed, as tollgate does for every Ingress", "")
		return
	}
	ic.c.report(ic.a, name, Unsupported, "false: tollgate passes the client's Host header to every Ingress backend; not converted",
		"if the backend needs its own Host, set it with a headers middleware's customRequestHeaders named in tollgate.io/router.middlewares")
}

// rateLimits converts rate-limit: one rateLimit middleware per rate set.
func (ic *ingressCheck) rateLimits() {
	c, a := ic.c, ic.a
	const name = v1Prefix + "rate-limit"
	v, ok := a.get(name)
	if !ok {
		return
	}
	var spec struct {
		ExtractorFunc string `json:"extractorfunc"`
		RateSet       map[string]struct {
			Period  any   `json:"period"`
			Average int64 `json:"average"`
			Burst   int64 `json:"burst"`
		} `json:"rateset"`
	}
	if err := yaml.Unmarshal([]byte(v), &spec); err != nil {
		c.report(a, name, Unsupported, fmt.Sprintf("not the YAML Traefik 1.x read (%v): it limited nothing; not converted", cleanYAMLError(err)), "")
		return
	}
	var crit *config.SourceCriterion
	switch ex := spec.ExtractorFunc; {
	case ex == "" || ex == "client.ip":
	case ex == "request.host":
		crit = &config.SourceCriterion{RequestHost: true}
	case strings.HasPrefix(ex, "request.header."):
		crit = &config.SourceCriterion{RequestHeaderName: strings.TrimPrefix(ex, "request.header.")}
	default:
		c.report(a, name, Unsupported, fmt.Sprintf("extractorfunc %q: Traefik 1.x accepts client.ip, request.host or request.header.NAME, and limited nothing; not converted", truncate(ex, 40)), "")
		return
	}
	var made []string
	for _, set := range slices.Sorted(maps.Keys(spec.RateSet)) {
		r := spec.RateSet[set]
		var period time.Duration
		switch p := r.Period.(type) {
		case float64:
			period = time.Duration(p) * time.Second
		case string:
			if d, err := time.ParseDuration(p); err == nil {
				period = d
			} else if n, err := strconv.Atoi(p); err == nil {
				period = time.Duration(n) * time.Second
			}
		}
		if r.Average <= 0 || period < 0 || r.Burst < 0 {
			continue
		}
		var cr *config.SourceCriterion
		if crit != nil {
			cp := *crit
			cr = &cp
		}
		mw := c.ingressMiddleware(ic.o, a.keys[name], "ratelimit-"+set, &config.Middleware{RateLimit: &config.RateLimit{
			Average: r.Average, Burst: r.Burst, Period: config.Duration(period), SourceCriterion: cr,
		}})
		made = append(made, mw)
	}
	if len(made) == 0 {
		c.report(a, name, Converted, "no rate set with an average above 0: Traefik 1.x limited nothing, nor does tollgate", "")
		return
	}
	ic.rateLimit = append(ic.rateLimit, made...)
	c.report(a, name, Converted, fmt.Sprintf("middlewares %s (rateLimit, one per rate set)", quoteList(made)), "")
}

// checkService checks the Traefik annotations of a Service, and returns
// the middlewares the Ingresses routing to it need.
func (c *converter) checkService(o *k8sObject) []string {
	a := c.v1Annotations(o)
	var mws []string
	const cb = v1Prefix + "circuit-breaker-expression"
	if e, ok := a.get(cb); ok {
		if strings.TrimSpace(e) == "" {
			c.report(a, cb, Converted, "empty: no circuit breaker, as in Traefik 1.x", "")
		} else {
			mw := c.ingressMiddleware(o, a.keys[cb], "circuit-breaker", &config.Middleware{CircuitBreaker: &config.CircuitBreaker{Expression: e}})
			mws = append(mws, mw)
			c.report(a, cb, Converted, fmt.Sprintf("middleware %q (circuitBreaker)", mw), "the Ingresses routing to this Service get it in tollgate.io/router.middlewares (see their lines)")
		}
	}
	if m, ok := a.get(v1Prefix + "load-balancer-method"); ok {
		if m == "drr" {
			c.report(a, v1Prefix+"load-balancer-method", Changed, "dynamic round robin became round robin over the Service's endpoints", "")
		} else {
			c.report(a, v1Prefix+"load-balancer-method", Converted, "round robin over the Service's endpoints", "")
		}
	}
	for _, name := range []string{v1Prefix + "affinity", v1Prefix + "session-cookie-name", "traefik.backend.loadbalancer.sticky"} {
		if _, ok := a.get(name); ok {
			c.report(a, name, Unsupported, "sticky sessions have no equivalent for Ingress backends; not converted", "keep the session state where every pod reads it")
		}
	}
	for _, name := range []string{"max-conn-amount", "max-conn-extractor-func", "buffering", "responseforwarding-flushinterval"} {
		if _, ok := a.get(v1Prefix + name); ok {
			c.report(a, v1Prefix+name, Unsupported, "has no equivalent in tollgate; not converted", cmp.Or(unsupportedAnnotationAdvice[name], "limit connections in the backend"))
		}
	}
	if _, ok := a.get(annClass); ok {
		c.report(a, annClass, Unknown, "read on Ingresses only; on a Service it had no effect", "remove it")
	}
	c.leftoverAnnotations(a)
	return mws
}
