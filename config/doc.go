// Package config is tollgate's configuration: the TOML model operators
// write, its validation, its encoding as one scalar per key in the store,
// the storeconfig operation that publishes a file to the store, and the
// watcher every replica builds immutable snapshots from.
//
// A Config has static sections (entry points, store, ACME, API, metrics,
// logging, lifecycle) and dynamic ones (HTTP routers, services,
// middlewares, TLS). Names and shapes follow Traefik v2/v3 wherever the
// concept is the same, so a Traefik user recognises every key.
//
// Values decoded by this package are never mutated afterwards: a new
// configuration is a new *Config, and consumers swap the pointer.
package config
