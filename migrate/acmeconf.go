package migrate

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// EncryptionKeyEnv is the environment variable the converted [acme] reads
// the encryption key of private keys from.
const EncryptionKeyEnv = "TOLLGATE_ENCRYPTION_KEY"

// acmeState is what frontends need from [acme].
type acmeState struct {
	onHostRule bool
}

// acmeSection converts [acme].
func (c *converter) acmeSection(root *node) {
	an, ok := root.table("acme")
	if !ok {
		return
	}
	a := &config.ACME{EncryptionKeyEnv: EncryptionKeyEnv}
	c.cfg.ACME = a
	c.acme = &acmeState{}
	c.origin("acme", an.path)
	if s, ok := an.str("email"); ok {
		a.Email = s
		c.origin("acme.email", an.where("email"))
		c.add(an.where("email"), Converted, fmt.Sprintf("email = %q: tollgate certs import reuses the account Traefik registered with it", s), "")
	}
	if b, ok := an.boolean("onHostRule"); ok && !b {
		c.add(an.where("onHostRule"), Converted, "false: certificates for [[acme.domains]] only", "")
	} else if ok && b {
		a.OnHostRule, c.acme.onHostRule = true, true
		// Traefik 1.x ordered for the frontends of acme.entryPoint only;
		// tollgate orders for the TLS routers of every entry point.
		acmeEP, _ := an.str("entryPoint")
		var others []string
		for _, n := range slices.Sorted(maps.Keys(c.eps)) {
			if ep := c.eps[n]; ep.tls && !ep.internal && n != acmeEP {
				others = append(others, n)
			}
		}
		if len(others) > 0 && acmeEP != "" {
			c.add(an.where("onHostRule"), Changed,
				fmt.Sprintf("onHostRule: tollgate orders certificates for the hosts of TLS routers on every entry point, Traefik 1.x only for frontends on acme.entryPoint %q; the frontends on %s get ACME certificates too", acmeEP, strings.Join(others, ", ")),
				"to keep Traefik's scope, set onHostRule = false and list the names in [[acme.domains]]")
		} else {
			c.add(an.where("onHostRule"), Converted, "onHostRule: a certificate for the hosts of every TLS router's rule", "")
		}
	}
	c.caServer(an, a)
	c.keyType(an, a)
	c.challenges(an, a)
	if ds, ok := an.tables("domains"); ok {
		for _, d := range ds {
			main, _ := d.str("main")
			sans, _ := d.strs("sans")
			a.Domains = append(a.Domains, config.Domain{Main: strings.ToLower(main), SANs: lower(sans)})
			c.domainSrc = append(c.domainSrc, d.path)
			c.add(d.path, Converted, "[[acme.domains]] "+main, "")
		}
	}
	if s, ok := an.str("storage"); ok {
		c.storage = s
	}
	if s, ok := an.str("storageFile"); ok {
		if c.storage == "" {
			c.storage = s
			c.add(an.where("storageFile"), Converted, "storageFile, the older name of storage", "")
		} else {
			c.add(an.where("storageFile"), Converted, "ignored, as by Traefik 1.x, since storage is set", "remove it")
		}
	}
	if ep, ok := an.str("entryPoint"); ok {
		if _, defined := c.eps[ep]; !defined {
			c.problem(an.where("entryPoint"), "acme.entryPoint %q is not defined", ep)
		}
		c.add(an.where("entryPoint"), Converted, "tollgate serves ACME certificates on every TLS entry point", "")
	}
	if b, ok := an.boolean("onDemand"); ok && !b {
		c.add(an.where("onDemand"), Converted, "false: no certificates on demand", "")
	} else if ok && b {
		c.add(an.where("onDemand"), Unsupported, "on-demand certificates for any name have no equivalent: tollgate orders on demand only names an ask URL approves",
			"add [acme.onDemand] with ask = \"https://…\", a URL that answers 2xx for the names you serve, or list the names in [[acme.domains]]")
	}
	if b, ok := an.boolean("acmeLogging"); ok && !b {
		c.add(an.where("acmeLogging"), Converted, "false: tollgate logs its ACME client at debug level only", "")
	} else if ok && b {
		c.add(an.where("acmeLogging"), Changed, "tollgate logs its ACME client at debug level", "set [log] level = \"debug\" while you need it")
	}
	if an.has("overrideCertificates") {
		c.add(an.where("overrideCertificates"), Unsupported, "overrideCertificates has no equivalent", "tollgate certs import --overwrite replaces stored certificates")
		an.skip("overrideCertificates")
	}
	c.add(an.path, Action, fmt.Sprintf("private keys are stored encrypted under a key read from %s", EncryptionKeyEnv),
		fmt.Sprintf("make one (openssl rand -base64 32), give it to every replica in %s, and to tollgate certs import", EncryptionKeyEnv))
	c.storageAdvice(an)
}

