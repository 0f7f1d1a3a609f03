package nginx

import (
	"bufio"
	"bytes"
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate-proxy/tollgate/config"
)

// maxUsers bounds the entries read from an auth Secret.
const maxUsers = 10000

func (t *translation) auth() {
	t.forwardAuth()
	t.basicAuth()
	t.clientCerts()
}

// clientCerts refuses an Ingress that requires client certificates:
// serving it without them would open it.
func (t *translation) clientCerts() {
	if _, ok := t.get("auth-tls-secret"); !ok {
		return
	}
	if v, ok := t.get("auth-tls-verify-client"); ok && strings.EqualFold(v, "off") {
		t.report("auth-tls-verify-client", Supported, "")
		t.report("auth-tls-secret", Unsupported, "auth-tls-verify-client is off: no client certificate is asked for; ignored")
		return
	}
	t.refuse("auth-tls-secret", "tollgate cannot ask for client certificates from an annotation; set clientAuth in TLS options of the configuration, name them with tollgate.io/router.tls.options, and remove the auth-tls-* annotations")
}

func (t *translation) forwardAuth() {
	addr, ok := t.get("auth-url")
	related := []string{"auth-signin", "auth-response-headers", "auth-method", "auth-request-redirect", "auth-signin-redirect-param", "auth-cache-key", "auth-cache-duration", "auth-keepalive", "auth-proxy-set-headers", "auth-always-set-cookie", "auth-snippet", "enable-global-auth"}
	if !ok {
		t.orphans(related, "without auth-url it does nothing")
		return
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(addr, "$") {
		t.refuse("auth-url", "%q is not an http or https URL (nginx variables such as $host are not expanded by tollgate)", addr)
		return
	}
	fa := &config.ForwardAuth{Address: addr}
	if v, ok := t.get("auth-response-headers"); ok {
		fa.AuthResponseHeaders = SplitList(v)
		t.report("auth-response-headers", Supported, "authResponseHeaders")
	}
	if v, ok := t.get("auth-method"); ok {
		switch strings.ToUpper(v) {
		case "GET":
			t.report("auth-method", Supported, "")
		default:
			t.report("auth-method", Unsupported, "tollgate asks the authentication server with GET, or with the request's method (preserveRequestMethod); %q cannot be chosen, GET is used", v)
		}
	}
	if v, ok := t.get("auth-signin"); ok {
		t.report("auth-signin", Unsupported, "tollgate passes the authentication server's refusal to the client as is and cannot redirect a 401 to %q; make the authentication server answer the redirect itself", v)
	}
	for _, n := range related[3:] {
		if _, set := t.get(n); set {
			t.report(n, Unsupported, "forwardAuth has no equivalent; ignored")
		}
	}
	t.add("forward-auth", &config.Middleware{ForwardAuth: fa}, false)
	t.report("auth-url", Changed, "forwardAuth: the request body is not sent, every request header is; a non-2xx answer is passed to the client as is, where ingress-nginx answers 401/403 itself and other statuses with 500")
}

func (t *translation) basicAuth() {
	typ, typOK := t.get("auth-type")
	secret, secretOK := t.get("auth-secret")
	stype, stypeOK := t.get("auth-secret-type")
	realm, realmOK := t.get("auth-realm")
	if !typOK {
		t.orphans([]string{"auth-secret", "auth-secret-type", "auth-realm"}, "without auth-type it does nothing")
		return
	}
	switch strings.ToLower(typ) {
	case "basic":
	case "digest":
		t.refuse("auth-type", "tollgate has no digest authentication; use basic")
		return
	default:
		t.refuse("auth-type", "%q is neither basic nor digest", typ)
		return
	}
	if !secretOK || secret == "" {
		t.refuse("auth-type", "basic needs auth-secret")
		return
	}
	ns, name := t.ing.Namespace, secret
	if a, b, cut := strings.Cut(secret, "/"); cut {
		ns, name = a, b
	}
	if ns != t.ing.Namespace {
		// ingress-nginx lets an Ingress read a Secret of another namespace;
		// the provider reads only its own namespace's.
		t.refuse("auth-secret", "the Secret %q is in another namespace than the Ingress; copy it into namespace %q", secret, t.ing.Namespace)
		return
	}
	if t.secrets == nil {
		t.refuse("auth-secret", "no Secret reader")
		return
	}
	data, err := t.secrets.SecretData(t.ctx, ns, name)
	if err != nil {
		t.refuse("auth-secret", "reading Secret %s/%s: %v", ns, name, err)
		return
	}
	var users []string
	var skipped int
	switch strings.ToLower(cmp.Or(stype, "auth-file")) {
	case "auth-file":
		users, skipped = htpasswd(data["auth"])
		if data["auth"] == nil {
			t.refuse("auth-secret", "Secret %s/%s has no key \"auth\" (an htpasswd file)", ns, name)
			return
		}
	case "auth-map":
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if len(users) >= maxUsers {
				skipped++
				continue
			}
			if h := string(bytes.TrimSpace(data[k])); bcryptHash(h) && !strings.Contains(k, ":") {
				users = append(users, k+":"+h)
			} else {
				skipped++
			}
		}
	default:
		t.refuse("auth-secret-type", "%q is neither auth-file nor auth-map", stype)
		return
	}
	if stypeOK {
		t.report("auth-secret-type", Supported, "")
	}
	if len(users) == 0 {
		t.refuse("auth-secret", "Secret %s/%s holds no user with a bcrypt hash (tollgate checks bcrypt only: htpasswd -B)", ns, name)
		return
	}
	if skipped > 0 {
		t.report("auth-secret", Changed, "%d entries of Secret %s/%s are left out: tollgate checks bcrypt hashes only (htpasswd -B), not MD5 (apr1), SHA1 or crypt; those users cannot log in until their hashes are replaced", skipped, ns, name)
	} else {
		t.report("auth-secret", Supported, "")
	}
	ba := &config.BasicAuth{Users: users}
	if realmOK {
		ba.Realm = realm
		t.report("auth-realm", Supported, "")
	}
	t.add("basic-auth", &config.Middleware{BasicAuth: ba}, false)
	t.report("auth-type", Supported, "basicAuth")
}

// bcryptHash says h looks like a bcrypt hash.
func bcryptHash(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// htpasswd returns the "name:hash" lines of an htpasswd file with bcrypt
// hashes, and how many other lines it left out (comments and blank lines
// aside).
func htpasswd(b []byte) (users []string, skipped int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" || !bcryptHash(hash) || len(users) >= maxUsers {
			skipped++
			continue
		}
		users = append(users, name+":"+hash)
	}
	if sc.Err() != nil {
		skipped++
	}
	return users, skipped
}
