package config

// HTTP is the dynamic HTTP configuration: what a replica applies without a
// restart.
type HTTP struct {
	// Routers match requests and hand them to a service, by name.
	Routers map[string]*Router `toml:"routers"`
	// Services are the backends, by name.
	Services map[string]*Service `toml:"services"`
	// Middlewares transform requests and responses, by name.
	Middlewares map[string]*Middleware `toml:"middlewares"`
	// ServersTransports are named settings for the connections to
	// servers (TLS, timeouts, pools), chosen by a loadBalancer's
	// serversTransport.
	ServersTransports map[string]*ServersTransport `toml:"serversTransports"`
}

// Router matches requests with a rule and sends them through middlewares
// to a service.
type Router struct {
	// Rule is a Traefik v3 rule, such as
	// "Host(`example.com`) && PathPrefix(`/api`)". Required.
	Rule string `toml:"rule"`
	// EntryPoints the router listens on. Empty means all of them.
	EntryPoints []string `toml:"entryPoints"`
	// Middlewares applied in order before the service.
	Middlewares []string `toml:"middlewares"`
	// Service receives the requests. Required.
	Service string `toml:"service"`
	// Priority orders routers whose rules both match: higher wins. Zero
	// means the length of the rule.
	Priority int `toml:"priority"`
	// TLS, when set, makes the router match TLS requests only (and
	// plain-text ones when nil).
	TLS *RouterTLS `toml:"tls"`
}

// RouterTLS configures TLS for a router.
type RouterTLS struct {
	// Options names the TLS options to use. Empty means "default".
	Options string `toml:"options"`
	// Domains are certificates to obtain for this router, overriding the
	// names taken from its rule when ACME's onHostRule is on.
	Domains []Domain `toml:"domains"`
	// CertificateProvided says a provider supplies the router's
	// certificate (a Kubernetes TLS Secret): ACME orders none for its
	// hosts, onHostRule or not. A file or the store never sets it.
	CertificateProvided bool `toml:"-"`
}

// Service is a named backend; exactly one of its fields is set.
type Service struct {
	// LoadBalancer spreads requests over servers.
	LoadBalancer *LoadBalancer `toml:"loadBalancer"`
	// Weighted spreads requests over other services by weight (canary
	// releases, blue/green).
	Weighted *Weighted `toml:"weighted"`
	// Mirroring sends every request to a service and copies of some of
	// them to others, whose answers are discarded.
	Mirroring *Mirroring `toml:"mirroring"`
	// Failover sends requests to a service while it is up, else to a
	// fallback service.
	Failover *Failover `toml:"failover"`
}

// Weighted spreads requests over services by smooth weighted round robin.
type Weighted struct {
	// Services are the children with their weights. At least one is
	// required.
	Services []WeightedService `toml:"services"`
	// Sticky pins a client to the child it was sent to first.
	Sticky *Sticky `toml:"sticky"`
	// HealthCheck, when set, skips children that are down and makes this
	// service's own state (up while a child is) visible to a parent
	// weighted or failover service. Every child must then report its
	// health: a loadBalancer with an active or passive health check, or
	// a service of another type with healthCheck. Without it, children
	// are chosen by weight alone.
	HealthCheck *ServiceHealthCheck `toml:"healthCheck"`
}

// WeightedService is one child of a weighted service.
type WeightedService struct {
	// Name of the child service. Required.
	Name string `toml:"name"`
	// Weight in the round robin. Nil means 1; 0 sends no requests.
	Weight *int `toml:"weight"`
}

// ServiceHealthCheck turns on the propagation of health through a
// weighted, mirroring or failover service. It has no settings.
type ServiceHealthCheck struct{}

