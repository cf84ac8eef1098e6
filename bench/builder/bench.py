#!/usr/bin/env python3
"""Queue latency and worker overhead of `appgear builder` (see docs/benchmarks.md).

Not a test: it starts a private redis-server, `appgear builder serve` and one
`appgear builder run --loop` worker (process executor) on 127.0.0.1, submits builds of a
trivial recipe (`true`) over the HTTP API and prints a table. Every time it reports comes
from the build's own record (submitted_ms, started_ms, finished_ms, written by serve and the
worker on one machine, so one clock), except the client-side end-to-end column.

Two runs:
  sequential  one build at a time: an idle worker, blocked in XREADGROUP, takes each new
              build. This is the queue latency a build sees when a worker is free.
  burst       N builds submitted at once to the one worker: throughput, and how the wait
              grows behind a busy worker (the case KEDA's accurate strategy scales out for).

The recipe is `true` and the target's output_dir is an absolute folder holding one 1-byte
file, so each build succeeds and the worker still lists, hashes and stores one artifact,
the gzip log, SHA256SUMS and manifest.json (into a folder store). "Worker overhead" is the
time from a worker taking a build to its recorded end, minus running `true` directly.

Only the Python standard library is used.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "bench-token"
WS = "bench"
TARGET = "noop"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"bench: {what} did not come up in {timeout:.0f} s")


class Api:
    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def submit(self):
        return self.call("POST", "/v1/builds", {"target": TARGET})["id"]

    def status(self, build):
        return self.call("GET", f"/v1/builds/{build}")


FINAL = {"succeeded", "failed", "error", "timed_out", "cancelled", "expired"}


def wait_end(api, build, poll):
    while True:
        b = api.status(build)
        if b["state"] in FINAL:
            return b
        time.sleep(poll)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def row(name, xs):
    return f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 95):.1f} | {max(xs):.1f} |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", type=int, default=200, help="builds per run (default 200)")
    ap.add_argument("--poll", type=float, default=0.005, help="status poll interval, s")
    ap.add_argument("--appgear", default=os.environ.get("APPGEAR_BIN", "target/release/appgear"))
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    a = ap.parse_args()
    if a.builds < 1:
        sys.exit("bench: --builds must be at least 1")
    for tool in ("redis-server", "true"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is required")
    if not os.access(a.appgear, os.X_OK):
        sys.exit(f"bench: no appgear binary at {a.appgear}; build it or pass --appgear")

    scratch = tempfile.mkdtemp(prefix="appgear-builder-bench-")
    procs = []
    try:
        out = os.path.join(scratch, "out")
        os.makedirs(out)
        with open(os.path.join(out, "a.txt"), "w") as f:
            f.write("x")
        cfg = os.path.join(scratch, "builder.yaml")
        digest = "0" * 64
        with open(cfg, "w") as f:
            f.write(
                f"""targets:
  {TARGET}:
    image: sha256:{digest}
    command: ["true"]
    output_dir: {out}
    artifacts: ["a.txt"]
    timeout: 1m
    cpus: 1
    memory: 64Mi
api_tokens:
  - name: bench
    sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}
    scopes: [submit, read]
"""
            )
        rport, aport = free_port(), free_port()
        procs.append(
            subprocess.Popen(
                ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        wait_until("redis-server", lambda: socket.create_connection(("127.0.0.1", rport), 1).close() or True)
        env = dict(
            os.environ,
            BUILDER_CONFIG=cfg,
            BUILDER_WORKSPACE_ID=WS,
            REDIS_URL=f"redis://127.0.0.1:{rport}/",
            BUILDER_STORE_DIR=os.path.join(scratch, "store"),
        )
        log = open(os.path.join(scratch, "processes.log"), "w")
        procs.append(
            subprocess.Popen([a.appgear, "builder", "serve", "--listen", f"127.0.0.1:{aport}"],
                             env=env, stdout=log, stderr=log)
        )
        url = f"http://127.0.0.1:{aport}"
        wait_until("builder serve", lambda: urllib.request.urlopen(url + "/readyz", timeout=1).status == 200)
        procs.append(
            subprocess.Popen([a.appgear, "builder", "run", "--loop", "--target", TARGET,
                              "--work-dir", os.path.join(scratch, "work")],
                             env=env, stdout=log, stderr=log)
        )
        api = Api(url)

        # Warm-up: the worker's first claim creates its consumer; page cache, connections.
        for _ in range(3):
            wait_end(api, api.submit(), a.poll)

        # Sequential: one build at a time, the worker idle when each arrives.
        wait, e2e, client_e2e, run = [], [], [], []
        states = {}
        for _ in range(a.builds):
            t0 = time.time()
            b = wait_end(api, api.submit(), a.poll)
            t1 = time.time()
            states[b["state"]] = states.get(b["state"], 0) + 1
            wait.append(b["started_ms"] - b["submitted_ms"])
            e2e.append(b["finished_ms"] - b["submitted_ms"])
            run.append(b["finished_ms"] - b["started_ms"])
            client_e2e.append((t1 - t0) * 1000.0)

        # The recipe run directly, the way the process executor starts it (no shell).
        direct = []
        for _ in range(a.builds):
            t0 = time.perf_counter()
            subprocess.run(["true"], check=True)
            direct.append((time.perf_counter() - t0) * 1000.0)
        direct_p50 = pct(direct, 50)
        overhead = [r - direct_p50 for r in run]

        # Burst: every build submitted at once to the one worker.
        t0 = time.time()
        ids = [api.submit() for _ in range(a.builds)]
        submitted = time.time()
        ends = [wait_end(api, i, 0.05) for i in ids]
        last_end = max(b["finished_ms"] for b in ends)
        first_sub = min(b["submitted_ms"] for b in ends)
        burst_wait = [b["started_ms"] - b["submitted_ms"] for b in ends]
        burst_run = [b["finished_ms"] - b["started_ms"] for b in ends]
        for b in ends:
            states[b["state"]] = states.get(b["state"], 0) + 1
        span_s = (last_end - first_sub) / 1000.0

        metrics = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()

        print(f"appgear builder: {a.builds} builds per run, recipe `true`, one `run --loop` worker,"
              f" process executor, folder store; {os.cpu_count()} CPUs")
        print(f"binary: {a.appgear}")
        print(f"end states: {json.dumps(states, sort_keys=True)}")
        print()
        print("| sequential (idle worker), ms | p50 | p95 | max |")
        print("|---|---|---|---|")
        print(row("queue latency: submit → running", wait))
        print(row("end to end: submit → ended (build record)", e2e))
        print(row("end to end as the client sees it (POST → poll sees the end)", client_e2e))
        print(row("worker: running → ended", run))
        print(row("recipe `true` run directly", direct))
        print(row("worker overhead per build (running → ended minus `true` p50)", overhead))
        print()
        print(f"| burst: {a.builds} builds at once, ms | p50 | p95 | max |")
        print("|---|---|---|---|")
        print(row("queue latency: submit → running (behind the busy worker)", burst_wait))
        print(row("worker: running → ended", burst_run))
        print()
        print(f"burst: {a.builds} submits took {(submitted - t0) * 1000.0:.0f} ms; first submit → last end "
              f"{span_s:.2f} s = {a.builds / span_s:.1f} builds/s for one worker")
        # The counters serve exported for the same builds (a cross-check of the metrics).
        for line in metrics.splitlines():
            counted = ("builder_queue_wait_seconds_count", "builder_jobs_ended_total")
            if line.startswith(counted) and not line.endswith(" 0"):
                print(f"/metrics: {line}")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if a.keep:
            print(f"scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
