package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// addMiddleware adds a middleware named after want and returns its name.
func (c *converter) addMiddleware(want string, src []string, m *config.Middleware) string {
	name := c.unique("middleware", want)
	if c.cfg.HTTP == nil {
		c.cfg.HTTP = &config.HTTP{}
	}
	if c.cfg.HTTP.Middlewares == nil {
		c.cfg.HTTP.Middlewares = map[string]*config.Middleware{}
	}
	c.cfg.HTTP.Middlewares[name] = m
	key := "http.middlewares." + dn(name)
	c.origin(key, src)
	where, _ := c.location(src)
	c.comment(key, fmt.Sprintf("from %s (%s)", dottedPath(src), where))
	return name
}

// auth converts an auth table ({basic, digest, forward, headerField})
// into a basicAuth or forwardAuth middleware. When it cannot be converted
// without letting unauthenticated requests through, it returns the reason
// and no middleware: the routers it guarded must not be created.
func (c *converter) auth(an *node, want string) (mw, reason string) {
	header, _ := an.str("headerField")
	// Traefik 1.x used one of them: basic, else digest, else forward.
	used := ""
	for _, k := range []string{"basic", "digest", "forward"} {
		switch {
		case !an.has(k):
		case used == "":
			used = k
		default:
			c.add(an.where(k), Converted, fmt.Sprintf("ignored, as by Traefik 1.x, since %s is set", used), "remove it")
			an.skip(k)
		}
	}
	switch used {
	case "basic":
		bn, ok := an.table("basic")
		if !ok {
			return "", "basic is not a table" // a problem of the source, reported
		}
		return c.basicAuth(bn, want, header)
	case "digest":
		const r = "digest authentication has no equivalent in tollgate"
		c.add(an.where("digest"), Unsupported, r+"; not converted",
			"protect these routes with basicAuth (bcrypt hashes) or in the backend; their routers were left out so that nothing is exposed without authentication")
		an.skip("digest")
		return "", r
	case "forward":
		fn, ok := an.table("forward")
		if !ok {
			return "", "forward is not a table" // a problem of the source, reported
		}
		if header != "" {
			c.add(an.where("headerField"), Unsupported, "headerField beside forward: Traefik 1.x passed no user name from forward authentication, and tollgate's forwardAuth headerField takes it from the authentication server's answer; not converted",
				"to pass the user, have the authentication server answer it in a header and list that header in authResponseHeaders")
		}
		return c.forwardAuth(fn, want)
	}
	c.add(an.path, Unsupported, "auth without basic, digest or forward; nothing to convert", "")
	return "", ""
}

// forwardAuth converts auth.forward: address, trustForwardHeader,
// authResponseHeaders and tls.
func (c *converter) forwardAuth(fn *node, want string) (mw, reason string) {
	addr, _ := fn.str("address")
	if addr == "" {
		const r = "forward authentication without address"
		c.add(fn.path, Unsupported, r+"; not converted: Traefik 1.x answered 500 to every request, so the routers it guarded were left out", "set address to the authentication server's URL and convert again")
		fn.skipAll()
		return "", r
	}
	fa := &config.ForwardAuth{Address: addr}
	fa.TrustForwardHeader, _ = fn.boolean("trustForwardHeader")
	fa.AuthResponseHeaders, _ = fn.strs("authResponseHeaders")
	if tn, ok := fn.table("tls"); ok {
		fa.TLS = c.clientTLS(tn)
	}
	name := c.addMiddleware(want, fn.path, &config.Middleware{ForwardAuth: fa})
	c.add(fn.path, Converted, fmt.Sprintf("middleware %q (forwardAuth): every request is first sent, as a GET, to the authentication server, as in Traefik 1.x", name), "")
	return name, ""
}