// caServer converts caServer, moving the retired ACME v1 endpoints of
// Let's Encrypt to their v2 successors.
func (c *converter) caServer(an *node, a *config.ACME) {
	s, ok := an.str("caServer")
	if !ok {
		return
	}
	switch s {
	case "https://acme-v01.api.letsencrypt.org/directory":
		c.add(an.where("caServer"), Changed, "Let's Encrypt's retired ACME v1 directory became its production v2 directory (tollgate's default)", "")
	case "https://acme-staging.api.letsencrypt.org/directory":
		a.CAServer = "https://acme-staging-v02.api.letsencrypt.org/directory"
		c.add(an.where("caServer"), Changed, "Let's Encrypt's retired ACME v1 staging directory became "+a.CAServer, "")
	case config.DefaultCAServer:
		c.add(an.where("caServer"), Converted, "caServer is Let's Encrypt production, tollgate's default", "")
	default:
		a.CAServer = s
		c.origin("acme.caServer", an.where("caServer"))
		c.add(an.where("caServer"), Converted, "caServer = "+s, "")
	}
}

// keyType converts keyType; Traefik 1.x defaulted to RSA4096.
func (c *converter) keyType(an *node, a *config.ACME) {
	s, ok := an.str("keyType")
	switch {
	case !ok:
		c.add(an.path, Changed, "new certificates get EC256 keys, tollgate's default; Traefik 1.x's default was RSA4096",
			"imported certificates keep their keys until renewed; set keyType = \"RSA4096\" for clients that cannot use ECDSA")
	case slices.Contains([]string{"EC256", "EC384", "RSA2048", "RSA4096", "RSA8192"}, s):
		a.KeyType = s
		c.add(an.where("keyType"), Converted, "keyType = "+s, "")
	default:
		a.KeyType = "RSA4096"
		c.add(an.where("keyType"), Changed, fmt.Sprintf("keyType %q became RSA4096, which Traefik 1.x fell back to", s), "")
	}
}