// Mirroring sends each request to Service and copies of a share of the
// requests to Mirrors; the mirrors' answers are discarded and never delay
// the main answer.
type Mirroring struct {
	// Service answers the requests. Required.
	Service string `toml:"service"`
	// Mirrors receive copies.
	Mirrors []Mirror `toml:"mirrors"`
	// MirrorBody sends the request body to the mirrors too. Nil means
	// true.
	MirrorBody *bool `toml:"mirrorBody"`
	// MaxBodySize is the largest request body copied to mirrors, in
	// bytes; a request with a larger body is not mirrored. Nil or -1
	// means no limit.
	MaxBodySize *int64 `toml:"maxBodySize"`
	// HealthCheck, when set, makes this service's state (that of
	// Service) visible to a parent weighted or failover service; Service
	// must then report its health.
	HealthCheck *ServiceHealthCheck `toml:"healthCheck"`
}

// Mirror is one mirror of a mirroring service.
type Mirror struct {
	// Name of the service that receives copies. Required.
	Name string `toml:"name"`
	// Percent of the requests copied, 0 to 100.
	Percent int `toml:"percent"`
}

// Failover sends requests to Service while it is up and to Fallback while
// it is down.
type Failover struct {
	// Service is the main service. Required; it must report its health
	// (a loadBalancer with an active or passive health check, or a
	// service of another type with healthCheck).
	Service string `toml:"service"`
	// Fallback takes the requests while Service is down, and a request
	// without a body whose connection Service's server refused. Required.
	Fallback string `toml:"fallback"`
	// HealthCheck, when set, makes this service's state (up while
	// Service or Fallback is) visible to a parent weighted or failover
	// service; Fallback must then report its health too.
	HealthCheck *ServiceHealthCheck `toml:"healthCheck"`
}

// LoadBalancer spreads requests over servers by weighted round robin.
type LoadBalancer struct {
	// Servers are the backends. At least one is required.
	Servers []Server `toml:"servers"`
	// PassHostHeader forwards the client's Host header. Nil means true.
	PassHostHeader *bool `toml:"passHostHeader"`
	// HealthCheck enables active health checks.
	HealthCheck *HealthCheck `toml:"healthCheck"`
	// PassiveHealthCheck ejects a server after consecutive failures.
	PassiveHealthCheck *PassiveHealthCheck `toml:"passiveHealthCheck"`
	// Sticky pins a client to a server.
	Sticky *Sticky `toml:"sticky"`
	// ResponseForwarding configures streaming of responses.
	ResponseForwarding *ResponseForwarding `toml:"responseForwarding"`
	// UnavailableStatus is the status answered when no server is
	// available; zero means 503. Only providers set it (the Gateway API
	// answers 500 for a backend that cannot be resolved); the file and the
	// store have no such key.
	UnavailableStatus int `toml:"-"`
	// ServersTransport names the [http.serversTransports.NAME] used to
	// reach the servers, by requests and health checks alike. Empty means
	// the defaults described there.
	ServersTransport string `toml:"serversTransport"`
}

// ServersTransport configures the connections to servers. Its files are
// read at every configuration change; while neither its settings nor
// their content change, a reload keeps its open connections.
type ServersTransport struct {
	// ServerName is the TLS server name (SNI) sent to https servers and
	// checked in their certificates. Empty means the host of each
	// server's URL.
	ServerName string `toml:"serverName"`
	// InsecureSkipVerify accepts any certificate from https servers.
	InsecureSkipVerify bool `toml:"insecureSkipVerify"`
	// RootCAs are PEM files of the CAs that servers' certificates must
	// chain to. Empty means the system's roots.
	RootCAs []string `toml:"rootCAs" file:"true"`
	// Certificates are client certificates presented to servers that ask
	// for one (mutual TLS).
	Certificates []Certificate `toml:"certificates"`
	// MaxIdleConnsPerHost is the number of idle connections kept per
	// server. Zero means 256; -1 keeps none.
	MaxIdleConnsPerHost int `toml:"maxIdleConnsPerHost"`
	// ForwardingTimeouts bound the stages of a request to a server.
	ForwardingTimeouts *ForwardingTimeouts `toml:"forwardingTimeouts"`
	// DisableHTTP2 speaks HTTP/1.1 to https servers even when they offer
	// HTTP/2.
	DisableHTTP2 bool `toml:"disableHTTP2"`
	// ProxyProtocol, when set, sends a PROXY protocol header with the
	// client's address first on every connection to a server (before
	// TLS). A connection then carries the requests of one client
	// connection only: each has a pool of its own (up to 1024 kept, the
	// least recently used dropped), so a server gets one connection, and
	// TLS handshake, per client connection at least. Health checks send a
	// header without a client (LOCAL in version 2, UNKNOWN in version 1).
	ProxyProtocol *ProxyProtocolOut `toml:"proxyProtocol"`
}

