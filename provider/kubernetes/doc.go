// Package kubernetes is the Kubernetes Ingress provider: it follows
// networking.k8s.io/v1 Ingresses and IngressClasses, Services,
// discovery.k8s.io/v1 EndpointSlices and TLS Secrets with client-go shared
// informers, and turns the Ingresses of its class into routers, services
// and certificates of tollgate's configuration model (config.Provided),
// which config.Sources merges with the file or store configuration.
//
// Every replica runs the informers itself, so an endpoint change reaches
// the routes without a store write. Each Ingress becomes one config.Part:
// a bad Ingress (a missing Service or Secret, an unknown middleware) is
// reported and left out, or answers 503 where a backend is missing, and
// never breaks the others. When the API server cannot be reached, the
// informers keep the last objects they saw, so the routes in force stay.
//
// Names: the routers of Ingress NS/NAME are "NS_NAME_R_P@kubernetes" for
// path P of rule R ("-tls" added for its TLS router) and
// "NS_NAME_default@kubernetes" for the default backend; a backend Service
// port is the service "NS_SERVICE_PORT@kubernetes". No Kubernetes name
// contains "_", so two objects never share a name. Names longer than 64
// bytes are cut and end in a hash.
package kubernetes
