"""One training process of the digits benchmarks, and the helpers that start and stop such
processes.

As a program, one process trains one model on the digits data (examples/common/digits_split.py)
and writes what it saw, with CLOCK_MONOTONIC timestamps (the same clock in every process of the
machine), to a JSON file:

    .venv/bin/python bench/digits_worker.py --mode swarm --peer 1 --peers 3 --epochs 20 \
        --batches 16 --sync-frequency 16 --out /tmp/p1.json --ready /tmp/p1.ready --go /tmp/go

Modes:
- swarm: one peer (1..N) with the PyTorch SwarmCallback on the SL whose local channel is in
  SL_REQUEST_CHANNEL (mergeMethod mean, minPeers N by default);
- local: the same peer training alone (no SwarmCallback at all);
- central: one model on all the training data (peer 0 of the split).

A peer draws each batch of 32 with replacement from its own share, with its own generator (seed
+ peer), `--batches` batches per epoch, as the example does (so that peers of unequal shares
reach their sync points together); central goes through shuffled epochs of the union instead.
Every process starts from the same initial weights (torch seed `--seed`), with SGD (`--lr`,
default 0.1, momentum 0.9) kept for the whole run: a sync replaces the weights, not the momentum
buffers.

The process builds everything (data, model, optimizer, SwarmCallback and its session), writes
the `--ready` file, waits for the `--go` file (so that all processes of a run start training
together), then trains. The test accuracy is measured every `--eval-every` batches (for a swarm
peer: right after each sync, so on the merged model); 0 means only at the end.

torch uses one thread per process.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "common"))
sys.path.insert(0, str(ROOT / "examples" / "digits-pyt" / "model"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import stop_process  # noqa: E402
from torch import nn  # noqa: E402

BATCH_SIZE = 32
LR = 0.1
MOMENTUM = 0.9
TEST_BATCH = 512


# --- the model, the data, the batches --------------------------------------------------------


def build_model(kind: str = "mlp") -> nn.Module:
    """`mlp`: the digits example's own model (examples/digits-pyt/model/digits_pyt.py, 17k
    parameters); `cnn`: a small CNN on the digits upsampled to 28x28 (1.0M parameters, 4 MB),
    for a realistic cost per batch (tens of ms on one thread)."""
    if kind == "mlp":
        from digits_pyt import build_model as example_model

        return example_model()
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(64 * 11 * 11, 128), nn.ReLU(), nn.Linear(128, 10))
    raise ValueError(f"unknown model {kind!r}: mlp or cnn")


def initial_model(kind: str, seed: int) -> nn.Module:
    """The model every contender starts from: built right after seeding torch with `seed`."""
    torch.manual_seed(seed)
    return build_model(kind)


def load_data(peer: int, n_peers: int, seed: int,
              kind: str = "mlp") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test) of one peer (0: all the training data), shaped for the
    model: 64 features for the MLP, 1x28x28 images (bilinear upsampling) for the CNN."""
    from digits_split import split

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in split(peer, n_peers, seed))
    if kind == "cnn":
        x_train, x_test = (torch.nn.functional.interpolate(
            x.reshape(-1, 1, 8, 8), size=(28, 28), mode="bilinear", align_corners=False)
            for x in (x_train, x_test))
    return x_train, y_train, x_test, y_test


class BatchStream:
    """An endless stream of batches from one data set: with replacement (a peer, as the example's
    RandomSampler does) or through shuffled epochs (central)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int,
                 replacement: bool = True, batch_size: int = BATCH_SIZE) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.replacement = replacement
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._at = 0

    def take(self, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The next `count` batches."""
        for _ in range(count):
            yield self._next()

    def _next(self) -> tuple[torch.Tensor, torch.Tensor]:
        size = len(self.y)
        if self.replacement:
            index = torch.randint(size, (self.batch_size,), generator=self.generator)
        else:
            if self._at + self.batch_size > len(self._order):
                self._order = torch.randperm(size, generator=self.generator)
                self._at = 0
            index = self._order[self._at:self._at + self.batch_size]
            self._at += self.batch_size
        return self.x[index], self.y[index]


def make_optimizer(model: nn.Module, lr: float = LR) -> torch.optim.Optimizer:
    """SGD with momentum 0.9; lr 0.1 is the example's."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy (argmax), in eval mode and without gradients."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), TEST_BATCH):
            out = model(x[start:start + TEST_BATCH])
            correct += int((out.argmax(dim=1) == y[start:start + TEST_BATCH]).sum())
    model.train(was_training)
    return correct / len(y)


def float_arrays(model: nn.Module) -> list[np.ndarray]:
    """The model's floating-point state, in state_dict order (what a sync moves)."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()
            if t.is_floating_point()]