// ForwardingTimeouts bound the stages of a request to a server.
type ForwardingTimeouts struct {
	// DialTimeout bounds connecting. Zero means 30s.
	DialTimeout Duration `toml:"dialTimeout"`
	// ResponseHeaderTimeout bounds the wait for the response headers
	// once the request is sent. Zero means no limit.
	ResponseHeaderTimeout Duration `toml:"responseHeaderTimeout"`
	// IdleConnTimeout is how long an idle connection is kept. Zero means
	// 90s.
	IdleConnTimeout Duration `toml:"idleConnTimeout"`
	// ReadIdleTimeout, for HTTP/2, sends a ping on a connection that has
	// received nothing for this long. Zero sends none.
	ReadIdleTimeout Duration `toml:"readIdleTimeout"`
	// PingTimeout, for HTTP/2, closes a connection whose ping is not
	// answered within it. Zero means 15s.
	PingTimeout Duration `toml:"pingTimeout"`
}

// Server is one backend.
type Server struct {
	// URL of the backend, such as "http://10.0.0.7:8080". Required.
	URL string `toml:"url"`
	// Weight in the round robin. Nil means 1; 0 sends no new requests.
	Weight *int `toml:"weight"`
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	// Path requested on every server. Required.
	Path string `toml:"path"`
	// Scheme overrides the server URL's scheme.
	Scheme string `toml:"scheme"`
	// Hostname is sent as the Host header. Empty means the server's.
	Hostname string `toml:"hostname"`
	// Port overrides the server URL's port.
	Port int `toml:"port"`
	// Interval between checks. Zero means 30s.
	Interval Duration `toml:"interval"`
	// Timeout of one check; less than Interval. Zero means 5s.
	Timeout Duration `toml:"timeout"`
	// Status is the expected status code. Zero means any 2xx or 3xx.
	Status int `toml:"status"`
	// Headers are added to the check request.
	Headers map[string]string `toml:"headers"`
}

// PassiveHealthCheck ejects a server that fails repeatedly.
type PassiveHealthCheck struct {
	// MaxFailedAttempts is the number of consecutive failures that ejects
	// a server. Zero means 1.
	MaxFailedAttempts int `toml:"maxFailedAttempts"`
	// FailureWindow is how long an ejected server stays out. Zero means
	// 10s.
	FailureWindow Duration `toml:"failureWindow"`
}

// Sticky configures session affinity.
type Sticky struct {
	// Cookie pins a client by a cookie. Required.
	Cookie *Cookie `toml:"cookie"`
}

// Cookie is the affinity cookie.
type Cookie struct {
	// Name of the cookie. Empty means one derived from the service name.
	Name string `toml:"name"`
	// Secure sets the Secure attribute.
	Secure bool `toml:"secure"`
	// HTTPOnly sets the HttpOnly attribute.
	HTTPOnly bool `toml:"httpOnly"`
	// SameSite is none, lax or strict. Empty sets no attribute.
	SameSite string `toml:"sameSite"`
	// MaxAge in seconds. Zero makes a session cookie.
	MaxAge int `toml:"maxAge"`
	// Path of the cookie. Empty means "/".
	Path string `toml:"path"`
}

// ResponseForwarding configures streaming.
type ResponseForwarding struct {
	// FlushInterval between flushes of a buffered response. Zero means
	// 100ms; streaming responses are flushed immediately regardless.
	FlushInterval Duration `toml:"flushInterval"`
}

