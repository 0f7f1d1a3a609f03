#!/usr/bin/env bash
# Measures the proxy's CPU time per request — process CPU (utime+stime from
# /proc/PID/stat) divided by the requests the load generator completed — for
# tollgate, the plain httputil.ReverseProxy of bench/baseline and nginx, over
# HTTP and HTTPS keep-alive client connections on loopback; then full TLS
# handshakes per second and CPU per handshake with 1 and with 10,000 more
# certificates loaded in tollgate. The proxies run on core 1 (taskset), the
# load generator and the backend on core 0. Every configuration runs RUNS
# times, interleaved, and the median is reported; the ratio to the baseline
# is taken within each run. Throughput is printed for context only: the
# figures to compare are CPU per request and the ratios. See bench/README.md.
#
# Environment: DURATION (10s) and RUNS (3) per measurement, WARMUP (3s),
# CONNS (32, wrk connections), HS_CONNS (16, handshakes in flight), CERTS
# (10000), ONLY (requests or handshakes; both when empty), REV (a git
# revision to build tollgate from instead of the work tree), ROUTES (1, the
# default: also measure tollgate's HTTP route through a forwardAuth
# middleware and one through a weighted service; 0 for revisions without
# them). Installs wrk,
# nginx and curl from Debian's packages with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

duration=${DURATION:-10s}
runs=${RUNS:-3}
warmup=${WARMUP:-3s}
conns=${CONNS:-32}
hs_conns=${HS_CONNS:-16}
ncerts=${CERTS:-10000}
only=${ONLY:-}
rev=${REV:-}
routes=${ROUTES:-1}
case $only in '' | requests | handshakes) ;; *)
  echo "ONLY must be requests, handshakes or empty" >&2
  exit 2
  ;;
esac
do_requests() { [[ $only != handshakes ]]; }
do_handshakes() { [[ $only != requests ]]; }
name=bench.test # the name the certificate under test is for
proxy_core=1 load_core=0

say() { echo "$*" >&2; }
die() {
  say "bench: $*"
  exit 1
}

# --- tools ---------------------------------------------------------------
need=()
command -v curl >/dev/null || need+=(curl)
if do_requests; then
  command -v wrk >/dev/null || need+=(wrk)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
