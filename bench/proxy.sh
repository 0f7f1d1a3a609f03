#!/usr/bin/env bash
# Ports and pids are set by name (pick_port, start: printf -v), which the
# linter cannot follow:
# shellcheck disable=SC2154,SC2034

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
# ONLY=passthrough runs another scenario instead (not part of the default
# run): TLS passthrough routed on the ClientHello's server name by tollgate
# ([tcp] router, HostSNI, tls.passthrough), HAProxy (mode tcp, req.ssl_sni)
# and nginx (stream, ssl_preread), to a TLS echo server (bench/backend with
# -cert), with bench/tlsload as the client: CPU seconds per GB relayed over
# long connections, and CPU µs per new connection (full handshake, 64 bytes
# each way, close).
#
# Environment: DURATION (10s) and RUNS (3; 2 for passthrough) per
# measurement, WARMUP (3s), CONNS (32, wrk connections), HS_CONNS (16,
# handshakes or new passthrough connections in flight), BULK_CONNS (8, long
# passthrough connections), CERTS (10000), ONLY (requests, handshakes or
# passthrough; requests and handshakes when empty), REV (a git revision to
# build tollgate from instead of the work tree), TOLLGATE_BIN (a tollgate
# binary to measure instead of building one), ROUTES (1, the default:
# also measure tollgate's HTTP route through a forwardAuth middleware and
# one through a weighted service; 0 for revisions without them). Installs
# wrk, nginx and curl (passthrough: nginx's stream module and HAProxy) from
# Debian's packages with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

only=${ONLY:-}
duration=${DURATION:-10s}
runs=${RUNS:-3}
[[ $only == passthrough ]] && runs=${RUNS:-2} # under 3 minutes in all
warmup=${WARMUP:-3s}
conns=${CONNS:-32}
hs_conns=${HS_CONNS:-16}
bulk_conns=${BULK_CONNS:-8}
ncerts=${CERTS:-10000}
rev=${REV:-}
tollgate_bin=${TOLLGATE_BIN:-}
routes=${ROUTES:-1}
case $only in '' | requests | handshakes | passthrough) ;; *)
  echo "ONLY must be requests, handshakes, passthrough or empty" >&2
  exit 2
  ;;
esac
do_requests() { [[ $only == '' || $only == requests ]]; }
do_handshakes() { [[ $only == '' || $only == handshakes ]]; }
do_http() { do_requests || do_handshakes; }
do_passthrough() { [[ $only == passthrough ]]; }
name=bench.test # the name the certificate under test is for
proxy_core=1 load_core=0

say() { echo "$*" >&2; }
die() {
  say "bench: $*"
  exit 1
}

