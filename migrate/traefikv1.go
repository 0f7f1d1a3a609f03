package migrate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
)

// TraefikV1 converts a Traefik 1.x static configuration file (TOML), named
// name in the report, into a tollgate configuration. It converts the entry
// points (with their redirections, TLS settings, certificates, client
// authentication, compression, IP white lists and authentication), the
// [acme] section (challenges, domains, onHostRule, the CA), the store of
// Traefik's cluster mode ([consul] or [etcd]), the Kubernetes Ingress
// provider ([kubernetes]), the file provider's
// [frontends] and [backends] (rules, load balancing, health checks, sticky
// sessions and the frontend middlewares: authentication, error pages,
// path rewrites, …), the global settings of the connections to servers
// (a servers transport) and the operational sections (api, ping, metrics,
// logs, life cycle, timeouts, retries).
//
// Every key of the source appears in the report: converted, converted
// with a difference, without equivalent (with advice), or unknown. A
// frontend or backend whose conversion would change what it lets through
// (an authentication tollgate cannot check, a path rewrite it cannot do)
// is left out rather than converted loosely, and reported.
//
// The returned configuration passes config.Parse. An input that is not
// valid TOML, or whose values Traefik itself would refuse, yields an
// *Error listing every problem with its file:line.
func TraefikV1(name string, data []byte) (*Result, error) {
	return ConvertTraefikV1(name, data, Options{})
}

// Options are what a conversion reads besides the configuration file.
// The zero value converts the file alone.
type Options struct {
	// Args are the command-line flags Traefik 1.x ran with, one flag or
	// value per element (as a shell splits them; SplitArgs does). The
	// flags of the sections the file may hold ([consul], [etcd],
	// [kubernetes], [acme], defaultEntryPoints, the log level) are
	// converted as if they were written in the file, and override it as
	// they did in Traefik; the report places them at ArgsName. Other
	// flags are reported as not converted.
	Args []string
	// ArgsName names Args in the report. Empty means "--traefik-args".
	ArgsName string
	// Manifests are Kubernetes manifests (YAML or JSON, one or several
	// documents, kubectl's List included) whose Ingresses and Services
	// are checked for Traefik 1.x annotations: the report says what
	// each becomes in tollgate, and the middlewares they need are added
	// to the configuration.
	Manifests []Manifest
	// Out names the converted configuration in the commands the report
	// advises. Empty means "tollgate.toml".
	Out string
}

// Manifest is one file of Kubernetes manifests.
type Manifest struct {
	// Name locates the file in the report.
	Name string
	// Data is its content.
	Data []byte
}

// ConvertTraefikV1 is TraefikV1 with the command-line flags Traefik ran
// with, its Kubernetes manifests, and the name of the output file (see
// Options).
func ConvertTraefikV1(name string, data []byte, opts Options) (*Result, error) {
	res, _, err := convertTraefikV1(name, data, opts, config.Parse)
	return res, err
}

// convertTraefikV1 is ConvertTraefikV1 with the validation of the
// converted configuration (config.Parse), which also returns the
// configuration as converted.
func convertTraefikV1(name string, data []byte, opts Options, parse func(name string, doc []byte) (*config.Config, error)) (*Result, *config.Config, error) {
	tree, lines, err := decodeSource(name, data)
	if err != nil {
		return nil, nil, err
	}
	c := &converter{
		parse:    parse,
		name:     name,
		lines:    lines,
		out:      cmp.Or(opts.Out, "tollgate.toml"),
		argsName: cmp.Or(opts.ArgsName, "--traefik-args"),
		cfg:      &config.Config{EntryPoints: map[string]*config.EntryPoint{}},
		origins:  map[string][]string{},
		comments: map[string][]string{},
		eps:      map[string]*entryPoint{},
		taken:    map[string]map[string]bool{},
		fromArgs: map[string]bool{},
	}
	c.applyArgs(tree, opts.Args)
	root := c.newNode(nil, tree)
	c.convert(root)
	c.leftovers()
	if len(c.problems) == 0 && len(opts.Manifests) > 0 {
		c.manifests(opts.Manifests)
	}
	if len(c.problems) > 0 {
		sortItems(c.problems)
		return nil, nil, &Error{Source: name, Problems: c.problems}
	}
	doc, err := c.finish()
	if err != nil {
		return nil, nil, err
	}
	c.ingressActions()
	sortItems(c.items)
	return &Result{Config: doc, Items: c.items, ACMEStorage: c.storage}, c.cfg, nil
}

