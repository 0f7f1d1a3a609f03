// Package nginx carries the nginx.ingress.kubernetes.io annotations of an
// Ingress over to tollgate's configuration model, for Ingresses written
// for ingress-nginx. Translate is a pure function: given the annotations
// and what it needs of the Ingress (namespace, name, paths with their
// hosts, whether it has TLS, and a Secrets reader for auth-secret), it
// returns a Result: middlewares to define, by the deterministic name
// "NS_NAME_nginx-WHAT"; the order in which they go before a router's own
// middlewares (RouterMiddlewares; PlainMiddlewares only on the routers
// serving plain HTTP); new path matchers, priorities and a rewrite
// middleware per path (Routes); hosts the routers must also match
// (AliasHosts); the servers' scheme, a serversTransport and a sticky
// cookie for the Ingress's services; canary settings; and a report with
// exactly one Entry per nginx annotation present: supported, changed
// (with how) or unsupported (with why and what to do). Nothing is ignored
// silently. Refused, when not empty, says the Ingress must not be served:
// an annotation guarding access (allow list, deny list, authentication) or
// choosing the backend protocol could not be carried over, and serving
// without it would open the routes or talk nonsense to the servers.
// Values are at most 4096 bytes; a longer one is reported and ignored.
// Regular expressions are refused when their counted repetitions expand
// past 20000 nodes, which bounds the work of compiling them.
//
// The mapping, annotation by annotation ("changed" says in the report how):
//
//	rewrite-target          changed: the paths (but Exact ones) become PathRegexp
//	                        `(?i)^PATH` matchers with priority 2×len(PATH), and a
//	                        replacePathRegex `(?i)^(?:PATH).*` → target goes last in
//	                        each path's routers (Exact ones too, which keep their
//	                        matcher); $N becomes ${N}; Go (RE2) syntax;
//	                        a path that is not RE2 refuses the Ingress
//	use-regex               changed: the same matchers, for this Ingress only (ingress-
//	                        nginx applies it to every Ingress of the host)
//	ssl-redirect            supported: true with a tls section → redirectScheme https,
//	                        permanent (301 for GET, 308 for others), on the plain HTTP routers
//	force-ssl-redirect      supported: the same, with or without a tls section
//	permanent-redirect      changed: redirectRegex ^.*$ → URL, permanent: 301 for GET,
//	                        308 for other methods; nginx variables are not expanded
//	permanent-redirect-code supported for 301, else changed (not available)
//	temporal-redirect(-code) changed: the same, 302 for GET, 307 for others
//	app-root                supported: redirectRegex of / (with its query) → the path, 302
//	from-to-www-redirect    changed: AliasHosts maps each twin host (www. added or
//	                        removed) to the Ingress's host; redirectRegex middlewares
//	                        redirect it, 301/308 (ingress-nginx: 308)
//	backend-protocol        HTTP: supported; HTTPS, GRPCS: scheme https and a
//	                        serversTransport with insecureSkipVerify (ingress-nginx
//	                        does not verify either); GRPC: scheme h2c; AUTO_HTTP:
//	                        changed, plain HTTP/1.1; FCGI, AJP or other: refused
//	proxy-connect-timeout   supported: dialTimeout (seconds, or Ns / Nm)
//	proxy-read-timeout      changed: responseHeaderTimeout, which bounds the wait for
//	                        the response headers only, not every read after them
//	proxy-send-timeout      unsupported: no timeout between writes to a server
//	proxy-body-size         changed: buffering maxRequestBodyBytes (k, m, g = 1024,
//	                        1024², 1024³); 413 above it; responses are buffered too;
//	                        0 = no limit and no middleware
//	allowlist-source-range  supported: ipAllowList of the connection's address;
//	(whitelist-source-range) the newer name wins; a bad address refuses the Ingress
//	denylist-source-range   unsupported: no deny list; refuses the Ingress
//	auth-url                changed: forwardAuth; no body sent; the auth server's
//	                        refusals reach the client as they are; an address that is
//	                        not http(s) or holds nginx variables refuses the Ingress
//	auth-response-headers   supported: authResponseHeaders
//	auth-method             supported for GET; other methods unsupported (GET used)
//	auth-signin             unsupported: forwardAuth cannot redirect a 401; the auth
//	                        server must answer the redirect itself
//	auth-type basic         supported: basicAuth with the users of auth-secret
//	                        (NAME or NS/NAME, same namespace only), key "auth" holding
//	                        an htpasswd file (auth-secret-type auth-file, the default)
//	                        or one key per user (auth-map); bcrypt hashes only: other
//	                        entries are left out (changed), none left refuses the
//	                        Ingress; read when translated
//	auth-type digest        unsupported; refuses the Ingress
//	auth-tls-secret         unsupported: client certificates are asked for by TLS
//	                        options of the configuration; refuses the Ingress
//	                        unless auth-tls-verify-client is off
//	auth-realm              supported: realm
//	enable-cors, cors-*     unsupported: the headers middleware has no CORS settings
//	                        and preflight requests could not be answered
//	affinity cookie         changed: sticky cookie (default name INGRESSCOOKIE,
//	                        HttpOnly), with session-cookie-name, -path, -max-age
//	                        (-expires as Max-Age), -samesite, -secure; the cookie's
//	                        value is tollgate's; other session-cookie-* unsupported
//	canary                  supported with canary-weight (0..canary-weight-total,
//	                        default 100): Canary.WeightedService replaces the main
//	                        Ingress's backend with a weighted service; canary-by-header
//	                        (always/never), -value, -pattern (RE2, changed) and
//	                        canary-by-cookie (changed: HeaderRegexp on Cookie) give
//	                        Canary.Match (to the canary) and NeverMatch (to the main
//	                        backend), header before cookie before weight
//	limit-rps, limit-rpm    changed: rateLimit per client address, burst = rate ×
//	                        limit-burst-multiplier (default 5); 429, not 503
//	limit-connections       changed: inFlightReq (requests, not connections); 429
//	*-snippet, lua-*        unsupported: arbitrary nginx configuration or Lua code
//	others                  unsupported, with the reason and the tollgate feature to
//	                        use instead where there is one
//
// Left to the provider (provider/kubernetes does it, see
// docs/migrating-from-ingress-nginx.md): reading the annotations only for
// the Ingresses that opt in; ingress-nginx's default redirect to https of
// an Ingress with TLS when ssl-redirect is absent; the priority of canary
// routers over the main ones; applying a canary only where a main Ingress
// has the same host and path; and translating again when an auth Secret
// changes. docs/migrating-from-ingress-nginx.md names every annotation
// this package knows (TestDocListsEveryAnnotation).
package nginx