fi
if ((${#need[@]})); then
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
    sudo=(sudo)
  fi
  say "installing ${need[*]} from Debian's packages (apt-get install -y ${need[*]})"
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for t in go taskset getconf; do command -v $t >/dev/null || die "$t is needed"; done
(($(nproc --all) >= 2)) || die "needs two cores (proxy on core $proxy_core, load on core $load_core)"
clk_tck=$(getconf CLK_TCK)

# --- scratch space and processes -----------------------------------------
tmp=$(mktemp -d -t tollgate-bench.XXXXXX)
pids=()
cleanup() {
  local p
  trap '' INT TERM # a second signal must not cut the cleanup short
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

used_ports=" "
# pick_port VAR: a free loopback port, distinct from the others picked.
pick_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    [[ $used_ports == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    used_ports+="$p "
    printf -v "$1" %s "$p"
    return
  done
}

# start NAME CORE CMD...: runs CMD pinned to CORE, logging to $tmp/NAME.log;
# the pid goes to pid_NAME.
start() {
  local label=$1 core=$2
  shift 2
  taskset -c "$core" "$@" >"$tmp/$label.log" 2>&1 &
  pids+=($!)
  printf -v "pid_$label" %s $!
}

# wait_port LABEL PORT [SECONDS]: until PORT accepts connections, while
# LABEL's process lives.
wait_port() {
  local label=$1 port=$2 limit=${3:-30} pidvar="pid_$1" i
  for ((i = 0; i < limit * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "${!pidvar}" 2>/dev/null || {
      tail -n 30 "$tmp/$label.log" >&2
      die "$label exited during startup"
    }
    sleep 0.1
  done
  tail -n 30 "$tmp/$label.log" >&2
  die "$label does not listen on port $port after ${limit}s"
}

# check_url URL: the proxy answers 200 with the backend's body.
check_url() {
  local got
  got=$(curl -ksS --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$1") || die "GET $1 failed"
  [[ $got == "200 1024" ]] || die "GET $1: status and size $got, want 200 1024"
}

# proc_ticks PID: utime+stime of PID and of its child processes (nginx's
# workers), in clock ticks.
proc_ticks() {
  local total=0 p stat f
  for p in "$1" $(pgrep -P "$1" || true); do
    stat=$(<"/proc/$p/stat") || continue
    read -r -a f <<<"${stat##*) }"
    total=$((total + f[11] + f[12])) # fields 14 and 15 of stat
  done
  echo "$total"
}

# --- build -----------------------------------------------------------------
if [[ -n $rev ]]; then
  say "building tollgate at $rev and the bench programs into $tmp/bin"
  mkdir -p "$tmp/src"
  git archive "$rev" | tar -x -C "$tmp/src"
  (cd "$tmp/src" && go build -o "$tmp/bin/tollgate" ./cmd/tollgate)
  tollgate_rev="$(git rev-parse --short "$rev")"
else
  say "building tollgate and the bench programs into $tmp/bin"
  go build -o "$tmp/bin/tollgate" ./cmd/tollgate
  tollgate_rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
  [[ -z $(git status --porcelain -- . ':!bench' 2>/dev/null || true) ]] || tollgate_rev+=" + uncommitted changes"
fi
for p in backend baseline certgen handshake; do go build -o "$tmp/bin/$p" "./bench/$p"; done
bin=$tmp/bin

"$bin/certgen" -dir "$tmp/certs" "$name" >/dev/null
crt=$tmp/certs/$name.crt key=$tmp/certs/$name.key

# tollgate_config FILE PLAIN_PORT TLS_PORT STATE CERTLIST: a tollgate
# configuration with an HTTP and an HTTPS entry point routing everything to
# the backend, and the certificates of CERTLIST (certgen's output).
tollgate_config() {
  local file=$1 plain=$2 secure=$3 state=$4 certs=$5
  {
    cat <<EOF
[store]
endpoint = "file://$state"

# Stop at once when the script ends.
[lifecycle]
drainDelay = "10ms"
graceTimeout = "1s"

[entryPoints.web]
address = "127.0.0.1:$plain"

[entryPoints.websecure]
address = "127.0.0.1:$secure"
  [entryPoints.websecure.http.tls]

[http.routers.plain]
rule = "PathPrefix(\`/\`)"
entryPoints = ["web"]
service = "backend"

[http.routers.secure]
rule = "PathPrefix(\`/\`)"
entryPoints = ["websecure"]
service = "backend"
  [http.routers.secure.tls]

[http.services.backend.loadBalancer]
  [[http.services.backend.loadBalancer.servers]]
  url = "http://127.0.0.1:$backend_port"
EOF
    ((routes)) && cat <<EOF

# The same backend through a forwardAuth middleware, whose authentication
# server (another backend process, empty answers) lets every request in.
[http.routers.auth]
rule = "PathPrefix(\`/auth/\`)"
entryPoints = ["web"]
service = "backend"
middlewares = ["auth"]

[http.middlewares.auth.forwardAuth]
address = "http://127.0.0.1:$authserver_port/"

# The same backend through a weighted service of two load balancers.
[http.routers.weighted]
rule = "PathPrefix(\`/weighted/\`)"
entryPoints = ["web"]
service = "weighted"

[http.services.weighted.weighted]
  [[http.services.weighted.weighted.services]]
  name = "backend"
  [[http.services.weighted.weighted.services]]
  name = "backend2"

[http.services.backend2.loadBalancer]
  [[http.services.backend2.loadBalancer.servers]]
  url = "http://127.0.0.1:$backend_port"
EOF
    awk '{ printf "\n[[tls.certificates]]\ncertFile = \"%s\"\nkeyFile = \"%s\"\n", $2, $3 }' "$certs"
  } >"$file"
}

# --- backend, baseline, tollgate -------------------------------------------
pick_port backend_port
start backend $load_core "$bin/backend" -addr "127.0.0.1:$backend_port" -size 1024
wait_port backend "$backend_port"
if ((routes)); then
  pick_port authserver_port
  start authserver $load_core "$bin/backend" -addr "127.0.0.1:$authserver_port" -size 0
  wait_port authserver "$authserver_port"
fi

pick_port baseline_http
pick_port baseline_https
start baseline $proxy_core "$bin/baseline" -backend "http://127.0.0.1:$backend_port" \
  -http "127.0.0.1:$baseline_http" -https "127.0.0.1:$baseline_https" -cert "$crt" -key "$key"

pick_port tollgate_http
pick_port tollgate_https
echo "$name $crt $key" >"$tmp/one-cert.list"
tollgate_config "$tmp/tollgate.toml" "$tollgate_http" "$tollgate_https" "$tmp/tollgate-state.db" "$tmp/one-cert.list"
start tollgate $proxy_core "$bin/tollgate" serve --config "$tmp/tollgate.toml"

wait_port baseline "$baseline_https"
wait_port tollgate "$tollgate_https"
for u in "http://127.0.0.1:$baseline_http/" "https://127.0.0.1:$baseline_https/" \
  "http://127.0.0.1:$tollgate_http/" "https://127.0.0.1:$tollgate_https/"; do
  check_url "$u"
done
# The two routes are measured like proxies of their own, auth and weighted,
# that are tollgate's process on another path, over HTTP.
route_proxies=""
if ((routes)); then
  for r in auth weighted; do
    printf -v "pid_$r" %s "$pid_tollgate"
    printf -v "${r}_http" %s "$tollgate_http"
    printf -v "path_$r" %s "/$r/"
    check_url "http://127.0.0.1:$tollgate_http/$r/"
  done
  route_proxies="auth weighted"
fi

results=$tmp/results
: >"$results"

# --- requests per CPU time ---------------------------------------------------
if do_requests; then
  pick_port nginx_http
  pick_port nginx_https
  mkdir -p "$tmp/nginx"
  user=""
  [[ $(id -u) == 0 ]] && user="user root;"
  cat >"$tmp/nginx/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    # tollgate's client-side defaults: 10s for the request header, 60s for
    # the body, 180s idle, no limit on requests per connection.
    client_header_timeout 10s;
    client_body_timeout 60s;
    keepalive_timeout 180s;
    keepalive_requests 1000000000;
    upstream backend {
        server 127.0.0.1:$backend_port;
        keepalive 256;
        keepalive_requests 1000000000;
        keepalive_timeout 90s;
    }
    server {
        listen 127.0.0.1:$nginx_http;
        listen 127.0.0.1:$nginx_https ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
  "$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" ||
    die "nginx rejects its configuration"
  start nginx $proxy_core "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"
  wait_port nginx "$nginx_https"
  check_url "http://127.0.0.1:$nginx_http/"
  check_url "https://127.0.0.1:$nginx_https/"

  url_of() { # PROXY SCHEME
    local v="${1}_${2}" p="path_${1}"
    echo "$2://127.0.0.1:${!v}${!p:-/}"
  }
  # load RUN PROXY SCHEME DURATION: one wrk run; RUN 0 is the warm-up.
  load() {
    local run=$1 proxy=$2 scheme=$3 d=$4 pidvar="pid_$2" before after out reqs errs
    before=$(proc_ticks "${!pidvar}")
    out=$(taskset -c $load_core wrk -t1 -c"$conns" -d"$d" "$(url_of "$proxy" "$scheme")" 2>&1) ||
      die "wrk failed: $out"
    after=$(proc_ticks "${!pidvar}")
    reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
    [[ $reqs =~ ^[0-9]+$ && $reqs -gt 0 ]] || die "no request count in wrk's output: $out"
    # Errors: non-2xx answers and socket errors, both printed only when
    # there were some.
    errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/[^0-9 ]/, ""); for (i = 1; i <= NF; i++) n += $i } END { print n + 0 }' <<<"$out")
    ((run == 0)) || echo "req $run $proxy $scheme $reqs $((after - before)) $errs" >>"$results"
    ((errs == 0)) || say "warning: $proxy $scheme run $run: $errs errors in $reqs requests"
  }

  say "requests: warm-up $warmup per proxy and scheme, then $runs runs of $duration each (wrk -t1 -c$conns)"
  for scheme in http https; do
    for proxy in baseline tollgate nginx; do load 0 $proxy $scheme "$warmup"; done
  done
  for proxy in $route_proxies; do load 0 "$proxy" http "$warmup"; done
  for ((run = 1; run <= runs; run++)); do
    for scheme in http https; do
      for proxy in baseline tollgate nginx; do load "$run" $proxy $scheme "$duration"; done
    done
    for proxy in $route_proxies; do load "$run" "$proxy" http "$duration"; done
    say "  run $run of $runs done"
  done
fi

# --- TLS handshakes with 1 and 10,000 more certificates ----------------------
if do_handshakes; then
  say "generating $ncerts more certificates for distinct names"
  "$bin/certgen" -dir "$tmp/many" -extra "$ncerts" "$name" >"$tmp/many-certs.list"
  pick_port many_http
  pick_port many_https
  tollgate_config "$tmp/tollgate-many.toml" "$many_http" "$many_https" "$tmp/tollgate-many-state.db" "$tmp/many-certs.list"
  t0=$(date +%s.%N)
  start many $proxy_core "$bin/tollgate" serve --config "$tmp/tollgate-many.toml"
  wait_port many "$many_https" 300
  check_url "https://127.0.0.1:$many_https/"
  many_startup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # The configuration watcher parses the file once after its first poll
  # (2 s): let that pass before measuring.
  sleep 3
  tollgate_certs=1 many_certs=$((ncerts + 1)) baseline_certs=1

  # handshakes RUN PROXY DURATION: one handshake run; RUN 0 is the warm-up.
  handshakes() {
    local run=$1 proxy=$2 d=$3 pidvar="pid_$2" portvar="${2}_https" certsvar="${2}_certs" before after out n errs
    before=$(proc_ticks "${!pidvar}")
    out=$(taskset -c $load_core "$bin/handshake" -addr "127.0.0.1:${!portvar}" -name "$name" -c "$hs_conns" -d "$d" 2>&1) ||
      die "handshake run against $proxy failed: $out"
    after=$(proc_ticks "${!pidvar}")
    read -r _ n _ errs _ <<<"$(grep '^handshakes ' <<<"$out")"
    ((run == 0)) || echo "hs $run $proxy ${!certsvar} $n $((after - before)) $errs" >>"$results"
    ((errs == 0)) || say "warning: $proxy handshakes run $run: $errs errors: $out"
  }
  say "handshakes: warm-up $warmup each, then $runs runs of $duration each ($hs_conns in flight)"
  for proxy in tollgate many baseline; do handshakes 0 $proxy "$warmup"; done
  for ((run = 1; run <= runs; run++)); do
    for proxy in tollgate many baseline; do handshakes "$run" $proxy "$duration"; done
    say "  run $run of $runs done"
  done
  many_rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid_many/status")
  one_rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid_tollgate/status")
fi

# --- report ------------------------------------------------------------------
# median of a space-separated list, for the awk programs below
awk_median='
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }'
secs=$(awk -v d="$duration" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600; print n }')
echo
echo "## tollgate bench (bench/proxy.sh), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
tools="$(go version | cut -d' ' -f3-); tollgate $tollgate_rev"
do_requests && tools+="; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
echo "$tools; $(nproc --all) cores: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "proxy on core $proxy_core; wrk, backend and handshake client on core $load_core; CLK_TCK $clk_tck; median of $runs runs of $duration; 1 KiB responses"
if do_requests; then
  echo
  echo "| proxy | scheme | requests | req/s | CPU µs/req | ratio to baseline | ratio to tollgate | CPU µs/req per run |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
  awk -v tck="$clk_tck" -v secs="$secs" "$awk_median"'
    $1 == "req" {
      k = $3 " " $4; us = $6 * 1e6 / tck / $5
      cost[$2, k] = us; reqs[k] = reqs[k] " " $5; per[k] = per[k] " " sprintf("%.2f", us)
      if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      runs[$2] = 1
    }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, ps, " ")
        r = ""; rt = ""
        for (run in runs) if ((run, "baseline " ps[2]) in cost) r = r " " cost[run, k] / cost[run, "baseline " ps[2]]
        for (run in runs) if ((run, "tollgate " ps[2]) in cost) rt = rt " " cost[run, k] / cost[run, "tollgate " ps[2]]
        m = median(reqs[k])
        name = ps[1] == "auth" ? "tollgate, forwardAuth route" : ps[1] == "weighted" ? "tollgate, weighted service" : ps[1]
        printf "| %s | %s | %d | %.0f | %.2f | %.2f× | %.2f× | %s |\n", name, ps[2], m, m / secs, median(per[k]), median(r), median(rt), substr(per[k], 2)
      }
    }' "$results"
  echo
  echo "requests: median completed requests per run (wrk); CPU µs/req: process CPU time (utime+stime, nginx's master and worker) ÷ requests; ratio: this ÷ the baseline (or ÷ tollgate's plain route) within each run, median over the runs; the forwardAuth route asks an authentication server on loopback (core 0) at every request, and its CPU µs/req counts tollgate's side of both requests; req/s is context, not a target (the load generator shares a core with the backend)."
fi
if do_handshakes; then
  echo
  echo "| proxy | certs loaded | handshakes | handshakes/s | CPU µs/handshake | ratio to tollgate with 1 | CPU µs/handshake per run |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
  awk -v tck="$clk_tck" -v secs="$secs" "$awk_median"'
    $1 == "hs" {
      k = $3 " " $4; us = $6 * 1e6 / tck / $5
      cost[$2, k] = us; hs[k] = hs[k] " " $5; per[k] = per[k] " " sprintf("%.1f", us)
      if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      runs[$2] = 1
    }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, ps, " ")
        r = ""
        for (run in runs) r = r " " cost[run, k] / cost[run, "tollgate 1"]
        m = median(hs[k])
        printf "| %s | %s | %d | %.0f | %.1f | %.3f× | %s |\n", ps[1] == "many" ? "tollgate" : ps[1], ps[2], m, m / secs, median(per[k]), median(r), substr(per[k], 2)
      }
    }' "$results"
  echo
  echo "full TLS handshakes (no resumption), new TCP connection each, client = Go crypto/tls defaults (TLS 1.3) with SNI $name, ECDSA P-256 certificates; the $((ncerts + 1))-certificate tollgate took ${many_startup}s to start and holds ${many_rss} MiB resident (the 1-certificate one ${one_rss} MiB)."
fi
echo
echo "reproduce: (cd $repo && DURATION=$duration RUNS=$runs WARMUP=$warmup CONNS=$conns HS_CONNS=$hs_conns CERTS=$ncerts${only:+ ONLY=$only}${rev:+ REV=$rev} ROUTES=$routes bash bench/proxy.sh)"
