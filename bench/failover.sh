#!/usr/bin/env bash
# Measures leader failover with three elector processes per network backend
# (Consul, etcd): the time until another replica leads after the leader is
# killed (SIGKILL) or stopped (SIGTERM), over TRIALS trials each (default 10),
# plus a pause past the TTL and a 30 s store outage. Needs `make testdeps`.
# Prints the figure lines of the run; the full log goes to $LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${TRIALS:-10}
log=${LOG:-$(mktemp -t failover.XXXXXX)}
TOLLGATE_FAILOVER_TRIALS=$trials go test -count=1 -run '^TestFailover$' -v -timeout 60m ./leader >"$log" 2>&1 || {
  echo "failover run failed; log: $log" >&2
  tail -n 40 "$log" >&2
  exit 1
}
grep -E -- '--- (PASS|FAIL): TestFailover/|failover after|handover after|paused leader|terms and' "$log" | sed 's/^ *//'
echo "full log: $log"
