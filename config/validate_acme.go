package config

import (
	"fmt"
	"slices"
	"strings"
)

// keyTypes are the accepted ACME key types; the first is the default.
func keyTypes() []string {
	return []string{"EC256", "EC384", "RSA2048", "RSA3072", "RSA4096", "RSA8192"}
}

// DefaultCAServer is Let's Encrypt's production directory.
const DefaultCAServer = "https://acme-v02.api.letsencrypt.org/directory"

func (v *validator) acme() {
	a := v.cfg.ACME
	if a == nil {
		return
	}
	if a.Email != "" {
		v.check(p("acme", "email"), checkEmail(a.Email))
	}
	if a.CAServer != "" {
		v.check(p("acme", "caServer"), checkURL(a.CAServer, "https"))
	}
	for i, f := range a.CACertificates {
		if f == "" {
			v.add(p("acme", "caCertificates", fmt.Sprint(i)), "empty file name")
		}
	}
	if a.KeyType != "" && !slices.Contains(keyTypes(), a.KeyType) {
		v.add(p("acme", "keyType"), "keyType %q: use one of %s (default EC256)", a.KeyType, strings.Join(keyTypes(), ", "))
	}
	if a.HTTPChallenge == nil && a.TLSChallenge == nil && a.DNSChallenge == nil {
		v.add(p("acme"), "no challenge is enabled: add [acme.httpChallenge] with entryPoint = \"web\", [acme.tlsChallenge] or [acme.dnsChallenge]")
	}
	v.challenges(a)
	for i, d := range a.Domains {
		v.domain(p("acme", "domains", fmt.Sprint(i)), d)
	}
	if od := a.OnDemand; od != nil {
		if od.Ask == "" {
			v.add(p("acme", "onDemand", "ask"), "ask is required: a URL that answers 2xx for names tollgate may order, so that strangers cannot make it order certificates for any name")
		} else {
			v.check(p("acme", "onDemand", "ask"), checkURL(od.Ask, "http", "https"))
		}
	}
	switch {
	case a.EncryptionKeyFile != "" && a.EncryptionKeyEnv != "":
		v.add(p("acme"), "set one of encryptionKeyFile and encryptionKeyEnv, not both")
	case a.EncryptionKeyFile == "" && a.EncryptionKeyEnv == "" && !a.InsecurePlaintextKeys:
		v.add(p("acme"), "no encryption key for private keys in the store: set encryptionKeyFile = \"/etc/tollgate/key\" (a file made with \"openssl rand -base64 32\", the same on every replica) or encryptionKeyEnv = \"TOLLGATE_ENCRYPTION_KEY\"; or, for tests only, insecurePlaintextKeys = true")
	case a.EncryptionKeyEnv != "" && strings.Trim(a.EncryptionKeyEnv, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "":
		v.add(p("acme", "encryptionKeyEnv"), "encryptionKeyEnv %q: an environment variable name is letters, digits and underscores", a.EncryptionKeyEnv)
	}
	if a.ConcurrentOrders < 0 || a.ConcurrentOrders > 64 {
		v.add(p("acme", "concurrentOrders"), "concurrentOrders %d: use 1 to 64, or leave it out for 4", a.ConcurrentOrders)
	}
	if gc := a.GarbageCollect; gc != nil && gc.GracePeriod < 0 {
		v.add(p("acme", "garbageCollect", "gracePeriod"), "gracePeriod is negative")
	}
	if e := a.EAB; e != nil {
		if e.KID == "" {
			v.add(p("acme", "eab", "kid"), "kid is required: the key identifier your CA gave you")
		}
		if (e.HMACKeyFile == "") == (e.HMACKeyEnv == "") {
			v.add(p("acme", "eab"), "set exactly one of hmacKeyFile and hmacKeyEnv; the HMAC key itself is never written in the configuration")
		}
	}
}

func (v *validator) challenges(a *ACME) {
	if c := a.HTTPChallenge; c != nil {
		path := p("acme", "httpChallenge", "entryPoint")
		if c.EntryPoint == "" {
			v.add(path, "entryPoint is required: the plain HTTP entry point on port 80, such as \"web\"")
		} else {
			v.ref(path, "entry point", c.EntryPoint, v.entryPointNames)
			if slices.Contains(v.tlsEntryPoints(), c.EntryPoint) {
				v.add(path, "entry point %q serves TLS; HTTP-01 challenges arrive over plain HTTP on port 80", c.EntryPoint)
			}
		}
	}
	if a.TLSChallenge != nil && len(v.tlsEntryPoints()) == 0 {
		v.add(p("acme", "tlsChallenge"), "TLS-ALPN-01 needs an entry point with TLS on port 443; add [entryPoints.websecure.http.tls]")
	}
	if c := a.DNSChallenge; c != nil {
		if c.Provider == "" {
			v.add(p("acme", "dnsChallenge", "provider"), "provider is required: a lego DNS provider name such as \"cloudflare\" or \"route53\"")
		} else if strings.Trim(c.Provider, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			v.add(p("acme", "dnsChallenge", "provider"), "provider %q: lego provider names are lower-case letters and digits, such as \"route53\"", c.Provider)
		}
		for i, r := range c.Resolvers {
			if _, port, err := checkListen(r); err != nil || port == 0 {
				v.add(p("acme", "dnsChallenge", "resolvers", fmt.Sprint(i)), "resolver %q is not host:port, such as \"1.1.1.1:53\"", r)
			}
		}
		v.nonNegative(p("acme", "dnsChallenge", "delayBeforeCheck"), c.DelayBeforeCheck)
	}
}

// domain checks one certificate's names; wildcards need DNS-01.
func (v *validator) domain(path []string, d Domain) {
	dns := v.cfg.ACME != nil && v.cfg.ACME.DNSChallenge != nil
	check := func(path []string, name string) {
		if err := checkHostname(name, true); err != nil {
			v.check(path, err)
		} else if strings.HasPrefix(name, "*.") && !dns {
			v.add(path, "wildcard %q needs the DNS-01 challenge; add [acme.dnsChallenge]", name)
		}
	}
	if d.Main == "" {
		v.add(append(slices.Clip(path), "main"), "main is required: the certificate's main name")
	} else {
		check(append(slices.Clip(path), "main"), d.Main)
	}
	for i, s := range d.SANs {
		check(append(slices.Clip(path), "sans", fmt.Sprint(i)), s)
	}
}