// converter holds one conversion's state.
type converter struct {
	// parse validates the converted configuration: config.Parse.
	parse    func(name string, doc []byte) (*config.Config, error)
	name     string
	lines    map[string]int
	out      string // the output file's name, for the commands advised
	argsName string // how the report names the command-line flags
	// fromArgs holds the source paths (pathKey) that command-line flags
	// set: the report places them at argsName.
	fromArgs map[string]bool
	nodes    []*node
	items    []Item
	problems []Item
	seq      int

	cfg *config.Config
	// origins maps tollgate keys (dotted, as config.Problem.Path writes
	// them) to the source path they came from.
	origins map[string][]string
	// comments are written above tollgate tables, by dotted path.
	comments map[string][]string
	// taken holds the tollgate names in use, by kind.
	taken map[string]map[string]bool

	eps        map[string]*entryPoint // by source name
	defaultEPs []string               // source names
	acme       *acmeState
	storage    string
	kvProvider string
	kvPrefix   string
	kvEndpoint string
	rt         *config.RespondingTimeouts
	compress   string

	// global settings that frontends and backends depend on
	allowZeroWeight bool
	healthInterval  time.Duration
	retryAttempts   int64 // 0: per backend, the number of its servers
	retry           bool
	retryMWs        map[int64]string

	// noEntryPoints is set when the source has no [entryPoints]: Traefik
	// 1.x then listened on "http" only, whatever defaultEntryPoints said.
	noEntryPoints bool
	// catchAll are the frontends without routes (priority 1), priorityOne
	// the names of those with priority = 1, which tie with them.
	catchAll    [][]string
	priorityOne []string
	// exactPaths names the converted frontends with a Path or PathStrip
	// rule; exactPathAt is the routes of the first.
	exactPaths  []string
	exactPathAt []string

	domainSrc [][]string // source paths of cfg.ACME.Domains
	certSrc   [][]string // source paths of cfg.TLS.Certificates
	routers   map[string]*routerInfo
	backends  map[string]*backend // by source name
	transport *transportState     // nil without global server settings

	kube *kubeState // the Kubernetes provider, nil without one
	// keep are middlewares no router of the file uses but that Ingresses
	// name; mwAt locates those made from a manifest's annotations.
	keep map[string]bool
	mwAt map[string]Item
	// ingressDone are the Ingresses checked, whose commands are written
	// once the configuration is validated.
	ingressDone []*ingressCheck
}

// location returns the file:line of path, or of its nearest ancestor with
// a known line.
func (c *converter) location(path []string) (string, int) {
	for n := len(path); n > 0; n-- {
		key := pathKey(path[:n])
		if c.fromArgs[key] {
			return c.argsName, 0
		}
		if l, ok := c.lines[key]; ok {
			return fmt.Sprintf("%s:%d", c.name, l), l
		}
	}
	return c.name, 0
}

func (c *converter) item(path []string, kind Kind, msg, advice string) Item {
	where, line := c.location(path)
	c.seq++
	return Item{Where: where, Key: dottedPath(path), Kind: kind, Message: msg, Advice: advice, line: line, seq: c.seq}
}

// add reports what became of the key at path.
func (c *converter) add(path []string, kind Kind, msg, advice string) {
	c.items = append(c.items, c.item(path, kind, msg, advice))
}

// problem records a reason the source cannot be converted at all.
func (c *converter) problem(path []string, format string, args ...any) {
	c.problems = append(c.problems, c.item(path, "", fmt.Sprintf(format, args...), ""))
}

func (c *converter) wrongType(path []string, want string, got any) {
	c.problem(path, "want %s, found %s", want, describe(got))
}

// origin records that the tollgate key came from the source path.
func (c *converter) origin(key string, src []string) { c.origins[key] = slices.Clip(src) }

