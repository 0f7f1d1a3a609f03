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

// Service is a named backend.
type Service struct {
	// LoadBalancer spreads requests over servers. Required.
	LoadBalancer *LoadBalancer `toml:"loadBalancer"`
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
	UsersFile string `toml:"usersFile"`
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
	// SNIStrict refuses handshakes without a known server name.
	SNIStrict bool `toml:"sniStrict"`
}

// ClientAuth configures client certificates.
type ClientAuth struct {
	// CAFiles are PEM files of the CAs client certificates must chain to.
	CAFiles []string `toml:"caFiles"`
	// ClientAuthType is NoClientCert (the default), RequestClientCert,
	// RequireAnyClientCert, VerifyClientCertIfGiven or
	// RequireAndVerifyClientCert.
	ClientAuthType string `toml:"clientAuthType"`
}

// Certificate is a certificate and key pair from files.
type Certificate struct {
	// CertFile is a PEM certificate chain. Required.
	CertFile string `toml:"certFile"`
	// KeyFile is its PEM private key. Required.
	KeyFile string `toml:"keyFile"`
}
