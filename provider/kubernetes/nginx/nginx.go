package nginx

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// Prefix starts every annotation this package reads.
const Prefix = "nginx.ingress.kubernetes.io/"

// maxValue bounds the length of an annotation value this package parses;
// a longer one is reported and ignored.
const maxValue = 4096

// Ingress is what Translate needs of an Ingress.
type Ingress struct {
	Namespace, Name string
	// Annotations of the Ingress; only those starting with Prefix are
	// read.
	Annotations map[string]string
	// Paths are the paths of its rules.
	Paths []Path
	// TLS says the Ingress has a tls section.
	TLS bool
}

// Path is one path of an Ingress rule.
type Path struct {
	// Host of the rule; empty for any host.
	Host string
	// Path as written in the Ingress.
	Path string
	// Exact is true for pathType Exact.
	Exact bool
}

// Secrets reads the data of a Secret. An error means the Secret cannot be
// read (missing, forbidden).
type Secrets interface {
	SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// Status says how an annotation was carried over.
type Status int

const (
	// Supported: tollgate does what ingress-nginx does.
	Supported Status = iota
	// Changed: carried over with a different meaning, told in the note.
	Changed
	// Unsupported: not carried over; the note says why and what to do.
	Unsupported
)

// MarshalText writes the status as its name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Status) String() string {
	switch s {
	case Supported:
		return "supported"
	case Changed:
		return "changed"
	default:
		return "unsupported"
	}
}

// Entry reports one annotation.
type Entry struct {
	// Annotation is the full annotation name.
	Annotation string `json:"annotation"`
	Status     Status `json:"status"`
	// Note says what changed, or why it is unsupported and what to do.
	// It never contains a Secret's content.
	Note string `json:"note,omitempty"`
}

func (e Entry) String() string {
	if e.Note == "" {
		return e.Annotation + ": " + e.Status.String()
	}
	return e.Annotation + ": " + e.Status.String() + ": " + e.Note
}

// Route replaces the path match of one path of the Ingress.
type Route struct {
	// Match, when set, replaces the provider's path matcher, such as
	// "PathRegexp(`(?i)^/api(/|$)(.*)`)"; empty keeps it (Exact paths).
	Match string
	// Priority of the route; zero keeps the provider's.
	Priority int
	// Middleware, when set, names the replacePathRegex middleware
	// (rewrite-target) that goes last in the path's routers.
	Middleware string
}

// Canary says the Ingress is a canary of the Ingress with the same host
// and path that is not one.
type Canary struct {
	// Weight, when set, sends Weight out of Total requests to the canary
	// (see WeightedService).
	Weight *int
	// Total is the sum of the weights, 100 unless canary-weight-total.
	Total int
	// Match, when set, is a matcher sending a request to the canary; it is
	// ANDed with the main route's rule in a router of higher priority.
	Match string
	// NeverMatch, when set, is a matcher sending a request to the main
	// Ingress's backend even when Weight would choose the canary.
	NeverMatch string
}

// WeightedService is the service replacing the main Ingress's backend
// when a canary has a weight: main and canary share the requests.
func (c *Canary) WeightedService(main, canary string) *config.Service {
	w := *c.Weight
	rest := c.Total - w
	return &config.Service{Weighted: &config.Weighted{Services: []config.WeightedService{
		{Name: main, Weight: &rest},
		{Name: canary, Weight: &w},
	}}}
}

// Result is what the annotations of one Ingress add to its routes.
type Result struct {
	// Refused, when not empty, says why the Ingress must not be served:
	// an annotation that guards access (allow list, authentication)
	// could not be carried over, and serving without it would open the
	// routes.
	Refused []string
	// Middlewares to define, by name.
	Middlewares map[string]*config.Middleware
	// RouterMiddlewares are put, in order, before those of every router
	// of the Ingress.
	RouterMiddlewares []string
	// PlainMiddlewares are put before RouterMiddlewares on the routers
	// that serve plain HTTP only (redirects to https).
	PlainMiddlewares []string
	// Routes maps an index of Ingress.Paths to its new path match.
	Routes map[int]Route
	// AliasHosts maps a host the routers must also match to the host of
	// the Ingress it redirects to (from-to-www-redirect).
	AliasHosts map[string]string
	// Scheme of the backend servers: "" keeps the provider's, "https" or
	// "h2c".
	Scheme string
	// ServersTransport, when set, is defined under
	// ServersTransportName and used by the Ingress's services.
	ServersTransport     *config.ServersTransport
	ServersTransportName string
	// Sticky is set on the Ingress's services.
	Sticky *config.Sticky
	// Canary is set when the Ingress is a canary.
	Canary *Canary
	// Report has one entry per nginx annotation, sorted by name.
	Report []Entry
}

// translation is the state of one Translate call.
type translation struct {
	ctx     context.Context
	ing     Ingress
	secrets Secrets
	a       map[string]string // nginx annotations by short name
	r       *Result
	seen    map[string]bool // read
	// reported have a report entry.
	reported map[string]bool
}