// clientTLS converts the tls of forward authentication: ca, cert, key and
// insecureSkipVerify. Traefik 1.x also took the content of a PEM file
// in place of its name; such a value is not copied into the
// configuration (a key would be exposed there) but reported.
func (c *converter) clientTLS(tn *node) *config.ClientTLS {
	t := &config.ClientTLS{}
	written := map[string]string{} // the values as written, files or PEM
	for _, f := range []struct {
		key string
		out *string
	}{{"ca", &t.CA}, {"cert", &t.Cert}, {"key", &t.Key}} {
		v, ok := tn.str(f.key)
		if !ok || v == "" {
			continue
		}
		written[f.key] = v
		if strings.Contains(v, "-----BEGIN") {
			c.add(tn.where(f.key), Action, fmt.Sprintf("tls.%s holds PEM content rather than a file name: it is not copied into the configuration", f.key),
				fmt.Sprintf("write it to a file readable by tollgate only and set tls.%s of the middleware to that file's name", f.key))
			continue
		}
		*f.out = v
	}
	t.InsecureSkipVerify, _ = tn.boolean("insecureSkipVerify")
	pair := written["cert"] != "" && written["key"] != ""
	switch {
	case !pair && !t.InsecureSkipVerify:
		// Traefik 1.7 refused to build such a TLS configuration.
		c.add(tn.path, Changed, "Traefik 1.7 answered 500 to every request when tls had neither both cert and key nor insecureSkipVerify; tollgate verifies the authentication server (with ca, else the system's roots) and asks it about every request", "")
	case pair && (t.Cert == "" || t.Key == ""):
		c.add(tn.path, Changed, "no client certificate is presented to the authentication server until cert and key both name files", "")
	}
	if t.Cert == "" || t.Key == "" {
		t.Cert, t.Key = "", "" // tollgate presents a certificate with its key only
	}
	if t.InsecureSkipVerify {
		c.add(tn.where("insecureSkipVerify"), Converted, "insecureSkipVerify = true: the authentication server's certificate is not verified, as in Traefik 1.x", "give the authentication server a certificate tollgate can verify (tls.ca) and remove it")
	}
	if tn.has("caOptional") {
		c.add(tn.where("caOptional"), Unsupported, "caOptional has no equivalent: it concerns the certificates a server asks of its clients, and Traefik 1.x ignored it on the connections it opened; not converted", "remove it")
		tn.skip("caOptional")
	}
	c.add(tn.path, Converted, "the TLS settings of the connection to the authentication server", "")
	return t
}

// basicAuth converts users, usersFile and removeHeader.
func (c *converter) basicAuth(bn *node, want, header string) (mw, reason string) {
	users, _ := bn.strs("users")
	file, _ := bn.str("usersFile")
	remove, _ := bn.boolean("removeHeader")
	return c.basicAuthUsers(bn.path, users, file, remove, header, want)
}

// basicAuthUsers keeps the users with bcrypt hashes, which are the only
// ones tollgate checks. Names are reported, never hashes.
func (c *converter) basicAuthUsers(path []string, users []string, file string, remove bool, header, want string) (mw, reason string) {
	var kept, dropped []string
	for _, u := range users {
		name, hash, _ := strings.Cut(u, ":")
		if strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$") {
			kept = append(kept, u)
		} else {
			dropped = append(dropped, name)
		}
	}
	if len(dropped) > 0 {
		c.add(path, Action, fmt.Sprintf("users whose password is not a bcrypt hash were left out (tollgate checks bcrypt only): %s", strings.Join(dropped, ", ")),
			"hash their passwords again with htpasswd -nB NAME and add them to users")
	}
	if len(kept) == 0 && file == "" {
		r := "no user could be converted"
		if len(users) == 0 {
			r = "no users are listed"
		}
		c.add(path, Unsupported, "basic authentication: "+r+"; the routers it guarded were left out so that nothing is exposed without authentication", "")
		return "", r
	}
	name := c.addMiddleware(want, path, &config.Middleware{BasicAuth: &config.BasicAuth{
		Users: kept, UsersFile: file, RemoveHeader: remove, HeaderField: header,
	}})
	c.add(path, Converted, fmt.Sprintf("middleware %q (basicAuth)", name), "")
	if file != "" {
		c.add(path, Action, "usersFile "+file+" is read by tollgate as is", "make sure it holds bcrypt hashes only (htpasswd -B); other lines are rejected")
	}
	return name, ""
}

