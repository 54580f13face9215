"""Swarm Network node (SN) start-up time and chain throughput, measured from outside the process.

Every SN here is a real sentinel, `python -m swarmlearning.sn --sentinel ...`, with mutual TLS
certificates from `generate_pki`, listening on free 127.0.0.1 ports, with a temporary data
directory. What is measured:

a. cold start: a fresh data directory (the sentinel creates the chain and deploys the
   contracts), from process spawn to the log line `Starting SWARM-API-SERVER on port: <P>`;
   `--runs` runs, min / median / max. The times at which the node logs its banner (imports
   done) and `Setting up blockchain layer ... FINISHED` (chain ready) split each start into
   phases.
b. warm restart: the same data directory again (the chain and its contracts already exist),
   spawn to readiness, after a clean SIGTERM stop; `--runs` runs.
c. restart after `kill -9`: a sentinel that has written the throughput transactions below (at
   least `--tx` chain transactions) is killed with SIGKILL, then started again on the same data
   directory; spawn to readiness, and a check that every contract written before the kill is
   still there. The same data directory is then stopped cleanly and started once more, which
   separates what the crash costs from what the amount of data costs.
d. throughput through the REST API (HTTPS, mutual TLS): `--tx` sequential POST /v1/contracts
   from one client (each one chain transaction), the same number from 4 concurrent client
   threads, and `--reads` GET /v1/tasks (answered from the SN's event-fed cache) from one
   client and from 4 threads.
e. the import floor: a bare `python -c "import web3"` interpreter, spawn to exit, `--runs` runs,
   and the ratio of the median SN start to it.

Run: .venv/bin/python bench/sn_start.py [--runs N] [--tx N] [--reads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import free_port, stop_process

from swarmlearning.identity.pki import PkiLayout, generate_pki
from swarmlearning.identity.tls import Identity, client_context
from swarmlearning.sn import routes

READY_MARK = "Starting SWARM-API-SERVER on port:"
BANNER_MARK = "## SWARM LEARNING SN NODE ##"
CHAIN_MARK = "Setting up blockchain layer for the swarm node: FINISHED"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
HPE_START_S = (60.0, 180.0)  # HPE's FAQ: "a few minutes", read here as 1 to 3
THREADS = 4
# The SN's liveness transaction runs every 10 s by default; the benchmark moves it out of the way
# so that every transaction measured is one the benchmark sent (--sn-heartbeat to change).
SN_HEARTBEAT_S = 3600.0


@dataclass
class Sentinel:
    """One sentinel SN process and what its stderr said, stamped as it arrived."""

    pki: PkiLayout
    data_dir: Path
    heartbeat: float = SN_HEARTBEAT_S
    api_port: int = field(default_factory=free_port)
    p2p_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "swarmlearning.sn", "--sentinel",
                "--cert", str(self.pki.cert("sn")), "--key", str(self.pki.key("sn")),
                "--capath", str(self.pki.capath), "--data-dir", str(self.data_dir),
                "--host-ip", "127.0.0.1", "--sn-api-port", str(self.api_port),
                "--sn-p2p-port", str(self.p2p_port), "--heartbeat", f"{self.heartbeat:g}"]

    def start(self) -> float:
        """Spawn the SN and wait for its readiness line; return seconds from spawn to it."""
        env = dict(os.environ, SWARM_LOG_LEVEL="INFO", SWARM_LOG_FORMAT="text")
        self.marks.clear()
        self._ready.clear()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=self.data_dir.parent)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {self.proc.returncode}" if self.proc.poll() is not None
                       else f"not ready after {READY_TIMEOUT_S:g} s")
                self.stop()
                raise RuntimeError(f"SN {why}; last log lines:\n" + "\n".join(self.tail))
        return self.marks["ready"]

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:  # drains until EOF so the SN never blocks on a full pipe
            now = time.perf_counter() - self.started
            self.tail.append(line.rstrip("\n"))
            for key, mark in (("banner", BANNER_MARK), ("chain", CHAIN_MARK),
                              ("ready", READY_MARK)):
                if key not in self.marks and mark in line:
                    self.marks[key] = now
                    if key == "ready":
                        self._ready.set()

    def stop(self) -> float:
        """Clean stop: SIGTERM, then SIGKILL after a timeout; seconds until it exited."""
        t0 = time.perf_counter()
        if self.proc is not None:
            stop_process(self.proc, STOP_TIMEOUT_S)
            self._join_reader()
        return time.perf_counter() - t0

    def kill9(self) -> None:
        """Crash stop: SIGKILL at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_S)
            self._reader = None

    def client(self) -> httpx.Client:
        ctx = client_context(Identity(cert=self.pki.cert("swci"), key=self.pki.key("swci"),
                                      capath=self.pki.capath))
        return httpx.Client(base_url=f"https://127.0.0.1:{self.api_port}", verify=ctx,
                            timeout=30.0)


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values)}


