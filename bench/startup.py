"""Start-up times a user waits for: the SWCI prompt, a Swarm Network node, the whole quickstart;
and how they compare with what HPE documents for its product.

a. `swci` to its interactive prompt: `.venv/bin/swci` (as the README runs it) is spawned on a
   pseudo-terminal (stdlib `pty`; the benchmark answers prompt_toolkit's cursor-position query
   as a terminal would) and timed from spawn until the text `SWCI:0 > ` appears in its output
   (escape sequences removed); then Ctrl-D, and the exit is awaited. For reference: `swci --help`
   spawn -> exit, the `python -c "import swci"` floor and a bare `python -c pass`. `--runs` runs
   each (default 5), interleaved, min / median / max.
b. A sentinel SN, cold (a fresh data directory: the chain is created and the contracts
   deployed), from spawn to the log line `Starting SWARM-API-SERVER on port:`, with
   bench/sn_start.py's Sentinel (its banner and chain-ready marks split the start);
   `--sn-runs` runs (default 3; bench/sn_start.py measures more).
c. The whole quickstart, `swci demo --output <temporary directory>` from the repository root
   (two organisations' SNs and SWOPs, a build task, a 3-peer RUN_SWARM of the digits example,
   STOP SWARM, then the baselines: each peer alone and one central model): spawn to exit, split
   into phases by the lines the demo prints (sn1 ready, sn2 ready, both SWOPs ready, build task
   done, training done, swarm stopped, baselines done). `--demo-runs` runs (default 1, about
   2.5 minutes on 2 cores); the demo needs the fixed ports 30303, 30304, 31303 and 31304 and is
   skipped, with the reason, when one of them is taken.

Then a table of the durations HPE documents for its product (HPE's swarm-learning repository at
its HEAD, and the project's reference file hpe-swarm-surface.md), each with its source and what it
measures, next to the figure measured here; "not documented" where HPE states none. A ratio is
given only where HPE gives a number. Defaults take about 3 minutes on 2 cores (the demo is
most of it).

Every process started here is stopped by its pid (or the process group it leads) in a finally
block, every wait is bounded, and everything listens on 127.0.0.1 only.

Run: .venv/bin/python bench/startup.py [--runs 5] [--sn-runs 3] [--demo-runs 1] [--no-demo]
                                       [--json bench/results/startup.json]
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, describe, machine, stop_process, summary, table, write_json
from sn_start import Sentinel

from swarmlearning.identity.pki import generate_pki
from swarmlearning.nodes.workspace import Workspace

SWCI = ROOT / ".venv" / "bin" / "swci"
PYTHON = ROOT / ".venv" / "bin" / "python"
PROMPT = "SWCI:0 > "
CPR_QUERY = b"\x1b[6n"
CPR_ANSWER = b"\x1b[1;1R"
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
PROMPT_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 15.0
DEMO_TIMEOUT_S = 900.0
DEMO_PORTS = (30303, 30304, 31303, 31304)
# (key, what the line marks, the text that marks it, which occurrence of that text)
DEMO_MARKS = [
    ("sn1", "sentinel SN sn1 ready", "SENTINEL sn1 STARTED", 1),
    ("sn2", "SN sn2 (org2) ready", "SN sn2 STARTED", 1),
    ("swops", "both SWOPs ready", "SWOP swop2 STARTED", 1),
    ("build", "build task done", "TASKRUNNER FINISHED", 1),
    ("training", "training done (3 peers, 12 epochs)", "TASKRUNNER FINISHED", 2),
    ("stopped", "STOP SWARM done", "SN sn1 STOPPED", 1),
    ("baselines", "baselines, table, plot done", "summary:", 1),
]

# What HPE documents. `ours` names the figure measured here that answers the same question.
HPE_FIGURES: list[dict[str, Any]] = [
    {"what": "SN start: run-sn -> `Starting SWARM-API-SERVER on port`",
     "hpe": "\"It might take a few minutes before this message appears.\"",
     "seconds": None, "at_least_s": 60.0,
     "source": "docs/User/Frequently_asked_questions.md:156; reference "
               "hpe-swarm-surface.md:62 (\"may take minutes\")",
     "ours": "sn_ready"},
    {"what": "License server (APLS) install and start", "hpe": "not documented",
     "seconds": None, "source": "docs/Install/Install_the_License_Server.md (no duration)",
     "ours": None},
    {"what": "SWCI start -> prompt", "hpe": "not documented", "seconds": None,
     "source": "docs/Install/Starting_SWCI_nodes.md (no duration)", "ours": "prompt"},
    {"what": "SL node start -> ready", "hpe": "not documented", "seconds": None,
     "source": "docs/Install/Starting_Swarm_Learning_node.md (no duration)", "ours": None},
    {"what": "An example run end to end (MNIST, CIFAR-10, ...)", "hpe": "not documented",
     "seconds": None, "source": "examples/*/README.md (no durations)", "ours": "demo"},
    {"what": "Grace sleep between WAIT FOR TASKRUNNER and RESET TASKRUNNER (examples)",
     "hpe": "SLEEP 15 in every run (fraud-detection: 5 x SLEEP 30 + SLEEP 15); "
            "the quickstart here has none",
     "seconds": None, "source": "examples/mnist/swci/swci-init:52; "
                                "examples/fraud-detection/swci/swci-init:48-61",
     "ours": None},
    {"what": "WAIT FOR IP default bound (SN not up yet)",
     "hpe": "bound of 360 retries x 5 s = 30 min", "seconds": None,
     "source": "docs/User/Swarm_Learning_Command_Interface.md:89", "ours": None},
    {"what": "WAIT FOR TASKRUNNER default bound",
     "hpe": "bound of 120 min, RUN_SWARM and other tasks", "seconds": None,
     "source": "docs/Install/Environment_variables.md:28-29", "ours": None},
    {"what": "SLM-UI installer, each installation task", "hpe": "timeout of 300 s (a bound)",
     "seconds": None, "source": "docs/Install/Running_SLM-UI_Installer.md:24", "ours": None},
]


def _strip(data: bytes) -> str:
    return ANSI.sub("", data.decode("utf-8", "replace"))


def time_prompt(workspace: Path, env: dict[str, str]) -> float:
    """Spawn `swci` on a pseudo-terminal; seconds until `SWCI:0 > ` is on the screen."""
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen([str(SWCI), "--workspace", str(workspace)], stdin=slave,
                            stdout=slave, stderr=slave, cwd=ROOT, env=env,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while True:
            if time.perf_counter() - started > PROMPT_TIMEOUT_S:
                raise RuntimeError(f"no prompt after {PROMPT_TIMEOUT_S:g} s; the screen "
                                   f"showed: {_strip(seen)[-300:]!r}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    raise RuntimeError(f"swci exited with {proc.returncode} before its "
                                       f"prompt: {_strip(seen)[-300:]!r}")
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other end of the terminal is closed
                chunk = b""
            if not chunk:
                raise RuntimeError(f"swci closed its terminal before its prompt "
                                   f"(exit {proc.poll()})")
            seen += chunk
            if CPR_QUERY in chunk:
                os.write(master, CPR_ANSWER)
            if PROMPT in _strip(seen):
                took = time.perf_counter() - started
                break
        os.write(master, b"\x04")  # Ctrl-D: swci exits
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        return took
    finally:
        stop_process(proc, EXIT_TIMEOUT_S, group=True)
        os.close(master)


def time_exit(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to a successful exit of `argv`."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT, env=env,
                            start_new_session=True)
    try:
        code = proc.wait(timeout=60)
    finally:
        stop_process(proc, EXIT_TIMEOUT_S, group=True)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}")
    return time.perf_counter() - started


def bench_shell(runs: int, tmp: Path) -> dict[str, dict[str, float]]:
    """(a): the prompt, `swci --help`, `import swci` and a bare interpreter, interleaved."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40",
           "SWCI_HISTORY_FILE": str(tmp / "history")}
    cases = {"python_bare": [str(PYTHON), "-c", "pass"],
             "import_swci": [str(PYTHON), "-c", "import swci"],
             "swci_help": [str(SWCI), "--help"]}
    times: dict[str, list[float]] = {key: [] for key in [*cases, "prompt"]}
    for _ in range(runs):  # interleaved, so a burst of load spreads over every kind
        for key, argv in cases.items():
            times[key].append(time_exit(argv, env))
        times["prompt"].append(time_prompt(tmp / "ws", env))
    return {key: summary(values) for key, values in times.items()}


