"""Flower FedAvg on the digits split: a real Flower server process and N client processes over
Flower's gRPC transport on 127.0.0.1 (the legacy `flwr.server.start_server` /
`flwr.client.start_client` pair, grpc-bidi, which Flower 1.41 still ships as deprecated; no
simulation engine). It is one contender of bench/time_to_accuracy.py, which starts it; by hand:

    .venv/bin/python bench/flower_digits.py server --port 18080 --clients 3 --rounds 20 \
        --out /tmp/server.json
    .venv/bin/python bench/flower_digits.py client --port 18080 --peer 1 --peers 3 \
        --batches 16 --out /tmp/c1.json        # and peers 2, 3

What matches the swarm peers of bench/digits_worker.py exactly: the model and its initial
weights (the server sends them as FedAvg's initial parameters), the per-peer batch stream (same
generator seed, with replacement), SGD lr 0.1 momentum 0.9, batch 32 and the batches per round.
A client process keeps one model and one optimizer for the whole run: each round it loads the
global weights it is sent and trains `--batches` batches, so the momentum buffers persist across
rounds, as a swarm peer's do across syncs. Every client reports the same number of examples
(batches x 32), so FedAvg's weighted mean is the plain mean (as mergeMethod mean with
nodeWeightage 1). Evaluation is server-side only (fraction_evaluate 0): the global model on the
common test set after every round, timestamped with time.monotonic().

Training starts (t0) when the server, about to configure round 1, sees all N clients connected.
gRPC here is plaintext (Flower's default); the swarm uses mutual TLS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from digits_worker import (
    BATCH_SIZE,
    BatchStream,
    accuracy,
    float_arrays,
    initial_model,
    load_arrays,
    load_data,
    make_optimizer,
    one_thread,
    train_step,
    write_atomic,
)
from torch import nn

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # before flwr is imported: no phoning home


# --- server ----------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Run FedAvg for `--rounds` rounds with `--clients` clients; return the record."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig, start_server
    from flwr.server.strategy import FedAvg

    one_thread()
    record: dict[str, Any] = {"process_start": time.monotonic(), "evals": []}
    _, _, x_test, y_test = load_data(0, args.clients, args.seed)
    model = initial_model("mlp", args.seed)
    loss_fn = nn.CrossEntropyLoss()

    def evaluate(server_round: int, arrays: list[np.ndarray],
                 config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        before = time.monotonic()
        load_arrays(model, arrays)
        value = accuracy(model, x_test, y_test)
        with torch.no_grad():
            loss = float(loss_fn(model(x_test), y_test))
        record["evals"].append({"t": before, "round": server_round, "accuracy": value,
                                "eval_seconds": time.monotonic() - before})
        return loss, {"accuracy": value}

    class TimedFedAvg(FedAvg):
        """FedAvg that marks the start of training once every client is connected."""

        def configure_fit(self, server_round: int, parameters: Any,
                          client_manager: Any) -> list[Any]:
            if server_round == 1:
                if not client_manager.wait_for(args.clients, timeout=int(args.wait)):
                    raise TimeoutError(f"{args.clients} clients did not connect within "
                                       f"{args.wait:g} s")
                record["t0"] = time.monotonic()
            record.setdefault("round_starts", []).append(time.monotonic())
            return super().configure_fit(server_round, parameters, client_manager)

    strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0,
                           min_fit_clients=args.clients, min_evaluate_clients=args.clients,
                           min_available_clients=args.clients, evaluate_fn=evaluate,
                           initial_parameters=ndarrays_to_parameters(float_arrays(model)))
    start_server(server_address=f"127.0.0.1:{args.port}", strategy=strategy,
                 config=ServerConfig(num_rounds=args.rounds, round_timeout=args.wait))
    record["end"] = time.monotonic()
    return record


# --- client ----------------------------------------------------------------------------------


def make_client(peer: int, peers: int, batches: int, seed: int) -> Any:
    """A NumPyClient holding one model, one optimizer and one batch stream for the whole run."""
    from flwr.client import NumPyClient

    class DigitsClient(NumPyClient):
        def __init__(self) -> None:
            x_train, y_train, self.x_test, self.y_test = load_data(peer, peers, seed)
            self.model = initial_model("mlp", seed)
            self.optimizer = make_optimizer(self.model)
            self.loss_fn = nn.CrossEntropyLoss()
            self.stream = BatchStream(x_train, y_train, seed + peer, replacement=True)
            self.fits: list[dict[str, float]] = []

        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return float_arrays(self.model)

        def fit(self, parameters: list[np.ndarray],
                config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, Any]]:
            received = time.monotonic()
            load_arrays(self.model, parameters)
            for x, y in self.stream.take(batches):
                train_step(self.model, self.optimizer, self.loss_fn, x, y)
            self.fits.append({"received": received, "trained": time.monotonic()})
            return float_arrays(self.model), batches * BATCH_SIZE, {}

        def evaluate(self, parameters: list[np.ndarray],
                     config: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
            load_arrays(self.model, parameters)
            with torch.no_grad():
                loss = float(self.loss_fn(self.model(self.x_test), self.y_test))
            return loss, len(self.y_test), {"accuracy": accuracy(self.model, self.x_test,
                                                                 self.y_test)}

    return DigitsClient()


def run_client(args: argparse.Namespace) -> dict[str, Any]:
    from flwr.client import start_client

    one_thread()
    started = time.monotonic()
    client = make_client(args.peer, args.peers, args.batches, args.seed)
    built = time.monotonic()
    start_client(server_address=f"127.0.0.1:{args.port}", client=client.to_client(),
                 insecure=True, max_wait_time=args.wait)
    return {"peer": args.peer, "process_start": started, "built": built, "fits": client.fits,
            "end": time.monotonic()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("--clients", type=int, required=True)
    server.add_argument("--rounds", type=int, default=20)
    client = sub.add_parser("client")
    client.add_argument("--peer", type=int, required=True)
    client.add_argument("--peers", type=int, required=True)
    client.add_argument("--batches", type=int, default=16)
    for each in (server, client):
        each.add_argument("--port", type=int, required=True)
        each.add_argument("--seed", type=int, default=7)
        each.add_argument("--wait", type=float, default=300.0,
                          help="bound on waiting for clients / the server / a round")
        each.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    record = serve(args) if args.role == "server" else run_client(args)
    write_atomic(Path(args.out), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
