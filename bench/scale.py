"""How many SL nodes one SN serves on this machine: N real SL daemons on one sentinel SN, each
driven by an in-process ML client over the real local channel, with a small model.

For each N of `--peers` (default 16,32,64), a fresh workspace on a temporary directory gets a
throwaway PKI, a sentinel SN and N SL daemons on 127.0.0.1 (mutual TLS everywhere), started
`--start-workers` at a time. Then N ML clients (threads speaking the real channel, as in
bench/sync_round.py) open a session each on a fresh training contract with minPeers N, do the
initial sync, `--rounds` train syncs with random float32 weights of `--params` parameters
(4 tensors), and close (checkinModelOnTrainEnd inactive). What is measured:

- start: seconds until all N SLs logged their readiness line (wall), and each SL's own start;
- the initial sync (round 0): first `open` sent -> last peer holds the common start model;
- each train round: from the first peer sending its weights to the last peer holding the merged
  model (the peers wait at a barrier between rounds, so every round starts with all N); round
  median and p95, and sync rounds per minute = rounds / (first send -> last merged model);
- the SN API under that load: a probe thread, one mutual-TLS client with keep-alive like an SL,
  sends at `--probe-hz` requests per second, alternating `GET /v1/tasks` (answered from the SN's
  cache) and `GET /v1/contracts/<c>/rounds/current` (the round status the SLs long-poll, without
  `wait`); p50 / p95 / p99 latencies while the N SLs are idle (`--idle-probe` seconds, before
  the sessions open) and during the train rounds;
- memory and CPU: VmRSS / VmHWM from /proc/<pid>/status of the SN and of every SL (idle after
  start, and after the rounds), and the CPU seconds (utime + stime) the SN and the SLs used
  during the ML phase.

If a case fails (a peer's request refused or timed out, a round not completing), the error of
every peer, how many rounds each completed, and the most frequent warning and error lines of the
SN and SL logs are reported (`--keep DIR` keeps the workspaces for reading).

One piece: a benchmark is one experiment run from one file (setup, load, probe, report), so that
its whole procedure reads in one place and runs without the rest of bench/.

Every process is stopped by pid (Workspace.stop) in finally blocks; every wait is bounded.
Defaults take 3 to 4.5 minutes on 2 cores shared with other work (the 64-peer case is 1.5 to
3.5 minutes of it); the SLs need about 64 MiB RSS each. A memory check skips an N that would
not fit in MemAvailable.

Run: .venv/bin/python bench/scale.py [--peers 16,32,64] [--rounds 3] [--params 10000]
         [--start-workers 4] [--probe-hz 10] [--json bench/results/scale.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import (
    ROOT,
    create_contract,
    describe,
    free_port,
    machine,
    percentile,
    summary,
    table,
    write_json,
)

from swarmlearning.identity.tls import client_context
from swarmlearning.ml.channel import ChannelClient
from swarmlearning.nodes.workspace import NodeRecord, Workspace
from swarmlearning.sn import routes
from swarmlearning.weights import to_bytes

START_TIMEOUT_S = 300.0
STOP_GRACE_S = 10.0
PROBE_TIMEOUT_S = 30.0
RSS_PER_SL_GUESS = 110 << 20  # for the memory check only; the measured figure is reported
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in bytes, from /proc/<pid>/status ({} if gone)."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return found


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def code_version() -> dict[str, Any]:
    """The commit measured, and the runtime files that differ from it (work in progress)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    changed = git("status", "--porcelain", "--", "runtime", "swci").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": [line[3:] for line in changed]}


