package config

import "strconv"

// Config is a whole tollgate configuration. Sections left out take the
// defaults their fields document. The Store section is never written to
// the store: a replica always takes its store endpoint and credentials
// from its own command line or file.
type Config struct {
	// EntryPoints are the listeners, by name. Changing them needs a
	// restart.
	EntryPoints map[string]*EntryPoint `toml:"entryPoints"`
	// Store says where the shared state lives. Nil means the embedded
	// store at DefaultStoreEndpoint.
	Store *Store `toml:"store" kv:"-"`
	// ACME enables certificates from an ACME CA when set.
	ACME *ACME `toml:"acme"`
	// API enables /ping, /ready and the read-only JSON API when set.
	API *API `toml:"api"`
	// Metrics configures metrics exposition.
	Metrics *Metrics `toml:"metrics"`
	// Log configures tollgate's own log.
	Log *Log `toml:"log"`
	// AccessLog enables the access log when set.
	AccessLog *AccessLog `toml:"accessLog"`
	// Lifecycle configures shutdown.
	Lifecycle *Lifecycle `toml:"lifecycle"`
	// Providers are sources of routes besides this configuration, such as
	// Kubernetes Ingress objects. Changing them needs a restart.
	Providers *Providers `toml:"providers"`

	// HTTP holds the routers, services and middlewares.
	HTTP *HTTP `toml:"http"`
	// TCP holds the routers, services and middlewares of connections
	// routed without HTTP.
	TCP *TCP `toml:"tcp"`
	// TLS holds TLS options and certificate files.
	TLS *TLS `toml:"tls"`

	// ProvidedCertificates are the certificates providers supply (the TLS
	// Secrets of Kubernetes Ingresses), applied with the routes like any
	// dynamic change. A file or the store never sets them.
	ProvidedCertificates []KeyPair `toml:"-"`
}

// KeyPair is a certificate chain and its private key, both PEM, that a
// provider supplies. It is served for the names its leaf covers; an
// exact name beats a wildcard, and the first pair wins a tie.
type KeyPair struct {
	// Source names where the pair comes from, for logs and errors, such
	// as "secret default/web-tls".
	Source string
	// Cert is the PEM chain, leaf first.
	Cert []byte
	// Key is the PEM private key. Never logged or printed.
	Key []byte
	// Names, when set, are the only names the pair is served for (those
	// its leaf covers): the hosts an Ingress lists for the secret, so that
	// a secret serves no name its Ingress does not claim. Empty means
	// every name of the leaf.
	Names []string
}

// EntryPoint is one listener.
type EntryPoint struct {
	// Address is host:port to listen on, such as ":443" or
	// "127.0.0.1:8080". Required.
	Address string `toml:"address"`
	// HTTP configures redirections and TLS for the entry point.
	HTTP *EntryPointHTTP `toml:"http"`
	// ForwardedHeaders says whose X-Forwarded-* headers are trusted.
	// Nil trusts nobody: incoming X-Forwarded-* headers are replaced.
	ForwardedHeaders *ForwardedHeaders `toml:"forwardedHeaders"`
	// Transport holds timeouts and size limits.
	Transport *Transport `toml:"transport"`
	// ProxyProtocol, when set, reads PROXY protocol headers from trusted
	// load balancers. Nil reads none: a header is taken for the request.
	ProxyProtocol *ProxyProtocolIn `toml:"proxyProtocol"`
	// HTTP3, when set, serves HTTP/3 on the same port over UDP. The entry
	// point must serve TLS (http.tls).
	HTTP3 *HTTP3 `toml:"http3"`
}

// EntryPointHTTP configures HTTP handling on an entry point.
type EntryPointHTTP struct {
	// Redirections redirects every request to another entry point,
	// except ACME HTTP-01 challenges.
	Redirections *Redirections `toml:"redirections"`
	// TLS, when set, makes the entry point serve HTTPS.
	TLS *EntryPointTLS `toml:"tls"`
}

// Redirections lists the redirections of an entry point.
type Redirections struct {
	// EntryPoint redirects to another entry point.
	EntryPoint *RedirectEntryPoint `toml:"entryPoint"`
}

