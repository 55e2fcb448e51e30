#!/usr/bin/env bash
# Fuzzes the worker with libFuzzer on the stable toolchain: gateway-http1 (its sans-IO HTTP/1
# codec: http1/fuzz) and the whole request path (raw bytes from a client socket through the
# listener, the proxy and the route table to a recording upstream: data-plane/fuzz). Builds
# each fuzz crate with sanitizer-coverage instrumentation into target/fuzz, then runs each
# target for the given seconds (default 10) from its committed seed corpus. Fails on any crash
# (a panic, so any failed assertion), timeout (10 s for one input) or running out of memory;
# the input that caused it is kept in target/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [seconds-per-target]
#
# The committed corpus is only read: what a run discovers goes to a scratch copy. To replay a
# crash: target/fuzz/<host>/release/<target> target/fuzz/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"

# libFuzzer itself is C++, built by libfuzzer-sys: install Debian's compiler when none is there.
if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
  echo "fuzz: no C++ compiler" >&2
  source scripts/debian.sh
  apt_install g++
fi
target_dir="$PWD/target/fuzz"
host="$(rustc -vV | sed -n 's/^host: //p')"

# What cargo-fuzz passes, less what needs nightly (-Zsanitizer): coverage counters and a table
# of their places, compare tracing for libFuzzer's value profile, and `cfg(fuzzing)`. The
# explicit --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

for fuzz in http1/fuzz data-plane/fuzz; do
    cargo build --manifest-path "$fuzz/Cargo.toml" --locked --release \
        --target "$host" --target-dir "$target_dir" --bins
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for entry in http1/fuzz:request_head http1/fuzz:response_head http1/fuzz:body \
    data-plane/fuzz:request_path; do
    fuzz="${entry%%:*}"
    target="${entry#*:}"
    mkdir -p "$scratch/$target" "$target_dir/artifacts/$target"
    cp "$fuzz/corpus/$target/"* "$scratch/$target/"
    echo "== $target: ${seconds}s"
    # Every input that widens coverage is a line, and without a sanitizer runtime libFuzzer
    # warns of the hooks it lacks; the pulse and summary lines are what matter in a log.
    set +e
    "$target_dir/$host/release/$target" \
        -max_total_time="$seconds" \
        -max_len=8192 \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -dict=http1/fuzz/http.dict \
        -use_value_profile=1 \
        -print_final_stats=1 \
        -artifact_prefix="$target_dir/artifacts/$target/" \
        "$scratch/$target" 2>&1 |
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)|NEW_FUNC|# Uses: |^WARNING: Failed to find function'
    status="${PIPESTATUS[0]}"
    set -e
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $target failed (exit $status); its input is in $target_dir/artifacts/$target/" >&2
        exit 1
    fi
done
