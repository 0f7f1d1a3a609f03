// Package migrate moves a Traefik installation to tollgate: it converts a
// Traefik 1.x static configuration file into a tollgate configuration
// (TraefikV1), and it reads the certificates and the ACME account Traefik
// obtained — from the single key Traefik 1.x keeps them in when it runs as
// a cluster (ReadTraefikV1Store), or from a Traefik v2/v3 acme.json file
// (ReadACMEJSON) — and writes them into tollgate's store as the records its
// replicas serve (Import), so that nothing is ordered again.
//
// ConvertTraefikV1 also reads the flags Traefik ran with (a store given
// as --consul on its command line is converted as if in the file) and
// checks Kubernetes manifests for the annotations Traefik 1.x read on
// Ingresses and Services, saying for each Ingress how to annotate it for
// tollgate's Kubernetes Ingress provider.
//
// The conversion never drops anything silently: every key of the source is
// either converted, converted with a difference that the report explains,
// or reported as having no equivalent (with what to do instead) or as
// unknown. The output is deterministic and always passes tollgate's own
// validation (config.Parse).
//
// Private keys read from Traefik's storage are never logged, printed or put
// into errors; the types that carry them print as "[REDACTED]".
package migrate