def load_arrays(model: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    names = [n for n, t in model.state_dict().items() if t.is_floating_point()]
    if len(names) != len(arrays):
        raise ValueError(f"{len(arrays)} arrays for {len(names)} tensors")
    with torch.no_grad():
        model.load_state_dict({n: torch.from_numpy(np.asarray(a)) for n, a in
                               zip(names, arrays, strict=True)}, strict=False)


def digest(model: nn.Module) -> str:
    """SHA-256 over the state_dict: equal digests mean equal models."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().numpy().tobytes())
    return hasher.hexdigest()


def one_thread() -> None:
    """One torch thread per process (intra- and inter-op)."""
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)


def wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout:g} s")
        time.sleep(0.005)


def write_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)


# --- the training process --------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train as the flags say; return the record (timestamps are time.monotonic())."""
    one_thread()
    started = time.monotonic()
    peer = 0 if args.mode == "central" else args.peer
    x_train, y_train, x_test, y_test = load_data(peer, args.peers, args.seed, args.model)
    model = initial_model(args.model, args.seed)
    optimizer = make_optimizer(model, args.lr)
    loss_fn = nn.CrossEntropyLoss()
    stream = BatchStream(x_train, y_train, args.seed + peer, replacement=args.mode != "central")
    callback = None
    if args.mode == "swarm":
        from swarmlearning.pyt import SwarmCallback

        # no adsValData: the benchmark measures the accuracy itself, outside the callback
        callback = SwarmCallback(syncFrequency=args.sync_frequency,
                                 minPeers=args.min_peers or args.peers,
                                 trainingContract=args.contract, mergeMethod="mean",
                                 checkinModelOnTrainEnd=args.checkin, nodeWeightage=1,
                                 totalEpochs=args.epochs, model=model)
    record: dict[str, Any] = {"mode": args.mode, "peer": peer, "peers": args.peers,
                              "model": args.model, "train_samples": len(y_train),
                              "params": sum(p.numel() for p in model.parameters()),
                              "process_start": started}
    record["ready"] = time.monotonic()
    Path(args.ready).write_text("ready\n")
    wait_for_file(Path(args.go), args.go_timeout)
    record["go"] = go = time.monotonic()

    evals: list[dict[str, float]] = []
    sync_seconds: list[float] = []
    sync_started: list[float] = []
    epoch_end_seconds = 0.0

    def evaluate(batches: int) -> None:
        before = time.monotonic()
        value = accuracy(model, x_test, y_test)
        evals.append({"t": before, "batches": batches, "accuracy": value,
                      "eval_seconds": time.monotonic() - before})

    if callback is not None:
        callback.on_train_begin()
    record["train_begin_done"] = time.monotonic()
    record["train_begin_seconds"] = record["train_begin_done"] - go
    done = 0
    compute = 0.0
    for epoch in range(args.epochs):
        for x, y in stream.take(args.batches):
            step_start = time.perf_counter()
            train_step(model, optimizer, loss_fn, x, y)
            compute += time.perf_counter() - step_start
            done += 1
            if callback is not None:
                before = time.monotonic()
                callback.on_batch_end()
                spent = time.monotonic() - before
                if done % args.sync_frequency == 0:  # batch_end syncs every syncFrequency
                    sync_started.append(before)
                    sync_seconds.append(spent)
            if args.eval_every and done % args.eval_every == 0:
                evaluate(done)
        if callback is not None:
            before = time.perf_counter()
            callback.on_epoch_end(epoch)
            epoch_end_seconds += time.perf_counter() - before
    record["loop_done"] = time.monotonic()
    if callback is not None:
        before = time.monotonic()
        callback.on_train_end()
        record["train_end_seconds"] = time.monotonic() - before
        record["callback_syncs"] = callback.core.syncs
        record["final_round"] = callback.core.round
    record["end"] = time.monotonic()
    record.update(batches=done, compute_seconds=compute, sync_seconds=sync_seconds,
                  sync_started=sync_started,
                  epoch_end_seconds=epoch_end_seconds, evals=evals,
                  final_accuracy=accuracy(model, x_test, y_test), weights=digest(model))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one digits training process")
    parser.add_argument("--mode", choices=("swarm", "local", "central"), required=True)
    parser.add_argument("--peer", type=int, default=1, help="1..N (ignored for central)")
    parser.add_argument("--peers", type=int, default=3, help="N, for the split")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches", type=int, default=16, help="batches per epoch")
    parser.add_argument("--sync-frequency", type=int, default=16)
    parser.add_argument("--min-peers", type=int, default=0, help="0: --peers")
    parser.add_argument("--contract", default="defaultbb.cqdb.sml.hpe")
    parser.add_argument("--checkin", default="snapshot",
                        choices=("inactive", "snapshot", "active"))
    parser.add_argument("--eval-every", type=int, default=0, help="batches; 0: only the end")
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--go", required=True)
    parser.add_argument("--go-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    write_atomic(Path(args.out), run(args))
    return 0


# --- starting and stopping processes (used by the benchmark drivers) -------------------------


def sync_latencies(records: Sequence[dict[str, Any]]) -> list[float]:
    """Per sync point: from the moment the last peer entered the sync until every peer had the
    merged model back: the protocol's own latency, without the wait for a slower peer."""
    count = min(len(r["sync_started"]) for r in records)
    return [max(r["sync_started"][i] + r["sync_seconds"][i] for r in records)
            - max(r["sync_started"][i] for r in records) for i in range(count)]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark process: one thread, no telemetry, unbuffered output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    env.update(extra)
    return env


def spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a process in its own session, output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd=ROOT)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def await_files(paths: Sequence[Path], processes: Sequence[subprocess.Popen],
                logs: Sequence[Path], timeout: float) -> None:
    """Wait until every path exists; fail early when one of the processes has died."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None and process.returncode != 0:
                raise RuntimeError(f"process {process.args[1:4]} exited with status "
                                   f"{process.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            missing = [str(p) for p in paths if not p.exists()]
            raise TimeoutError(f"not ready within {timeout:g} s: {missing}")
        time.sleep(0.02)


def await_exit(processes: Sequence[subprocess.Popen], logs: Sequence[Path],
               timeout: float) -> None:
    """Wait until every process has exited with status 0 (bounded)."""
    deadline = time.monotonic() + timeout
    for process, log in zip(processes, logs, strict=True):
        try:
            code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"process {process.args[1:4]} still running after "
                               f"{timeout:g} s:\n{log_tail(log)}") from None
        if code != 0:
            raise RuntimeError(f"process {process.args[1:4]} exited with status {code}:\n"
                               f"{log_tail(log)}")


def worker_command(mode: str, peer: int, peers: int, out: Path, ready: Path, go: Path,
                   **flags: Any) -> list[str]:
    """The command line of one worker process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--mode", mode, "--peer",
               str(peer), "--peers", str(peers), "--out", str(out), "--ready", str(ready),
               "--go", str(go)]
    for name, value in flags.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def run_group(mode: str, peers: int, peer_ids: Sequence[int], scratch: Path,
              env_for: Callable[[int], dict[str, str]], timeout: float,
              **flags: Any) -> tuple[float, float, list[dict[str, Any]]]:
    """Start one worker per peer id, wait until all are ready, release them together (the go
    file) and wait for them to finish; (launched, released, records), in time.monotonic().
    Every wait is bounded by `timeout`; every process is stopped on the way out."""
    scratch.mkdir(parents=True, exist_ok=True)
    go = scratch / f"{mode}.go"
    go.unlink(missing_ok=True)
    outs = [scratch / f"{mode}-{p}.json" for p in peer_ids]
    readies = [scratch / f"{mode}-{p}.ready" for p in peer_ids]
    logs = [scratch / f"{mode}-{p}.log" for p in peer_ids]
    for path in (*outs, *readies):
        path.unlink(missing_ok=True)
    processes: list[subprocess.Popen] = []
    launched = time.monotonic()
    try:
        for peer, out, ready, log in zip(peer_ids, outs, readies, logs, strict=True):
            command = worker_command(mode, peer, peers, out, ready, go, **flags)
            processes.append(spawn(command, log, env_for(peer)))
        await_files(readies, processes, logs, timeout)
        released = time.monotonic()
        go.write_text("go\n")
        await_exit(processes, logs, timeout)
        return launched, released, [json.loads(out.read_text()) for out in outs]
    finally:
        for process in processes:
            stop_process(process)


if __name__ == "__main__":
    sys.exit(main())