// Middleware is one named middleware; exactly one of its fields is set.
type Middleware struct {
	AddPrefix         *AddPrefix         `toml:"addPrefix"`
	StripPrefix       *StripPrefix       `toml:"stripPrefix"`
	RedirectScheme    *RedirectScheme    `toml:"redirectScheme"`
	RedirectRegex     *RedirectRegex     `toml:"redirectRegex"`
	HeaderRedirect    *HeaderRedirect    `toml:"headerRedirect"`
	Headers           *Headers           `toml:"headers"`
	BasicAuth         *BasicAuth         `toml:"basicAuth"`
	IPAllowList       *IPAllowList       `toml:"ipAllowList"`
	RateLimit         *RateLimit         `toml:"rateLimit"`
	Retry             *Retry             `toml:"retry"`
	CircuitBreaker    *CircuitBreaker    `toml:"circuitBreaker"`
	Compress          *Compress          `toml:"compress"`
	PassTLSClientCert *PassTLSClientCert `toml:"passTLSClientCert"`
	Chain             *Chain             `toml:"chain"`
	ForwardAuth       *ForwardAuth       `toml:"forwardAuth"`
	Errors            *ErrorPages        `toml:"errors"`
	ReplacePath       *ReplacePath       `toml:"replacePath"`
	ReplacePathRegex  *ReplacePathRegex  `toml:"replacePathRegex"`
	StripPrefixRegex  *StripPrefixRegex  `toml:"stripPrefixRegex"`
	InFlightReq       *InFlightReq       `toml:"inFlightReq"`
	Buffering         *Buffering         `toml:"buffering"`
	ContentType       *ContentType       `toml:"contentType"`
}

// ForwardAuth asks an authentication server about every request: a 2xx
// answer lets the request through, any other answer is sent to the client
// as is.
type ForwardAuth struct {
	// Address of the authentication server, an http or https URL.
	// Required. A call that gets no whole answer within 30s is answered
	// with 500, as is one that cannot reach the server.
	Address string `toml:"address"`
	// TLS configures the connection to an https Address; it is refused
	// with an http one.
	TLS *ClientTLS `toml:"tls"`
	// TrustForwardHeader passes the X-Forwarded-* headers the client sent
	// (from a trusted proxy) to the authentication server; without it they
	// are set from the request as tollgate received it.
	TrustForwardHeader bool `toml:"trustForwardHeader"`
	// AuthResponseHeaders are copied from the authentication server's
	// answer to the request sent to the service.
	AuthResponseHeaders []string `toml:"authResponseHeaders"`
	// AuthResponseHeadersRegex copies the answer's headers whose names
	// match it, too.
	AuthResponseHeadersRegex string `toml:"authResponseHeadersRegex"`
	// AuthRequestHeaders, when set, are the only request headers sent to
	// the authentication server. Empty sends them all.
	AuthRequestHeaders []string `toml:"authRequestHeaders"`
	// AddAuthCookiesToResponse are cookies the authentication server sets
	// that are added to the service's response.
	AddAuthCookiesToResponse []string `toml:"addAuthCookiesToResponse"`
	// HeaderField, when set, passes the authenticated user (the
	// authentication server's answer header of that name) to the service
	// in this header.
	HeaderField string `toml:"headerField"`
	// ForwardBody sends the request body to the authentication server.
	ForwardBody bool `toml:"forwardBody"`
	// MaxBodySize is the largest body forwarded with ForwardBody, in
	// bytes; a larger request is refused with 401. Nil or -1 means no
	// limit.
	MaxBodySize *int64 `toml:"maxBodySize"`
	// PreserveLocationHeader passes the Location header of a refusing
	// answer as the authentication server sent it; without it a relative
	// Location is made absolute against Address.
	PreserveLocationHeader bool `toml:"preserveLocationHeader"`
	// PreserveRequestMethod asks the authentication server with the
	// request's method instead of GET.
	PreserveRequestMethod bool `toml:"preserveRequestMethod"`
}

