#!/usr/bin/env bash
# Measures the Kubernetes Ingress provider at scale (see bench/README.md):
# a real kube-apiserver holding 1,000 Ingresses in 50 namespaces, each to
# its own Service with 5 ready endpoints (5,000 in all); the provider with a
# real router behind config.Sources, in the benchmark's process:
#
#   start            start → first configuration in force (informers synced,
#                    1,000 routers built), RSS and Go heap after it
#   endpoint-change  CPU time of the whole process per rebuild after one
#                    EndpointSlice update (watch event, translation, merge,
#                    router build), RSS and heap after (target ≤ 100 ms)
#
# Environment: COUNT (benchmark iterations, default 10). Needs `make testdeps`.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-10}
go test -run '^$' -bench '^BenchmarkIngresses$' -benchtime "${count}x" -timeout 30m ./provider/kubernetes |
  grep -E '^(Benchmark|    scale_test|ok|FAIL|---)'
