#!/usr/bin/env bash
# Benchmark of Topology A's everyday commands on a running stack (a benchmark, not a test: it
# prints numbers and fails only when a command fails).
#
#   appgear up (no-op)   `appgear up` when nothing changed: it must touch no container
#   appgear status       `appgear status`
# beside Debian's docker-compose 1.29 doing the same on the same stack:
#   docker-compose up -d (no-op), docker-compose ps
#
# Each command runs N times (default 15, after 2 warm-up runs) and the table shows the median.
# Uses hyperfine when it is installed (installs Debian's package when running as root with apt),
# else a timing loop. Stand-in images replace Traefik and code-server (no registry is needed).
#
# usage: bench/topology-a.sh [-n RUNS]      (BENCH_TIMER=loop: time with the shell loop)
#
# Each tool is measured on the stack it brought up itself: docker-compose recreates containers
# whose config hash is not its own, so pointing it at appgear's containers would time a recreate
# (and undo appgear's), not a no-op. Same compose file, same images, same project name and ports.
set -euo pipefail

runs=15
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs=${2:?-n needs a number}; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "topology-a.sh: unknown option $1 (usage: bench/topology-a.sh [-n RUNS])" >&2; exit 2 ;;
  esac
  shift
done
case "$runs" in ''|*[!0-9]*|0) echo "topology-a.sh: -n takes a positive number" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'bench: %s\n' "$*" >&2; }
quietly() { # CMD...: runs CMD, showing its output only when it fails
  local log
  log=$("$@" 2>&1) || { printf '%s\n' "$log" >&2; return 1; }
}
q() { printf '%q' "$1"; }

for t in docker:docker.io docker-compose:docker-compose python3:python3 busybox:busybox-static; do
  command -v "${t%%:*}" >/dev/null 2>&1 || { say "${t%%:*} is missing: apt-get install ${t#*:}"; exit 3; }
done
docker info >/dev/null 2>&1 || { say "the Docker engine does not answer: start dockerd"; exit 3; }

use_hyperfine() { [ "${BENCH_TIMER:-}" != loop ] && command -v hyperfine >/dev/null 2>&1; }
if [ "${BENCH_TIMER:-}" != loop ] && ! use_hyperfine && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing hyperfine (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1; } ||
    say "hyperfine could not be installed; timing with a shell loop instead"
fi

say "building the release binary"
cargo build --release --locked --quiet
bin=$root/target/release/appgear

# Unique names, so the benchmark never meets a user's stack or a test's leftovers.
id=bench$$$(date +%s)
tag=$id
project=appgear-$id
home=$(mktemp -d /tmp/appgear-bench.XXXXXX)
out=$(mktemp -d /tmp/appgear-bench-out.XXXXXX)
dc() { docker-compose -p "$project" --project-directory "$home" -f "$home/docker-compose.yml" "$@"; }
cleanup() {
  set +e
  [ -f "$home/docker-compose.yml" ] && dc down -v --remove-orphans >/dev/null 2>&1
  "$bin" --home "$home" down --purge --yes >/dev/null 2>&1
  docker rmi "appgear-standin/traefik:$tag" "appgear-standin/code-server:$tag" >/dev/null 2>&1
  rm -rf "$home" "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building stand-in images (tag $tag)"
tests/standin/build.sh "$tag" >/dev/null

# Two free ports on the loopback, chosen by the kernel.
read -r https_port http_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

quietly "$bin" --home "$home" init
set_key() { quietly "$bin" --home "$home" config set "$1" "$2"; }
set_key TRAEFIK_IMAGE "appgear-standin/traefik:$tag"
set_key CODE_SERVER_IMAGE "appgear-standin/code-server:$tag"
set_key COMPOSE_PROJECT_NAME "$project"
set_key FACTORY_VSCODE_PORT "$https_port"
set_key FACTORY_HTTP_PORT "$http_port"

# median NAME CMD: runs CMD `runs` times (after 2 warm-ups), prints its median in milliseconds.
if use_hyperfine; then
  timer="hyperfine $(hyperfine --version | awk '{print $2}')"
  median() {
    hyperfine --style none --warmup 2 --runs "$runs" --export-csv "$out/$1.csv" -n "$1" "$2" \
      >/dev/null 2>"$out/$1.err" || { cat "$out/$1.err" >&2; say "$1 failed: $2"; return 1; }
    # columns: command,mean,stddev,median,user,system,min,max (seconds)
    awk -F, 'NR == 2 { printf "%.1f", $4 * 1000 }' "$out/$1.csv"
  }
else
  timer="shell loop (date +%s%N)"
  median() {
    local i s e
    for i in 1 2; do bash -c "$2" >/dev/null 2>&1 || { say "$1 failed: $2"; return 1; }; done
    for ((i = 0; i < runs; i++)); do
      s=$(date +%s%N)
      bash -c "$2" >/dev/null 2>&1 || { say "$1 failed: $2"; return 1; }
      e=$(date +%s%N)
      echo $(((e - s) / 1000))
    done | sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'
  }
fi

# The ids of the project's containers: the same before and after the timed runs, or a "no-op"
# was not one.
containers() { docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$project" | sort | tr '\n' ' '; }
check_untouched() { # TOOL BEFORE
  [ "$(containers)" = "$2" ] || { say "$1 recreated containers during the timed runs: not a no-op"; exit 1; }
}

# --- appgear ----------------------------------------------------------------------------------
say "appgear up (first start, not timed)"
quietly "$bin" --home "$home" up
quietly "$bin" --home "$home" status # exits non-zero unless every service is healthy
before=$(containers)
ag_up=$(median appgear-up "$(q "$bin") --home $(q "$home") up")
ag_status=$(median appgear-status "$(q "$bin") --home $(q "$home") status")
check_untouched "appgear up" "$before"
quietly "$bin" --home "$home" down

# --- docker-compose 1.29 ----------------------------------------------------------------------
# The same file appgear reads: it avoids keys that 1.29 does not know.
say "docker-compose up -d (first start, not timed)"
quietly dc up -d
before=$(containers)
dc_cmd="docker-compose -p $(q "$project") --project-directory $(q "$home") -f $(q "$home/docker-compose.yml")"
dc_up=$(median compose-up "$dc_cmd up -d")
dc_ps=$(median compose-ps "$dc_cmd ps")
check_untouched "docker-compose up -d" "$before"
quietly dc down -v

verdict() { # VALUE TARGET
  awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "met   " : "missed" }'
}
cat <<EOF

Topology A, two services running and healthy (stand-in images), median of $runs runs, $timer
$(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')

| command                      |    median | target    |        |
|------------------------------|-----------|-----------|--------|
| appgear up (no-op)           | $(printf '%6s ms' "$ag_up") | < 100 ms  | $(verdict "$ag_up" 100) |
| appgear status               | $(printf '%6s ms' "$ag_status") | < 50 ms   | $(verdict "$ag_status" 50) |
| docker-compose up -d (no-op) | $(printf '%6s ms' "$dc_up") | for scale |        |
| docker-compose ps            | $(printf '%6s ms' "$dc_ps") | for scale |        |
EOF