// RedirectEntryPoint redirects requests to another entry point.
type RedirectEntryPoint struct {
	// To is the name of the target entry point. Required.
	To string `toml:"to"`
	// Scheme of the redirect target. Empty means "https".
	Scheme string `toml:"scheme"`
	// Permanent chooses 308 over 307. Nil means true.
	Permanent *bool `toml:"permanent"`
}

// EntryPointTLS turns TLS on for an entry point.
type EntryPointTLS struct {
	// Options names the TLS options ([tls.options.NAME]) to use. Empty
	// means "default": TLS 1.2 or later.
	Options string `toml:"options"`
}

// ForwardedHeaders says which clients may set X-Forwarded-* headers.
type ForwardedHeaders struct {
	// TrustedIPs are the IPs and CIDR ranges (a load balancer, an
	// ingress) whose X-Forwarded-* headers are kept.
	TrustedIPs []string `toml:"trustedIPs"`
	// Insecure trusts every client. Use only behind a proxy that always
	// overwrites the headers.
	Insecure bool `toml:"insecure"`
}

// Transport holds an entry point's limits against slow or greedy clients.
type Transport struct {
	// RespondingTimeouts bound how long a client may take.
	RespondingTimeouts *RespondingTimeouts `toml:"respondingTimeouts"`
	// MaxHeaderBytes caps the request header size. Zero means 1 MiB.
	MaxHeaderBytes int `toml:"maxHeaderBytes"`
}

// RespondingTimeouts bound the phases of a client connection. A zero
// field takes its default; there is no way to switch a timeout off except
// WriteTimeout, which is off by default so that streaming works.
type RespondingTimeouts struct {
	// ReadHeaderTimeout bounds reading the request header. Zero means 10s.
	ReadHeaderTimeout Duration `toml:"readHeaderTimeout"`
	// ReadTimeout bounds reading the whole request, body included. Zero
	// means 60s.
	ReadTimeout Duration `toml:"readTimeout"`
	// WriteTimeout bounds writing the response. Zero means no limit.
	WriteTimeout Duration `toml:"writeTimeout"`
	// IdleTimeout bounds how long a keep-alive connection may sit idle.
	// Zero means 180s.
	IdleTimeout Duration `toml:"idleTimeout"`
}

// DefaultStoreEndpoint is the store a replica uses when neither the command
// line nor the configuration names one.
const DefaultStoreEndpoint = "file:///var/lib/tollgate/state.db"

// DefaultPrefix is the key prefix under which tollgate keeps everything.
const DefaultPrefix = "tollgate"

// Store says where the shared state lives. It is a static section that is
// never written to the store.
type Store struct {
	// Endpoint is the store URL: file:///path, consul://host:port or
	// etcd://host:port (see docs/store.md). Empty means
	// DefaultStoreEndpoint. A --kv flag overrides it.
	Endpoint string `toml:"endpoint"`
	// Prefix is the key prefix; empty means "tollgate". A --prefix flag
	// overrides it.
	Prefix string `toml:"prefix"`
	// Credentials are not set here: the endpoint's token_file or
	// password_file parameter names a file holding them, or the
	// CONSUL_HTTP_TOKEN or ETCD_PASSWORD environment variable gives them
	// (see docs/store.md).
}