def bench_sn(runs: int, tmp: Path) -> dict[str, dict[str, float]]:
    """(b): cold sentinel starts, spawn -> banner / chain ready / API ready."""
    pki = generate_pki(tmp / "pki", "bench", 1)
    marks = []
    for i in range(runs):
        sn = Sentinel(pki, tmp / f"sn-{i}")
        try:
            sn.start()
            marks.append(dict(sn.marks))
        finally:
            sn.stop()
    return {key: summary([m[key] for m in marks]) for key in ("banner", "chain", "ready")}


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def run_demo(output: Path) -> dict[str, Any]:
    """(c): `swci demo --output DIR` from the repository root; spawn -> exit, and when each
    phase ended (seconds from spawn)."""
    taken = [port for port in DEMO_PORTS if _port_taken(port)]
    if taken:
        return {"skipped": f"port(s) {taken} in use (another swarm is running here)"}
    counts: dict[str, int] = {}
    marks: dict[str, float] = {}
    tail: list[str] = []
    started = time.perf_counter()
    proc = subprocess.Popen([str(SWCI), "demo", "--output", str(output)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    assert proc.stdout is not None
    code = None
    try:
        fd = proc.stdout.fileno()
        pending = b""
        while True:
            if time.perf_counter() - started > DEMO_TIMEOUT_S:
                raise RuntimeError(f"swci demo did not finish in {DEMO_TIMEOUT_S:g} s")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = time.perf_counter() - started
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                tail = [*tail[-29:], line]
                hits = {text for _, _, text, _ in DEMO_MARKS if text in line}
                for text in hits:
                    counts[text] = counts.get(text, 0) + 1
                for key, _, text, nth in DEMO_MARKS:
                    if text in hits and counts[text] == nth and key not in marks:
                        marks[key] = now
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            stop_process(proc, 60, signal.SIGINT, group=True)  # the demo stops its swarm on Ctrl-C
        proc.stdout.close()
        # whatever the demo left behind (it should leave nothing), stopped by pid
        Workspace(output / "swarm").stop_all(grace=5)
    result: dict[str, Any] = {"exit_code": code, "total_s": time.perf_counter() - started,
                              "marks": marks}
    if code != 0:
        result["tail"] = tail
    return result


def phase_rows(marks: dict[str, float], total: float) -> list[list[Any]]:
    """Rows of (phase, ends at s, took s) from the demo's marks."""
    rows, previous = [], 0.0
    for key, label, _, _ in DEMO_MARKS:
        if key in marks:
            rows.append([label, marks[key], marks[key] - previous])
            previous = marks[key]
    rows.append(["demo exited", total, total - previous])
    return rows


def hpe_rows(ours: dict[str, float | None]) -> list[list[Any]]:
    """Rows of the HPE comparison: what, HPE's figure, its source, ours, the ratio."""
    rows = []
    for item in HPE_FIGURES:
        mine = ours.get(item["ours"]) if item["ours"] else None
        ratio = None
        if mine and item.get("seconds"):
            ratio = f"{item['seconds'] / mine:.0f}x"
        elif mine and item.get("at_least_s"):
            ratio = (f">= {item['at_least_s'] / mine:.0f}x, reading 'a few minutes' as at "
                     f"least {item['at_least_s']:.0f} s")
        rows.append([item["what"], item["hpe"], item["source"],
                     f"{mine:.2f} s" if mine else "-", ratio or "-"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5,
                        help="runs of each shell measurement (default %(default)s)")
    parser.add_argument("--sn-runs", type=int, default=3,
                        help="cold SN starts (default %(default)s)")
    parser.add_argument("--demo-runs", type=int, default=1,
                        help="runs of `swci demo` (default %(default)s)")
    parser.add_argument("--no-demo", action="store_true", help="skip the quickstart")
    parser.add_argument("--json", default=None,
                        help="result file (default bench/results/startup.json)")
    args = parser.parse_args(argv)
    if min(args.runs, args.sn_runs) < 1 or args.demo_runs < 0:
        parser.error("--runs and --sn-runs must be at least 1, --demo-runs at least 0")
    if not SWCI.exists():
        parser.error(f"{SWCI} is missing: run `make` (or pip install -e .) first")
    print(f"{describe(machine())}; load {os.getloadavg()[0]:.1f}", flush=True)
    result: dict[str, Any] = {"settings": vars(args), "load_before": os.getloadavg()}
    tmp = Path(tempfile.mkdtemp(prefix="startup-"))
    t0 = time.perf_counter()
    try:
        result["shell"] = bench_shell(args.runs, tmp)
        print(f"shell: done at {time.perf_counter() - t0:.0f} s", flush=True)
        result["sn_cold"] = bench_sn(args.sn_runs, tmp)
        print(f"SN: done at {time.perf_counter() - t0:.0f} s", flush=True)
        demos: list[dict[str, Any]] = []
        for i in range(0 if args.no_demo else args.demo_runs):
            demos.append(run_demo(tmp / f"demo-{i}"))
            print(f"demo {i + 1}: done at {time.perf_counter() - t0:.0f} s", flush=True)
        result["demo"] = demos
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["total_s"] = time.perf_counter() - t0
    result["load_after"] = os.getloadavg()

    shell, sn = result["shell"], result["sn_cold"]
    labels = [("python_bare", '`python -c "pass"` (spawn -> exit)'),
              ("import_swci", '`python -c "import swci"` (spawn -> exit)'),
              ("swci_help", "`swci --help` (spawn -> exit)"),
              ("prompt", "**`swci` -> `SWCI:0 > ` on a terminal**")]
    rows = [[label, shell[key]["min"], shell[key]["median"], shell[key]["max"]]
            for key, label in labels]
    rows += [[f"SN cold start: spawn -> {what}", sn[key]["min"], sn[key]["median"],
              sn[key]["max"]]
             for key, what in (("banner", "banner (imports done)"),
                               ("chain", "chain created, contracts deployed"),
                               ("ready", "**API ready**"))]
    print()
    print(table([f"Start-up in seconds ({args.runs} runs; SN {args.sn_runs})", "min",
                 "median", "max"], rows))
    for i, demo in enumerate(result["demo"]):
        print()
        if "skipped" in demo:
            print(f"swci demo, run {i + 1}: skipped, {demo['skipped']}")
            continue
        print(f"swci demo, run {i + 1}: exit {demo['exit_code']}, {demo['total_s']:.1f} s "
              "spawn -> exit")
        print(table(["phase (ends when ...)", "at s", "took s"],
                    phase_rows(demo["marks"], demo["total_s"])))
        if demo.get("tail"):
            print("\n".join(demo["tail"][-15:]))
    good = [d for d in result["demo"] if d.get("exit_code") == 0]
    ours: dict[str, float | None] = {
        "prompt": shell["prompt"]["median"], "sn_ready": sn["ready"]["median"],
        "demo": min(d["total_s"] for d in good) if good else None}
    result["ours_for_hpe"] = ours
    result["hpe_figures"] = HPE_FIGURES
    print()
    print("HPE's documented figures (paths in HPE's swarm-learning repository at its HEAD, "
          "unless named otherwise):")
    print(table(["what", "HPE documents", "source", "here (median; demo: best)",
                 "ratio HPE / here"], hpe_rows(ours)))
    path = write_json("startup", result, args.json)
    print(f"\nLoad average (1, 5, 15 min) before: "
          f"{' '.join(f'{x:.1f}' for x in result['load_before'])}; after: "
          f"{' '.join(f'{x:.1f}' for x in result['load_after'])}")
    print(f"Total benchmark time: {result['total_s']:.0f} s\nresults: {path}")
    return 0 if all(d.get("exit_code") == 0 or "skipped" in d for d in result["demo"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