# --- tools ---------------------------------------------------------------
nginx_bin() { command -v nginx || echo /usr/sbin/nginx; }
haproxy_bin() { command -v haproxy || echo /usr/sbin/haproxy; }
# nginx_stream: the load_module line nginx needs for its stream module with
# ssl_preread (nothing when built in); fails when nginx lacks them.
nginx_stream() {
  local v dir
  v=$("$(nginx_bin)" -V 2>&1) || return 1
  [[ $v == *--with-stream_ssl_preread_module* ]] || return 1
  [[ $v =~ --with-stream( |$) ]] && return 0
  [[ $v == *--with-stream=dynamic* ]] || return 1
  dir=$(sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p' <<<"$v")
  dir=${dir:-/usr/lib/nginx/modules}
  [[ -f $dir/ngx_stream_module.so ]] || return 1
  echo "load_module $dir/ngx_stream_module.so;"
}
need=()
if do_http; then
  command -v curl >/dev/null || need+=(curl)
fi
if do_requests; then
  command -v wrk >/dev/null || need+=(wrk)
  [[ -x $(nginx_bin) ]] || need+=(nginx)
fi
if do_passthrough; then
  [[ -x $(haproxy_bin) ]] || need+=(haproxy)
  # Debian's nginx has the stream module as a package of its own.
  if [[ ! -x $(nginx_bin) ]]; then
    need+=(nginx libnginx-mod-stream)
  elif ! nginx_stream >/dev/null; then
    need+=(libnginx-mod-stream)
  fi
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
nginx_bin=$(nginx_bin)
haproxy_bin=$(haproxy_bin)
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
# Ports are picked below the ephemeral range, where no outgoing connection
# (thousands per second here, and other programs') can hold them.
read -r ephemeral_low _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || ephemeral_low=32768
((ephemeral_low > 12000)) || die "the ephemeral port range starts at $ephemeral_low: no room below it for the benchmark's ports"
# pick_port VAR: a free loopback port, distinct from the others picked.
pick_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
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
if [[ -n $tollgate_bin ]]; then
  [[ -x $tollgate_bin && -z $rev ]] || die "TOLLGATE_BIN must be an executable, and without REV"
  say "measuring tollgate $tollgate_bin; building the bench programs into $tmp/bin"
  mkdir -p "$tmp/bin"
  cp "$tollgate_bin" "$tmp/bin/tollgate"
  tollgate_rev="$("$tollgate_bin" version 2>&1 | head -1 | cut -d' ' -f2) ($tollgate_bin)"
elif [[ -n $rev ]]; then
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
for p in backend baseline certgen handshake tlsload; do go build -o "$tmp/bin/$p" "./bench/$p"; done
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
if do_http; then
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

# --- TLS passthrough: tollgate, HAProxy and nginx stream ---------------------
if do_passthrough; then
  # The TLS server behind the proxies: it holds the certificate, completes
  # the handshakes and echoes every byte.
  pick_port echo_port
  start echo $load_core "$bin/backend" -addr "127.0.0.1:$echo_port" -cert "$crt" -key "$key"
  wait_port echo "$echo_port"
  pt_proxies=""
  pt_skipped=""

  # tollgate: one entry point, one TCP router on the server name, TLS
  # passed through to the echo server.
  pick_port tollgate_tls
  cat >"$tmp/tollgate.toml" <<EOF
[store]
endpoint = "file://$tmp/tollgate-state.db"

# Stop at once when the script ends.
[lifecycle]
drainDelay = "10ms"
graceTimeout = "1s"

[entryPoints.tls]
address = "127.0.0.1:$tollgate_tls"

[tcp.routers.pass]
rule = "HostSNI(\`$name\`)"
entryPoints = ["tls"]
service = "echo"
  [tcp.routers.pass.tls]
  passthrough = true

[tcp.services.echo.loadBalancer]
  [[tcp.services.echo.loadBalancer.servers]]
  address = "127.0.0.1:$echo_port"
EOF
  if "$bin/tollgate" check --config "$tmp/tollgate.toml" >"$tmp/tollgate-check.log" 2>&1; then
    start tollgate $proxy_core "$bin/tollgate" serve --config "$tmp/tollgate.toml"
    pt_proxies+=" tollgate"
  else
    pt_skipped="tollgate $tollgate_rev refuses the configuration ($(grep -m1 -v '^$' "$tmp/tollgate-check.log" || true))"
    say "warning: $pt_skipped; measuring HAProxy and nginx only"
  fi

  # HAProxy: one thread, layer 4, the backend chosen by the server name of
  # the ClientHello, waited for up to 5 s; no default backend.
  pick_port haproxy_tls
  mkdir -p "$tmp/haproxy"
  cat >"$tmp/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 180s
    timeout server 180s

frontend tls
    bind 127.0.0.1:$haproxy_tls
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend echo if { req.ssl_sni -i $name }

backend echo
    server echo 127.0.0.1:$echo_port
EOF
  "$haproxy_bin" -c -q -f "$tmp/haproxy/haproxy.cfg" || die "HAProxy rejects its configuration"
  start haproxy $proxy_core "$haproxy_bin" -db -f "$tmp/haproxy/haproxy.cfg"
  pt_proxies+=" haproxy"

  # nginx: one worker, stream with ssl_preread, the upstream chosen by a
  # map on the server name; an unknown name maps to none and is closed.
  pick_port nginx_tls
  mkdir -p "$tmp/nginx"
  load_stream=$(nginx_stream) || die "nginx $nginx_bin lacks the stream module with ssl_preread (Debian: apt-get install libnginx-mod-stream)"
  user=""
  [[ $(id -u) == 0 ]] && user="user root;"
  cat >"$tmp/nginx/nginx.conf" <<EOF
$load_stream
$user
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
stream {
    map \$ssl_preread_server_name \$tls_upstream {
        $name echo;
        default "";
    }
    upstream echo {
        server 127.0.0.1:$echo_port;
    }
    server {
        listen 127.0.0.1:$nginx_tls;
        ssl_preread on;
        preread_timeout 5s;
        proxy_pass \$tls_upstream;
        proxy_connect_timeout 5s;
        proxy_timeout 180s;
    }
}
EOF
  "$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" ||
    die "nginx rejects its configuration"
  start nginx $proxy_core "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"
  pt_proxies+=" nginx"

  # tlsload_run PROXY MODE CONNS DURATION: one tlsload run through PROXY.
  tlsload_run() {
    local port="${1}_tls"
    taskset -c $load_core "$bin/tlsload" -addr "127.0.0.1:${!port}" -name "$name" -mode "$2" -c "$3" -d "$4" 2>&1
  }
  for proxy in $pt_proxies; do
    port="${proxy}_tls"
    wait_port "$proxy" "${!port}"
  done
  # The configuration watcher of tollgate parses the file once after its
  # first poll (2 s): let that pass before checking and measuring.
  [[ $pt_proxies == *tollgate* ]] && sleep 3
  for proxy in $pt_proxies; do
    out=$(tlsload_run "$proxy" conns 1 300ms) || die "passthrough through $proxy does not work: $out"
    read -r _ n _ errs _ <<<"$(grep '^conns ' <<<"$out")"
    ((n > 0 && errs == 0)) || die "passthrough through $proxy does not work: $out"
  done

  # core_stat: total, idle and steal ticks of the proxy's core so far.
  core_stat() {
    local f
    read -r -a f < <(grep "^cpu$proxy_core " /proc/stat)
    echo "$((f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7] + f[8])) $((f[4] + f[5])) ${f[8]}"
  }
  # passthrough RUN PROXY MODE DURATION: one measurement; RUN 0 is the
  # warm-up. Records the work done, the proxy's CPU ticks, the errors and
  # how busy the proxy's core was otherwise (other processes, interrupts)
  # and stolen by the hypervisor.
  passthrough() {
    local run=$1 proxy=$2 mode=$3 d=$4 pidvar="pid_$2" before after c0 c1 out up down work errs secs c
    c=$hs_conns
    [[ $mode == bulk ]] && c=$bulk_conns
    before=$(proc_ticks "${!pidvar}")
    read -r -a c0 <<<"$(core_stat)"
    out=$(tlsload_run "$proxy" "$mode" "$c" "$d") || die "tlsload -mode $mode through $proxy failed: $out"
    read -r -a c1 <<<"$(core_stat)"
    after=$(proc_ticks "${!pidvar}")
    if [[ $mode == bulk ]]; then
      read -r _ _ up _ down _ _ _ errs _ secs <<<"$(grep '^bulk ' <<<"$out")"
      work=$((up + down))
    else
      read -r _ work _ errs _ secs <<<"$(grep '^conns ' <<<"$out")"
    fi
    ((run == 0)) || echo "pt $run $proxy $mode $work $((after - before)) $errs $secs $((c1[0] - c0[0])) $((c1[1] - c0[1])) $((c1[2] - c0[2]))" >>"$results"
    ((errs == 0)) || say "warning: $proxy $mode run $run: $errs errors: $out"
  }
  say "passthrough through$pt_proxies: warm-up $warmup each, then $runs runs of $duration each ($bulk_conns long connections; $hs_conns new connections in flight)"
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  for proxy in $pt_proxies; do
    for mode in bulk conns; do passthrough 0 "$proxy" $mode "$warmup"; done
  done
  for ((run = 1; run <= runs; run++)); do
    for mode in bulk conns; do
      for proxy in $pt_proxies; do passthrough "$run" "$proxy" $mode "$duration"; done
    done
    say "  run $run of $runs done"
  done
  load_end=$(cut -d' ' -f1-3 /proc/loadavg)
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
do_passthrough && tools+="; $("$haproxy_bin" -v 2>&1 | head -1 | cut -d' ' -f1-3); $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
echo "$tools; $(nproc --all) cores: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
if do_passthrough; then
  echo "TLS passthrough; proxy on core $proxy_core; tlsload and the TLS echo server on core $load_core; CLK_TCK $clk_tck; median of $runs runs of $duration"
else
  echo "proxy on core $proxy_core; wrk, backend and handshake client on core $load_core; CLK_TCK $clk_tck; median of $runs runs of $duration; 1 KiB responses"
fi
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
if do_passthrough; then
  echo
  echo "| proxy | MB/s | CPU s/GB | CPU s/GB per run | new conns/s | CPU µs/conn | CPU µs/conn per run |"
  echo "| --- | ---: | ---: | --- | ---: | ---: | --- |"
  awk -v tck="$clk_tck" -v list="$pt_proxies" -v skipped="$pt_skipped" "$awk_median"'
    function label(p) { return p == "haproxy" ? "HAProxy" : p == "nginx" ? "nginx stream" : p }
    $1 == "pt" {
      run = $2; p = $3; m = $4; cpu = $6 / tck
      if (m == "bulk") { c = cpu / ($5 / 1e9); rate = $5 / $8 / 1e6; f = "%.2f" }
      else { c = cpu * 1e6 / $5; rate = $5 / $8; f = "%.1f" }
      cost[run, p, m] = c; runs[run] = 1
      per[p, m] = per[p, m] " " sprintf(f, c); rates[p, m] = rates[p, m] " " rate
      total += $9; steal += $11; others = ($9 - $10 - $11 - $6) / $9
      if (others < 0) others = 0
      busy += others * $9
      if ($11 / $9 > maxsteal) maxsteal = $11 / $9
      if (others > maxothers) maxothers = others
    }
    END {
      n = split(list, ps, " ")
      for (i = 1; i <= n; i++) {
        p = ps[i]
        printf "| %s | %.0f | %.2f | %s | %.0f | %.1f | %s |\n", label(p),
          median(rates[p, "bulk"]), median(per[p, "bulk"]), substr(per[p, "bulk"], 2),
          median(rates[p, "conns"]), median(per[p, "conns"]), substr(per[p, "conns"], 2)
      }
      print ""
      if (skipped != "") {
        print "tollgate not measured: " skipped "."
      } else {
        print "| ratio (median of the runs) | CPU per GB | CPU per new connection |"
        print "| --- | ---: | ---: |"
        for (i = 1; i <= n; i++) {
          o = ps[i]
          if (o == "tollgate") continue
          rb = ""; rc = ""
          for (run in runs) {
            rb = rb " " cost[run, "tollgate", "bulk"] / cost[run, o, "bulk"]
            rc = rc " " cost[run, "tollgate", "conns"] / cost[run, o, "conns"]
          }
          printf "| tollgate / %s | %.2f× | %.2f× |\n", label(o), median(rb), median(rc)
          if (o == "haproxy") target = median(rb)
        }
        print ""
        printf "target: tollgate'\''s CPU per GB ≤ 1.5× HAProxy'\''s: %s (%.2f×).\n", target <= 1.5 ? "met" : "missed", target
      }
      if (total > 0)
        printf "core '"$proxy_core"' during the measurements: %.1f %% stolen by the hypervisor (at most %.1f %% in one run), %.1f %% busy outside the proxy process — other processes, interrupts (at most %.1f %%).\n",
          100 * steal / total, 100 * maxsteal, 100 * busy / total, 100 * maxothers
    }' "$results"
  echo "load average (1, 5, 15 min): $load_start before the measurements, $load_end after."
  echo
  echo "MB/s: bytes through the proxy both ways (what tlsload wrote on $bulk_conns long TLS connections, 16 KiB at a time, and the echo it read back; TLS records not counted) ÷ the run's wall time — bounded by core $load_core, where the client and the echo server do all the TLS work: context, not a target. CPU s/GB: the proxy's CPU time (utime+stime; nginx: master and worker) ÷ those bytes (10⁹). new conns: $hs_conns loops of TCP connection, full TLS 1.3 handshake with SNI $name (no resumption) with the echo server behind the proxy, 64 bytes each way, close; CPU µs/conn: the proxy's CPU time ÷ connections completed. Ratios are taken within each run."
fi
echo
if do_passthrough; then
  echo "reproduce: (cd $repo && ONLY=passthrough DURATION=$duration RUNS=$runs WARMUP=$warmup BULK_CONNS=$bulk_conns HS_CONNS=$hs_conns${rev:+ REV=$rev}${tollgate_bin:+ TOLLGATE_BIN=$tollgate_bin} bash bench/proxy.sh)"
else
  echo "reproduce: (cd $repo && DURATION=$duration RUNS=$runs WARMUP=$warmup CONNS=$conns HS_CONNS=$hs_conns CERTS=$ncerts${only:+ ONLY=$only}${rev:+ REV=$rev}${tollgate_bin:+ TOLLGATE_BIN=$tollgate_bin} ROUTES=$routes bash bench/proxy.sh)"
fi
