package migrate

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// entryPoint is a converted entry point and what routers on it need.
type entryPoint struct {
	src    []string
	v1name string
	name   string // tollgate name
	ep     *config.EntryPoint
	tls    bool
	port   int
	// options names the TLS options of the entry point, if any.
	options string
	// mws are middlewares every router on the entry point gets (what
	// Traefik 1.x applied to the whole entry point).
	mws []string
	// redirect is the source name of the entry point every request is
	// redirected to; routers are not put on a redirecting entry point.
	redirect string
	// blocked says why no router may listen here: a setting that guarded
	// the whole entry point could not be converted.
	blocked  string
	internal bool
	// trustedAll is set when Traefik 1.x trusted every client's
	// X-Forwarded-* headers here, its default.
	trustedAll bool
}

// addEntryPoint adds a tollgate entry point for the source one.
func (c *converter) addEntryPoint(v1name string, src []string, ep *config.EntryPoint) *entryPoint {
	name := c.unique("entry point", v1name)
	if c.rt != nil {
		rt := *c.rt
		ep.Transport = &config.Transport{RespondingTimeouts: &rt}
	}
	c.cfg.EntryPoints[name] = ep
	e := &entryPoint{src: src, v1name: v1name, name: name, ep: ep}
	if _, p, err := net.SplitHostPort(ep.Address); err == nil {
		e.port, _ = strconv.Atoi(p)
	}
	c.eps[v1name] = e
	key := "entryPoints." + dn(name)
	if src != nil {
		c.origin(key, src)
		c.origin(key+".address", append(slices.Clip(src), "address"))
		where, _ := c.location(src)
		c.comment(key, fmt.Sprintf("entry point %q (%s)", v1name, where))
	}
	return e
}

// entryPoints converts [entryPoints]: two passes, as a redirection may
// name an entry point defined after it.
func (c *converter) entryPoints(root *node) {
	c.rt = c.respondingTimeouts(root)
	t, ok := root.table("entryPoints")
	if !ok {
		c.addEntryPoint("http", nil, &config.EntryPoint{Address: ":80"})
		c.noEntryPoints = true
		c.add(nil, Converted, "no [entryPoints]: entry point \"http\" on :80, Traefik 1.x's default", "")
		return
	}
	type pending struct {
		e *entryPoint
		n *node
	}
	var all []pending
	for _, n := range t.named() {
		addr, ok := n.str("address")
		if !ok && !n.has("address") {
			c.problem(n.path, "entry point %q has no address; Traefik 1.x needs one, such as \":80\"", n.name())
		}
		e := c.addEntryPoint(n.name(), n.path, &config.EntryPoint{Address: addr})
		c.renamed(n.path, "entry point", n.name(), e.name)
		if ok {
			c.add(n.where("address"), Converted, fmt.Sprintf("entry point %q listens on %s", e.name, addr), "")
		}
		all = append(all, pending{e, n})
	}
	for _, p := range all {
		c.entryPoint(p.e, p.n)
	}
	for _, p := range all {
		c.entryPointRedirect(p.e, p.n)
	}
}

// entryPoint converts the settings of one entry point but its redirection.
func (c *converter) entryPoint(e *entryPoint, n *node) {
	if tn, ok := n.table("tls"); ok {
		c.entryPointTLS(e, tn)
	}
	c.forwardedHeaders(e, n)
	c.proxyProtocol(e, n)
	// Traefik 1.x ran an entry point's authentication, compression and IP
	// white list in this order (after its redirection, see
	// entryPointRedirect).
	if an, ok := n.table("auth"); ok {
		mw, reason := c.auth(an, e.name+"-auth")
		switch {
		case reason != "":
			e.blocked = reason
		case mw != "": // "" when there was nothing to convert (reported)
			e.mws = append(e.mws, mw)
		}
	}
	if v, path, ok := n.get("compress"); ok {
		on := false
		switch x := v.(type) {
		case bool:
			on = x
		case map[string]any:
			on = true
			c.newNode(path, x).skipAll()
		default:
			c.wrongType(path, "true or false", v)
		}
		if on {
			if c.compress == "" {
				c.compress = c.addMiddleware("compress", path, &config.Middleware{Compress: &config.Compress{}})
			}
			e.mws = append(e.mws, c.compress)
			c.add(path, Converted, fmt.Sprintf("middleware %q (gzip) on every router of the entry point", c.compress), "")
		}
	}
	var ranges []string
	rangesAt := n.path
	if r, ok := n.strs("whitelistSourceRange"); ok {
		ranges, rangesAt = r, n.where("whitelistSourceRange")
	}
	if wl, ok := n.table("whiteList"); ok {
		if r, ok := wl.strs("sourceRange"); ok {
			ranges, rangesAt = r, wl.where("sourceRange")
		}
		c.useXForwardedFor(wl)
	}
	if len(ranges) > 0 {
		mw := c.addMiddleware(e.name+"-ipallowlist", rangesAt, &config.Middleware{IPAllowList: &config.IPAllowList{SourceRange: ranges}})
		e.mws = append(e.mws, mw)
		c.add(rangesAt, Converted, fmt.Sprintf("middleware %q (ipAllowList) on every router of the entry point", mw), "")
	}
}