// ACME configures certificates from an ACME CA (Let's Encrypt by
// default). At least one challenge must be enabled.
type ACME struct {
	// Email is the account's contact address.
	Email string `toml:"email"`
	// CAServer is the CA's directory URL. Empty means Let's Encrypt's
	// production directory.
	CAServer string `toml:"caServer"`
	// CACertificates are PEM files of CA roots trusted when talking to
	// CAServer, for a private or test CA. Empty means the system roots.
	CACertificates []string `toml:"caCertificates" file:"true"`
	// KeyType is the certificates' key type: EC256 (the default), EC384,
	// RSA2048, RSA3072, RSA4096 or RSA8192.
	KeyType string `toml:"keyType"`
	// OnHostRule also orders certificates for every Host(`…`) of routers
	// that have TLS.
	OnHostRule bool `toml:"onHostRule"`
	// HTTPChallenge enables HTTP-01 on an entry point listening on :80.
	HTTPChallenge *HTTPChallenge `toml:"httpChallenge"`
	// TLSChallenge enables TLS-ALPN-01 on the TLS entry points.
	TLSChallenge *TLSChallenge `toml:"tlsChallenge"`
	// DNSChallenge enables DNS-01 through a DNS provider; wildcard domains
	// need it.
	DNSChallenge *DNSChallenge `toml:"dnsChallenge"`
	// Domains are certificates to obtain whether or not a router uses them.
	Domains []Domain `toml:"domains"`
	// OnDemand obtains certificates during the first handshake for names
	// an ask URL approves. Nil disables it.
	OnDemand *OnDemand `toml:"onDemand"`
	// EAB is the external account binding some CAs require.
	EAB *EAB `toml:"eab"`
	// EncryptionKeyFile is a file holding the keys that encrypt private
	// keys in the store: one or more base64 32-byte keys, one per line
	// (make one with "openssl rand -base64 32"). The first encrypts; all
	// decrypt, for rotation. Every replica needs the same file.
	EncryptionKeyFile string `toml:"encryptionKeyFile" file:"true"`
	// EncryptionKeyEnv names an environment variable holding the keys in
	// the same form, lines or commas between them: for a Kubernetes Secret.
	EncryptionKeyEnv string `toml:"encryptionKeyEnv"`
	// InsecurePlaintextKeys stores private keys unencrypted when neither
	// encryption key setting is given. Anyone who can read the store can
	// then impersonate every site; tollgate warns on every start.
	InsecurePlaintextKeys bool `toml:"insecurePlaintextKeys"`
	// ConcurrentOrders is how many orders the leader runs at once. Zero
	// means 4. When the leader dies, each order it had in flight may be
	// placed once more by its successor.
	ConcurrentOrders int `toml:"concurrentOrders"`
	// GarbageCollect deletes certificates no longer configured after a
	// grace period. Nil keeps them (the default).
	GarbageCollect *GarbageCollect `toml:"garbageCollect"`
}

// GarbageCollect configures the deletion of unused certificates.
type GarbageCollect struct {
	// GracePeriod is how long a certificate stays after no router or
	// domain needs it. Zero means 30 days.
	GracePeriod Duration `toml:"gracePeriod"`
}

// HTTPChallenge configures HTTP-01.
type HTTPChallenge struct {
	// EntryPoint is the (non-TLS) entry point that answers challenges.
	// Required.
	EntryPoint string `toml:"entryPoint"`
}

// TLSChallenge enables TLS-ALPN-01; it has no settings.
type TLSChallenge struct{}

// DNSChallenge configures DNS-01.
type DNSChallenge struct {
	// Provider is the name of a DNS provider as lego knows it, such as
	// "cloudflare" or "route53". Its credentials come from the environment
	// variables the provider documents. Required.
	Provider string `toml:"provider"`
	// Resolvers are host:port DNS servers used to check propagation.
	// Empty means the system's.
	Resolvers []string `toml:"resolvers"`
	// DelayBeforeCheck waits this long before checking propagation.
	DelayBeforeCheck Duration `toml:"delayBeforeCheck"`
	// DisablePropagationCheck skips checking that the TXT record is
	// visible before the CA is asked to validate (after DelayBeforeCheck):
	// for split-horizon DNS, or servers that answer no SOA queries.
	DisablePropagationCheck bool `toml:"disablePropagationCheck"`
}

// Domain is one certificate: a main name and optional alternative names.
type Domain struct {
	// Main is the certificate's main name. Required.
	Main string `toml:"main"`
	// SANs are further names on the same certificate.
	SANs []string `toml:"sans"`
}

// OnDemand configures on-demand certificates.
type OnDemand struct {
	// Ask is a URL queried with ?domain=NAME before ordering; a 2xx answer
	// allows the order. Required.
	Ask string `toml:"ask"`
}

// EAB is an ACME external account binding. The HMAC key is read from a
// file or an environment variable; it is never stored.
type EAB struct {
	// KID is the key identifier the CA gave. Required.
	KID string `toml:"kid"`
	// HMACKeyFile is a file holding the base64url HMAC key.
	HMACKeyFile string `toml:"hmacKeyFile" file:"true"`
	// HMACKeyEnv names an environment variable holding the HMAC key.
	HMACKeyEnv string `toml:"hmacKeyEnv"`
}

