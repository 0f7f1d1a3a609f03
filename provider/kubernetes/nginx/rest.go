package nginx

import "strings"

// known are annotations tollgate does not carry over, with the reason and
// what to do instead.
var known = map[string]string{
	"configuration-snippet":                 "snippets are arbitrary nginx configuration, which tollgate cannot run; express the intent with tollgate middlewares (tollgate.io/router.middlewares)",
	"server-snippet":                        "snippets are arbitrary nginx configuration, which tollgate cannot run; express the intent with tollgate middlewares (tollgate.io/router.middlewares)",
	"stream-snippet":                        "snippets are arbitrary nginx configuration, which tollgate cannot run",
	"auth-snippet":                          "snippets are arbitrary nginx configuration, which tollgate cannot run",
	"modsecurity-snippet":                   "snippets are arbitrary nginx configuration, which tollgate cannot run",
	"enable-modsecurity":                    "tollgate has no web application firewall; put one in front or behind it",
	"enable-owasp-core-rules":               "tollgate has no web application firewall",
	"modsecurity-transaction-id":            "tollgate has no web application firewall",
	"custom-http-errors":                    "use an errors middleware of the configuration (tollgate.io/router.middlewares)",
	"default-backend":                       "use the Ingress's spec.defaultBackend",
	"upstream-hash-by":                      "tollgate balances by weighted round robin (with optional sticky cookies), not by a hash",
	"load-balance":                          "tollgate balances by weighted round robin only",
	"upstream-vhost":                        "tollgate cannot set the Host header sent to servers from an annotation; use a headers middleware of the configuration",
	"service-upstream":                      "tollgate sends to the endpoints of the Service, never to its cluster IP",
	"ssl-passthrough":                       "tollgate terminates TLS on its Ingress routes; it has no passthrough",
	"proxy-buffering":                       "tollgate streams responses; use a buffering middleware of the configuration to buffer them",
	"proxy-request-buffering":               "use a buffering middleware of the configuration",
	"proxy-buffer-size":                     "tollgate sizes its buffers itself",
	"proxy-buffers-number":                  "tollgate sizes its buffers itself",
	"proxy-max-temp-file-size":              "tollgate sizes its buffers itself",
	"client-body-buffer-size":               "tollgate sizes its buffers itself; see the buffering middleware",
	"proxy-next-upstream":                   "use a retry middleware of the configuration",
	"proxy-next-upstream-tries":             "use a retry middleware of the configuration",
	"proxy-next-upstream-timeout":           "use a retry middleware of the configuration",
	"proxy-redirect-from":                   "tollgate does not rewrite the Location header of answers",
	"proxy-redirect-to":                     "tollgate does not rewrite the Location header of answers",
	"proxy-cookie-domain":                   "tollgate does not rewrite cookies of answers",
	"proxy-cookie-path":                     "tollgate does not rewrite cookies of answers",
	"proxy-http-version":                    "tollgate speaks HTTP/1.1 to plain-text servers unless backend-protocol is GRPC",
	"x-forwarded-prefix":                    "use a headers middleware of the configuration to set X-Forwarded-Prefix",
	"enable-access-log":                     "tollgate's access log is set for the whole process",
	"enable-rewrite-log":                    "tollgate has no rewrite log",
	"enable-opentelemetry":                  "tollgate has no tracing",
	"opentelemetry-trust-incoming-span":     "tollgate has no tracing",
	"server-alias":                          "list the other hosts as rules of the Ingress",
	"server-tokens":                         "tollgate has no equivalent",
	"use-port-in-redirects":                 "tollgate has no equivalent",
	"preserve-trailing-slash":               "tollgate has no equivalent",
	"http2-push-preload":                    "HTTP/2 push is not supported by browsers nor tollgate",
	"auth-tls-secret":                       "client certificates are set in TLS options of the configuration (clientAuth), named with tollgate.io/router.tls.options",
	"auth-tls-verify-client":                "client certificates are set in TLS options of the configuration (clientAuth)",
	"auth-tls-verify-depth":                 "tollgate has no equivalent",
	"auth-tls-error-page":                   "tollgate has no equivalent",
	"auth-tls-pass-certificate-to-upstream": "use a passTLSClientCert middleware of the configuration",
	"auth-tls-match-cn":                     "tollgate has no equivalent",
	"satisfy":                               "tollgate requires every authentication middleware of a router to pass",
	"global-rate-limit":                     "tollgate's rateLimit counts in each replica; there is no shared counter",
	"mirror-target":                         "use a mirroring service of the configuration",
	"mirror-request-body":                   "use a mirroring service of the configuration",
	"mirror-host":                           "use a mirroring service of the configuration",
	"denylist-source-range":                 "tollgate has no deny list",
	"ssl-ciphers":                           "ciphers are set in TLS options of the configuration, named with tollgate.io/router.tls.options",
	"ssl-prefer-server-ciphers":             "TLS settings are set in TLS options of the configuration",
	"connection-proxy-header":               "tollgate manages the Connection header itself",
	"custom-headers":                        "use a headers middleware of the configuration",
	"upstream-keepalive-timeout":            "set idleConnTimeout in a serversTransport of the configuration",
	"upstream-keepalive-connections":        "set maxIdleConnsPerHost in a serversTransport of the configuration",
}

// rest reports every annotation no other step read.
func (t *translation) rest() {
	for name := range t.a {
		if t.reported[name] {
			continue
		}
		switch {
		case t.seen[name]:
			// Read, but the feature it belongs to was left out for the
			// reason reported on another annotation.
			t.report(name, Unsupported, "not carried over: its feature is left out (see the other annotations of the Ingress)")
		case known[name] != "":
			t.report(name, Unsupported, "%s; ignored", known[name])
		case strings.HasPrefix(name, "lua-") || strings.Contains(name, "lua-resty"):
			t.report(name, Unsupported, "Lua code runs only inside nginx; ignored")
		default:
			t.report(name, Unsupported, "tollgate has no equivalent; ignored")
		}
	}
}