// forwardedHeaders converts forwardedHeaders, whose absence meant "trust
// every client" in Traefik 1.x.
func (c *converter) forwardedHeaders(e *entryPoint, n *node) {
	fh, ok := n.table("forwardedHeaders")
	if !ok {
		e.trustedAll = true // reported by forwardedDefaults
		return
	}
	ips, _ := fh.strs("trustedIPs")
	insecure, hasInsecure := fh.boolean("insecure")
	out := &config.ForwardedHeaders{TrustedIPs: ips}
	switch {
	case len(ips) > 0 && insecure:
		c.add(fh.where("insecure"), Changed, "insecure = true is dropped: tollgate takes trustedIPs or insecure, not both", "")
	case insecure:
		out.Insecure = true
		c.add(fh.path, Converted, "forwardedHeaders: every client is trusted", "list your load balancers in trustedIPs instead if clients can reach tollgate directly")
	case len(ips) > 0:
		c.add(fh.path, Converted, "forwardedHeaders.trustedIPs", "")
	case hasInsecure || len(ips) == 0:
		c.add(fh.path, Converted, "forwardedHeaders: nobody is trusted", "")
	}
	e.ep.ForwardedHeaders = out
}

// proxyProtocol converts [entryPoints.NAME.proxyProtocol]. Traefik 1.x
// read a version 1 header from the addresses in trustedIPs, or from every
// address with insecure = true (trustedIPs was then ignored), and did not
// start with neither. From any other address it dropped a header and
// served the connection with its own address; tollgate closes such a
// connection.
func (c *converter) proxyProtocol(e *entryPoint, n *node) {
	pn, ok := n.table("proxyProtocol")
	if !ok {
		return
	}
	before := len(c.problems)
	ips, _ := pn.strs("trustedIPs")
	insecure, _ := pn.boolean("insecure")
	if len(c.problems) > before {
		return // a value of the wrong type, reported
	}
	out := &config.ProxyProtocolIn{}
	switch {
	case insecure:
		out.Insecure = true
		if len(ips) > 0 {
			c.add(pn.where("trustedIPs"), Changed, "trustedIPs is dropped, since insecure = true (Traefik 1.x ignored it too): tollgate takes trustedIPs or insecure, not both",
				"to read headers from your load balancers only, keep trustedIPs and remove insecure")
		}
		c.add(pn.path, Converted, fmt.Sprintf("entry point %q reads a PROXY protocol header from every client (insecure = true)", e.name),
			"list your load balancers in trustedIPs instead if clients can reach tollgate directly")
	case len(ips) > 0:
		out.TrustedIPs = ips
		c.add(pn.path, Changed, fmt.Sprintf("entry point %q reads a PROXY protocol header from trustedIPs; a connection from another address that starts with one is closed, where Traefik 1.x dropped the header and served the connection", e.name),
			"check that trustedIPs lists every load balancer that sends the header")
	default:
		c.problem(pn.path, "proxyProtocol without trustedIPs or insecure = true: Traefik 1.x did not start with it (no white list provided); list the IPs or CIDR ranges of the load balancers that send PROXY headers in trustedIPs, such as [\"10.0.0.0/8\"]")
		return
	}
	e.ep.ProxyProtocol = out
	key := "entryPoints." + dn(e.name) + ".proxyProtocol"
	c.origin(key, pn.path)
	if len(out.TrustedIPs) > 0 {
		c.origin(key+".trustedIPs", pn.where("trustedIPs"))
	}
}