// challenges converts the challenge settings. Traefik 1.x used one
// challenge: DNS-01 when a provider is set, else HTTP-01 when an entry
// point is, else TLS-ALPN-01; tollgate enables the same one.
func (c *converter) challenges(an *node, a *config.ACME) {
	var dns *config.DNSChallenge
	var dnsAt []string
	if p, ok := an.str("dnsProvider"); ok && p != "" {
		dns, dnsAt = &config.DNSChallenge{Provider: p}, an.where("dnsProvider")
		if d, ok := an.duration("delayDontCheckDNS"); ok && d > 0 {
			dns.DelayBeforeCheck = config.Duration(d)
		}
	}
	an.skip("delayDontCheckDNS")
	if dn, ok := an.table("dnsChallenge"); ok {
		p, _ := dn.str("provider")
		if p == "" {
			p, _ = dn.str("dnsProvider")
		}
		dns, dnsAt = &config.DNSChallenge{Provider: p}, dn.path
		if d, ok := dn.duration("delayBeforeCheck"); ok {
			dns.DelayBeforeCheck = config.Duration(d)
		}
		if d, ok := dn.duration("delayDontCheckDNS"); ok && d > 0 {
			dns.DelayBeforeCheck = config.Duration(d)
		}
		dns.Resolvers, _ = dn.strs("resolvers")
		for i, r := range dns.Resolvers {
			if !strings.Contains(r, ":") {
				dns.Resolvers[i] = r + ":53"
			}
		}
		dns.DisablePropagationCheck, _ = dn.boolean("disablePropagationCheck")
	}
	var httpEP string
	var httpAt []string
	if hn, ok := an.table("httpChallenge"); ok {
		httpEP, _ = hn.str("entryPoint")
		httpAt = hn.path
	}
	tn, hasTLS := an.table("tlsChallenge")
	switch {
	case dns != nil && dns.Provider != "":
		a.DNSChallenge = dns
		c.origin("acme.dnsChallenge", dnsAt)
		c.add(dnsAt, Converted, "DNS-01 through lego's provider "+dns.Provider, "give every replica the provider's credentials in the environment variables lego documents")
		c.unusedChallenge(httpAt, hasTLS, tn)
	case httpEP != "":
		ep, ok := c.eps[httpEP]
		if !ok {
			c.problem(httpAt, "acme.httpChallenge.entryPoint %q is not defined", httpEP)
			return
		}
		a.HTTPChallenge = &config.HTTPChallenge{EntryPoint: ep.name}
		c.origin("acme.httpChallenge", httpAt)
		c.add(httpAt, Converted, "HTTP-01 on entry point "+ep.name+": every replica answers every challenge", "")
		c.unusedChallenge(nil, hasTLS, tn)
	case hasTLS:
		a.TLSChallenge = &config.TLSChallenge{}
		c.origin("acme.tlsChallenge", tn.path)
		c.add(tn.path, Converted, "TLS-ALPN-01: every replica answers every challenge", "")
	default:
		c.defaultChallenge(an, a)
	}
}

// unusedChallenge reports the challenges Traefik 1.x ignored because a
// preferred one was set.
func (c *converter) unusedChallenge(httpAt []string, hasTLS bool, tn *node) {
	if httpAt != nil {
		c.add(httpAt, Unsupported, "Traefik 1.x used the DNS challenge only when both were set; HTTP-01 stays off", "add it back if you want the CA to choose")
	}
	if hasTLS {
		c.add(tn.path, Unsupported, "Traefik 1.x used one challenge only; TLS-ALPN-01 stays off", "add [acme.tlsChallenge] back if you want the CA to choose")
	}
}

// defaultChallenge enables a challenge when the source names none (old
// Traefik versions used TLS-SNI-01, which CAs no longer offer).
func (c *converter) defaultChallenge(an *node, a *config.ACME) {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.eps {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		if ep := c.eps[n]; ep.tls && !ep.internal {
			a.TLSChallenge = &config.TLSChallenge{}
			c.add(an.path, Changed, "no challenge was set (Traefik before 1.7 used TLS-SNI-01, which CAs no longer offer): TLS-ALPN-01 is enabled", "the load balancer must pass TLS on port 443 through to tollgate")
			return
		}
	}
	for _, n := range names {
		if ep := c.eps[n]; !ep.tls && ep.port == 80 {
			a.HTTPChallenge = &config.HTTPChallenge{EntryPoint: ep.name}
			c.add(an.path, Changed, "no challenge was set (Traefik before 1.7 used TLS-SNI-01, which CAs no longer offer): HTTP-01 is enabled on "+ep.name, "")
			return
		}
	}
	c.problem(an.path, "no ACME challenge is set and no entry point can answer one: add [acme.httpChallenge] with an entry point on port 80, or an entry point with TLS")
}

