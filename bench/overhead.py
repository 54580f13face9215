"""Overhead of the swarm over local training: the same N training processes, the same epochs,
run concurrently with and without the SwarmCallback.

The model is a small CNN (bench/digits_worker.py --model cnn: the digits upsampled to 28x28, two
convolutions and two dense layers, 1.0M parameters, 4 MB of float32), so that a batch costs tens
of milliseconds on one torch thread, as real training does; the digits example's own MLP takes
well under a millisecond per batch and would make any sync look huge. Each of the N processes
trains `--epochs` epochs of `--batches` batches of 32 from its own share of the non-IID digits
split, SGD lr `--lr` (0.02: with the example's 0.1 this CNN collapses to one class on a
peer that trains alone) momentum 0.9, one torch thread.

- without: the N processes train concurrently, no SwarmCallback and no swarm node running (so
  the CPU contention between the trainers is the same as with, and idle nodes count as overhead);
- with: a fresh workspace with a sentinel SN and N SL daemons (mutual TLS, 127.0.0.1, started
  before the clock starts), and the same N processes with the PyTorch SwarmCallback
  (syncFrequency `--sync-frequency`, minPeers N, mergeMethod mean, checkinModelOnTrainEnd
  snapshot, a fresh training contract).

Timed: every process builds its data, model and (with) SwarmCallback session first; then all are
released together, and a run's wall time is from that release until the last process has
finished training: for with, that includes on_train_begin (the initial sync), every sync, the
progress reports at epoch ends and on_train_end (the final check-in and the final model). The
ratio is with / without (median wall time over `--repeats`, the two kinds alternating). Also
reported: the measured compute time per batch (forward, backward, optimizer step), the number
of syncs and the mean time per sync as the ML side sees it (inside on_batch_end, which includes
waiting for the slower peer), and all the time a process spent inside the callback's hooks
(median over the processes); `sync latency` is per sync point from the moment the last peer
entered it until every peer had the merged model (the protocol's own cost, without the wait for
a slower peer).

On a shared machine the compute itself runs at different speeds from run to run (the `ms /
batch` column shows by how much), which moves the plain ratio by more than the swarm does.
Hence also `wall / compute`: a run's wall time over its slowest process's compute time (forward,
backward, step: about 1.0 without the swarm), and the compute-normalized ratio, the median of
that for with over the median for without.

Run: .venv/bin/python bench/overhead.py [--peers 2] [--epochs 2] [--batches 256]
         [--sync-frequency 128] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import create_contract, describe, free_port, machine, table, write_json
from digits_worker import run_group, sync_latencies, worker_env


def without_swarm(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    _, released, records = run_group(
        "local", args.peers, range(1, args.peers + 1), scratch, lambda peer: worker_env(),
        args.timeout, seed=args.seed, model="cnn", lr=args.lr, epochs=args.epochs,
        batches=args.batches, eval_every=0)
    return summarize("without", records, released)


def with_swarm(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    from swarmlearning.nodes.workspace import Workspace

    workspace = Workspace(scratch / "ws")
    started = time.monotonic()
    try:
        workspace.start_sn("sn1", sentinel=True, api_port=free_port(), p2p_port=free_port(),
                           timeout=120)
        for peer in range(1, args.peers + 1):
            workspace.start_sl(f"sl{peer}", fs_port=free_port(), timeout=120)
        contract = f"overhead-{int(time.time() * 1000)}"
        create_contract(workspace, contract)
        nodes_seconds = time.monotonic() - started

        def env_for(peer: int) -> dict[str, str]:
            channel = workspace.root / "data" / f"sl{peer}" / "channel.sock"
            return worker_env(SL_REQUEST_CHANNEL=str(channel))

        _, released, records = run_group(
            "swarm", args.peers, range(1, args.peers + 1), scratch, env_for, args.timeout,
            seed=args.seed, model="cnn", lr=args.lr, epochs=args.epochs, batches=args.batches,
            sync_frequency=args.sync_frequency, eval_every=0, contract=contract,
            checkin="snapshot")
    finally:
        workspace.stop_all()
    row = summarize("with", records, released)
    syncs = [s for r in records for s in r["sync_seconds"]]
    latencies = sync_latencies(records)
    row.update(nodes_seconds=nodes_seconds, sync_latencies=latencies,
               sync_latency_mean_seconds=statistics.fmean(latencies) if latencies else None,
               syncs_per_process=statistics.median(len(r["sync_seconds"]) for r in records),
               callback_syncs=[r.get("callback_syncs") for r in records],
               sync_mean_seconds=statistics.fmean(syncs) if syncs else None,
               sync_max_seconds=max(syncs) if syncs else None,
               initial_sync_seconds=statistics.median(r["train_begin_seconds"]
                                                      for r in records),
               train_end_seconds=statistics.median(r["train_end_seconds"] for r in records),
               epoch_end_seconds=statistics.median(r["epoch_end_seconds"] for r in records),
               in_callback_seconds=statistics.median(
                   r["train_begin_seconds"] + sum(r["sync_seconds"]) + r["epoch_end_seconds"]
                   + r["train_end_seconds"] for r in records),
               final_weights_equal=len({r["weights"] for r in records}) == 1)
    return row


def summarize(kind: str, records: list[dict[str, Any]], released: float) -> dict[str, Any]:
    batches = sum(r["batches"] for r in records)
    wall = max(r["end"] for r in records) - released
    return {"kind": kind, "wall_seconds": wall,
            "wall_over_compute": wall / max(r["compute_seconds"] for r in records),
            "per_process_seconds": [r["end"] - released for r in records],
            "compute_seconds": [r["compute_seconds"] for r in records],
            "batch_ms": 1000 * sum(r["compute_seconds"] for r in records) / batches,
            "batches_per_process": records[0]["batches"], "params": records[0]["params"],
            "final_accuracy": [r["final_accuracy"] for r in records]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=2, help="N training processes")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=256, help="batches per epoch")
    parser.add_argument("--sync-frequency", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.02,
                        help="SGD learning rate (momentum 0.9); 0.1 kills this CNN on a peer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="bound on every wait (start-up, a run)")
    parser.add_argument("--json", default=None, help="default bench/results/<name>.json")
    args = parser.parse_args(argv)
    info = machine()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swarm-overhead-") as tmp:
        for repeat in range(args.repeats):
            for kind, runner in (("without", without_swarm), ("with", with_swarm)):
                row = runner(args, Path(tmp) / f"{kind}-{repeat}")
                row["repeat"] = repeat
                runs.append(row)
                extra = (f"; {row['syncs_per_process']:g} syncs, mean "
                         f"{row['sync_mean_seconds']:.3f} s" if kind == "with" else "")
                print(f"repeat {repeat + 1} {kind:>7}: wall {row['wall_seconds']:.2f} s, "
                      f"{row['batch_ms']:.1f} ms per batch{extra}", flush=True)
    without = [r for r in runs if r["kind"] == "without"]
    with_ = [r for r in runs if r["kind"] == "with"]
    wall_without = statistics.median(r["wall_seconds"] for r in without)
    wall_with = statistics.median(r["wall_seconds"] for r in with_)
    ratio = wall_with / wall_without
    normalized = (statistics.median(r["wall_over_compute"] for r in with_)
                  / statistics.median(r["wall_over_compute"] for r in without))
    paired = [w["wall_seconds"] / o["wall_seconds"] for o, w in zip(without, with_, strict=True)]
    print(f"\n{describe(info)}; {args.peers} processes x {args.epochs} epochs x {args.batches} "
          f"batches of 32, syncFrequency {args.sync_frequency}, CNN of "
          f"{runs[0]['params'] / 1e6:.2f}M parameters\n")
    print(table(["run", "repeat", "wall s", "wall / compute", "ms / batch", "syncs",
                 "sync mean s", "sync latency s", "initial sync s", "train end s",
                 "in callback s"],
                [[r["kind"], r["repeat"] + 1, r["wall_seconds"], r["wall_over_compute"],
                  r["batch_ms"], r.get("syncs_per_process"), r.get("sync_mean_seconds"),
                  r.get("sync_latency_mean_seconds"), r.get("initial_sync_seconds"),
                  r.get("train_end_seconds"), r.get("in_callback_seconds")] for r in runs]))
    print()
    print(table(["without s (median)", "with s (median)", "ratio", "paired ratios",
                 "compute-normalized ratio", "target"],
                [[wall_without, wall_with, f"{ratio:.3f}",
                  " ".join(f"{x:.3f}" for x in paired), f"{normalized:.3f}", "<= 1.15"]]))
    path = write_json("overhead", {
        "settings": {"peers": args.peers, "epochs": args.epochs, "batches": args.batches,
                     "sync_frequency": args.sync_frequency, "repeats": args.repeats,
                     "seed": args.seed, "batch_size": 32, "model": "cnn", "lr": args.lr},
        "without_seconds": wall_without, "with_seconds": wall_with, "ratio": ratio,
        "paired_ratios": paired, "compute_normalized_ratio": normalized,
        "runs": runs}, args.json)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