// entryPointTLS converts [entryPoints.NAME.tls]: TLS on, TLS options,
// certificates and client authentication.
func (c *converter) entryPointTLS(e *entryPoint, tn *node) {
	e.tls = true
	e.ep.HTTP = &config.EntryPointHTTP{TLS: &config.EntryPointTLS{}}
	c.origin("entryPoints."+dn(e.name)+".http.tls", tn.path)
	opts := &config.TLSOptions{}
	custom := false
	v, ok := tn.str("minVersion")
	if !ok {
		c.add(tn.path, Changed, "no minVersion: Traefik 1.x accepted TLS 1.0 and 1.1 here, tollgate accepts TLS 1.2 and later",
			"clients that cannot speak TLS 1.2 can no longer connect")
	} else {
		switch v {
		case "VersionTLS12", "VersionTLS13":
			opts.MinVersion, custom = v, true
			c.add(tn.where("minVersion"), Converted, "minVersion = "+v, "")
		case "VersionTLS10", "VersionTLS11":
			c.add(tn.where("minVersion"), Changed, v+" became tollgate's minimum, TLS 1.2", "clients that cannot speak TLS 1.2 can no longer connect")
		default:
			c.problem(tn.where("minVersion"), "minVersion %q: Traefik 1.x accepts VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13", v)
		}
	}
	if suites, ok := tn.strs("cipherSuites"); ok {
		opts.CipherSuites, custom = c.cipherSuites(tn.where("cipherSuites"), suites), true
		if len(opts.CipherSuites) == 0 {
			custom = opts.MinVersion != ""
		}
	}
	if b, ok := tn.boolean("sniStrict"); ok && b {
		opts.SNIStrict, custom = true, true
		c.add(tn.where("sniStrict"), Converted, "sniStrict = true", "")
	}
	var cas []string
	clientAuth := "RequireAndVerifyClientCert"
	if files, ok := tn.strs("clientCAFiles"); ok {
		cas = files
	}
	if ca, ok := tn.table("clientCA"); ok {
		if files, ok := ca.strs("files"); ok {
			cas = files
		}
		if opt, ok := ca.boolean("optional"); ok && opt {
			clientAuth = "VerifyClientCertIfGiven"
		}
	}
	if len(cas) > 0 {
		opts.ClientAuth, custom = &config.ClientAuth{CAFiles: cas, ClientAuthType: clientAuth}, true
		c.add(tn.where("clientCA"), Converted, "client certificates: clientAuthType = "+clientAuth, "")
	}
	if custom {
		name := c.unique("TLS options", e.name)
		if c.cfg.TLS == nil {
			c.cfg.TLS = &config.TLS{}
		}
		if c.cfg.TLS.Options == nil {
			c.cfg.TLS.Options = map[string]*config.TLSOptions{}
		}
		c.cfg.TLS.Options[name] = opts
		c.origin("tls.options."+dn(name), tn.path)
		e.ep.HTTP.TLS.Options = name
		e.options = name
	}
	if certs, ok := tn.tables("certificates"); ok {
		for _, cn := range certs {
			c.certificate(cn, "")
		}
	}
	if dc, ok := tn.table("defaultCertificate"); ok {
		c.certificate(dc, "tollgate serves it for its own names only; for other names it serves a generated certificate")
	}
	c.add(tn.path, Converted, fmt.Sprintf("entry point %q serves TLS", e.name), "")
}

// cipherSuites keeps the suites Go still offers, under Go's names.
func (c *converter) cipherSuites(path []string, suites []string) []string {
	secure := map[string]bool{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.Name] = true
	}
	var out, dropped []string
	for _, s := range suites {
		switch {
		case secure[s]:
			out = append(out, s)
		case secure[s+"_SHA256"]:
			out = append(out, s+"_SHA256")
		default:
			dropped = append(dropped, s)
		}
	}
	if len(dropped) > 0 {
		advice := "the remaining ones apply to TLS 1.2"
		if len(out) == 0 {
			advice = "Go's default suites apply"
		}
		c.add(path, Changed, "cipher suites dropped as unknown to Go or insecure: "+strings.Join(dropped, ", "), advice)
	} else {
		c.add(path, Converted, "cipherSuites", "")
	}
	return out
}

