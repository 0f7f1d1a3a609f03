package config

import (
	"fmt"
	"math"
	"mime"
	"reflect"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config/breaker"
)

// typesOf lists by TOML name the fields of a one-of struct (a middleware,
// a service): those set, and all of them.
func typesOf[T any](m *T) (set, all []string) {
	rv := reflect.ValueOf(m).Elem()
	for _, f := range fieldsOf(rv.Type()) {
		all = append(all, f.name)
		if !rv.Field(f.index).IsNil() {
			set = append(set, f.name)
		}
	}
	return set, all
}

// oneType checks that the one-of struct m (a service, a middleware: what)
// sets exactly one type, reporting at path when it sets none (example
// says what to add) or several (split says what to do instead). It
// returns a function giving the path of a key below the type's table.
func oneType[T any](v *validator, path []string, m *T, what, example, split string) (at func(seg ...string) []string, ok bool) {
	set, all := typesOf(m)
	switch len(set) {
	case 0:
		v.add(path, "no %s type is set: add one of %s%s", what, strings.Join(all, ", "), example)
		return nil, false
	case 1:
		return func(seg ...string) []string { return append(slices.Clip(path), append([]string{set[0]}, seg...)...) }, true
	}
	v.add(path, "one %s has one type, found %s; define one %s for each%s", what, strings.Join(set, " and "), what, split)
	return nil, false
}

func (v *validator) middleware(path []string, name string, m *Middleware) {
	at, ok := oneType(v, path, m, "middleware", "", " and list them in a chain")
	if !ok {
		return
	}
	switch {
	case m.AddPrefix != nil:
		v.check(at("prefix"), checkPathPrefix(m.AddPrefix.Prefix))
	case m.StripPrefix != nil:
		if len(m.StripPrefix.Prefixes) == 0 {
			v.add(at("prefixes"), "at least one prefix is required, such as [\"/api\"]")
		}
		for i, pr := range m.StripPrefix.Prefixes {
			v.check(at("prefixes", fmt.Sprint(i)), checkPathPrefix(pr))
		}
	case m.RedirectScheme != nil:
		r := m.RedirectScheme
		if r.Scheme != "http" && r.Scheme != "https" {
			v.add(at("scheme"), "scheme %q: use https or http", r.Scheme)
		}
		if r.Port != "" {
			v.check(at("port"), checkPort(r.Port))
		}
	case m.RedirectRegex != nil:
		v.regexp(at("regex"), "regex", m.RedirectRegex.Regex)
		if m.RedirectRegex.Replacement == "" {
			v.add(at("replacement"), "replacement is required, such as \"https://example.com/${1}\"")
		}
	case m.HeaderRedirect != nil:
		v.headerRedirect(at(), m.HeaderRedirect)
	case m.Headers != nil:
		v.headerMap(at("customRequestHeaders"), m.Headers.CustomRequestHeaders)
		v.headerMap(at("customResponseHeaders"), m.Headers.CustomResponseHeaders)
		if m.Headers.STSSeconds < 0 {
			v.add(at("stsSeconds"), "stsSeconds %d is negative", m.Headers.STSSeconds)
		}
	case m.BasicAuth != nil:
		v.basicAuth(at(), m.BasicAuth)
	case m.IPAllowList != nil:
		l := m.IPAllowList
		if len(l.SourceRange) == 0 {
			v.add(at("sourceRange"), "at least one IP or CIDR range is required, such as [\"10.0.0.0/8\"]")
		}
		for i, r := range l.SourceRange {
			v.check(at("sourceRange", fmt.Sprint(i)), checkIPOrCIDR(r))
		}
		v.ipStrategy(at("ipStrategy"), l.IPStrategy)
		if c := l.RejectStatusCode; c != 0 && (c < 400 || c > 599) {
			v.add(at("rejectStatusCode"), "rejectStatusCode %d: use an error status from 400 to 599", c)
		}
	case m.RateLimit != nil:
		v.rateLimit(at(), m.RateLimit)
	case m.Retry != nil:
		if m.Retry.Attempts < 1 {
			v.add(at("attempts"), "attempts must be at least 1")
		}
		v.nonNegative(at("initialInterval"), m.Retry.InitialInterval)
	case m.CircuitBreaker != nil:
		v.circuitBreaker(at(), m.CircuitBreaker)
	case m.Compress != nil:
		c := m.Compress
		if len(c.IncludedContentTypes) > 0 && len(c.ExcludedContentTypes) > 0 {
			v.add(at(), "includedContentTypes and excludedContentTypes exclude each other; keep one")
		}
		if c.MinResponseBodyBytes < 0 {
			v.add(at("minResponseBodyBytes"), "minResponseBodyBytes %d is negative", c.MinResponseBodyBytes)
		}
		for i, ct := range c.IncludedContentTypes {
			v.check(at("includedContentTypes", fmt.Sprint(i)), checkMediaType(ct))
		}
		for i, ct := range c.ExcludedContentTypes {
			v.check(at("excludedContentTypes", fmt.Sprint(i)), checkMediaType(ct))
		}
		for i, e := range c.Encodings {
			if !slices.Contains([]string{"gzip", "br", "zstd"}, e) {
				v.add(at("encodings", fmt.Sprint(i)), "encoding %q: use gzip, br or zstd", e)
			}
		}
	case m.PassTLSClientCert != nil:
		if !m.PassTLSClientCert.PEM && m.PassTLSClientCert.Info == nil {
			v.add(at(), "nothing to pass: set pem = true or choose fields under [.info]")
		}
	case m.Chain != nil:
		v.chain(at(), name)
	case m.ForwardAuth != nil:
		v.forwardAuth(at(), m.ForwardAuth)
	case m.Errors != nil:
		v.errorPages(at(), m.Errors)
	case m.ReplacePath != nil:
		v.replacePath(at(), m.ReplacePath)
	case m.ReplacePathRegex != nil:
		v.replacePathRegex(at(), m.ReplacePathRegex)
	case m.StripPrefixRegex != nil:
		v.stripPrefixRegex(at(), m.StripPrefixRegex)
	case m.InFlightReq != nil:
		v.inFlightReq(at(), m.InFlightReq)
	case m.Buffering != nil:
		v.buffering(at(), m.Buffering)
	}
}