// ClientTLS configures TLS to a server tollgate calls.
type ClientTLS struct {
	// CA is a PEM file of the CA the server's certificate must chain to.
	// Empty means the system's roots.
	CA string `toml:"ca" file:"true"`
	// Cert and Key are a PEM client certificate and its key, presented
	// when the server asks for one. Set both or neither.
	Cert string `toml:"cert" file:"true"`
	Key  string `toml:"key" file:"true"`
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool `toml:"insecureSkipVerify"`
}

// ErrorPages replaces error answers of the next handler with a page from
// another service.
type ErrorPages struct {
	// Status lists the statuses replaced: "500", "500-599". At least one
	// is required.
	Status []string `toml:"status"`
	// StatusRewrites maps statuses ("418", "500-503") to the status sent
	// with the page. Statuses not listed keep their own.
	StatusRewrites map[string]int `toml:"statusRewrites"`
	// Service serves the pages. Required. When it fails, takes more than
	// 10s or answers other than 2xx, the client gets the status with its
	// status text as a plain body.
	Service string `toml:"service"`
	// Query is the path and query asked of Service, where {status} is the
	// status, {originalStatus} the status before any rewrite and {url}
	// the request's URL, escaped. Empty means "/".
	Query string `toml:"query"`
}

// ReplacePath replaces the request path; the original, escaped as the
// client sent it, is kept in the X-Replaced-Path header.
type ReplacePath struct {
	// Path to use, starting with "/". It is an escaped path, as sent on
	// the wire: "/a%2Fb" forwards an encoded slash, and every "%" must
	// start an escape. Required.
	Path string `toml:"path"`
}

// ReplacePathRegex replaces the request path when Regex matches it; the
// original, escaped as the client sent it, is kept in the X-Replaced-Path
// header. Requests it does not match pass on unchanged.
type ReplacePathRegex struct {
	// Regex is matched against the path as the client sent it, escaped
	// ("/a%2Fb" stays so). Required.
	Regex string `toml:"regex"`
	// Replacement may use $1 and ${name}; the result is taken as an
	// escaped path, so "%2F" in it stays an encoded slash. Required.
	Replacement string `toml:"replacement"`
}

// StripPrefixRegex removes the start of the path that one of Regex
// matches; the removed part is added to X-Forwarded-Prefix.
type StripPrefixRegex struct {
	// Regex lists the expressions tried in order against the decoded
	// path; the first that matches at its start decides what is removed.
	// At least one is required.
	Regex []string `toml:"regex"`
}

// InFlightReq limits the requests being served at once, per source.
type InFlightReq struct {
	// Amount of simultaneous requests per source; more are answered with
	// 429 at once. Required, at least 1.
	Amount int64 `toml:"amount"`
	// SourceCriterion says what a source is. Nil means the client IP.
	SourceCriterion *SourceCriterion `toml:"sourceCriterion"`
}

// Buffering reads whole requests and responses before passing them on,
// with limits.
type Buffering struct {
	// MaxRequestBodyBytes is the largest request body accepted; larger
	// requests are answered with 413 and not forwarded. Zero means no
	// limit.
	MaxRequestBodyBytes int64 `toml:"maxRequestBodyBytes"`
	// MemRequestBodyBytes of a request body are kept in memory; the rest
	// goes to a temporary file, removed when the request ends. Zero
	// means 1 MiB (1048576).
	MemRequestBodyBytes int64 `toml:"memRequestBodyBytes"`
	// MaxResponseBodyBytes is the largest response body passed on; a
	// larger one is replaced with 500. Zero means no limit.
	MaxResponseBodyBytes int64 `toml:"maxResponseBodyBytes"`
	// MemResponseBodyBytes of a response body are kept in memory; the
	// rest goes to a temporary file. Zero means 1 MiB (1048576).
	MemResponseBodyBytes int64 `toml:"memResponseBodyBytes"`
	// RetryExpression, such as "IsNetworkError() && Attempts() < 2",
	// sends the buffered request again, at once, while it holds after
	// an attempt. It may use IsNetworkError() (the server could not be
	// reached or did not answer), Attempts() (made so far),
	// ResponseCode() and RequestMethod(), with ==, !=, <, <=, >, >=,
	// !, && and ||. Empty means no retries.
	RetryExpression string `toml:"retryExpression"`
}