// comment adds a comment line above the tollgate table at key.
func (c *converter) comment(key, text string) { c.comments[key] = append(c.comments[key], text) }

// unique returns a valid tollgate name of kind ("router", "service",
// "middleware", "entry point", "TLS options") based on want, not yet
// taken, and takes it.
func (c *converter) unique(kind, want string) string {
	if c.taken[kind] == nil {
		c.taken[kind] = map[string]bool{}
	}
	base := sanitizeName(want)
	name := base
	for i := 2; c.taken[kind][name]; i++ {
		suffix := "-" + strconv.Itoa(i)
		name = strings.TrimRight(truncateName(base, maxName-len(suffix)), "-_.") + suffix
	}
	c.taken[kind][name] = true
	return name
}

// maxName is the longest tollgate name (config's limit).
const maxName = 64

// sanitizeName turns a source name into a valid tollgate name: letters,
// digits, "-", "_" and ".", starting and ending with a letter or digit.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && (isAlnum(byte(r)) || r == '-' || r == '_' || r == '.'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-_.")
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if out == "" {
		out = "unnamed"
	}
	return truncateName(out, maxName)
}

func truncateName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-_.")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// renamed reports a name that had to change.
func (c *converter) renamed(path []string, what, from, to string) {
	if from != to {
		c.add(path, Changed, fmt.Sprintf("%s %q is named %q in tollgate", what, from, to),
			"tollgate names use letters, digits, \"-\", \"_\" and \".\", and are unique")
	}
}

// convert runs every step, in the order their dependencies need.
func (c *converter) convert(root *node) {
	c.globals(root)
	c.entryPoints(root)
	c.defaultEntryPoints(root)
	c.operations(root)
	c.kvProviders(root)
	c.acmeSection(root)
	c.otherProviders(root)
	c.kubernetes(root)
	c.fileProvider(root)
	c.logs(root)
	c.forwardedDefaults()
}

// globals reads the top-level settings other steps depend on, and reports
// those without equivalent.
func (c *converter) globals(root *node) {
	if b, ok := root.boolean("allowMinWeightZero"); ok {
		c.allowZeroWeight = b
		c.add(root.where("allowMinWeightZero"), Converted, "servers with weight = 0 get weight 0 (no new requests) as in Traefik with this setting", "")
	}
	c.healthInterval = 30 * time.Second
	if hc, ok := root.table("healthCheck"); ok {
		if d, ok := hc.duration("interval"); ok && d > 0 {
			c.healthInterval = d
			c.add(hc.where("interval"), Converted, fmt.Sprintf("the interval of every backend's health check without its own: %s", d), "")
		}
	}
	if r, ok := root.table("retry"); ok {
		c.retry = true
		if n, ok := r.integer("attempts"); ok && n > 0 {
			c.retryAttempts = n
		}
		c.add(r.path, Converted, "a retry middleware on every router",
			"tollgate retries idempotent requests that could not reach a server only")
		if r.has("attempts") {
			c.add(r.where("attempts"), Converted, fmt.Sprintf("attempts = %d", c.retryAttempts), "")
		}
	}
	c.serversTransport(root)
	for _, key := range slices.Sorted(maps.Keys(unsupportedGlobals)) {
		advice := unsupportedGlobals[key]
		if root.has(key) {
			c.add(root.where(key), Unsupported, fmt.Sprintf("%s has no equivalent in tollgate; not converted", key), advice)
			root.skip(key)
		}
	}
}

// defaultEntryPoints reads the entry points of the frontends that name
// none: defaultEntryPoints, ["http"] when it is not set, and always
// ["http"] without [entryPoints], as Traefik 1.x did.
func (c *converter) defaultEntryPoints(root *node) {
	eps, set := root.strs("defaultEntryPoints")
	at := root.where("defaultEntryPoints")
	switch {
	case c.noEntryPoints:
		c.defaultEPs = []string{"http"}
		if set {
			c.add(at, Converted, "ignored, as by Traefik 1.x without [entryPoints]: frontends without entryPoints listen on http", "")
		}
	case set && len(eps) == 0:
		c.defaultEPs = nil
		c.add(at, Converted, "frontends without entryPoints listen nowhere: Traefik 1.x did not serve them, and they are not converted", "")
	case set:
		c.defaultEPs = eps
		c.add(at, Converted, "frontends without entryPoints listen on "+strings.Join(eps, ", "), "")
	default:
		c.defaultEPs = []string{"http"}
	}
}