// checkPathPrefix accepts a URL path prefix: it starts with "/" and has no
// control characters.
func checkPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("prefix %q must start with \"/\"", truncate(p, 80))
	}
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return fmt.Errorf("prefix %q contains a control character", truncate(p, 80))
	}
	return nil
}

// checkMediaType accepts a content type such as "text/html" or
// "text/html; charset=utf-8".
func checkMediaType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return fmt.Errorf("%q is not a media type such as text/html", truncate(ct, 80))
	}
	return nil
}

func (v *validator) headerRedirect(path []string, h *HeaderRedirect) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	v.check(at("header"), checkToken("header name", h.Header))
	if len(h.Targets) == 0 {
		v.add(at("targets"), "at least one target is required, such as targets = { eu = \"https://eu.example.com\" }")
	}
	for _, k := range sorted(h.Targets) {
		v.check(at("targets", k), checkMapKey("header value", k))
		v.check(at("targets", k), checkURL(h.Targets[k], "https", "http"))
	}
	if h.Default != "" {
		v.check(at("default"), checkURL(h.Default, "https", "http"))
	}
}

func (v *validator) basicAuth(path []string, b *BasicAuth) {
	if len(b.Users) == 0 && b.UsersFile == "" {
		v.add(path, "set users (\"name:bcrypt-hash\", from htpasswd -nB name) or usersFile")
	}
	seen := map[string]bool{}
	for i, u := range b.Users {
		up := append(slices.Clip(path), "users", fmt.Sprint(i))
		name, hash, ok := strings.Cut(u, ":")
		switch {
		case !ok || name == "":
			v.add(up, "user %d is not \"name:hash\"", i)
		case !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$"):
			v.add(up, "the password of user %q is not a bcrypt hash; create one with htpasswd -nB %s", name, name)
		case seen[name]:
			v.add(up, "user %q is listed twice", name)
		}
		seen[name] = true
	}
	if b.HeaderField != "" {
		v.check(append(slices.Clip(path), "headerField"), checkToken("header name", b.HeaderField))
	}
}

func (v *validator) ipStrategy(path []string, s *IPStrategy) {
	if s == nil {
		return
	}
	if s.Depth < 0 {
		v.add(append(slices.Clip(path), "depth"), "depth %d is negative", s.Depth)
	}
	if s.Depth > 0 && len(s.ExcludedIPs) > 0 {
		v.add(path, "depth and excludedIPs exclude each other; keep one")
	}
	for i, ip := range s.ExcludedIPs {
		v.check(append(slices.Clip(path), "excludedIPs", fmt.Sprint(i)), checkIPOrCIDR(ip))
	}
}

func (v *validator) rateLimit(path []string, r *RateLimit) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if r.Average <= 0 {
		v.add(at("average"), "average must be at least 1 request per period")
	}
	if r.Burst < 0 {
		v.add(at("burst"), "burst %d is negative", r.Burst)
	} else if r.Burst > math.MaxInt32 {
		v.add(at("burst"), "burst %d is too large: at most %d", r.Burst, math.MaxInt32)
	}
	v.nonNegative(at("period"), r.Period)
	v.sourceCriterion(at("sourceCriterion"), r.SourceCriterion)
}

