#!/usr/bin/env bash
# Instructions per proxied request, in user space, of one or more builds of the worker: each
# runs under callgrind (one runtime thread) in front of an nginx upstream, is warmed up, then
# counted over a fixed number of seconds of wrk load, for each request shape. Repeatable to a
# few per cent whatever else the machine does, unlike req/s, so it is the number to compare two
# builds by.
#
#   scripts/instructions.sh [--seconds N] [--shapes get,post,large] [--tls] WORKER_BINARY...
#
# With --tls, wrk speaks TLS 1.3 to the worker's TLS listener, which serves a self-signed ECDSA
# P-256 certificate made for the run (openssl).
# Shapes: `get` (3-byte answer), `post` (a JSON body of about 1 KiB, 3-byte answer), `large`
# (GET of a 64 KiB answer).
#
# With KEEP_PROFILES=DIR, the callgrind profiles are kept there, for callgrind_annotate.
#
# Needs valgrind, wrk and nginx (installed from Debian's packages when missing) and a release
# build of the control plane (target/release/control-plane).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=15
shapes=get,post,large
tls=false
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --shapes) shapes="$2"; shift 2 ;;
    --tls) tls=true; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--seconds N] [--shapes get,post,large] [--tls] WORKER_BINARY..." >&2; exit 2; }

missing=""
for tool in valgrind wrk nginx; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  source scripts/debian.sh
  # shellcheck disable=SC2086 # one word per package
  apt_install $missing
fi
control_plane=target/release/control-plane
[ -x "$control_plane" ] || cargo build --release -p control-plane --bin control-plane

work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file pattern
  for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

upstream_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; error_log stderr warn; pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $work/nginx;
  server { listen 127.0.0.1:$upstream_port; location / { return 200 'ok\n'; }
    location = /bench/large { default_type application/octet-stream; alias $work/large.bin; } } }
CONF
head -c 65536 /dev/zero | tr '\0' x > "$work/large.bin"
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx.conf" 2>"$work/nginx.log" & pids+=($!)

"$control_plane" --database-url "sqlite://$work/gateway.db?mode=rwc" --admin-listen 127.0.0.1:0 \
  --sync-listen 127.0.0.1:0 >"$work/cp.log" 2>&1 & pids+=($!)
wait_for "$work/cp.log" "config sync listening on"
admin=$(sed -n 's/.*admin API listening on \([0-9.:]*\).*/\1/p' "$work/cp.log" | head -1)
sync=$(sed -n 's/.*config sync listening on \([0-9.:]*\).*/\1/p' "$work/cp.log" | head -1)
curl -sf -X PUT "http://$admin/v1/config" -H 'content-type: application/json' --data-binary @- >/dev/null <<JSON
{"upstreams": [{"name": "backend", "targets": [{"address": "127.0.0.1:$upstream_port"}]}],
 "routes": [{"name": "bench", "paths": [{"prefix": "/bench"}], "backends": [{"upstream": "backend"}]}]}
JSON
if $tls; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.example.test -addext subjectAltName=DNS:bench.example.test \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  python3 -c 'import json, sys; print(json.dumps({"name": "bench", "cert": open(sys.argv[1]).read(), "key": open(sys.argv[2]).read()}))' \
    "$work/cert.pem" "$work/key.pem" |
    curl -sf -X POST "http://$admin/v1/certificates" -H 'content-type: application/json' --data-binary @- >/dev/null
fi

body=$(python3 -c 'print("{\"items\":[" + ",".join("{\"sku\":\"sku-%04d\",\"qty\":%d}" % (i, i % 7 + 1) for i in range(36)) + "]}")')
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$body" > "$work/post.lua"

printf '| worker | shape | requests | instructions per request |\n|---|---|---|---|\n'
for worker in "$@"; do
  for shape in ${shapes//,/ }; do
    port=$(free_port)
    status=$(free_port)
    out="$work/callgrind.out"
    scheme=http
    listen=(--listen "127.0.0.1:$port")
    if $tls; then
      scheme=https
      # Connections are never recycled, so that no handshake falls in the counted seconds.
      listen+=(--tls-listen "127.0.0.1:$(free_port)" --tls-default-certificate bench
        --max-requests-per-connection 0)
      port=${listen[3]##*:}
    fi
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
      "$worker" "${listen[@]}" --status-listen "127.0.0.1:$status" \
      --control-plane "http://$sync" --worker-threads 1 --no-cache >"$work/worker.log" 2>&1 &
    pid=$!
    pids+=($pid)
    for _ in $(seq 600); do
      curl -sf "http://127.0.0.1:$status/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
    script=()
    [ "$shape" = post ] && script=(-s "$work/post.lua")
    path=/bench/hello
    [ "$shape" = large ] && path=/bench/large
    wrk -t1 -c50 -d3s "${script[@]}" "$scheme://127.0.0.1:$port$path" >/dev/null
    callgrind_control -i on "$pid" >/dev/null 2>&1
    report=$(wrk -t1 -c50 -d"${seconds}s" "${script[@]}" "$scheme://127.0.0.1:$port$path")
    callgrind_control -i off "$pid" >/dev/null 2>&1
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    requests=$(echo "$report" | awk '/requests in/ {print $1}')
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
    printf '| %s | %s | %s | %s |\n' "$worker" "$shape" "$requests" \
      "$(python3 -c "print(f'{$total / $requests:,.0f}')")"
    if [ -n "${KEEP_PROFILES:-}" ]; then
      mkdir -p "$KEEP_PROFILES"
      cp "$out" "$KEEP_PROFILES/$(basename "$worker")-$(echo "$worker" | md5sum | head -c 6)-$shape.out"
    fi
    rm -f "$out"*
  done
done
