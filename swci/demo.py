"""`swci demo` (what `make demo` runs): the quickstart swarm, then what it was worth.

1. Runs `scripts/init/quickstart.swci` with a fresh workspace under the output directory: two
   organisations, two SNs, two SWOPs, a build task and a 3-peer RUN_SWARM of the digits example,
   with WAIT FOR TASKRUNNER's progress display, PERFDATA, STOP SWARM.
2. Trains the baselines the swarm is measured against: each peer alone on its own data
   (SWARM_LOOPBACK=True, the same program) and one model on all the data (central).
3. Prints a table, and writes `summary.json` and `accuracy.png` to the output directory.

Whatever happens (a failure, Ctrl-C), every process it started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarmlearning.lifecycle import capture_signals

SCRIPT = Path("scripts/init/quickstart.swci")
EXAMPLE = Path("examples/digits-pyt")
PROGRAM = EXAMPLE / "model" / "digits_pyt.py"
PEERS = {1: ("org1", "digits 1, 2, 3"), 2: ("org1", "digits 4, 5, 6"),
         3: ("org2", "digits 7, 8, 9, 0")}
EPOCHS = 12


def swarm_result_file(peer: int) -> Path:
    """Where the digits program of `peer` writes its swarm result."""
    return EXAMPLE / "private" / PEERS[peer][0] / "results" / f"peer{peer}.json"


def _interrupt(signum: int) -> None:
    """SIGINT or SIGTERM: stop the demo, wherever it is."""
    raise KeyboardInterrupt


def run_swarm(output: Path, received: Sequence[int] = ()) -> int:
    """The quickstart script in this process (its progress display included); the exit code.
    `received`: the signals caught so far (capture_signals); a command may take Ctrl-C as
    "stop this command" (WAIT FOR TASKRUNNER, SLEEP), and for the demo it still means "stop
    the demo"."""
    from swarmlearning.nodes.workspace import Workspace
    from swci.interpreter import ExitCode, Interpreter, SessionState
    from swci.runner import run_text

    workspace = output / "swarm"
    shutil.rmtree(workspace, ignore_errors=True)
    interp = Interpreter(SessionState(cwd=Path.cwd()))
    interp.state.workspace = workspace.resolve()
    try:
        code = run_text(interp, SCRIPT.read_text(encoding="utf-8"), str(SCRIPT))
        if received:
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("\nInterrupted: stopping the swarm", flush=True)
        code = ExitCode.STOPPED_ON_FAILURE
        raise
    finally:
        interp.close()
        for record in Workspace(workspace).stop_all(grace=5, keep=True):
            print(f"    stopped {record.kind.upper()} {record.name}", flush=True)
    return int(code or 0)


def train_baselines(output: Path) -> dict[str, dict[str, Any]]:
    """Each peer alone and one central model, two at a time; results by name."""
    runs = {f"peer{peer}": {"PEER_INDEX": str(peer), "SWARM_LOOPBACK": "True"} for peer in PEERS}
    runs["central"] = {"PEER_INDEX": "0"}
    folder = output / "baselines"
    folder.mkdir(parents=True, exist_ok=True)
    pending = list(runs.items())
    running: dict[str, tuple[subprocess.Popen, Path]] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < 2:
                name, env = pending.pop(0)
                target = folder / f"{name}.json"
                log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the run
                process = subprocess.Popen(
                    [sys.executable, str(PROGRAM)], stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, **env, "EPOCHS": str(EPOCHS), "N_PEERS": "3",
                         "RESULT_FILE": str(target)})
                log.close()
                running[name] = (process, target)
                print(f"    training the {_label(name)} baseline ...", flush=True)
            for name, (process, target) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                if process.returncode != 0:
                    raise RuntimeError(f"the {_label(name)} baseline failed; see "
                                       f"{folder / (name + '.log')}")
                results[name] = json.loads(target.read_text(encoding="utf-8"))
                print(f"    {_label(name)} baseline: test accuracy "
                      f"{results[name]['accuracy']:.3f}", flush=True)
            time.sleep(0.1)
    finally:
        for process, _ in running.values():
            process.kill()
            process.wait()
    return results


def _label(name: str) -> str:
    return "central (all data)" if name == "central" else f"{name} alone"


