// Package gateway is tollgate's Kubernetes Gateway API provider
// ([providers.kubernetesGateway], see docs/gateway-api.md). Translate
// turns Gateway API objects (gateway.networking.k8s.io GatewayClasses,
// Gateways, HTTPRoutes and GRPCRoutes, with ReferenceGrants, Services, EndpointSlices
// and TLS Secrets) into tollgate's configuration model (config.Provided)
// and computes the status every object should get; it is a pure function
// of the objects it is given. Provider follows those objects with shared
// informers, hands each translation to its sink (provider name
// "kubernetes-gateway"), and, on the leader only (RunLeader), writes the
// statuses and the Events of notes and problems: each write fenced by the
// leader's term (StatusTermKey) and conditioned on the resourceVersion
// read, a condition's LastTransitionTime kept while its status holds, the
// parents entries of other controllers kept.
//
// A GatewayClass is served when its controllerName is the controller's
// (ControllerName by default); a Gateway when its class is served. Each
// listener port must map to an entry point (Settings.EntryPoints); a
// listener whose port has none is not Programmed. Each HTTPRoute becomes
// one config.Part, merged or refused whole, so a bad route never breaks
// the others. Values are written into rules so that the rule parser reads
// them back exactly, and every match's rule is parsed here: a match the
// router would refuse is not served, its reason in the route's status.
//
// GRPCRoute: fromGRPC makes of a GRPCRoute the HTTPRoute whose matches are
// on the path "/SERVICE/METHOD" (Exact: the path, or any method of the
// service, or the method of any service; RegularExpression: anchored
// expressions for each), with the same header matches, filters and
// backendRefs; its part is owned by "grpcroute NS/NAME", its names have
// "grpc" after the route's name, and its backends are reached over h2c
// (https when the Service port says TLS), services
// "NS_SERVICE_PORT_grpc@kubernetes-gateway". Precedence below the host:
// the longest service, the longest method, the most header matches; next
// to HTTPRoutes, a method match ranks as an Exact path as long as its
// service.
// Only HTTPS listeners take GRPCRoutes: the entry points do not serve
// h2c, which the GRPCRoute spec requires of an HTTP listener.
//
// TLS: an HTTPS listener's certificates are the Secrets of its
// certificateRefs (served as they are, so one that cert-manager keeps up
// to date is simply served), or, with the tls.options entry
// "tollgate-proxy.io/acme": "true" (ACMEOption) and no certificateRefs,
// one certificate for the listener's hostname from tollgate's [acme]: its
// routers carry the hostname as their TLS domain, so the cluster's leader
// places one order for it however many routes attach, and every replica
// serves it. A wildcard hostname needs [acme.dnsChallenge]. Any other
// option, or the option without a hostname or without [acme], makes the
// listener not Accepted (reason UnsupportedValue) with the reason.
//
// Names: the routers of HTTPRoute NS/NAME are
// "NS_NAME_GWNS_GW_LISTENER_RULE_MATCH_HOST@kubernetes-gateway" (indices
// of the rule, the match and the hostname), a backend Service port is the
// service "NS_SERVICE_PORT@kubernetes-gateway", and a rule with several
// backends the weighted service "NS_NAME_RULE_weighted@kubernetes-gateway"
// (a Service port and a rule index could otherwise meet). No
// Kubernetes name contains "_", so two objects never share a name; names
// longer than 64 bytes are cut and end in a hash.
//
// Priorities follow the Gateway API's precedence: a route's more specific
// hostname (exact before wildcard, longer before shorter), then an Exact
// path, then the longest PathPrefix (a RegularExpression path ranks below
// both), then a method match, then the most header matches, then the most
// query parameter matches. Ties between routes (the spec's oldest route,
// then alphabetical order) are left to the router's own order.
//
// Filters become middlewares of the route's part (named
// "NS_NAME_RULE_FILTER@kubernetes-gateway"), applied in order:
//
//   - RequestHeaderModifier and ResponseHeaderModifier: a headers
//     middleware: set replaces a header's values, add appends a value
//     after them, remove removes it. A set or add with an empty value,
//     and an add of Host, are refused.
//   - RequestRedirect (status 301 or 302): with a scheme and/or port only,
//     a redirectScheme middleware; with a hostname or a path
//     (ReplaceFullPath, or ReplacePrefixMatch on the rule's only
//     PathPrefix match) a redirectRegex over the whole URL. 301 is
//     permanent. Differences: for methods other than GET the middlewares
//     answer 308 or 307 as Traefik does; without a port or scheme the
//     request's Host port is kept (the listener's, unless the client
//     left a default port out); a redirect to the very same URL passes
//     the request on instead of redirecting.
//   - URLRewrite: the hostname sets the request's Host (headers
//     middleware), a ReplaceFullPath path a replacePath middleware, a
//     ReplacePrefixMatch path a replacePathRegex that replaces the
//     element-wise prefix of the rule's only match, which must be a
//     PathPrefix one (/foo to /bar: /foo becomes /bar, /foo/x /bar/x).
//   - RequestMirror: the rule's service is wrapped in a mirroring service
//     ("NS_NAME_RULE_mirror@kubernetes-gateway") whose mirrors are the
//     filters' backends, with their percent (100 by default); a fraction
//     must be a whole percentage.
//
// Timeouts: the shorter of a rule's request and backendRequest timeouts
// (zero disables either) bounds the wait for each backend's response
// headers, through a serversTransport of the route's part
// ("timeout_DURATIONms@kubernetes-gateway", responseHeaderTimeout) that
// the rule's backend services ("NS_SERVICE_PORT_timeout_DURATIONms")
// name; a backend slower than that is answered 504. The time to read the
// client's request and to stream the response body is not bounded, so
// the difference is a note.
//
// Gaps, each reported in the route's status rather than ignored (the
// rule is not served, Accepted is False with reason UnsupportedValue and
// a message naming the filter): a redirect status other than 301 and
// 302; ReplacePrefixMatch on a rule without exactly one PathPrefix
// match; CORS, ExtensionRef and
// backendRef filters. A backendRef that cannot be resolved (unknown
// kind, missing Service or port, no ReferenceGrant) answers 500 for its
// share of the requests, as the spec asks; a Service without ready
// endpoints answers 503.
package gateway
