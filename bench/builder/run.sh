#!/usr/bin/env bash
# Queue latency (submit → running) and worker overhead of `appgear builder` on a trivial recipe
# (see docs/benchmarks.md, "Builder"). Not a test: it prints a table and fails only when it
# cannot run. Everything runs on 127.0.0.1 (a private redis-server, `builder serve`, one
# `builder run --loop` worker with the process executor, a folder store) and stops by itself.
#
#   bench/builder/run.sh                  # 200 builds per run (about a minute)
#   bench/builder/run.sh --builds 20      # sanity run
#   APPGEAR_BIN=target/debug/appgear bench/builder/run.sh --no-build
#
# Needs python3 (standard library only), redis-server and cargo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

build=1
args=()
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

for tool in python3 redis-server; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

if [ -z "${APPGEAR_BIN:-}" ]; then
  if [ "$build" = 1 ]; then
    (cd "$repo" && cargo build --release --bin appgear >&2)
  fi
  APPGEAR_BIN="$repo/target/release/appgear"
fi
export APPGEAR_BIN

exec python3 "$here/bench.py" --appgear "$APPGEAR_BIN" "${args[@]}"