// headers converts a frontend's [headers]: the custom headers and the
// security headers into a headers middleware, SSLRedirect into a
// redirectScheme middleware. It returns both names ("" when not needed).
func (c *converter) headers(hn *node, base string) (headersMW, sslMW string) {
	h := &config.Headers{}
	set := false
	if m := c.stringMap(hn, "customRequestHeaders"); m != nil {
		h.CustomRequestHeaders, set = m, true
	}
	if m := c.stringMap(hn, "customResponseHeaders"); m != nil {
		h.CustomResponseHeaders, set = m, true
	}
	ints := []struct {
		key string
		out *int64
	}{{"stsSeconds", &h.STSSeconds}}
	for _, f := range ints {
		if v, ok := hn.integer(f.key); ok {
			*f.out, set = v, set || v != 0
		}
	}
	bools := []struct {
		key string
		out *bool
	}{
		{"stsIncludeSubdomains", &h.STSIncludeSubdomains}, {"stsPreload", &h.STSPreload},
		{"forceSTSHeader", &h.ForceSTSHeader}, {"frameDeny", &h.FrameDeny}, {"contentTypeNosniff", &h.ContentTypeNosniff},
	}
	for _, f := range bools {
		if v, ok := hn.boolean(f.key); ok {
			*f.out = v
			set = set || v
		}
	}
	strs := []struct {
		key string
		out *string
	}{
		{"customFrameOptionsValue", &h.CustomFrameOptionsValue}, {"contentSecurityPolicy", &h.ContentSecurityPolicy},
		{"referrerPolicy", &h.ReferrerPolicy},
	}
	for _, f := range strs {
		if v, ok := hn.str(f.key); ok {
			*f.out = v
			set = set || v != ""
		}
	}
	if set {
		headersMW = c.addMiddleware(base+"-headers", hn.path, &config.Middleware{Headers: h})
		c.add(hn.path, Converted, fmt.Sprintf("middleware %q (headers)", headersMW), "")
	}
	redirect, _ := hn.boolean("sslRedirect")
	temporary, _ := hn.boolean("sslTemporaryRedirect")
	if redirect || temporary {
		sslMW = c.addMiddleware(base+"-https", hn.path, &config.Middleware{RedirectScheme: &config.RedirectScheme{Scheme: "https", Permanent: !temporary}})
		c.add(hn.where("sslRedirect"), Converted, fmt.Sprintf("middleware %q (redirectScheme to https) on the plain-HTTP routers", sslMW), "")
	}
	for _, k := range []string{"allowedHosts", "hostsProxyHeaders", "sslHost", "sslProxyHeaders", "sslForceHost", "browserXssFilter", "customBrowserXSSValue", "publicKey", "isDevelopment"} {
		if !hn.has(k) {
			continue
		}
		advice := "set it in the backend if you still need it"
		switch k {
		case "allowedHosts":
			advice = "tollgate routes by the rule only: make sure the rule's Host matchers list exactly the allowed hosts"
		case "sslProxyHeaders":
			advice = "with trusted load balancers, tollgate takes the scheme from their X-Forwarded-Proto"
		case "browserXssFilter", "customBrowserXSSValue":
			advice = "browsers no longer use X-XSS-Protection; add it to customResponseHeaders if you must"
		}
		c.add(hn.where(k), Unsupported, fmt.Sprintf("headers.%s has no equivalent; not converted", k), advice)
		hn.skip(k)
	}
	return headersMW, sslMW
}