// Translate turns the nginx.ingress.kubernetes.io annotations of ing into
// additions to its routes, and reports on every one of them. secrets is
// used only for auth-secret and may be nil otherwise.
func Translate(ctx context.Context, ing Ingress, secrets Secrets) *Result {
	t := &translation{ctx: ctx, ing: ing, secrets: secrets, a: map[string]string{},
		r: &Result{Middlewares: map[string]*config.Middleware{}}, seen: map[string]bool{}, reported: map[string]bool{}}
	for k, v := range ing.Annotations {
		if name, ok := strings.CutPrefix(k, Prefix); ok {
			t.a[name] = v
		}
	}
	// Order matters: the middlewares run in this order.
	t.allowList()
	t.denyList()
	t.redirects()
	t.auth()
	t.limits()
	t.rewrite()
	t.body()
	t.backend()
	t.affinity()
	t.cors()
	t.canary()
	t.rest()
	slices.SortFunc(t.r.Report, func(x, y Entry) int { return strings.Compare(x.Annotation, y.Annotation) })
	return t.r
}

// get returns an annotation's trimmed value and whether it is set, and
// marks it seen; an overlong value is reported and taken as unset.
func (t *translation) get(name string) (string, bool) {
	v, ok := t.a[name]
	if !ok {
		return "", false
	}
	t.seen[name] = true
	if len(v) > maxValue {
		t.report(name, Unsupported, "the value is longer than %d bytes; ignored", maxValue)
		return "", false
	}
	return strings.TrimSpace(v), true
}

// orphans reports each of names that is set as unsupported for why: the
// annotation they depend on is absent.
func (t *translation) orphans(names []string, why string) {
	for _, n := range names {
		if _, set := t.get(n); set {
			t.report(n, Unsupported, "%s", why)
		}
	}
}

func (t *translation) report(name string, s Status, format string, args ...any) {
	t.seen[name] = true
	t.reported[name] = true
	t.r.Report = append(t.r.Report, Entry{Annotation: Prefix + name, Status: s, Note: fmt.Sprintf(format, args...)})
}

func (t *translation) refuse(name, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.report(name, Unsupported, "%s; the Ingress is not served", msg)
	t.r.Refused = append(t.r.Refused, Prefix+name+": "+msg)
}

// name is the deterministic name of a middleware or transport of the
// Ingress: "NS_NAME_nginx-WHAT". No Kubernetes name contains "_".
func (t *translation) name(what string) string {
	return t.ing.Namespace + "_" + t.ing.Name + "_nginx-" + what
}

func (t *translation) add(what string, m *config.Middleware, plain bool) {
	n := t.name(what)
	t.r.Middlewares[n] = m
	if plain {
		t.r.PlainMiddlewares = append(t.r.PlainMiddlewares, n)
	} else {
		t.r.RouterMiddlewares = append(t.r.RouterMiddlewares, n)
	}
}

// boolean parses an nginx boolean ("true"/"false", any case).
func (t *translation) boolean(name string) (val, set bool) {
	v, ok := t.get(name)
	if !ok {
		return false, false
	}
	switch strings.ToLower(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	t.report(name, Unsupported, "%q is neither true nor false; ignored", v)
	return false, false
}

// integer parses a whole number within [lo, hi].
func (t *translation) integer(name string, lo, hi int64) (int64, bool) {
	v, ok := t.get(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		t.report(name, Unsupported, "%q is not a whole number from %d to %d; ignored", v, lo, hi)
		return 0, false
	}
	return n, true
}

// SplitList splits a comma-separated annotation value into its trimmed,
// non-empty items.
func SplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// cidrs parses a list of addresses and CIDR ranges.
func cidrs(s string) ([]string, error) {
	list := SplitList(s)
	if len(list) == 0 {
		return nil, fmt.Errorf("no address or range in %q", s)
	}
	for _, c := range list {
		if _, err := netip.ParsePrefix(c); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(c); err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR range", c)
		}
	}
	return list, nil
}

func (t *translation) allowList() {
	name := "allowlist-source-range"
	v, ok := t.get(name)
	if old, oldOK := t.get("whitelist-source-range"); oldOK {
		if ok {
			t.report("whitelist-source-range", Unsupported, "allowlist-source-range is set too and wins, as in ingress-nginx; remove this one")
		} else {
			name, v, ok = "whitelist-source-range", old, true
		}
	}
	if !ok {
		return
	}
	list, err := cidrs(v)
	if err != nil {
		t.refuse(name, "%v", err)
		return
	}
	t.add("allowlist", &config.Middleware{IPAllowList: &config.IPAllowList{SourceRange: list}}, false)
	t.report(name, Supported, "ipAllowList of the connection's address (behind a proxy, set ipStrategy by hand)")
}

func (t *translation) denyList() {
	if _, ok := t.get("denylist-source-range"); ok {
		t.refuse("denylist-source-range", "tollgate has no deny list; list the admitted ranges in allowlist-source-range instead")
	}
}