// unsupportedGlobals are top-level keys without equivalent, with advice.
var unsupportedGlobals = map[string]string{
	"checkNewVersion":           "nothing to do: tollgate does not check for new versions",
	"sendAnonymousUsage":        "nothing to do: tollgate sends no usage data",
	"providersThrottleDuration": "nothing to do: tollgate applies each valid configuration change at once",
	"hostResolver":              "tollgate resolves server names with the system resolver",
	"tracing":                   "tollgate has no tracing; use its access log and metrics",
	"constraints":               "tollgate has no constraints; [providers.kubernetesIngress] labelSelector selects Ingresses",
	"cluster":                   "tollgate replicas form a cluster through the [store] alone",
	"traefikLogsFile":           "tollgate logs to standard error; redirect it where the file was",
}

// operations converts [api], [ping], [metrics], [web], the life cycle and
// the responding timeouts.
func (c *converter) operations(root *node) {
	apiEP, pingEP, metricsEP := "", "", ""
	dashboard := false
	if web, ok := root.table("web"); ok {
		c.web(web, &apiEP)
		dashboard = true
	}
	if api, ok := root.table("api"); ok {
		apiEP = "traefik"
		if s, ok := api.str("entryPoint"); ok && s != "" {
			apiEP = s
			c.add(api.where("entryPoint"), Converted, fmt.Sprintf("[api] entryPoint = %q", s), "")
		}
		dashboard = c.dashboard(api)
		for _, k := range []string{"debug", "statistics"} {
			if api.has(k) {
				c.add(api.where(k), Unsupported, fmt.Sprintf("api.%s has no equivalent; not converted", k), "tollgate's API is read-only and has no statistics; use /metrics")
				api.skip(k)
			}
		}
		c.add(api.path, Converted, "[api]: /ping, /ready and the read-only API", "")
	}
	if ping, ok := root.table("ping"); ok {
		pingEP = "traefik"
		if s, ok := ping.str("entryPoint"); ok && s != "" {
			pingEP = s
			c.add(ping.where("entryPoint"), Converted, fmt.Sprintf("entry point %q", s), "")
		}
		switch {
		case apiEP == "":
			apiEP = pingEP
			c.add(ping.path, Changed, "[ping] became [api]: tollgate serves /ping together with /ready and the read-only API", "keep that entry point reachable from your load balancer and monitoring only")
		case apiEP != pingEP:
			c.add(ping.path, Changed, fmt.Sprintf("/ping is served on the API's entry point %q, not on %q", apiEP, pingEP), "point health checks of /ping at the API's entry point")
		default:
			c.add(ping.path, Converted, "/ping on the API's entry point", "")
		}
	}
	if m, ok := root.table("metrics"); ok {
		metricsEP = c.metrics(m)
	}
	if apiEP != "" {
		c.cfg.API = &config.API{EntryPoint: c.internalEP(apiEP, root), Dashboard: dashboard}
		c.origin("api", []string{"api"})
		c.apiAuth(apiEP)
	}
	if metricsEP != "" {
		c.cfg.Metrics.Prometheus.EntryPoint = c.internalEP(metricsEP, root)
	}
	c.lifecycle(root)
}

// web converts the deprecated [web] section: its address becomes the
// "traefik" entry point of the API.
func (c *converter) web(w *node, apiEP *string) {
	addr := ":8080"
	if s, ok := w.str("address"); ok && s != "" {
		addr = s
		c.add(w.where("address"), Converted, "the address of entry point \"traefik\"", "")
	}
	if _, exists := c.eps["traefik"]; !exists {
		ep := c.addEntryPoint("traefik", w.path, &config.EntryPoint{Address: addr})
		ep.internal = true
	}
	*apiEP = "traefik"
	c.add(w.path, Converted, fmt.Sprintf("[web] became [api] on entry point \"traefik\" (%s), with the dashboard at /dashboard/", addr), "")
	if m, ok := w.table("metrics"); ok {
		c.metrics(m)
	}
	for _, k := range []string{"certFile", "keyFile", "readOnly", "statistics", "path", "auth", "debug"} {
		if w.has(k) {
			c.add(w.where(k), Unsupported, fmt.Sprintf("web.%s has no equivalent; not converted", k),
				"tollgate's API is read-only, served at /api/ on its entry point; protect that entry point in your network")
			w.skip(k)
		}
	}
}

