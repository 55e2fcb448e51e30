#!/usr/bin/env bash
# Builds the gateway and runs a control plane on embedded SQLite (./gateway.db) plus one worker:
# admin API on 127.0.0.1:8001, proxy on 127.0.0.1:8000, worker status on 127.0.0.1:8100.
# Every setting can be changed with its GATEWAY_* environment variable. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p control-plane -p data-plane -p gatewayctl
bin="${CARGO_TARGET_DIR:-target}/debug"

export GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:8000}"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
"$bin/control-plane" &
"$bin/data-plane" &
cat <<INFO

  gateway running: proxy http://$GATEWAY_LISTEN  admin API http://127.0.0.1:8001
  gatewayctl:      $bin/gatewayctl --help
  stop:            Ctrl-C

INFO
wait -n