// API enables the operations endpoints: /ping, /ready, the read-only
// JSON API and, with Dashboard, the web dashboard.
type API struct {
	// EntryPoint serves the API. Empty means "api", which must then be
	// defined.
	EntryPoint string `toml:"entryPoint"`
	// Dashboard also serves the read-only web dashboard under
	// /dashboard/ on the same entry point (docs/dashboard.md). False by
	// default.
	Dashboard bool `toml:"dashboard"`
	// Users, when set with UsersFile or alone, make the API and the
	// dashboard ask for HTTP basic authentication: "name:bcrypt-hash"
	// entries (htpasswd -nB), as the basicAuth middleware takes them.
	// /ping, /ready and /metrics stay open. Empty means no
	// authentication.
	Users []string `toml:"users" secret:"true"`
	// UsersFile is a file of such entries, one per line, read at start;
	// for a name in both, the file wins.
	UsersFile string `toml:"usersFile" file:"true"`
}

// Auth returns the basic authentication the API asks for, nil for none.
func (a *API) Auth() *BasicAuth {
	if a == nil || (len(a.Users) == 0 && a.UsersFile == "") {
		return nil
	}
	return &BasicAuth{Users: a.Users, UsersFile: a.UsersFile, Realm: "tollgate API"}
}

// Metrics configures metrics exposition.
type Metrics struct {
	// Prometheus serves /metrics in the Prometheus text format when set.
	Prometheus *Prometheus `toml:"prometheus"`
}

// Prometheus configures /metrics.
type Prometheus struct {
	// EntryPoint serves /metrics. Empty means the API's entry point, or
	// "api".
	EntryPoint string `toml:"entryPoint"`
	// Buckets are the latency histogram's upper bounds in seconds, in
	// increasing order. Empty means 0.1, 0.3, 1.2, 5.
	Buckets []float64 `toml:"buckets"`
}

// Log configures tollgate's own log, written to standard error.
type Log struct {
	// Level is debug, info (the default), warn or error.
	Level string `toml:"level"`
	// Format is text (the default) or json.
	Format string `toml:"format"`
}

// AccessLog configures the access log.
type AccessLog struct {
	// FilePath is the file to append to. Empty means standard output.
	FilePath string `toml:"filePath"`
	// Format is json (the default) or text.
	Format string `toml:"format"`
}

// Lifecycle configures a graceful shutdown: on SIGTERM readiness fails at
// once, tollgate keeps serving for DrainDelay so load balancers stop
// sending, then stops accepting and waits up to GraceTimeout for requests
// in flight.
type Lifecycle struct {
	// DrainDelay is how long to keep serving after readiness fails. Zero
	// means 5s.
	DrainDelay Duration `toml:"drainDelay"`
	// GraceTimeout bounds the wait for requests in flight. Zero means 10s.
	GraceTimeout Duration `toml:"graceTimeout"`
}

// Providers are sources of dynamic configuration besides the file or the
// store. Each replica runs them itself; their routers and services are
// merged into the configuration under names ending in "@" and the
// provider's name, which no name in the file or store may use, so the two
// never collide.
type Providers struct {
	// KubernetesIngress routes what Kubernetes Ingress objects ask for
	// (see docs/kubernetes.md). Nil disables it.
	KubernetesIngress *KubernetesIngress `toml:"kubernetesIngress"`
	// KubernetesGateway routes what Kubernetes Gateway API objects
	// (GatewayClasses, Gateways, HTTPRoutes) ask for (see
	// docs/gateway-api.md). Nil disables it.
	KubernetesGateway *KubernetesGateway `toml:"kubernetesGateway"`
}

// KubernetesAPI is how a Kubernetes provider reaches the API server: the
// endpoint, token and CA settings every Kubernetes provider has.
type KubernetesAPI struct {
	// Section is the settings' path in the configuration, such as
	// "providers.kubernetesIngress", for messages.
	Section   string
	Endpoint  string
	TokenFile string
	CAFile    string
}