// ContentType sets the Content-Type of responses that have none from the
// first bytes of the body, as Go's http.DetectContentType does. Without
// this middleware a proxied response without a Content-Type is passed on
// without one, as in Traefik v3.
type ContentType struct {
	// AutoDetect false makes the middleware do nothing; nil and true
	// detect. Traefik v3 deprecates the option: declare the middleware
	// empty instead.
	AutoDetect *bool `toml:"autoDetect"`
}

// AddPrefix prepends a path prefix.
type AddPrefix struct {
	// Prefix to add, starting with "/". Required.
	Prefix string `toml:"prefix"`
}

// StripPrefix removes the first matching path prefix.
type StripPrefix struct {
	// Prefixes to try, each starting with "/". At least one is required.
	Prefixes []string `toml:"prefixes"`
}

// RedirectScheme redirects to another scheme.
type RedirectScheme struct {
	// Scheme to redirect to. Required.
	Scheme string `toml:"scheme"`
	// Port to redirect to. Empty keeps the default port of Scheme.
	Port string `toml:"port"`
	// Permanent chooses 308 over 307 (301 over 302 for GET).
	Permanent bool `toml:"permanent"`
}

// RedirectRegex redirects URLs matching a regular expression.
type RedirectRegex struct {
	// Regex is matched against the full request URL. Required.
	Regex string `toml:"regex"`
	// Replacement may use $1 and ${name}. Required.
	Replacement string `toml:"replacement"`
	// Permanent chooses a permanent redirect.
	Permanent bool `toml:"permanent"`
}

// HeaderRedirect redirects according to the value of a request header, for
// example to send each region's clients to their own site.
type HeaderRedirect struct {
	// Header whose value selects the target. Required.
	Header string `toml:"header"`
	// Targets maps header values to redirect URLs. At least one is
	// required.
	Targets map[string]string `toml:"targets"`
	// Default is the URL for other values. Empty passes those requests
	// on unchanged.
	Default string `toml:"default"`
	// Permanent chooses a permanent redirect.
	Permanent bool `toml:"permanent"`
}

// Headers sets request and response headers, including security headers.
type Headers struct {
	// CustomRequestHeaders are set on requests; an empty value removes
	// the header.
	CustomRequestHeaders map[string]string `toml:"customRequestHeaders"`
	// CustomResponseHeaders are set on responses; an empty value removes
	// the header.
	CustomResponseHeaders map[string]string `toml:"customResponseHeaders"`
	// AppendRequestHeaders and AppendResponseHeaders add a value to a
	// header after its existing values (the Gateway API's "add"), after
	// the custom headers are applied. Only providers set them; the file
	// and the store have no such keys.
	AppendRequestHeaders  map[string]string `toml:"-"`
	AppendResponseHeaders map[string]string `toml:"-"`
	// STSSeconds is the HSTS max-age; zero sends no HSTS header.
	STSSeconds int64 `toml:"stsSeconds"`
	// STSIncludeSubdomains adds includeSubDomains to HSTS.
	STSIncludeSubdomains bool `toml:"stsIncludeSubdomains"`
	// STSPreload adds preload to HSTS.
	STSPreload bool `toml:"stsPreload"`
	// ForceSTSHeader sends HSTS over plain HTTP too.
	ForceSTSHeader bool `toml:"forceSTSHeader"`
	// FrameDeny sends X-Frame-Options: DENY.
	FrameDeny bool `toml:"frameDeny"`
	// CustomFrameOptionsValue overrides X-Frame-Options.
	CustomFrameOptionsValue string `toml:"customFrameOptionsValue"`
	// ContentTypeNosniff sends X-Content-Type-Options: nosniff.
	ContentTypeNosniff bool `toml:"contentTypeNosniff"`
	// ContentSecurityPolicy is sent as Content-Security-Policy.
	ContentSecurityPolicy string `toml:"contentSecurityPolicy"`
	// ReferrerPolicy is sent as Referrer-Policy.
	ReferrerPolicy string `toml:"referrerPolicy"`
	// PermissionsPolicy is sent as Permissions-Policy.
	PermissionsPolicy string `toml:"permissionsPolicy"`
}