// dashboard converts [api] dashboard, which Traefik 1.x turns on by
// default, and reports whether tollgate's is on.
func (c *converter) dashboard(api *node) bool {
	const advice = "the dashboard is read-only and asks for no password unless [api] users lists some: keep the API's entry point reachable from your network only"
	b, set := api.boolean("dashboard")
	switch {
	case set && !b:
		c.add(api.where("dashboard"), Converted, "[api] dashboard = false", "")
		return false
	case set:
		c.add(api.where("dashboard"), Converted, "[api] dashboard = true: the dashboard at /dashboard/", advice)
	default:
		c.add(api.path, Converted, "the dashboard, on by default in Traefik 1.x: [api] dashboard = true, at /dashboard/", advice)
	}
	return true
}

// apiAuth carries the basic authentication of the API's entry point,
// which guarded Traefik 1.x's API and dashboard, over to [api] users:
// tollgate's API is no router, so the entry point's middleware alone
// would leave it open.
func (c *converter) apiAuth(v1name string) {
	ep, ok := c.eps[v1name]
	if !ok {
		return
	}
	at := append(slices.Clip(ep.src), "auth")
	if ep.blocked != "" {
		c.add(at, Action, fmt.Sprintf("the API and the dashboard on entry point %q are not protected: %s", ep.name, ep.blocked),
			"list bcrypt users in [api] users or usersFile (htpasswd -nB NAME), or keep the entry point private")
		return
	}
	for _, mw := range ep.mws {
		if m := c.cfg.HTTP.Middlewares[mw]; m != nil && m.BasicAuth != nil {
			c.cfg.API.Users, c.cfg.API.UsersFile = m.BasicAuth.Users, m.BasicAuth.UsersFile
			c.add(at, Converted, fmt.Sprintf("the users of entry point %q also guard the API and the dashboard: [api] users and usersFile", ep.name), "")
			return
		}
		if m := c.cfg.HTTP.Middlewares[mw]; m != nil && m.ForwardAuth != nil {
			c.add(at, Action, fmt.Sprintf("the API and the dashboard on entry point %q are not protected by its forward authentication: tollgate's API is served by no router, so no middleware guards it", ep.name),
				"list bcrypt users in [api] users or usersFile (htpasswd -nB NAME), or keep the entry point private")
			return
		}
	}
}

// metrics converts [metrics] and returns the entry point of Prometheus
// metrics, or "".
func (c *converter) metrics(m *node) string {
	ep := ""
	if p, ok := m.table("prometheus"); ok {
		ep = "traefik"
		if s, ok := p.str("entryPoint"); ok && s != "" {
			ep = s
		}
		pr := &config.Prometheus{}
		if v, path, ok := p.get("buckets"); ok {
			arr, isArr := v.([]any)
			if !isArr {
				c.wrongType(path, "an array of numbers", v)
			}
			for i, e := range arr {
				switch x := e.(type) {
				case float64:
					pr.Buckets = append(pr.Buckets, x)
				case int64:
					pr.Buckets = append(pr.Buckets, float64(x))
				default:
					c.wrongType(append(slices.Clip(path), indexSeg(i)), "a number", e)
				}
			}
		}
		c.cfg.Metrics = &config.Metrics{Prometheus: pr}
		c.origin("metrics", p.path)
		c.add(p.path, Converted, "[metrics.prometheus]: /metrics", "tollgate's metric names differ from Traefik's (tollgate_…); update dashboards and alerts")
	}
	for _, k := range []string{"datadog", "statsd", "influxdb"} {
		if m.has(k) {
			c.add(m.where(k), Unsupported, fmt.Sprintf("metrics.%s has no equivalent; not converted", k), "scrape /metrics in the Prometheus format instead")
			m.skip(k)
		}
	}
	return ep
}

