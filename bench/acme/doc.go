// Package acmebench holds the ACME certificate benchmarks that
// bench/acme.sh runs, as tests that only run when TOLLGATE_ACME_BENCH=1:
//
//   - TestPropagation: three tollgate processes on one store (etcd,
//     Consul); a certificate record written straight into the store, as
//     the leader writes it, and the time until every replica serves the
//     new serial in a TLS handshake; the replicas' CPU time per update.
//   - TestScale: 10,000 certificate records in the store (embedded file
//     store, etcd, Consul) and one tollgate process started on it: the
//     time from process start until /ready answers 200 (the certificate
//     cache holds every record), its resident memory then, and a
//     handshake check of random names.
//   - BenchmarkCacheLoad: the same load in this process, an acme.Cache on
//     the store until Ready, for the heap it keeps and profiles.
//
// The tests start real stores with internal/testserver (built by `make
// testdeps`) and run the tollgate binary named by TOLLGATE_BIN, or one
// they build. See bench/README.md.
package acmebench
