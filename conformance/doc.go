// Package conformance runs the Gateway API project's conformance suite
// (sigs.k8s.io/gateway-api/conformance, the version go.mod pins) against
// tollgate: its GATEWAY-HTTP profile with the core features (Gateway,
// HTTPRoute, ReferenceGrant).
//
// It is a module of its own, so the suite's dependencies stay out of
// tollgate's. `make conformance` runs it; docs/gateway-api-conformance.md
// describes the run and its last result.
//
// There is no cluster: a real kube-apiserver (internal/testserver) stores
// the objects, the test plays the controllers and kubelets for the suite's
// backends (Pods made Ready, EndpointSlices, an echo server per pod), and
// one tollgate process serves the Gateways. Everything runs in a network
// namespace of the test's own, in which 10.78.0.0/16 is local.
package conformance