func (t *translation) redirects() {
	sslSet := false
	if v, ok := t.boolean("force-ssl-redirect"); ok {
		sslSet = true
		if v {
			t.add("ssl-redirect", &config.Middleware{RedirectScheme: &config.RedirectScheme{Scheme: "https", Permanent: true}}, true)
			t.report("force-ssl-redirect", Supported, "redirectScheme https, permanent: 301 for GET, 308 for other methods (ingress-nginx: 308 for all), on the plain HTTP routers")
		} else {
			t.report("force-ssl-redirect", Supported, "")
		}
	}
	if v, ok := t.boolean("ssl-redirect"); ok {
		switch {
		case !v:
			t.report("ssl-redirect", Supported, "no redirect to https")
		case sslSet && t.r.Middlewares[t.name("ssl-redirect")] != nil:
			t.report("ssl-redirect", Supported, "force-ssl-redirect already redirects")
		case !t.ing.TLS:
			t.report("ssl-redirect", Supported, "the Ingress has no tls section, so nothing is redirected (as in ingress-nginx)")
		default:
			t.add("ssl-redirect", &config.Middleware{RedirectScheme: &config.RedirectScheme{Scheme: "https", Permanent: true}}, true)
			t.report("ssl-redirect", Supported, "redirectScheme https, permanent: 301 for GET, 308 for other methods (ingress-nginx: 308 for all), on the plain HTTP routers")
		}
	}
	t.redirect("permanent-redirect", "permanent-redirect-code", true)
	t.redirect("temporal-redirect", "temporal-redirect-code", false)
	if v, ok := t.get("app-root"); ok {
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " `$") {
			t.report("app-root", Unsupported, "%q is not a path starting with /; ignored", v)
		} else {
			t.add("app-root", &config.Middleware{RedirectRegex: &config.RedirectRegex{
				Regex: `^(https?://[^/]+)/(\?.*)?$`, Replacement: "${1}" + v + "${2}"}}, false)
			t.report("app-root", Supported, "redirectRegex of / with 302")
		}
	}
	if v, ok := t.boolean("from-to-www-redirect"); ok && v {
		t.wwwRedirect()
	} else if ok {
		t.report("from-to-www-redirect", Supported, "")
	}
}

// wwwRedirect makes the routers of each host also match its www or
// non-www twin, whose requests are redirected to the host.
func (t *translation) wwwRedirect() {
	t.r.AliasHosts = map[string]string{}
	var bare, www []string // hosts redirected to, without and with www.
	for _, p := range t.ing.Paths {
		h := strings.ToLower(p.Host)
		if h == "" || strings.HasPrefix(h, "*") || t.r.AliasHosts[alias(h)] != "" {
			continue
		}
		t.r.AliasHosts[alias(h)] = h
		if rest, ok := strings.CutPrefix(h, "www."); ok {
			www = append(www, regexp.QuoteMeta(rest))
		} else {
			bare = append(bare, regexp.QuoteMeta(h))
		}
	}
	if len(t.r.AliasHosts) == 0 {
		t.report("from-to-www-redirect", Unsupported, "the Ingress has no named host; ignored")
		t.r.AliasHosts = nil
		return
	}
	if len(bare) > 0 {
		t.add("to-bare-host", &config.Middleware{RedirectRegex: &config.RedirectRegex{
			Regex:       `(?i)^(https?)://www\.(` + strings.Join(bare, "|") + `)(:\d+)?(/.*)?$`,
			Replacement: "${1}://${2}${3}${4}", Permanent: true}}, false)
	}
	if len(www) > 0 {
		t.add("to-www-host", &config.Middleware{RedirectRegex: &config.RedirectRegex{
			Regex:       `(?i)^(https?)://(` + strings.Join(www, "|") + `)(:\d+)?(/.*)?$`,
			Replacement: "${1}://www.${2}${3}${4}", Permanent: true}}, false)
	}
	t.report("from-to-www-redirect", Changed, "the routers also match the twin hosts (AliasHosts), whose requests are redirected with 301 for GET and 308 for other methods (ingress-nginx: 308)")
}

// alias is the www or non-www twin of host.
func alias(h string) string {
	if rest, ok := strings.CutPrefix(h, "www."); ok {
		return rest
	}
	return "www." + h
}

func (t *translation) redirect(name, codeName string, permanent bool) {
	v, ok := t.get(name)
	code, codeOK := t.integer(codeName, 300, 399)
	if !ok {
		if codeOK {
			t.report(codeName, Unsupported, "without %s it does nothing", name)
		}
		return
	}
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "/") {
		t.report(name, Unsupported, "%q is not a URL; ignored", v)
		return
	}
	t.add(name, &config.Middleware{RedirectRegex: &config.RedirectRegex{Regex: "^.*$", Replacement: strings.ReplaceAll(v, "$", "$$"), Permanent: permanent}}, false)
	want := 302
	if permanent {
		want = 301
	}
	if codeOK {
		if code == int64(want) {
			t.report(codeName, Supported, "")
		} else {
			t.report(codeName, Changed, "tollgate redirects with %d for GET and %d for other methods; %d is not available", want, map[bool]int{true: 308, false: 307}[permanent], code)
		}
	}
	t.report(name, Changed, "redirectRegex of every request to it; %d for GET, %d for other methods (ingress-nginx: %d for all)", want, map[bool]int{true: 308, false: 307}[permanent], want)
}
