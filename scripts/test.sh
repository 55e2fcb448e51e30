#!/usr/bin/env bash
# Everything CI checks, in the order it fails fastest: formatting, lints, unit tests, the layer
# and cycle checks (gateway-layers, a workspace member), the end-to-end suite against a real
# PostgreSQL server (set up by scripts/postgres.sh if needed) with real clients (curl, openssl,
# h2load: scripts/clients.sh installs them), and a bounded fuzz run of the HTTP/1 codec and of
# the whole request path.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh
source scripts/clients.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
scripts/fuzz.sh 10