// internalEP returns the tollgate name of the entry point the API or the
// metrics are served on, creating the "traefik" entry point on :8080 that
// Traefik 1.x created implicitly.
func (c *converter) internalEP(name string, root *node) string {
	if ep, ok := c.eps[name]; ok {
		ep.internal = true
		return ep.name
	}
	if name == "traefik" {
		ep := c.addEntryPoint("traefik", nil, &config.EntryPoint{Address: ":8080"})
		ep.internal = true
		c.add(nil, Converted, "entry point \"traefik\" on :8080, which Traefik 1.x created for the API, ping and metrics", "")
		return ep.name
	}
	c.problem(root.where("api"), "entry point %q (of the API, ping or metrics) is not defined", name)
	return sanitizeName(name)
}

// lifecycle converts [lifeCycle], graceTimeOut and the timeouts.
func (c *converter) lifecycle(root *node) {
	var lc config.Lifecycle
	set := false
	if d, ok := root.duration("graceTimeOut"); ok {
		lc.GraceTimeout, set = config.Duration(d), true
		c.add(root.where("graceTimeOut"), Converted, "lifecycle.graceTimeout = "+d.String(), "")
	}
	if l, ok := root.table("lifeCycle"); ok {
		if d, ok := l.duration("requestAcceptGraceTimeout"); ok {
			if d > 0 {
				lc.DrainDelay, set = config.Duration(d), true
				c.add(l.where("requestAcceptGraceTimeout"), Converted, "lifecycle.drainDelay = "+d.String(), "")
			} else {
				c.add(l.where("requestAcceptGraceTimeout"), Changed, "0 cannot be written: tollgate keeps serving for its default drainDelay of 5s after readiness fails",
					"keep it: load balancers need that time to stop sending")
			}
		}
		if d, ok := l.duration("graceTimeOut"); ok && d > 0 {
			lc.GraceTimeout, set = config.Duration(d), true
			c.add(l.where("graceTimeOut"), Converted, "lifecycle.graceTimeout = "+d.String(), "")
		}
	}
	if set {
		c.cfg.Lifecycle = &lc
		c.origin("lifecycle", []string{"lifeCycle"})
	}
}

// respondingTimeouts reads the global timeouts every entry point gets.
func (c *converter) respondingTimeouts(root *node) *config.RespondingTimeouts {
	var rt config.RespondingTimeouts
	set := false
	if d, ok := root.duration("idleTimeout"); ok {
		if d > 0 {
			rt.IdleTimeout, set = config.Duration(d), true
			c.add(root.where("idleTimeout"), Converted, "idleTimeout of every entry point", "")
		} else {
			c.add(root.where("idleTimeout"), Changed, "0 (no limit) cannot be written; tollgate's default idleTimeout of 3m applies", "")
		}
	}
	if t, ok := root.table("respondingTimeouts"); ok {
		for _, f := range []struct {
			key string
			out *config.Duration
			def string
		}{{"readTimeout", &rt.ReadTimeout, "60s"}, {"writeTimeout", &rt.WriteTimeout, ""}, {"idleTimeout", &rt.IdleTimeout, "3m"}} {
			d, ok := t.duration(f.key)
			switch {
			case !ok:
			case d > 0:
				*f.out, set = config.Duration(d), true
				c.add(t.where(f.key), Converted, fmt.Sprintf("transport.respondingTimeouts.%s of every entry point", f.key), "")
			case f.def != "":
				c.add(t.where(f.key), Changed, fmt.Sprintf("0 (no limit) cannot be written; tollgate's default %s of %s applies", f.key, f.def), "")
			default:
				c.add(t.where(f.key), Converted, "no write timeout, tollgate's default", "")
			}
		}
	}
	if !set {
		return nil
	}
	if rt.ReadTimeout > 0 && rt.ReadTimeout < config.Duration(10*time.Second) {
		rt.ReadHeaderTimeout = rt.ReadTimeout
	}
	return &rt
}