// storageAdvice says how to bring the certificates of acme.storage over.
// With a KV store (in the file or among the flags) storage is the key of
// Traefik's data; without one it is a file, unless it does not end in
// .json: then it is most likely a key of a store Traefik was given on its
// command line, which the report asks for rather than advise reading a
// file that does not exist.
func (c *converter) storageAdvice(an *node) {
	if c.storage == "" {
		return
	}
	at := an.where("storage")
	if !an.has("storage") {
		at = an.where("storageFile")
	}
	check := "validate the configuration with tollgate check --config " + shellQuote(c.out) + ", then import them before starting tollgate, so that nothing is ordered again: "
	switch {
	case c.kvProvider != "" && !strings.HasSuffix(c.storage, ".json"):
		c.add(at, Action, fmt.Sprintf("certificates and the account are in the store at %s/object", strings.Trim(c.storage, "/")),
			check+c.importCommand())
	case c.kvProvider == "" && !strings.HasSuffix(c.storage, ".json"):
		c.add(at, Action, fmt.Sprintf("%q is the key of Traefik's data in a KV store (cluster mode), but neither the file nor the flags name that store ([consul] or [etcd]): Traefik got it on its command line, and the converted configuration has no [store]", c.storage),
			"convert again with the store flags Traefik ran with, for example --traefik-args \"--consul --consul.endpoint=HOST:8500 --consul.prefix=traefik\" (or --etcd, --etcd.endpoint, --etcd.prefix, --etcd.useapiv3): the report then gives the import command")
	default:
		c.add(at, Action, "certificates and the account are in the file "+c.storage,
			check+"tollgate certs import --from-acme-json "+shellQuote(c.storage)+" --config "+shellQuote(c.out))
	}
}

// importCommand is the certs import command for a KV storage key.
func (c *converter) importCommand() string {
	key := strings.Trim(c.storage, "/")
	prefix, rest, _ := strings.Cut(key, "/")
	if c.kvPrefix != "" && strings.HasPrefix(key, c.kvPrefix+"/") {
		prefix, rest = c.kvPrefix, strings.TrimPrefix(key, c.kvPrefix+"/")
	}
	cmd := "tollgate certs import --from-traefik-v1 --kv " + shellQuote(c.kvEndpoint)
	if rest == "acme/account" {
		cmd += " --prefix " + shellQuote(prefix)
	} else {
		// --traefik-key is the whole key, and excludes --prefix.
		cmd += " --traefik-key " + shellQuote(key+"/object")
	}
	return cmd + " --config " + shellQuote(c.out)
}

// kvProviders converts [consul] or [etcd], the store of Traefik's cluster
// mode, into [store].
func (c *converter) kvProviders(root *node) {
	var chosen *node
	for _, p := range []string{"consul", "etcd"} {
		n, ok := root.table(p)
		if !ok {
			continue
		}
		if chosen != nil {
			c.add(n.path, Unsupported, fmt.Sprintf("a second KV store: tollgate uses one, [%s]; not converted", chosen.name()), "")
			n.skipAll()
			continue
		}
		chosen = n
		c.kvStore(n, p)
	}
}

