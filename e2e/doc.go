// Package e2e holds tests that run tollgate as separate processes against
// real stores and a real ACME CA (Pebble). It has no code of its own.
package e2e