def time_spawn(argv: list[str], runs: int) -> list[float]:
    """Seconds from spawn to exit of `argv`, `runs` times (each bounded by a timeout)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=60)
        finally:
            stop_process(proc, STOP_TIMEOUT_S)
        times.append(time.perf_counter() - t0)
        if code != 0:
            raise RuntimeError(f"{argv} exited with {code}")
    return times


def _check(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url} -> "
                           f"{response.status_code}: {response.text[:300]}")


def write_contracts(sn: Sentinel, names: list[str]) -> list[float]:
    """POST /v1/contracts for each name over one client; per-request latencies in seconds."""
    latencies = []
    with sn.client() as http:
        for name in names:
            t0 = time.perf_counter()
            response = http.post(routes.CREATE_CONTRACT.path, json={"name": name})
            latencies.append(time.perf_counter() - t0)
            _check(response, 201)
    return latencies


def read_tasks(sn: Sentinel, count: int) -> list[float]:
    """GET /v1/tasks `count` times over one client; per-request latencies in seconds."""
    latencies = []
    with sn.client() as http:
        for _ in range(count):
            t0 = time.perf_counter()
            response = http.get(routes.TASKS.path)
            latencies.append(time.perf_counter() - t0)
            _check(response, 200)
    return latencies


def rate(work: Callable[[list[Any]], list[float]], items: list[Any], threads: int,
         ) -> dict[str, float]:
    """Run `work` over `items` split across `threads` clients; operations per second."""
    chunks = [items[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        latencies = [lat for part in pool.map(work, chunks) for lat in part]
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"ops": len(items), "threads": threads, "wall_s": wall,
            "per_s": len(items) / wall, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p95_ms": 1000 * latencies[int(len(latencies) * 0.95) - 1]}


def bench_starts(pki: PkiLayout, work: Path, runs: int, heartbeat: float) -> dict[str, Any]:
    """(a) cold starts on fresh data directories, (b) warm restarts on the same ones."""
    cold, warm, stops = [], [], []
    for i in range(runs):
        sn = Sentinel(pki, work / f"start-{i}", heartbeat=heartbeat)
        try:
            sn.start()
            cold.append(dict(sn.marks))
            stops.append(sn.stop())
            sn.start()
            warm.append(dict(sn.marks))
            stops.append(sn.stop())
        finally:
            sn.stop()
    return {"cold": cold, "warm": warm, "stop": stops}


def bench_throughput(pki: PkiLayout, work: Path, tx: int, reads: int,
                     heartbeat: float) -> dict[str, Any]:
    """(d) write and read rates, then (c) kill -9 and restart on the same data directory."""
    sn = Sentinel(pki, work / "throughput", heartbeat=heartbeat)
    result: dict[str, Any] = {}
    try:
        sn.start()
        seq = [f"seq-{i}" for i in range(tx)]
        par = [f"par-{i}" for i in range(tx)]
        result["write_1"] = rate(lambda names: write_contracts(sn, names), seq, 1)
        result["write_4"] = rate(lambda names: write_contracts(sn, names), par, THREADS)
        result["read_1"] = rate(lambda n: read_tasks(sn, len(n)), list(range(reads)), 1)
        result["read_4"] = rate(lambda n: read_tasks(sn, len(n)), list(range(reads)), THREADS)
        sn.kill9()
        sn.start()
        result["after_kill9"] = dict(sn.marks)
        with sn.client() as http:
            response = http.get(routes.CONTRACTS.path)
            _check(response, 200)
            kept = {row["NAME"] for row in response.json()}
        missing = sorted(set(seq + par) - kept)
        result["after_kill9"]["transactions_before_kill"] = 2 * tx
        result["after_kill9"]["contracts_missing"] = len(missing)
        if missing:
            raise RuntimeError(f"{len(missing)} contracts lost by kill -9, e.g. {missing[:5]}")
        sn.stop()
        sn.start()  # the same data again after a clean stop: separates the crash from the size
        result["after_clean_stop"] = dict(sn.marks)
    finally:
        sn.stop()
    return result


def _phases(marks: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: summary([m[key] for m in marks]) for key in ("banner", "chain", "ready")}


def run(runs: int, tx: int, reads: int, heartbeat: float = SN_HEARTBEAT_S) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sn-bench-") as tmp:
        work = Path(tmp)
        pki = generate_pki(work / "pki", "bench", 1)
        floor = time_spawn([sys.executable, "-c", "import web3"], runs)
        bare = time_spawn([sys.executable, "-c", "pass"], runs)
        starts = bench_starts(pki, work, runs, heartbeat)
        through = bench_throughput(pki, work, tx, reads, heartbeat)
    cold, warm = _phases(starts["cold"]), _phases(starts["warm"])
    floor_median = statistics.median(floor)
    cold_median = cold["ready"]["median"]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "loadavg_1m_before_after": [load_before[0], os.getloadavg()[0]]},
        "settings": {"runs": runs, "tx": tx, "reads": reads, "threads": THREADS,
                     "sn_heartbeat_s": heartbeat},
        "python_bare": summary(bare),
        "import_web3": summary(floor),
        "cold_start": cold,
        "warm_restart": warm,
        "clean_stop": summary(starts["stop"]),
        "restart_after_kill9": through.pop("after_kill9"),
        "restart_same_data_clean": through.pop("after_clean_stop"),
        "throughput": through,
        "ratios": {
            "cold_over_import_floor": cold_median / floor_median,
            "warm_over_import_floor": warm["ready"]["median"] / floor_median,
            "hpe_over_cold": [HPE_START_S[0] / cold_median, HPE_START_S[1] / cold_median],
        },
    }


def report(res: dict[str, Any]) -> str:
    def row(label: str, s: dict[str, float]) -> str:
        return f"| {label:<44} | {s['min']:6.2f} | {s['median']:6.2f} | {s['max']:6.2f} |"

    cold, warm, k9 = res["cold_start"], res["warm_restart"], res["restart_after_kill9"]
    clean = res["restart_same_data_clean"]
    runs = res["settings"]["runs"]
    lines = [
        f"Machine: {res['machine']['cpus']} CPUs, Python {res['machine']['python']}, "
        f"{res['machine']['platform']}; 1-minute load average before/after: "
        + " / ".join(f"{x:.2f}" for x in res["machine"]["loadavg_1m_before_after"]),
        "",
        f"| {f'Start-up (seconds, {runs} runs each)':<44} |    min | median |    max |",
        "|----------------------------------------------|--------|--------|--------|",
        row('`python -c "pass"` (spawn -> exit)', res["python_bare"]),
        row('`python -c "import web3"` (import floor)', res["import_web3"]),
        row("cold start: spawn -> banner (imports done)", cold["banner"]),
        row("cold start: spawn -> chain deployed", cold["chain"]),
        row("**cold start: spawn -> API ready**", cold["ready"]),
        row("warm restart: spawn -> banner", warm["banner"]),
        row("warm restart: spawn -> chain loaded", warm["chain"]),
        row("**warm restart: spawn -> API ready**", warm["ready"]),
        row(f"clean stop: SIGTERM -> exit ({2 * runs} stops)", res["clean_stop"]),
        "",
        f"Restart after kill -9 ({k9['transactions_before_kill']} contract transactions "
        f"written before the kill): ready in {k9['ready']:.2f} s (banner {k9['banner']:.2f} s, "
        f"chain {k9['chain']:.2f} s); contracts missing afterwards: "
        f"{k9['contracts_missing']}",
        f"Restart of that data directory again after a clean stop: ready in "
        f"{clean['ready']:.2f} s (banner {clean['banner']:.2f} s, chain {clean['chain']:.2f} s)",
        "",
        "| Throughput (HTTPS, mutual TLS)           | clients |   ops | ops/s | p50 ms | p95 ms |",
        "|------------------------------------------|---------|-------|-------|--------|--------|",
    ]
    labels = {"write_1": "POST /v1/contracts (1 transaction each)",
              "write_4": "POST /v1/contracts (1 transaction each)",
              "read_1": "GET /v1/tasks (SN cache)", "read_4": "GET /v1/tasks (SN cache)"}
    for key, label in labels.items():
        t = res["throughput"][key]
        lines.append(f"| {label:<40} | {t['threads']:7d} | {t['ops']:5d} | {t['per_s']:5.0f} "
                     f"| {t['p50_ms']:6.1f} | {t['p95_ms']:6.1f} |")
    ratios = res["ratios"]
    lines += [
        "",
        f"Cold start / import floor: {ratios['cold_over_import_floor']:.2f}x; "
        f"warm restart / import floor: {ratios['warm_over_import_floor']:.2f}x",
        f"HPE's documented 'a few minutes' (read as 1 to 3) / our median cold start: "
        f"{ratios['hpe_over_cold'][0]:.0f}x to {ratios['hpe_over_cold'][1]:.0f}x",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups per kind (default 5)")
    parser.add_argument("--tx", type=int, default=200,
                        help="contract transactions per write test (default 200)")
    parser.add_argument("--reads", type=int, default=500,
                        help="GET /v1/tasks requests per read test (default 500)")
    parser.add_argument("--sn-heartbeat", type=float, default=SN_HEARTBEAT_S, metavar="S",
                        help="the SNs' --heartbeat (default %(default)g: no liveness "
                             "transaction during the run)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    if min(args.runs, args.tx, args.reads) < 1:
        parser.error("--runs, --tx and --reads must be at least 1")
    t0 = time.perf_counter()
    res = run(args.runs, args.tx, args.reads, args.sn_heartbeat)
    res["total_s"] = time.perf_counter() - t0
    print(report(res))
    print(f"\nTotal benchmark time: {res['total_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