def mem_available() -> int:
    """MemAvailable from /proc/meminfo in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def model(params: int, seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights of `params` parameters in 4 tensors."""
    rng = np.random.default_rng(seed)
    sizes = [params // 2, params // 4, params // 8]
    sizes.append(params - sum(sizes))
    return {f"layer{i}": rng.standard_normal(n, dtype=np.float32) for i, n in enumerate(sizes)}


class Probe(threading.Thread):
    """Requests to the SN at a fixed rate, alternating two GET endpoints; each sample is
    (start time, endpoint, seconds, HTTP status or 0 for a transport error)."""

    def __init__(self, workspace: Workspace, sn: NodeRecord, contract: str, hz: float) -> None:
        super().__init__(daemon=True, name="sn-probe")
        self.base = f"https://{sn.host}:{sn.ports['api']}"
        self.context = client_context(workspace.identity("swci"))
        self.paths = {"tasks": routes.TASKS.path,
                      "round": routes.ROUND.url(name=contract, round="current")}
        self.interval = 1.0 / hz
        self.samples: list[tuple[float, str, float, int]] = []
        self.late = 0
        self._halt = threading.Event()

    def run(self) -> None:
        names = list(self.paths)
        with httpx.Client(base_url=self.base, verify=self.context,
                          timeout=PROBE_TIMEOUT_S) as http:
            slot = time.perf_counter()
            count = 0
            while not self._halt.is_set():
                name = names[count % len(names)]
                count += 1
                t0 = time.perf_counter()
                try:
                    status = http.get(self.paths[name]).status_code
                except httpx.HTTPError:
                    status = 0
                self.samples.append((t0, name, time.perf_counter() - t0, status))
                slot += self.interval
                pause = slot - time.perf_counter()
                if pause < 0:
                    self.late += 1
                    slot = time.perf_counter()
                elif self._halt.wait(pause):
                    break

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=PROBE_TIMEOUT_S + 5)

    def latencies(self, start: float, end: float) -> dict[str, dict[str, float]]:
        """Percentiles per endpoint of the requests sent between `start` and `end`."""
        result = {}
        for name in self.paths:
            chosen = [s for s in self.samples if s[1] == name and start <= s[0] < end]
            values = [s[2] for s in chosen]
            if values:
                result[name] = {"n": len(values), "errors": sum(s[3] != 200 for s in chosen),
                                "p50_ms": 1000 * percentile(values, 50),
                                "p95_ms": 1000 * percentile(values, 95),
                                "p99_ms": 1000 * percentile(values, 99),
                                "max_ms": 1000 * max(values)}
        return result


def start_sls(workspace: Workspace, names: list[str], workers: int) -> dict[str, Any]:
    """Start the SLs `workers` at a time; wall seconds for all, and each one's own seconds."""
    own: dict[str, float] = {}
    failures: dict[str, str] = {}

    def one(name: str) -> None:
        t0 = time.perf_counter()
        try:
            workspace.start_sl(name, fs_port=free_port(), timeout=START_TIMEOUT_S)
            own[name] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - reported with the case
            failures[name] = f"{type(exc).__name__}: {exc}"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, names))
    return {"wall_s": time.perf_counter() - t0, "each_s": summary(list(own.values())),
            "failures": failures}


def stop_nodes(workspace: Workspace, names: list[str], workers: int = 8) -> float:
    """Stop the named nodes (SIGTERM by pid, then SIGKILL), `workers` at a time; seconds."""
    t0 = time.perf_counter()

    def one(name: str) -> None:
        try:
            workspace.stop(name, keep=True, grace=STOP_GRACE_S)
        except Exception as exc:  # noqa: BLE001 - stop_all in the caller's finally retries
            print(f"    stopping {name}: {exc}", file=sys.stderr)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, names))
    return time.perf_counter() - t0


def memory_of(records: list[NodeRecord]) -> dict[str, Any]:
    """Total and per-process VmRSS / VmHWM of a group of processes (bytes)."""
    found = [proc_memory(r.pid) for r in records]
    rss = [m["VmRSS"] for m in found if "VmRSS" in m]
    hwm = [m["VmHWM"] for m in found if "VmHWM" in m]
    return {"processes": len(rss), "rss_total": sum(rss), "rss_each": summary(rss),
            "hwm_total": sum(hwm), "hwm_each": summary(hwm)}


_NOISE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{12,}|\d+(\.\d+)?")


def log_digest(paths: list[Path], top: int = 6) -> list[tuple[str, int]]:
    """The most frequent WARNING / ERROR / Traceback lines of some logs, numbers and ids
    masked, with their counts."""
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if "WARNING" in line or "ERROR" in line or "Traceback" in line \
                    or "Error:" in line:
                body = line.split(" : ", 2)[-1] if " : " in line else line
                counts[_NOISE.sub("#", body.strip())[:220]] += 1
    return counts.most_common(top)


