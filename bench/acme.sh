#!/usr/bin/env bash
# Measures how ACME certificates reach the replicas (see bench/README.md):
#
# 1. propagation: three tollgate processes on etcd, then on Consul; a
#    certificate record written straight into the store, as the leader
#    writes it, over TRIALS trials (default 200: renewals of one name, every
#    tenth a new name); the time until each replica serves the new serial
#    in a TLS handshake (p50, p90, p99, max of all three serving), and the
#    replicas' CPU time per trial (utime+stime of /proc/PID/stat).
# 2. scale: CERTS certificate records (default 10000) in the embedded file
#    store, etcd and Consul; one tollgate process started on each RUNS times
#    (default 3): process start until /ready answers 200, VmRSS and VmHWM
#    then, and a handshake check of random names. Targets: ≤ 3 s, ≤ 150 MiB.
#
# Environment: BACKEND (stores to run on, comma-separated: file, etcd,
# consul; default every one a benchmark supports — propagation needs a
# network store), ONLY (propagation or scale; both when empty), TRIALS,
# CERTS, RUNS, LOG (the full log; default a new temporary file), REPLICA_ENV
# (NAME=VALUE settings added to the replicas' environment, such as
# "GODEBUG=gctrace=1 GOGC=50", to see where their memory goes). Needs `make
# testdeps`. Prints the figure lines of the run; exits non-zero when a
# benchmark failed (a target missed is marked MISSED, not a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

trials=${TRIALS:-200}
certs=${CERTS:-10000}
runs=${RUNS:-3}
only=${ONLY:-}
log=${LOG:-$(mktemp -t acme-bench.XXXXXX)}
case $only in
'') run='^(TestPropagation|TestScale)$' ;;
propagation) run='^TestPropagation$' ;;
scale) run='^TestScale$' ;;
*)
  echo "ONLY must be propagation, scale or empty" >&2
  exit 2
  ;;
esac
: >"$log"

tmp=$(mktemp -d -t tollgate-acme-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The tree may be mid-edit by someone else: retry a failed build for a few
# minutes before giving up.
for attempt in 1 2 3 4 5; do
  if go build -o "$tmp/tollgate" ./cmd/tollgate >>"$log" 2>&1; then
    break
  fi
  if ((attempt == 5)); then
    echo "tollgate does not build; log: $log" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  echo "tollgate does not build (attempt $attempt); retrying in a minute" >&2
  sleep 60
done
rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -z $(git status --porcelain -- . ':!bench' 2>/dev/null || true) ]] || rev+=" + uncommitted changes"

echo "## tollgate ACME bench (bench/acme.sh), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "$(go version | cut -d' ' -f3-); tollgate $rev${REPLICA_ENV:+ with $REPLICA_ENV}; $(nproc --all) cores: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
TOLLGATE_ACME_BENCH=1 TOLLGATE_BIN="$tmp/tollgate" TOLLGATE_ACME_BACKENDS="${BACKEND:-}" \
  TOLLGATE_REPLICA_ENV="${REPLICA_ENV:-}" \
  TOLLGATE_ACME_TRIALS="$trials" TOLLGATE_ACME_CERTS="$certs" TOLLGATE_ACME_RUNS="$runs" \
  TOLLGATE_CLK_TCK="$(getconf CLK_TCK)" \
  go test -count=1 -run "$run" -v -timeout 90m ./bench/acme >>"$log" 2>&1 || status=$?

# Figure lines are the ones the tests log as "propagation STORE: …" and
# "scale STORE: …"; drop go test's file:line prefix.
grep -E -- '--- (PASS|FAIL|SKIP): Test(Propagation|Scale)/|^ +[a-z_]+_test\.go:[0-9]+: (propagation|scale) [a-z]+: ' "$log" |
  sed -E 's/^ +//; s/^[a-z_]+_test\.go:[0-9]+: //'
echo "full log: $log"
if ((status != 0)); then
  echo "acme bench failed (go test exit status $status); the log ends:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