// API returns the connection settings.
func (k *KubernetesIngress) API() KubernetesAPI {
	return KubernetesAPI{Section: "providers.kubernetesIngress", Endpoint: k.Endpoint, TokenFile: k.TokenFile, CAFile: k.CAFile}
}

// API returns the connection settings.
func (k *KubernetesGateway) API() KubernetesAPI {
	return KubernetesAPI{Section: "providers.kubernetesGateway", Endpoint: k.Endpoint, TokenFile: k.TokenFile, CAFile: k.CAFile}
}

// GatewayController is the GatewayClass controllerName tollgate serves
// unless [providers.kubernetesGateway] controllerName says otherwise.
const GatewayController = "tollgate-proxy.io/gateway-controller"

// KubernetesGateway configures the Kubernetes Gateway API provider.
type KubernetesGateway struct {
	// Endpoint is the API server's URL. Empty means the pod's in-cluster
	// configuration (its service account's token and CA).
	Endpoint string `toml:"endpoint"`
	// TokenFile holds the bearer token sent to Endpoint. Empty sends none.
	// Only with Endpoint.
	TokenFile string `toml:"tokenFile" file:"true"`
	// CAFile is a PEM file of the roots that sign Endpoint's certificate.
	// Empty means the system roots. Only with Endpoint.
	CAFile string `toml:"caFile" file:"true"`
	// Namespaces are the namespaces whose Gateways, HTTPRoutes,
	// ReferenceGrants, Services and Secrets are read. Empty means all of
	// them.
	Namespaces []string `toml:"namespaces"`
	// ControllerName selects the GatewayClasses served: those whose
	// spec.controllerName it is. Empty means GatewayController.
	ControllerName string `toml:"controllerName"`
	// EntryPoints maps a Gateway listener's port (the key, a number) to
	// the entry point that serves the listener:
	// entryPoints = { "80" = "web", "443" = "websecure" }. Empty means
	// each entry point serves the listeners of its address's port (an
	// entry point on ":8443" serves port 8443), unless two entry points
	// share a port. A listener whose port has no entry point is not
	// Programmed.
	EntryPoints map[string]string `toml:"entryPoints"`
	// ThrottleDuration is how long changes are gathered before the routes
	// are rebuilt. Zero means 50ms.
	ThrottleDuration Duration `toml:"throttleDuration"`
	// StatusAddress is the address the leader writes to the served
	// Gateways' status.addresses. Nil writes none (the rest of the
	// status is written all the same).
	StatusAddress *IngressEndpoint `toml:"statusAddress"`
}

// ListenerEntryPoints returns the entry point of each listener port:
// EntryPoints, or else the ports of the entry points' addresses (a port
// two entry points share, or port 0, maps to none).
func (k *KubernetesGateway) ListenerEntryPoints(eps map[string]*EntryPoint) map[int32]string {
	out := map[int32]string{}
	if len(k.EntryPoints) > 0 {
		for port, ep := range k.EntryPoints {
			if n, err := strconv.ParseInt(port, 10, 32); err == nil {
				out[int32(n)] = ep
			}
		}
		return out
	}
	shared := map[int32]bool{}
	for name, ep := range eps {
		_, port, err := checkListen(ep.Address)
		if err != nil || port == 0 {
			continue
		}
		p := int32(port)
		if _, dup := out[p]; dup {
			shared[p] = true
		}
		out[p] = name
	}
	for p := range shared {
		delete(out, p)
	}
	return out
}

// IngressController is the controller name an IngressClass names in
// spec.controller for tollgate to serve its Ingresses.
const IngressController = "tollgate-proxy.io/ingress-controller"

