"""Time to accuracy on the non-IID digits split: the swarm against Flower FedAvg, local-only
training and central training, with the same model, data, optimizer and batch budget.

Contenders, for each N of `--peers` (every process on 127.0.0.1, one torch thread each):
- ours: a fresh workspace with a sentinel SN and N SL daemons (mutual TLS), and N ML processes
  (bench/digits_worker.py --mode swarm) with the PyTorch SwarmCallback, syncFrequency =
  `--batches`, minPeers N, mergeMethod mean, on the default training contract of the fresh
  swarm. Everything is launched at once: the SN, the SLs as soon as the SN process exists
  (an SL retries its SN until it answers) and the ML processes (each waits for its SL's
  channel);
- flower: a Flower server process and N client processes over Flower's gRPC transport
  (bench/flower_digits.py: legacy start_server / start_client, FedAvg), likewise launched at
  once (a Flower client retries the server until it answers);
- local: the N peers' processes training alone on their own shares (no swarm), concurrently;
- central: one process training on all the training data.

The same for all: the example's MLP (examples/digits-pyt/model/digits_pyt.py) from the same
initial weights (torch seed `--seed`), SGD lr 0.1 momentum 0.9, batch 32, `--rounds` rounds.
A round is `--batches` batches on every peer (each peer draws its batches with replacement from
its own share, with its own seeded generator: the very same batches under ours, Flower and
local); ours syncs after them, Flower aggregates after them. Optimizer state: every peer (ours,
Flower, local) keeps its SGD momentum for the whole run; a sync or a FedAvg round replaces the
weights only. Central: one round is N x `--batches` batches of 32 through shuffled epochs of
the union, so that after every round central has seen as many samples as the N peers together.

Evaluation: test accuracy on the common test set (30% of the digits) after every round: ours,
on every peer right after each sync returns (all hold the merged model; the table says whether
they agree), Flower, server-side on the global model after each aggregation; local and central,
after each round's batches. Local's accuracy is the mean over the peers' own models.

Timed: `launch to target` (the headline: what a user waits for) is from launching the first
process to the first evaluation at or above `--target`, i.e. `setup s` + `training to target`.
`train s` is from the start of training to the evaluation after the last round; `to
target` is from the start of training to the first evaluation at or above `--target`. The start
of training: ours, local and central, when every process has built its data, model and
SwarmCallback session (opened on its SL) and all are released together (so ours includes the
initial sync that hands everyone the same weights); Flower, when the server, about to start
round 1, sees all N clients connected. `setup s` is from launching the first process (the SN,
the Flower server, or the workers) to that start: node start-up, imports, data and sessions.
What comes after the last evaluation is not in `train s`: ours' on_train_end (one more round,
checkinModelOnTrainEnd inactive; its time is in the JSON as train_end_seconds) and Flower's
disconnect. With the same data order, initial weights and plain mean, ours and Flower follow
the same accuracy curve (up to float rounding in the merge), so the difference is time alone.

Run: .venv/bin/python bench/time_to_accuracy.py [--peers 3,8] [--rounds 20] [--batches 16]
         [--target 0.93] [--contenders ours,flower,local,central] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import (
    describe,
    free_port,
    machine,
    stop_process,
    table,
    write_json,
)
from digits_worker import (
    await_exit,
    run_group,
    spawn,
    sync_latencies,
    worker_env,
)

CONTENDERS = ("ours", "flower", "local", "central")
DEFAULT_CONTRACT = "defaultbb.cqdb.sml.hpe"  # deployed with every fresh swarm


def curve_of(evals: list[dict[str, Any]], t0: float) -> list[tuple[float, float]]:
    return [(e["t"] - t0, e["accuracy"]) for e in evals]


def reached(curve: Sequence[tuple[float, float]], target: float) -> tuple[float | None,
                                                                          int | None]:
    """(seconds, rounds) of the first evaluation at or above the target, or (None, None)."""
    for number, (seconds, value) in enumerate(curve, start=1):
        if value >= target:
            return seconds, number
    return None, None


def result(name: str, peers: int, setup: float, curve: list[tuple[float, float]],
           target: float, **extra: Any) -> dict[str, Any]:
    seconds, rounds = reached(curve, target)
    return {"contender": name, "peers": peers, "setup_seconds": setup,
            "to_target_seconds": seconds, "to_target_rounds": rounds,
            "from_launch_to_target_seconds": None if seconds is None else setup + seconds,
            "final_accuracy": curve[-1][1] if curve else None, "rounds": len(curve),
            "train_seconds": curve[-1][0] if curve else None, "curve": curve, **extra}


# --- the contenders ------------------------------------------------------------------------------


def run_ours(peers: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    from swarmlearning.nodes.workspace import Workspace

    workspace = Workspace(scratch / "ws")
    launched = time.monotonic()
    # everything at once, in any order a user may start it: the SN; the SLs as soon as the SN
    # process exists (an SL retries its SN until it answers); the ML programs beside them (an
    # ML waits for its SL's channel). The default contract exists from the SN's deployment.
    pool = ThreadPoolExecutor(max_workers=peers + 1)
    try:
        sn = pool.submit(workspace.start_sn, "sn1", sentinel=True, api_port=free_port(),
                         p2p_port=free_port(), timeout=120)
        await_record(workspace, "sn1", sn, args.timeout)
        starts = [sn] + [pool.submit(workspace.start_sl, f"sl{peer}", fs_port=free_port(),
                                     timeout=180) for peer in range(1, peers + 1)]
        nodes: dict[str, float] = {}

        def note_nodes_up() -> None:
            for start in starts:
                start.exception()  # waits; a failure is raised below
            nodes["up"] = time.monotonic()

        threading.Thread(target=note_nodes_up, daemon=True).start()

        def env_for(peer: int) -> dict[str, str]:
            channel = workspace.root / "data" / f"sl{peer}" / "channel.sock"
            return worker_env(SL_REQUEST_CHANNEL=str(channel),
                              SL_CHANNEL_WAIT_SECONDS=str(args.timeout))

        try:
            _, t0, records = run_group(
                "swarm", peers, range(1, peers + 1), scratch, env_for, args.timeout,
                seed=args.seed, epochs=args.rounds, batches=args.batches,
                sync_frequency=args.batches, eval_every=args.batches, contract=DEFAULT_CONTRACT,
                checkin="inactive")
        finally:
            for start in starts:
                if start.done() and start.exception() is not None:
                    raise RuntimeError(f"a node did not start: {start.exception()}")
        nodes_up = nodes.get("up", t0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        workspace.stop_all()
    curves = [curve_of(r["evals"], t0) for r in records]
    rounds = min(len(c) for c in curves)
    merged = [(statistics.median(c[i][0] for c in curves),
               statistics.median(c[i][1] for c in curves)) for i in range(rounds)]
    spread = max((max(c[i][1] for c in curves) - min(c[i][1] for c in curves)
                  for i in range(rounds)), default=0.0)
    syncs = [s for r in records for s in r["sync_seconds"]]
    latencies = sync_latencies(records)
    return result("ours", peers, t0 - launched, merged, args.target,
                  nodes_up_seconds=nodes_up - launched,
                  initial_sync_seconds=statistics.median(r["train_begin_seconds"]
                                                         for r in records),
                  accuracy_spread_across_peers=spread,
                  final_weights_equal=len({r["weights"] for r in records}) == 1,
                  sync_seconds_median=statistics.median(syncs) if syncs else None,
                  sync_latency_median=statistics.median(latencies) if latencies else None,
                  train_end_seconds=statistics.median(r["train_end_seconds"] for r in records),
                  per_peer_curves=curves)


def run_flower(peers: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)
    script = str(Path(__file__).with_name("flower_digits.py"))
    port = free_port()
    env = worker_env()
    server_out, server_log = scratch / "server.json", scratch / "server.log"
    processes = []
    launched = time.monotonic()
    try:
        processes.append(spawn([sys.executable, script, "server", "--port", str(port),
                                "--clients", str(peers), "--rounds", str(args.rounds),
                                "--seed", str(args.seed), "--wait", str(args.timeout),
                                "--out", str(server_out)], server_log, env))
        logs = [server_log]
        for peer in range(1, peers + 1):
            log = scratch / f"client-{peer}.log"
            processes.append(spawn([sys.executable, script, "client", "--port", str(port),
                                    "--peer", str(peer), "--peers", str(peers),
                                    "--batches", str(args.batches), "--seed", str(args.seed),
                                    "--wait", str(args.timeout),
                                    "--out", str(scratch / f"client-{peer}.json")], log, env))
            logs.append(log)
        await_exit(processes, logs, args.timeout)
    finally:
        for process in processes:
            stop_process(process)
    record = json.loads(server_out.read_text())
    t0 = record["t0"]
    curve = curve_of([e for e in record["evals"] if e["round"] >= 1], t0)
    return result("flower", peers, t0 - launched, curve, args.target)


def await_record(workspace: Any, name: str, start: Any, timeout: float) -> None:
    """Until the workspace has recorded the node `name` (its process is spawned; bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start.done():
            start.result()  # raises the start's failure
            return
        try:
            if workspace.record(name) is not None:
                return
        except ValueError:  # the record is being written
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{name} was not spawned within {timeout:g} s")


def run_local(peers: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    launched, t0, records = run_group(
        "local", peers, range(1, peers + 1), scratch, lambda peer: worker_env(), args.timeout,
        seed=args.seed, epochs=args.rounds, batches=args.batches, eval_every=args.batches)
    curves = [curve_of(r["evals"], t0) for r in records]
    mean = [(statistics.median(c[i][0] for c in curves),
             statistics.fmean(c[i][1] for c in curves)) for i in range(len(curves[0]))]
    return result("local", peers, t0 - launched, mean, args.target,
                  per_peer_final=[c[-1][1] for c in curves], per_peer_curves=curves)


def run_central(peers: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    per_round = peers * args.batches
    launched, t0, records = run_group(
        "central", peers, [0], scratch, lambda peer: worker_env(), args.timeout,
        seed=args.seed, epochs=args.rounds, batches=per_round, eval_every=per_round)
    return result("central", peers, t0 - launched, curve_of(records[0]["evals"], t0),
                  args.target, batches_per_round=per_round)


RUNNERS = {"ours": run_ours, "flower": run_flower, "local": run_local, "central": run_central}
REPEATED = ("ours", "flower")


def _launch_to_target(row: dict[str, Any]) -> float:
    value = row["from_launch_to_target_seconds"]
    return float("inf") if value is None else value


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="3,8", help="comma-separated peer counts")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batches", type=int, default=16,
                        help="batches per round per peer (= syncFrequency)")
    parser.add_argument("--target", type=float, default=0.93)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="bound on every wait (start-up, a run)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of ours and Flower each (interleaved, so that both see the "
                             "same machine); the tables show the run with the median launch "
                             "to target")
    parser.add_argument("--json", default=None, help="default bench/results/<name>.json")
    args = parser.parse_args(argv)
    peer_counts = [int(p) for p in args.peers.split(",")]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}: choose from {CONTENDERS}")
    info = machine()
    results = []
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-tta-") as tmp:
        for peers in peer_counts:
            for repeat in range(max(args.repeat, 1)):
                for name in contenders:
                    if repeat > 0 and name not in REPEATED:
                        continue
                    print(f"{peers} peers, {name} (run {repeat + 1}) ...", flush=True)
                    row = RUNNERS[name](peers, args, Path(tmp) / f"{name}-{peers}-{repeat}")
                    runs.setdefault((peers, name), []).append(row)
                    print(f"  to {args.target}: {row['to_target_seconds']} s (round "
                          f"{row['to_target_rounds']}); launch to target "
                          f"{row['from_launch_to_target_seconds']} s; final "
                          f"{row['final_accuracy']:.3f}; train {row['train_seconds']:.2f} s; "
                          f"setup {row['setup_seconds']:.1f} s", flush=True)
    for rows in runs.values():
        ranked = sorted(rows, key=_launch_to_target)
        chosen = dict(ranked[(len(ranked) - 1) // 2])
        chosen["runs_launch_to_target_seconds"] = [r["from_launch_to_target_seconds"]
                                                   for r in rows]
        chosen["runs_to_target_seconds"] = [r["to_target_seconds"] for r in rows]
        results.append(chosen)
    print(f"\n{describe(info)}; {args.rounds} rounds of {args.batches} batches of 32 per peer; "
          f"target {args.target}\n")
    print(table(["peers", "contender", f"launch to {args.target} s", "setup s",
                 f"training to {args.target} s", "rounds to", "final acc", "rounds", "train s",
                 "s / round"],
                [[r["peers"], r["contender"], r["from_launch_to_target_seconds"],
                  r["setup_seconds"], r["to_target_seconds"], r["to_target_rounds"],
                  r["final_accuracy"], r["rounds"], r["train_seconds"],
                  r["train_seconds"] / r["rounds"]] for r in results]))
    ours = [r for r in results if r["contender"] == "ours"]
    if ours:
        print("\nours: do the peers agree after every sync (max accuracy spread across peers; "
              "equal final weights); node start-up; the initial sync; a sync as the ML side "
              "sees it, and its latency from the last peer's arrival (medians)")
        print(table(["peers", "acc spread", "weights equal", "nodes up s", "initial sync s",
                     "sync s", "sync latency s"],
                    [[r["peers"], r["accuracy_spread_across_peers"], r["final_weights_equal"],
                      r["nodes_up_seconds"], r["initial_sync_seconds"],
                      r["sync_seconds_median"], r["sync_latency_median"]] for r in ours]))
    repeated = [r for r in results if len(r["runs_launch_to_target_seconds"]) > 1]
    if repeated:
        print(f"\nevery run of ours and Flower, interleaved: launch to {args.target} s "
              f"(training to {args.target} s)")
        print(table(["peers", "contender", "runs", "median launch to target s"],
                    [[r["peers"], r["contender"], " ".join(
                        f"{_text(a)} ({_text(b)})" for a, b in zip(
                            r["runs_launch_to_target_seconds"], r["runs_to_target_seconds"],
                            strict=True)), r["from_launch_to_target_seconds"]]
                     for r in repeated]))
    local = [r for r in results if r["contender"] == "local"]
    if local:
        print("\nlocal-only: final test accuracy of each peer's own model")
        print(table(["peers", "mean", "per peer"],
                    [[r["peers"], r["final_accuracy"],
                      " ".join(f"{a:.3f}" for a in r["per_peer_final"])] for r in local]))
    path = write_json("time_to_accuracy", {
        "settings": {"peers": peer_counts, "rounds": args.rounds, "batches": args.batches,
                     "repeat": args.repeat,
                     "batch_size": 32, "lr": 0.1, "momentum": 0.9, "target": args.target,
                     "seed": args.seed, "model": "examples/digits-pyt MLP"},
        "results": results}, args.json)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