// BasicAuth requires HTTP basic authentication.
type BasicAuth struct {
	// Users are "name:bcrypt-hash" entries (htpasswd -nB).
	Users []string `toml:"users" secret:"true"`
	// UsersFile is a file of such entries, one per line.
	UsersFile string `toml:"usersFile" file:"true"`
	// Realm shown by browsers. Empty means "tollgate".
	Realm string `toml:"realm"`
	// RemoveHeader drops the Authorization header before the service.
	RemoveHeader bool `toml:"removeHeader"`
	// HeaderField passes the authenticated user name in this header.
	HeaderField string `toml:"headerField"`
}

// IPAllowList admits only clients from listed ranges.
type IPAllowList struct {
	// SourceRange lists IPs and CIDR ranges. At least one is required.
	SourceRange []string `toml:"sourceRange"`
	// IPStrategy says how the client IP is found. Nil means the
	// connection's remote address.
	IPStrategy *IPStrategy `toml:"ipStrategy"`
	// RejectStatusCode answers others. Zero means 403.
	RejectStatusCode int `toml:"rejectStatusCode"`
}

// IPStrategy picks the client IP from X-Forwarded-For.
type IPStrategy struct {
	// Depth takes the Nth address from the right of X-Forwarded-For.
	Depth int `toml:"depth"`
	// ExcludedIPs are skipped when reading X-Forwarded-For from the right.
	ExcludedIPs []string `toml:"excludedIPs"`
}

// RateLimit limits requests per source with a token bucket.
type RateLimit struct {
	// Average is the number of requests allowed per Period. Required.
	Average int64 `toml:"average"`
	// Period of Average. Zero means 1s.
	Period Duration `toml:"period"`
	// Burst is the bucket size. Zero means 1.
	Burst int64 `toml:"burst"`
	// SourceCriterion says what a source is. Nil means the client IP.
	SourceCriterion *SourceCriterion `toml:"sourceCriterion"`
}

// SourceCriterion groups requests for rate limiting; set one field.
type SourceCriterion struct {
	IPStrategy        *IPStrategy `toml:"ipStrategy"`
	RequestHeaderName string      `toml:"requestHeaderName"`
	RequestHost       bool        `toml:"requestHost"`
}

// Retry retries a request when the connection to a server fails.
type Retry struct {
	// Attempts in total. Required, at least 1.
	Attempts int `toml:"attempts"`
	// InitialInterval of the exponential backoff. Zero means 100ms.
	InitialInterval Duration `toml:"initialInterval"`
}

// CircuitBreaker stops calling a failing service for a while.
type CircuitBreaker struct {
	// Expression trips the breaker, such as "NetworkErrorRatio() > 0.5"
	// or "ResponseCodeRatio(500, 600, 0, 600) > 0.25". Required.
	Expression string `toml:"expression"`
	// CheckPeriod between evaluations. Zero means 100ms.
	CheckPeriod Duration `toml:"checkPeriod"`
	// FallbackDuration the breaker stays open. Zero means 10s.
	FallbackDuration Duration `toml:"fallbackDuration"`
	// RecoveryDuration over which traffic ramps up again. Zero means 10s.
	RecoveryDuration Duration `toml:"recoveryDuration"`
	// ResponseCode answered while open. Zero means 503.
	ResponseCode int `toml:"responseCode"`
}

// Compress compresses responses.
type Compress struct {
	// ExcludedContentTypes are never compressed.
	ExcludedContentTypes []string `toml:"excludedContentTypes"`
	// IncludedContentTypes, when set, are the only ones compressed.
	IncludedContentTypes []string `toml:"includedContentTypes"`
	// MinResponseBodyBytes below which a response is sent as is. Zero
	// means 1024.
	MinResponseBodyBytes int `toml:"minResponseBodyBytes"`
	// Encodings offered, in order of preference: gzip, br, zstd. Empty
	// means gzip.
	Encodings []string `toml:"encodings"`
}