def summarize(output: Path, baselines: dict[str, dict[str, Any]], swarm: dict[int, dict],
              wall: float) -> dict[str, Any]:
    """The summary (each peer alone and in the swarm, central), also written to summary.json."""
    summary = {
        "peers": [{"name": f"peer{peer}", "organisation": PEERS[peer][0],
                   "data": PEERS[peer][1],
                   "local_accuracy": round(baselines[f"peer{peer}"]["accuracy"], 4),
                   "swarm_accuracy": round(swarm[peer]["accuracy"], 4)} for peer in PEERS],
        "central_accuracy": round(baselines["central"]["accuracy"], 4),
        "wall_seconds": round(wall, 1),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def print_table(summary: dict[str, Any]) -> None:
    """The summary as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Test accuracy on all ten digits")
    for column in ("peer", "organisation", "its data", "alone", "swarm", "gain"):
        table.add_column(column, justify="right" if column in ("alone", "swarm", "gain")
                         else "left")
    for peer in summary["peers"]:
        gain = peer["swarm_accuracy"] - peer["local_accuracy"]
        table.add_row(peer["name"], peer["organisation"], peer["data"],
                      f"{peer['local_accuracy']:.3f}", f"{peer['swarm_accuracy']:.3f}",
                      f"{gain:+.3f}")
    table.caption = (f"one model trained centrally on all the data: "
                     f"{summary['central_accuracy']:.3f}; the whole demo took "
                     f"{summary['wall_seconds']:.0f} s")
    Console().print(table)


def plot(output: Path, baselines: dict[str, dict[str, Any]], swarm: dict[int, dict]) -> Path:
    """Test accuracy per epoch, the swarm against each peer alone; the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 5))
    colours = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}
    histories = [swarm[peer]["history"] for peer in PEERS]
    if all(history == histories[0] for history in histories):
        # every peer ends each epoch holding the same merged model: one line says it
        axes.plot(range(1, len(histories[0]) + 1), histories[0], color="tab:purple",
                  linewidth=2.5, label="every peer in the swarm (one merged model)")
    for peer in PEERS:
        history = swarm[peer]["history"]
        if not all(h == histories[0] for h in histories):
            axes.plot(range(1, len(history) + 1), history, color=colours[peer],
                      label=f"peer{peer} in the swarm")
        alone = baselines[f"peer{peer}"]["history"]
        axes.plot(range(1, len(alone) + 1), alone, color=colours[peer], linestyle=":",
                  label=f"peer{peer} alone")
    axes.axhline(baselines["central"]["accuracy"], color="black", linestyle="--",
                 label="central, all data")
    axes.set_xlabel("epoch (4 sync rounds each)")
    axes.set_ylabel("test accuracy, all ten digits")
    axes.set_ylim(0, 1)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title("Three peers with different digits, learning together")
    path = output / "accuracy.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    pyplot.close(figure)
    return path


def main(argv: list[str]) -> int:
    """`swci demo [--output DIR]`: 0 when it ran through, 130 when SIGINT or SIGTERM stopped it
    (every process it started stopped), the script's exit code or 1 on a failure."""
    parser = argparse.ArgumentParser(prog="swci demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", metavar="DIR",
                        help="where the summary, the plot and the demo's workspace go")
    args = parser.parse_args(argv)
    if not SCRIPT.exists() or not PROGRAM.exists():
        print(f"swci demo: run it from the repository root ({SCRIPT} was not found)",
              file=sys.stderr)
        return 2
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for peer in PEERS:
        swarm_result_file(peer).unlink(missing_ok=True)
    started = time.monotonic()
    try:
        with capture_signals(_interrupt) as received:
            code = run_swarm(output, received)
            if code != 0:
                print(f"swci demo: the quickstart script failed (exit {code}); the logs are "
                      f"in {output / 'swarm' / 'logs'}", file=sys.stderr)
                return code
            swarm = {peer: json.loads(swarm_result_file(peer).read_text(encoding="utf-8"))
                     for peer in PEERS}
            print("\nBaselines: the same program, each peer alone and one model on all the "
                  "data", flush=True)
            baselines = train_baselines(output)
    except KeyboardInterrupt:
        print("swci demo: interrupted; nothing is left running", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"swci demo: {exc}", file=sys.stderr)
        return 1
    summary = summarize(output, baselines, swarm, time.monotonic() - started)
    picture = plot(output, baselines, swarm)
    print()
    print_table(summary)
    print(f"\nsummary: {output / 'summary.json'}\nplot:    {picture}")
    return 0