// stringMap reads a table of strings, such as customRequestHeaders.
func (c *converter) stringMap(n *node, name string) map[string]string {
	t, ok := n.table(name)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if s, ok := t.str(k); ok {
			out[k] = s
		}
	}
	return out
}

// rateLimit converts [ratelimit]: one rateLimit middleware per rate set.
func (c *converter) rateLimit(rn *node, base string) []string {
	crit := &config.SourceCriterion{}
	ex, _ := rn.str("extractorFunc")
	switch {
	case ex == "" || ex == "client.ip":
		crit = nil
	case ex == "request.host":
		crit.RequestHost = true
	case strings.HasPrefix(ex, "request.header."):
		crit.RequestHeaderName = strings.TrimPrefix(ex, "request.header.")
	default:
		c.problem(rn.where("extractorFunc"), "extractorFunc %q: Traefik 1.x accepts client.ip, request.host or request.header.NAME", ex)
		return nil
	}
	sets, ok := rn.table("rateSet")
	if !ok {
		c.add(rn.path, Unsupported, "ratelimit without rateSet limits nothing; not converted", "")
		return nil
	}
	var out []string
	for _, s := range sets.named() {
		avg, _ := s.integer("average")
		burst, _ := s.integer("burst")
		period, _ := s.duration("period")
		if avg <= 0 {
			c.add(s.path, Unsupported, "a rate set with average 0 limits nothing; not converted", "")
			continue
		}
		var cr *config.SourceCriterion
		if crit != nil {
			cp := *crit
			cr = &cp
		}
		mw := c.addMiddleware(base+"-ratelimit-"+s.name(), s.path, &config.Middleware{RateLimit: &config.RateLimit{
			Average: avg, Burst: burst, Period: config.Duration(period), SourceCriterion: cr,
		}})
		out = append(out, mw)
		c.add(s.path, Converted, fmt.Sprintf("middleware %q (rateLimit)", mw), "")
	}
	return out
}

// clientCert converts passTLSCert and passTLSClientCert.
func (c *converter) clientCert(fn *node, base string) string {
	var p *config.PassTLSClientCert
	at := fn.path
	if b, ok := fn.boolean("passTLSCert"); ok && b {
		p, at = &config.PassTLSClientCert{PEM: true}, fn.where("passTLSCert")
	}
	if t, ok := fn.table("passTLSClientCert"); ok {
		p, at = &config.PassTLSClientCert{}, t.path
		p.PEM, _ = t.boolean("pem")
		if in, ok := t.table("infos"); ok {
			info := &config.TLSClientCertInfo{}
			info.NotAfter, _ = in.boolean("notAfter")
			info.NotBefore, _ = in.boolean("notBefore")
			info.SANs, _ = in.boolean("sans")
			info.Subject = c.certSubject(in, "subject")
			info.Issuer = c.certSubject(in, "issuer")
			p.Info = info
		}
		if !p.PEM && p.Info == nil {
			c.add(t.path, Unsupported, "passTLSClientCert passes nothing; not converted", "")
			return ""
		}
	}
	if p == nil {
		return ""
	}
	mw := c.addMiddleware(base+"-client-cert", at, &config.Middleware{PassTLSClientCert: p})
	c.add(at, Converted, fmt.Sprintf("middleware %q (passTLSClientCert)", mw), "the header is X-Forwarded-Tls-Client-Cert (and -Info), as in Traefik")
	return mw
}

func (c *converter) certSubject(in *node, name string) *config.TLSClientCertSubject {
	t, ok := in.table(name)
	if !ok {
		return nil
	}
	s := &config.TLSClientCertSubject{}
	for _, f := range []struct {
		key string
		out *bool
	}{
		{"country", &s.Country}, {"province", &s.Province}, {"locality", &s.Locality}, {"organization", &s.Organization},
		{"commonName", &s.CommonName}, {"serialNumber", &s.SerialNumber}, {"domainComponent", &s.DomainComponent},
	} {
		*f.out, _ = t.boolean(f.key)
	}
	return s
}