// otherProviders reports the providers tollgate does not have.
func (c *converter) otherProviders(root *node) {
	for _, p := range []string{"docker", "marathon", "consulCatalog", "mesos", "eureka", "ecs", "rancher", "dynamodb", "serviceFabric", "rest", "zookeeper", "boltdb"} {
		if !root.has(p) {
			continue
		}
		c.add(root.where(p), Unsupported, fmt.Sprintf("the %s provider has no equivalent: tollgate reads its routers and services from its file, its store and Kubernetes Ingresses only", p),
			"write the routers and services the provider made as [http.routers] and [http.services] (Traefik's API lists them: /api/providers)")
		root.skip(p)
	}
}

// logs converts logLevel, debug, [traefikLog], accessLogsFile and
// [accessLog].
func (c *converter) logs(root *node) {
	var lg config.Log
	if s, ok := root.str("logLevel"); ok {
		lg.Level = c.logLevel(root.where("logLevel"), s)
	}
	if b, ok := root.boolean("debug"); ok && b {
		lg.Level = "debug"
		c.add(root.where("debug"), Converted, "log.level = \"debug\"", "")
	} else if ok {
		c.add(root.where("debug"), Converted, "false: logLevel applies", "")
	}
	if t, ok := root.table("traefikLog"); ok {
		if f, ok := t.str("format"); ok {
			switch strings.ToLower(f) {
			case "json":
				lg.Format = "json"
				c.add(t.where("format"), Converted, "log.format = \"json\"", "")
			default:
				lg.Format = "text"
				c.add(t.where("format"), Changed, fmt.Sprintf("format %q became tollgate's text format (key=value pairs)", f), "")
			}
		}
		if t.has("filePath") {
			c.add(t.where("filePath"), Unsupported, "tollgate logs to standard error only; not converted", "redirect standard error to the file, or collect it from the container")
			t.skip("filePath")
		}
	}
	if lg != (config.Log{}) {
		c.cfg.Log = &lg
	}
	var al *config.AccessLog
	if s, ok := root.str("accessLogsFile"); ok {
		al = &config.AccessLog{FilePath: s, Format: "text"}
		c.add(root.where("accessLogsFile"), Changed, "accessLog.filePath; the format is tollgate's text format, not the Common Log Format", "switch to format = \"json\" if a program reads the log")
	}
	if t, ok := root.table("accessLog"); ok {
		if al == nil {
			al = &config.AccessLog{}
		}
		if s, ok := t.str("filePath"); ok {
			al.FilePath = s
			c.add(t.where("filePath"), Converted, "accessLog.filePath = "+strconv.Quote(s), "")
		}
		f, hasFormat := t.str("format")
		at := t.path
		if hasFormat {
			at = t.where("format")
		}
		if strings.EqualFold(f, "json") {
			al.Format = "json"
			c.add(at, Converted, "[accessLog] in JSON", "tollgate's field names differ from Traefik's; update what reads the log")
		} else {
			al.Format = "text"
			c.add(at, Changed, "[accessLog] in tollgate's text format; Traefik's default was the Common Log Format", "use format = \"json\" if a program reads the log")
		}
		for _, k := range []string{"filters", "fields", "bufferingSize"} {
			if t.has(k) {
				c.add(t.where(k), Unsupported, fmt.Sprintf("accessLog.%s has no equivalent; every request is logged with every field", k), "filter the log where you collect it")
				t.skip(k)
			}
		}
	}
	if al != nil {
		c.cfg.AccessLog = al
		c.origin("accessLog", []string{"accessLog"})
	}
}

func (c *converter) logLevel(path []string, s string) string {
	switch strings.ToLower(s) {
	case "debug":
		return c.level(path, "debug")
	case "info":
		return c.level(path, "info")
	case "warn", "warning":
		return c.level(path, "warn")
	case "error":
		return c.level(path, "error")
	case "fatal", "panic":
		c.add(path, Changed, fmt.Sprintf("log level %q became \"error\", tollgate's highest", s), "")
		return "error"
	}
	c.problem(path, "log level %q: Traefik 1.x accepts DEBUG, INFO, WARN, ERROR, FATAL or PANIC", s)
	return ""
}

func (c *converter) level(path []string, l string) string {
	c.add(path, Converted, fmt.Sprintf("log.level = %q", l), "")
	return l
}