def run_ml(workspace: Workspace, names: list[str], contract: str, params: int, rounds: int,
           timeout: float) -> dict[str, Any]:
    """The N ML clients: open, initial sync, `rounds` train syncs, close. Timestamps and the
    errors of every peer."""
    peers = len(names)
    blobs = [to_bytes(model(params, seed)) for seed in range(peers)]
    opened = [0.0] * peers
    init_got = [0.0] * peers
    sent_at = [[0.0] * rounds for _ in range(peers)]
    got_at = [[0.0] * rounds for _ in range(peers)]
    closed = [0.0] * peers
    done = [0] * peers
    errors: dict[int, str] = {}
    barrier = threading.Barrier(peers)

    def ml(index: int) -> None:
        step = "connect"
        try:
            client = ChannelClient(str(workspace.root / "data" / names[index] / "channel.sock"))
            client.sock.settimeout(timeout)
            try:
                step = "open"
                opened[index] = time.perf_counter()
                client.request("open", params={"syncFrequency": 1, "minPeers": peers,
                                               "trainingContract": contract,
                                               "checkinModelOnTrainEnd": "inactive"})
                step = "initial sync"
                client.request("sync", blobs[index], kind="init", completed_epochs=0)
                init_got[index] = time.perf_counter()
                for number in range(rounds):
                    step = f"barrier before round {number + 1}"
                    barrier.wait(timeout=timeout)
                    step = f"train sync {number + 1}"
                    sent_at[index][number] = time.perf_counter()
                    client.request("sync", blobs[index], kind="train", completed_epochs=number)
                    got_at[index][number] = time.perf_counter()
                    done[index] = number + 1
                step = "close"
                client.request("close", blobs[index], mode="inactive",
                               completed_epochs=rounds)
                closed[index] = time.perf_counter()
            finally:
                client.close()
        except BaseException as exc:  # noqa: BLE001 - reported after the threads end
            errors[index] = f"{step}: {type(exc).__name__}: {exc}"
            barrier.abort()

    threads = [threading.Thread(target=ml, args=(i,), daemon=True) for i in range(peers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout * (rounds + 3)
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [names[i] for i, t in enumerate(threads) if t.is_alive()]
    round_s = [max(got_at[i][r] for i in range(peers)) - min(sent_at[i][r] for i in range(peers))
               for r in range(rounds) if all(got_at[i][r] for i in range(peers))]
    # first -> last peer holding the merged model: the leader has it first, the followers
    # fetch it from the leader (or any peer that has it)
    spread_s = [max(got_at[i][r] for i in range(peers)) - min(got_at[i][r] for i in range(peers))
                for r in range(len(round_s))]
    result: dict[str, Any] = {
        "model_bytes": len(blobs[0]), "rounds_completed": len(round_s), "round_s": round_s,
        "spread_s": spread_s, "errors": {names[i]: e for i, e in sorted(errors.items())},
        "hung": hung, "rounds_done_per_peer": dict(zip(names, done, strict=True))}
    result["windows"] = {"ml": (min(opened), time.perf_counter())}
    if all(init_got):
        result["init_sync_s"] = max(init_got) - min(opened)
        result["windows"]["init"] = (min(opened), max(init_got))
    if round_s and len(round_s) == rounds:
        wall = max(got_at[i][-1] for i in range(peers)) - min(sent_at[i][0]
                                                              for i in range(peers))
        result["rounds_wall_s"] = wall
        result["rounds_per_min"] = 60.0 * rounds / wall
        result["windows"]["rounds"] = (min(sent_at[i][0] for i in range(peers)),
                                       max(got_at[i][-1] for i in range(peers)))
    if all(closed):
        result["close_s"] = max(closed) - max(got_at[i][-1] for i in range(peers))
    return result


def run_case(root: Path, peers: int, args: argparse.Namespace) -> dict[str, Any]:
    """One N: a fresh workspace, its SN, N SLs, the ML phase, and the measurements."""
    case: dict[str, Any] = {"peers": peers, "params": args.params, "rounds": args.rounds}
    need = peers * RSS_PER_SL_GUESS + (1 << 30)
    if mem_available() < need:
        case["skipped"] = (f"MemAvailable {mem_available() / 2**30:.1f} GiB < the "
                           f"{need / 2**30:.1f} GiB this case may need")
        return case
    workspace = Workspace(root / f"ws{peers}")
    names = [f"sl{i:02d}" for i in range(peers)]
    probe: Probe | None = None
    try:
        sn = workspace.start_sn("sn1", sentinel=True, api_port=free_port(),
                                p2p_port=free_port(), timeout=120)
        case["start"] = start_sls(workspace, names, args.start_workers)
        if case["start"]["failures"]:
            raise RuntimeError(f"{len(case['start']['failures'])} SL(s) did not start")
        sls = [r for r in workspace.records() if r.kind == "sl"]
        contract = f"scale-{peers}-{int(time.time() * 1000)}"
        create_contract(workspace, contract)
        time.sleep(1.0)  # past the start-up burst before the idle probe
        case["memory_idle"] = {"sn": memory_of([sn]), "sl": memory_of(sls)}
        probe = Probe(workspace, sn, contract, args.probe_hz)
        probe.start()
        idle_from = time.perf_counter()
        time.sleep(args.idle_probe)
        cpu0 = {"sn": proc_cpu_seconds(sn.pid), "sl": sum(proc_cpu_seconds(r.pid) for r in sls)}
        t0 = time.perf_counter()
        case["ml"] = run_ml(workspace, names, contract, args.params, args.rounds,
                            args.timeout)
        ml_wall = time.perf_counter() - t0
        case["cpu"] = {"ml_wall_s": ml_wall,
                       "sn_s": proc_cpu_seconds(sn.pid) - cpu0["sn"],
                       "sl_s": sum(proc_cpu_seconds(r.pid) for r in sls) - cpu0["sl"]}
        case["memory_after"] = {"sn": memory_of([sn]), "sl": memory_of(sls)}
        probe.stop()
        windows = {"idle": (idle_from, t0), **case["ml"].pop("windows")}
        case["probe"] = {phase: probe.latencies(*span) for phase, span in windows.items()}
        case["probe_late_slots"] = probe.late
        case["ok"] = not case["ml"]["errors"] and not case["ml"]["hung"] \
            and case["ml"]["rounds_completed"] == args.rounds
    except Exception as exc:  # noqa: BLE001 - one N failing is a result, not the end
        case["ok"] = False
        case["failure"] = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            if probe is not None and probe.is_alive():
                probe.stop()
            running = [n for n in names
                       if (r := workspace.record(n)) is not None and r.running()]
            case["stop_sls_s"] = stop_nodes(workspace, running)
        finally:  # whatever happened above, every node of the workspace is stopped by pid
            workspace.stop_all(keep=True, grace=STOP_GRACE_S)
    if not case.get("ok"):
        logs = workspace.root / "logs"
        case["sl_log_digest"] = log_digest(sorted(logs.glob("sl*.log")))
        case["sn_log_digest"] = log_digest([logs / "sn1.log"])
    return case


def report(cases: list[dict[str, Any]]) -> str:
    mib = 2**20
    rows, probe_rows, memory_rows = [], [], []
    for c in cases:
        if "skipped" in c:
            rows.append([c["peers"], "skipped: " + c["skipped"]] + [None] * 8)
            continue
        ml, start = c.get("ml", {}), c.get("start", {})
        rounds = summary(ml.get("round_s", []))
        spread = summary(ml.get("spread_s", []))
        rows.append([c["peers"], "yes" if c.get("ok") else "NO", start.get("wall_s"),
                     start.get("each_s", {}).get("median"), ml.get("init_sync_s"),
                     rounds.get("median"), rounds.get("p95"), spread.get("median"),
                     ml.get("rounds_per_min"),
                     f"{ml.get('rounds_completed', 0)}/{c['rounds']}"])
        for phase in ("idle", "rounds" if "rounds" in c.get("probe", {}) else "ml"):
            for endpoint, lat in c.get("probe", {}).get(phase, {}).items():
                probe_rows.append([c["peers"], phase, endpoint, lat["n"], lat["errors"],
                                   lat["p50_ms"], lat["p95_ms"], lat["p99_ms"], lat["max_ms"]])
        idle, after, cpu = c.get("memory_idle"), c.get("memory_after"), c.get("cpu")
        if idle:
            sl_after = (after or {}).get("sl", {})
            memory_rows.append([
                c["peers"], idle["sn"]["rss_total"] / mib,
                (after or idle)["sn"]["hwm_total"] / mib,
                idle["sl"]["rss_each"].get("median", 0) / mib,
                sl_after.get("hwm_each", {}).get("max", 0) / mib,
                idle["sl"]["rss_total"] / mib, sl_after.get("rss_total", 0) / mib,
                cpu and cpu["sn_s"], cpu and 100 * cpu["sn_s"] / cpu["ml_wall_s"],
                cpu and cpu["sl_s"], cpu and cpu["ml_wall_s"]])
    lines = [table(["SLs", "rounds ok", "start all s", "start each s (median)", "init sync s",
                    "round s median", "round s p95", "first->last peer s", "rounds/min",
                    "rounds done"], rows),
             "",
             "SN API latency, probe at a fixed rate (ms):",
             table(["SLs", "phase", "endpoint", "n", "errors", "p50", "p95", "p99", "max"],
                   probe_rows),
             "",
             "Memory (MiB) and CPU seconds during the ML phase:",
             table(["SLs", "SN RSS idle", "SN peak", "SL RSS each (median, idle)",
                    "SL peak (max)", "SLs RSS total idle", "SLs RSS total after",
                    "SN cpu s", "SN cpu % of a core", "SLs cpu s", "ML phase wall s"],
                   memory_rows)]
    for c in cases:
        if c.get("ok") or "skipped" in c:
            continue
        lines += ["", f"{c['peers']} SLs FAILED: {c.get('failure', '')}"]
        ml = c.get("ml", {})
        for name, error in list(ml.get("errors", {}).items())[:8]:
            lines.append(f"  {name}: {error[:300]}")
        if ml.get("hung"):
            lines.append(f"  still waiting at the deadline: {', '.join(ml['hung'][:10])}")
        for label in ("sn_log_digest", "sl_log_digest"):
            lines.append(f"  {label}:")
            lines += [f"    {count:5d} x {line}" for line, count in c.get(label, [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="16,32,64", help="SL counts (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="train syncs after the initial sync (default %(default)s)")
    parser.add_argument("--params", type=int, default=10_000,
                        help="float32 parameters of the model (default %(default)s)")
    parser.add_argument("--start-workers", type=int, default=4,
                        help="SLs started at the same time (default %(default)s)")
    parser.add_argument("--probe-hz", type=float, default=10.0,
                        help="SN probe requests per second (default %(default)s)")
    parser.add_argument("--idle-probe", type=float, default=5.0, metavar="S",
                        help="seconds of probing with the SLs idle (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="bound on each ML request and barrier (default %(default)s)")
    parser.add_argument("--quorum-wait", type=float, default=30.0, metavar="S",
                        help="SL_WAIT_FOR_FULL_QUORUM_SECONDS for the SLs (default %(default)s)")
    parser.add_argument("--keep", metavar="DIR",
                        help="put the workspaces (logs, data) under DIR and keep them")
    parser.add_argument("--json", default=None,
                        help="result file (default bench/results/scale.json)")
    args = parser.parse_args(argv)
    peer_counts = [int(p) for p in args.peers.split(",")]
    if min(peer_counts) < 2 or args.rounds < 1 or args.probe_hz <= 0:
        parser.error("--peers must be at least 2, --rounds at least 1, --probe-hz positive")
    os.environ["SL_WAIT_FOR_FULL_QUORUM_SECONDS"] = f"{args.quorum_wait:g}"
    info = machine()
    version = code_version()
    print(f"{describe(info)}; load {os.getloadavg()[0]:.1f}; code {version['commit']}"
          f"{' + uncommitted runtime changes' if version['uncommitted'] else ''}", flush=True)
    load_before = os.getloadavg()
    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="scale-"))
    root.mkdir(parents=True, exist_ok=True)
    cases = []
    t0 = time.perf_counter()
    try:
        for peers in peer_counts:
            started = time.perf_counter()
            case = run_case(root, peers, args)
            case["case_wall_s"] = time.perf_counter() - started
            cases.append(case)
            state = "skipped" if "skipped" in case else "ok" if case.get("ok") else "FAILED"
            print(f"{peers} SLs: {state} in {case['case_wall_s']:.0f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - t0
    load = {"before": load_before, "after": os.getloadavg()}
    print()
    print(report(cases))
    largest = max((c["peers"] for c in cases if c.get("ok")), default=0)
    print("\nHPE (docs/User/Frequently_asked_questions.md:180-182): \"up to 16 SLs could "
          "connect with 1 SN\" (8 Xeon CPUs, 32 GB, MNIST 100 epochs); HPE recommends up to "
          "4 SLs per SN to start.\nHere: "
          + (f"{largest} SLs on 1 SN completed every round on {info['cores']} cores "
             f"({largest / 16:.2g}x HPE's tested figure)." if largest else
             "no SL count tried completed every round."))
    print(f"Load average (1, 5, 15 min) before: {' '.join(f'{x:.1f}' for x in load_before)}; "
          f"after: {' '.join(f'{x:.1f}' for x in load['after'])}")
    print(f"Total benchmark time: {total:.0f} s")
    path = write_json("scale", {"settings": vars(args), "code": version, "load": load,
                                "total_s": total, "cases": cases}, args.json)
    print(f"results: {path}")
    return 0 if all(c.get("ok") or "skipped" in c for c in cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
