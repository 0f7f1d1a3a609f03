package nginx

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

func (t *translation) limits() {
	rps, rpsOK := t.integer("limit-rps", 1, 1<<31)
	rpm, rpmOK := t.integer("limit-rpm", 1, 1<<31)
	mult, multOK := t.integer("limit-burst-multiplier", 1, 1000)
	if !multOK {
		mult = 5
	}
	for _, l := range []struct {
		name   string
		n      int64
		ok     bool
		period time.Duration
	}{{"limit-rps", rps, rpsOK, time.Second}, {"limit-rpm", rpm, rpmOK, time.Minute}} {
		if !l.ok {
			continue
		}
		t.add(l.name, &config.Middleware{RateLimit: &config.RateLimit{Average: l.n, Period: config.Duration(l.period), Burst: l.n * mult}}, false)
		t.report(l.name, Changed, "rateLimit per client address with a burst of %d; excess requests are answered with 429 at once (ingress-nginx: 503 by default)", l.n*mult)
	}
	if multOK {
		if rpsOK || rpmOK {
			t.report("limit-burst-multiplier", Supported, "")
		} else {
			t.report("limit-burst-multiplier", Unsupported, "without limit-rps or limit-rpm it does nothing")
		}
	}
	if n, ok := t.integer("limit-connections", 1, 1<<31); ok {
		t.add("limit-connections", &config.Middleware{InFlightReq: &config.InFlightReq{Amount: n}}, false)
		t.report("limit-connections", Changed, "inFlightReq: limits the requests in progress per client address, not its connections; excess requests are answered with 429 (ingress-nginx: 503)")
	}
	for _, n := range []string{"limit-rate", "limit-rate-after", "limit-whitelist", "limit-allowlist"} {
		if _, ok := t.get(n); ok {
			t.report(n, Unsupported, "tollgate has no equivalent; ignored")
		}
	}
}

// nginxGroup is a $N reference in an nginx rewrite target.
var nginxGroup = regexp.MustCompile(`\$([0-9]+)`)

func (t *translation) rewrite() {
	target, targetOK := t.get("rewrite-target")
	useRegex, regexOK := t.boolean("use-regex")
	if !targetOK && !useRegex {
		if regexOK {
			t.report("use-regex", Supported, "")
		}
		return
	}
	// With either annotation, ingress-nginx takes the paths (but Exact
	// ones) as case-insensitive regular expressions matched at the start.
	t.r.Routes = map[int]Route{}
	var rewrites []int
	for i, p := range t.ing.Paths {
		re := "(?i)^" + p.Path
		_, err := compile(re)
		if err == nil {
			_, err = compile("(?i)^(?:" + p.Path + ").*")
		}
		if err != nil || !ruleText(p.Path) {
			t.refuse(cmpName(regexOK && useRegex, "use-regex", "rewrite-target"), "path %q is not a regular expression tollgate can match (RE2 syntax: no lookaround or backreferences; UTF-8 without backquote or control characters)", p.Path)
			t.r.Routes = nil
			return
		}
		if p.Exact {
			// An Exact path keeps its matcher; rewrite-target still
			// rewrites it.
			t.r.Routes[i] = Route{}
		} else {
			t.r.Routes[i] = Route{Match: "PathRegexp(`" + re + "`)", Priority: 2 * len(p.Path)}
		}
		rewrites = append(rewrites, i)
	}
	if regexOK {
		t.report("use-regex", Changed, "the paths become PathRegexp matchers, case-insensitive and anchored at the start as in ingress-nginx; ingress-nginx also applies this to every other Ingress of the same host, tollgate only to this one")
	} else if targetOK {
		t.seen["use-regex"] = true
	}
	if !targetOK {
		for i, rt := range t.r.Routes {
			if rt.Match == "" {
				delete(t.r.Routes, i)
			}
		}
		return
	}
	if target == "" || strings.ContainsAny(target, " \t") {
		t.refuse("rewrite-target", "%q is not a path", target)
		t.r.Routes = nil
		return
	}
	// nginx replaces the whole URI; Go's replacement only the match, so the
	// expression takes the rest of the path too. $1 becomes ${1}, so that
	// "$1abc" is not read as a group named "1abc".
	repl := nginxGroup.ReplaceAllString(strings.ReplaceAll(target, "${", "$${"), "$${$1}")
	for _, i := range rewrites {
		n := t.name("rewrite-" + strconv.Itoa(i))
		t.r.Middlewares[n] = &config.Middleware{ReplacePathRegex: &config.ReplacePathRegex{Regex: "(?i)^(?:" + t.ing.Paths[i].Path + ").*", Replacement: repl}}
		r := t.r.Routes[i]
		r.Middleware = n
		t.r.Routes[i] = r
	}
	t.report("rewrite-target", Changed, "replacePathRegex, last in each path's routers; the regular expressions are Go's (RE2), matched against the escaped path")
}

func cmpName(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// size parses an nginx size: bytes, or a number with k, m or g.
func size(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number followed by k, m or g)", s)
	}
	return n * mult, nil
}

func (t *translation) body() {
	v, ok := t.get("proxy-body-size")
	if !ok {
		return
	}
	n, err := size(v)
	if err != nil {
		t.report("proxy-body-size", Unsupported, "%v; no limit is set", err)
		return
	}
	if n == 0 {
		t.report("proxy-body-size", Supported, "no limit")
		return
	}
	t.add("body-size", &config.Middleware{Buffering: &config.Buffering{MaxRequestBodyBytes: n}}, false)
	t.report("proxy-body-size", Changed, "buffering with maxRequestBodyBytes %d: larger requests get 413; the response is buffered too", n)
}