// PassTLSClientCert forwards the client certificate to the service in the
// X-Forwarded-Tls-Client-Cert header (PEM) or its fields in
// X-Forwarded-Tls-Client-Cert-Info.
type PassTLSClientCert struct {
	// PEM forwards the whole certificate.
	PEM bool `toml:"pem"`
	// Info forwards the chosen fields.
	Info *TLSClientCertInfo `toml:"info"`
}

// TLSClientCertInfo chooses the forwarded certificate fields.
type TLSClientCertInfo struct {
	NotAfter     bool                  `toml:"notAfter"`
	NotBefore    bool                  `toml:"notBefore"`
	SANs         bool                  `toml:"sans"`
	SerialNumber bool                  `toml:"serialNumber"`
	Subject      *TLSClientCertSubject `toml:"subject"`
	Issuer       *TLSClientCertSubject `toml:"issuer"`
}

// TLSClientCertSubject chooses distinguished-name fields.
type TLSClientCertSubject struct {
	Country            bool `toml:"country"`
	Province           bool `toml:"province"`
	Locality           bool `toml:"locality"`
	Organization       bool `toml:"organization"`
	OrganizationalUnit bool `toml:"organizationalUnit"`
	CommonName         bool `toml:"commonName"`
	SerialNumber       bool `toml:"serialNumber"`
	DomainComponent    bool `toml:"domainComponent"`
}

// Chain groups middlewares under one name.
type Chain struct {
	// Middlewares applied in order. At least one is required.
	Middlewares []string `toml:"middlewares"`
}

// TLS holds TLS options and certificate files.
type TLS struct {
	// Options are named sets of TLS settings; "default" applies wherever
	// none is named.
	Options map[string]*TLSOptions `toml:"options"`
	// Certificates are certificate files served alongside ACME ones.
	Certificates []Certificate `toml:"certificates"`
	// Stores holds the "default" store, whose defaultCertificate is
	// served to handshakes no other certificate matches.
	Stores map[string]*TLSStore `toml:"stores"`
}

// TLSStore is a certificate store; only "default" exists.
type TLSStore struct {
	// DefaultCertificate is served when no certificate matches a
	// handshake's server name (or it has none). Nil means a generated
	// self-signed certificate. Read at start: a change needs a restart.
	DefaultCertificate *Certificate `toml:"defaultCertificate"`
}

// TLSOptions are TLS settings.
type TLSOptions struct {
	// MinVersion is VersionTLS12 (the default) or VersionTLS13.
	MinVersion string `toml:"minVersion"`
	// MaxVersion is VersionTLS12 or VersionTLS13 (the default).
	MaxVersion string `toml:"maxVersion"`
	// CipherSuites for TLS 1.2, by Go name. Empty means Go's defaults.
	CipherSuites []string `toml:"cipherSuites"`
	// CurvePreferences by Go name (X25519, CurveP256, …). Empty means Go's
	// defaults.
	CurvePreferences []string `toml:"curvePreferences"`
	// ClientAuth requests or requires client certificates.
	ClientAuth *ClientAuth `toml:"clientAuth"`
	// SNIStrict refuses handshakes without a server name, or for a name
	// no certificate covers: the default certificate is never served.
	SNIStrict bool `toml:"sniStrict"`
}

// ClientAuth configures client certificates.
type ClientAuth struct {
	// CAFiles are PEM files of the CAs client certificates must chain to.
	CAFiles []string `toml:"caFiles" file:"true"`
	// ClientAuthType is NoClientCert (the default), RequestClientCert,
	// RequireAnyClientCert, VerifyClientCertIfGiven or
	// RequireAndVerifyClientCert.
	ClientAuthType string `toml:"clientAuthType"`
}

// Certificate is a certificate and key pair from files.
type Certificate struct {
	// CertFile is a PEM certificate chain. Required.
	CertFile string `toml:"certFile" file:"true"`
	// KeyFile is its PEM private key. Required.
	KeyFile string `toml:"keyFile" file:"true"`
}