// sourceCriterion checks how rateLimit and inFlightReq group requests.
func (v *validator) sourceCriterion(path []string, sc *SourceCriterion) {
	if sc == nil {
		return
	}
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	n := 0
	for _, set := range []bool{sc.IPStrategy != nil, sc.RequestHeaderName != "", sc.RequestHost} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.add(path, "set exactly one of ipStrategy, requestHeaderName and requestHost")
	}
	v.ipStrategy(at("ipStrategy"), sc.IPStrategy)
	if sc.RequestHeaderName != "" {
		v.check(at("requestHeaderName"), checkToken("header name", sc.RequestHeaderName))
	}
}

func (v *validator) circuitBreaker(path []string, c *CircuitBreaker) {
	at := func(seg ...string) []string { return append(slices.Clip(path), seg...) }
	if c.Expression == "" {
		v.add(at("expression"), "expression is required, such as \"NetworkErrorRatio() > 0.5\"")
	} else if _, err := breaker.Parse(c.Expression); err != nil {
		v.add(at("expression"), "invalid expression: %v", err)
	}
	v.nonNegative(at("checkPeriod"), c.CheckPeriod)
	v.nonNegative(at("fallbackDuration"), c.FallbackDuration)
	v.nonNegative(at("recoveryDuration"), c.RecoveryDuration)
	if c.ResponseCode != 0 && (c.ResponseCode < 400 || c.ResponseCode > 599) {
		v.add(at("responseCode"), "responseCode %d: use an error status from 400 to 599", c.ResponseCode)
	}
}

// chain checks a chain's members; cycles are found once for all chains by
// chainCycles.
func (v *validator) chain(path []string, name string) {
	members := v.cfg.HTTP.Middlewares[name].Chain.Middlewares
	if len(members) == 0 {
		v.add(append(slices.Clip(path), "middlewares"), "a chain needs at least one middleware")
	}
	for i, m := range members {
		v.ref(append(slices.Clip(path), "middlewares", fmt.Sprint(i)), "middleware", m, v.middlewareNames)
	}
}

// chainCycles reports every group of chains that contain each other, once
// per group, at its first chain by name. It runs in time linear in the
// number of chain memberships, however tangled the chains are.
func (v *validator) chainCycles() {
	mws := v.cfg.HTTP.Middlewares
	next := func(name string) []string {
		if mw := mws[name]; mw != nil && mw.Chain != nil {
			return mw.Chain.Middlewares
		}
		return nil
	}
	exists := func(name string) bool { return mws[name] != nil }
	for _, group := range stronglyConnected(v.middlewareNames, exists, next) {
		first := group[0]
		in := map[string]bool{}
		for _, n := range group {
			in[n] = true
		}
		if len(group) == 1 && !slices.Contains(next(first), first) {
			continue
		}
		cycle := shortestCycle(first, func(n string) []string {
			return slices.DeleteFunc(slices.Clone(next(n)), func(m string) bool { return !in[m] })
		})
		path := p("http", "middlewares", first, "chain", "middlewares")
		if len(group) == 1 {
			v.add(path, "chain %q contains itself", first)
			continue
		}
		v.add(path, "chains %s contain each other: %s; break the cycle", strings.Join(group, ", "), strings.Join(cycle, " → "))
	}
}

// stronglyConnected returns the strongly connected components of the graph
// (Tarjan's algorithm), each sorted by name, in order of their first
// name.
func stronglyConnected(nodes []string, exists func(string) bool, next func(string) []string) [][]string {
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	var visit func(n string)
	visit = func(n string) {
		index[n], low[n] = len(index), len(index)
		stack = append(stack, n)
		onStack[n] = true
		for _, m := range next(n) {
			if _, defined := index[m]; !defined {
				if !exists(m) {
					continue
				}
				visit(m)
				low[n] = min(low[n], low[m])
			} else if onStack[m] {
				low[n] = min(low[n], index[m])
			}
		}
		if low[n] != index[n] {
			return
		}
		var group []string
		for {
			m := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[m] = false
			group = append(group, m)
			if m == n {
				break
			}
		}
		slices.Sort(group)
		out = append(out, group)
	}
	for _, n := range nodes {
		if _, done := index[n]; !done {
			visit(n)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// shortestCycle returns the shortest path from start back to start, found
// breadth first.
func shortestCycle(start string, next func(string) []string) []string {
	parent := map[string]string{}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range next(cur) {
			if m == start {
				var back []string
				for at := cur; at != start; at = parent[at] {
					back = append(back, at)
				}
				slices.Reverse(back)
				return append(append([]string{start}, back...), start)
			}
			if _, seen := parent[m]; !seen {
				parent[m] = cur
				queue = append(queue, m)
			}
		}
	}
	return nil
}
