#!/usr/bin/env bash
# Side-by-side benchmark of `appgear multiplayer serve` against @y/websocket-server and
# Hocuspocus (see docs/benchmarks.md). Not a test: it prints a table and fails only when it
# cannot run. Everything runs on 127.0.0.1 and stops by itself.
#
#   bench/multiplayer/run.sh            # full: 3 runs per metric, medians (about 15-25 min)
#   bench/multiplayer/run.sh --quick    # sanity run, under a minute
#   bench/multiplayer/run.sh --runs 5 --only throughput,fanout
#   APPGEAR_BIN=target/release/appgear bench/multiplayer/run.sh --no-build
#   APPGEAR_BEFORE_BIN=/tmp/appgear-old bench/multiplayer/run.sh   # another build side by side
#
# Needs node (20+), npm, redis-server and cargo. The peers are installed at pinned versions into a
# scratch folder under $TMPDIR (reused between runs via BENCH_SCRATCH), never into the repo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

build=1
args=()
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

for tool in node npm redis-server; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

scratch=${BENCH_SCRATCH:-${TMPDIR:-/tmp}/appgear-mp-bench}
mkdir -p "$scratch"
if [ ! -f "$scratch/.installed-v1" ]; then
  echo "bench: installing the pinned peers and client libraries into $scratch" >&2
  (cd "$scratch" && echo '{"private":true,"type":"module"}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error \
      @y/websocket-server@0.1.1 @hocuspocus/server@3.4.4 \
      yjs@13.6.27 y-protocols@1.0.7 lib0@0.2.114 ws@8.18.3 >&2)
  touch "$scratch/.installed-v1"
fi
cp "$here"/bench.mjs "$here"/hocuspocus.mjs "$here"/y-websocket-server.mjs "$scratch/"

if [ -z "${APPGEAR_BIN:-}" ]; then
  if [ "$build" = 1 ]; then
    (cd "$repo" && cargo build --release --bin appgear >&2)
  fi
  APPGEAR_BIN="$repo/target/release/appgear"
fi
export APPGEAR_BIN

# 5,000 connections need as many descriptors in the harness and in each server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec node "$scratch/bench.mjs" "${args[@]}"