// kvStore converts one KV provider section.
func (c *converter) kvStore(n *node, scheme string) {
	endpoint, hasEndpoint := n.str("endpoint")
	if endpoint == "" {
		endpoint = "127.0.0.1:8500"
		if scheme == "etcd" {
			endpoint = "127.0.0.1:2379"
		}
	}
	q := url.Values{}
	hosts := strings.Split(endpoint, ",")
	for i, h := range hosts {
		h = strings.TrimSpace(h)
		if rest, ok := strings.CutPrefix(h, "https://"); ok {
			h = rest
			q.Set("tls", "true")
		}
		hosts[i] = strings.TrimPrefix(h, "http://")
	}
	switch {
	case scheme == "consul" && len(hosts) > 1:
		c.add(n.where("endpoint"), Changed, "tollgate talks to one Consul agent: "+hosts[0], "point it at the local agent, which forwards to the servers")
		hosts = hosts[:1]
	case hasEndpoint && q.Has("tls"):
		c.add(n.where("endpoint"), Converted, "the hosts of [store] endpoint, with tls=true for https://", "")
	case hasEndpoint:
		c.add(n.where("endpoint"), Converted, "the hosts of [store] endpoint", "")
	}
	if tn, ok := n.table("tls"); ok {
		c.add(tn.path, Converted, "TLS to the store: tls=true and the files (ca_file, cert_file, key_file) in [store] endpoint", "")
		q.Set("tls", "true")
		for _, f := range [][2]string{{"ca", "ca_file"}, {"cert", "cert_file"}, {"key", "key_file"}} {
			if s, ok := tn.str(f[0]); ok && s != "" {
				q.Set(f[1], s)
			}
		}
		if b, ok := tn.boolean("insecureSkipVerify"); ok && b {
			q.Set("insecure_skip_verify", "true")
		}
		if tn.has("caOptional") {
			c.add(tn.where("caOptional"), Unsupported, "caOptional has no equivalent: the CA, when given, is required", "")
			tn.skip("caOptional")
		}
	}
	user := ""
	if s, ok := n.str("username"); ok && s != "" {
		if scheme == "etcd" {
			user = url.User(s).String() + "@"
			c.add(n.where("username"), Converted, "the user of [store] endpoint", "")
		} else {
			c.add(n.where("username"), Unsupported, "Consul has no user names; not converted", "give tollgate an ACL token with token_file=PATH in the endpoint, or CONSUL_HTTP_TOKEN")
		}
	}
	if n.has("password") {
		n.skip("password")
		param, env := "password_file", "ETCD_PASSWORD"
		if scheme == "consul" {
			param, env = "token_file", "CONSUL_HTTP_TOKEN"
		}
		c.add(n.where("password"), Action, "the password is not written in the configuration",
			fmt.Sprintf("put it in a file named by %s=PATH in the endpoint, or in %s", param, env))
	}
	endpoint = scheme + "://" + user + strings.Join(hosts, ",") + encodeQuery(q)
	prefix := "traefik"
	if s, ok := n.str("prefix"); ok && s != "" {
		prefix = strings.Trim(s, "/")
		c.add(n.where("prefix"), Converted, fmt.Sprintf("Traefik's prefix %q: tollgate certs import reads Traefik's data below it", prefix), "")
	}
	c.kvProvider, c.kvPrefix, c.kvEndpoint = scheme, prefix, endpoint
	c.cfg.Store = &config.Store{Endpoint: endpoint, Prefix: config.DefaultPrefix}
	c.origin("store", n.path)
	c.add(n.path, Converted, fmt.Sprintf("[store] endpoint = %q", endpoint),
		fmt.Sprintf("tollgate keeps its state under its own prefix %q, beside Traefik's %q, so both can run during the cutover", config.DefaultPrefix, prefix))
	c.add(n.path, Unsupported, fmt.Sprintf("frontends and backends that Traefik read from the store under %s/ are not converted", prefix),
		"only the file is converted: write those routes in it as [frontends] and [backends] and convert again, then publish with tollgate storeconfig")
	// useAPIV3 is false by default: without it Traefik 1.x used the v2 API.
	if b, _ := n.boolean("useAPIV3"); b && scheme == "etcd" {
		c.add(n.where("useAPIV3"), Converted, "true: Traefik wrote through etcd's v3 API, which tollgate uses", "")
	} else if scheme == "etcd" {
		c.add(n.where("useAPIV3"), Changed, "tollgate uses etcd's v3 API; keys Traefik wrote through the v2 API (its default, without useAPIV3 = true) are not visible there", "copy the value into the v3 keyspace under the same key (ETCDCTL_API=2 etcdctl get KEY, then etcdctl put KEY with the v3 API) and import from there; do not switch Traefik to the v3 API for this, it would start on an empty store and order every certificate again")
	}
	if b, ok := n.boolean("watch"); ok {
		c.add(n.where("watch"), Converted, fmt.Sprintf("watch = %v: tollgate replicas started with --kv always follow the configuration in the store", b), "")
	}
	for _, k := range []string{"filename", "templateVersion", "debugLogGeneratedTemplate", "constraints", "trace"} {
		if n.has(k) {
			c.add(n.where(k), Unsupported, fmt.Sprintf("%s.%s has no equivalent; not converted", scheme, k), "")
			n.skip(k)
		}
	}
}

func lower(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// encodeQuery writes endpoint parameters readably: tls first, then the
// others sorted, with only the characters that would break the URL
// escaped (paths keep their slashes).
func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	esc := strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "%20", "=", "%3D")
	var parts []string
	if q.Has("tls") {
		parts = append(parts, "tls="+esc.Replace(q.Get("tls")))
	}
	for _, k := range slices.Sorted(mapKeys(q)) {
		if k != "tls" {
			parts = append(parts, k+"="+esc.Replace(q.Get(k)))
		}
	}
	return "?" + strings.Join(parts, "&")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