// certificate converts a certificate file pair into [[tls.certificates]].
func (c *converter) certificate(cn *node, changed string) {
	cert, _ := cn.str("certFile")
	key, _ := cn.str("keyFile")
	if strings.Contains(cert, "-----BEGIN") || strings.Contains(key, "-----BEGIN") {
		c.add(cn.path, Action, "the certificate or key is written inline in the file; not converted",
			"write them to files and list those in [[tls.certificates]] (certFile, keyFile)")
		return
	}
	if cert == "" || key == "" {
		c.problem(cn.path, "a certificate needs certFile and keyFile")
		return
	}
	if c.cfg.TLS == nil {
		c.cfg.TLS = &config.TLS{}
	}
	c.cfg.TLS.Certificates = append(c.cfg.TLS.Certificates, config.Certificate{CertFile: cert, KeyFile: key})
	c.certSrc = append(c.certSrc, cn.path)
	if changed != "" {
		c.add(cn.path, Changed, "[[tls.certificates]] "+cert, changed)
	} else {
		c.add(cn.path, Converted, "[[tls.certificates]] "+cert, "")
	}
}

// entryPointRedirect converts [entryPoints.NAME.redirect].
func (c *converter) entryPointRedirect(e *entryPoint, n *node) {
	rn, ok := n.table("redirect")
	if !ok {
		return
	}
	permanent, _ := rn.boolean("permanent")
	target, hasTarget := rn.str("entryPoint")
	regex, _ := rn.str("regex")
	repl, _ := rn.str("replacement")
	switch {
	case hasTarget && target != "":
		to, ok := c.eps[target]
		if !ok {
			c.problem(rn.where("entryPoint"), "redirect to entry point %q, which is not defined", target)
			return
		}
		if to == e {
			c.problem(rn.where("entryPoint"), "entry point %q redirects to itself", target)
			return
		}
		r := &config.RedirectEntryPoint{To: to.name, Permanent: &permanent}
		if !to.tls {
			r.Scheme = "http"
		}
		if e.ep.HTTP == nil {
			e.ep.HTTP = &config.EntryPointHTTP{}
		}
		e.ep.HTTP.Redirections = &config.Redirections{EntryPoint: r}
		e.redirect = target
		c.origin("entryPoints."+dn(e.name)+".http.redirections", rn.path)
		if permanent {
			c.add(rn.path, Converted, fmt.Sprintf("every request is redirected to entry point %q (308), except ACME HTTP-01 challenges", to.name), "")
		} else {
			c.add(rn.path, Changed, fmt.Sprintf("every request is redirected to entry point %q with 307, where Traefik 1.x answered 302; ACME HTTP-01 challenges are answered", to.name),
				"set permanent = true for 308 once the redirection is final")
		}
		if regex != "" || repl != "" {
			c.add(rn.path, Converted, "regex and replacement are ignored when entryPoint is set, as in Traefik 1.x", "")
		}
	case regex != "":
		mw := c.addMiddleware(e.name+"-redirect", rn.path, &config.Middleware{RedirectRegex: &config.RedirectRegex{Regex: regex, Replacement: repl, Permanent: permanent}})
		// First, as Traefik 1.x redirected before anything else.
		e.mws = append([]string{mw}, e.mws...)
		c.add(rn.path, Changed, fmt.Sprintf("middleware %q (redirectRegex) on every router of the entry point", mw),
			"requests that match no router get 404 instead of the redirection")
	default:
		c.problem(rn.path, "a redirect needs entryPoint, or regex and replacement")
	}
}

// useXForwardedFor reports whiteList.useXForwardedFor.
func (c *converter) useXForwardedFor(wl *node) {
	if b, ok := wl.boolean("useXForwardedFor"); ok && b {
		c.add(wl.where("useXForwardedFor"), Changed, "useXForwardedFor: the allow list checks the connection's address",
			"trust your load balancers in the entry point's forwardedHeaders.trustedIPs and add ipStrategy to the ipAllowList middleware to check the client's address from X-Forwarded-For")
	}
}

// forwardedDefaults reports the entry points where Traefik 1.x trusted
// every client's X-Forwarded-* headers by default, once it is known which
// entry points serve the API only.
func (c *converter) forwardedDefaults() {
	for _, name := range slices.Sorted(mapKeys(c.eps)) {
		e := c.eps[name]
		if e.trustedAll && !e.internal && e.redirect == "" {
			c.add(e.src, Changed, "Traefik 1.x trusted the X-Forwarded-* headers of every client here; tollgate trusts nobody's unless told",
				"set forwardedHeaders.trustedIPs to your load balancers' addresses, or backends see the load balancer as the client")
		}
	}
}