// KubernetesIngress configures the Kubernetes Ingress provider.
type KubernetesIngress struct {
	// Endpoint is the API server's URL. Empty means the pod's in-cluster
	// configuration (its service account's token and CA).
	Endpoint string `toml:"endpoint"`
	// TokenFile holds the bearer token sent to Endpoint. Empty sends none.
	// Only with Endpoint.
	TokenFile string `toml:"tokenFile" file:"true"`
	// CAFile is a PEM file of the roots that sign Endpoint's certificate.
	// Empty means the system roots. Only with Endpoint.
	CAFile string `toml:"caFile" file:"true"`
	// Namespaces are the namespaces whose Ingresses are served. Empty
	// means all of them.
	Namespaces []string `toml:"namespaces"`
	// LabelSelector selects the Ingresses served, in Kubernetes syntax
	// ("team=web,tier!=internal"). Empty means all.
	LabelSelector string `toml:"labelSelector"`
	// IngressClass is the class served: an Ingress is served when its
	// spec.ingressClassName names an IngressClass whose spec.controller is
	// IngressController (and, when IngressClass is set, whose name is
	// IngressClass); when its deprecated kubernetes.io/ingress.class
	// annotation equals IngressClass ("tollgate" when empty); or, with
	// neither, when such an IngressClass is marked as the cluster's
	// default.
	IngressClass string `toml:"ingressClass"`
	// EntryPoints are the entry points of the Ingresses' routes; the
	// tollgate.io/router.entrypoints annotation overrides them per
	// Ingress. Empty means every entry point: plain-text routes on those
	// without TLS, TLS routes on those with TLS.
	EntryPoints []string `toml:"entryPoints"`
	// ThrottleDuration is how long changes are gathered before the routes
	// are rebuilt, so that a burst of endpoint changes costs one rebuild.
	// Zero means 50ms.
	ThrottleDuration Duration `toml:"throttleDuration"`
	// AllowExternalNameServices lets Ingresses route to Services of type
	// ExternalName. Off by default: such a Service lets anyone who may
	// create one in a served namespace send traffic to any host.
	AllowExternalNameServices bool `toml:"allowExternalNameServices"`
	// IngressEndpoint is the address the leader writes to the served
	// Ingresses' status.loadBalancer. Nil writes no status.
	IngressEndpoint *IngressEndpoint `toml:"ingressEndpoint"`
	// NginxAnnotations says which Ingresses have their
	// nginx.ingress.kubernetes.io annotations carried over (see
	// docs/migrating-from-ingress-nginx.md): "off" (or empty, the
	// default) none; "classes" the Ingresses of NginxIngressClasses,
	// which are then served too; "all" those and every Ingress of
	// tollgate's class. Annotations that cannot be carried over are
	// reported on the Ingress; one guarding access refuses it.
	NginxAnnotations string `toml:"nginxAnnotations"`
	// NginxIngressClasses are the ingress-nginx classes served with
	// NginxAnnotations "classes" or "all": an Ingress is of one when its
	// spec.ingressClassName names it (and the IngressClass, when it
	// exists, has the controller k8s.io/ingress-nginx or tollgate's),
	// when its kubernetes.io/ingress.class annotation names it, or, with
	// neither, when such an IngressClass of k8s.io/ingress-nginx is the
	// cluster's default. Empty means ["nginx"].
	NginxIngressClasses []string `toml:"nginxIngressClasses"`
}

// NginxController is the controller name of ingress-nginx's IngressClasses.
const NginxController = "k8s.io/ingress-nginx"

// NginxAnnotations values.
const (
	NginxOff     = "off"
	NginxClasses = "classes"
	NginxAll     = "all"
)

// NginxClasses returns the ingress-nginx classes k serves: none when its
// nginx annotations are off, else NginxIngressClasses or ["nginx"].
func (k *KubernetesIngress) NginxClasses() []string {
	if k.NginxAnnotations == "" || k.NginxAnnotations == NginxOff {
		return nil
	}
	if len(k.NginxIngressClasses) == 0 {
		return []string{"nginx"}
	}
	return k.NginxIngressClasses
}

// IngressEndpoint is the address published in Ingress status: the
// addresses of a Service, or fixed ones. Set exactly one of
// PublishedService and IP/Hostname.
type IngressEndpoint struct {
	// PublishedService is "namespace/name" of a Service (normally the
	// LoadBalancer Service in front of the replicas) whose
	// status.loadBalancer is copied.
	PublishedService string `toml:"publishedService"`
	// IP is a fixed address to publish.
	IP string `toml:"ip"`
	// Hostname is a fixed DNS name to publish.
	Hostname string `toml:"hostname"`
}
