"""Flower's round time for a pure parameter exchange: the baseline for one of our sync rounds.

One Flower server process and N Flower client processes on 127.0.0.1 talk over Flower's own
gRPC transport (the bidirectional-streaming "grpc-bidi" Fleet API that `flwr.server.start_server`
and `flwr.client.start_client` use; both are deprecated since Flower 1.13 but still shipped in
1.41 under `flwr.compat`). No simulation engine, no threads standing in for clients: every
participant is its own OS process. The model is P float32 parameters in 4 tensors (P/2, P/4, P/8
and the rest, random normal), created by the server and handed to FedAvg as its initial
parameters. The strategy is plain FedAvg (in-place aggregation, Flower's default) with
fraction_fit=1 and min_fit_clients = min_available_clients = N, so every round uses every
client, and fraction_evaluate=0, so no evaluate round runs. Each client is a NumPyClient whose
`fit` returns the arrays it was given, unchanged, with num_examples=1 (zero local epochs).

Timed interval (one per fit round, measured inside the server process with perf_counter by a
FedAvg subclass):
  start: entry to `configure_fit`, after all N clients are known to be connected (the wait for
         clients happens before the timer starts; it only blocks in round 1);
  stop:  return from `aggregate_fit`, i.e. the aggregated global Parameters exist.
Inside it: building the FitIns, N concurrent sends of the global model (protobuf serialisation,
gRPC, loopback TCP), each client's deserialisation to numpy, its `fit`, re-serialisation and
reply, the server's deserialisation of N results, FedAvg's weighted average and the
serialisation of the new global model. Outside it: interpreter and Flower start-up, model
generation, the gRPC server coming up, the clients connecting, the (empty) server-side evaluate
and the skipped evaluate round between fit rounds, and the final disconnect of all clients.

Start-up is reported separately: wall time from launching the server process until round 1
could start (server up, model generated, all N clients connected). Peak memory is reported as
the largest sum of resident set sizes over all N+1 processes (sampled every 0.2 s from /proc)
and as each process's own peak (ru_maxrss, reported by the process as it exits).

Memory: Flower copies the model many times per message (numpy -> bytes -> protobuf -> wire and
back), and peaks creep up over rounds. Measured on the reference machine (2 cores, 24 GiB) with
8 clients x 1e7 parameters (40 MB), 3 rounds: server peak 2.5 GB (some 8 model copies per
client), each client 0.7 GB, all processes together 6.4 GB. Scaled to 5e7 parameters (200 MB)
that is roughly 35 GB for 8 clients and 70 GB for 16, so the full 16 x 5e7 grid does not fit
in 24 GiB (16 x 1e7 or up to 4 x 5e7 should). The default grid is therefore 2,4,8 peers x
1e6,1e7 parameters (a few minutes); the flags allow the full grid where memory permits:
--peers 2,4,8,16 --sizes 1e6,1e7,5e7.

Run: .venv/bin/python bench/flower_round.py [--peers 2,4,8] [--sizes 1e6,1e7] [--rounds 3]
                                            [--json bench/results/flower_round.json]
From another bench script (bench/ on sys.path): `from flower_round import flower_round`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import describe, free_port, machine, summary, table, write_json

HOST = "127.0.0.1"
GRPC_DEFAULT_MAX = 536_870_912  # Flower's default grpc_max_message_length (512 MiB)
GRPC_HARD_MAX = 2**31 - 1  # protobuf cannot carry more than 2 GiB in one message
STOP_WAIT = 5.0  # seconds between SIGTERM and SIGKILL
SAMPLE_EVERY = 0.2  # seconds between two memory samples


def tensor_sizes(params: int) -> list[int]:
    """The 4 tensor sizes of a model of `params` parameters: P/2, P/4, P/8 and the rest."""
    sizes = [params // 2, params // 4, params // 8]
    return [*sizes, params - sum(sizes)]


def max_message_length(model_bytes: int) -> int:
    """gRPC message limit for both sides: Flower's default, or more if the model needs it."""
    return min(GRPC_HARD_MAX, max(GRPC_DEFAULT_MAX, model_bytes + (64 << 20)))


def _limits(peers: int, model_bytes: int, rounds: int) -> tuple[float, float, float]:
    """Bounds in seconds: start-up, one round, and the whole run (generous, 10 MB/s floor)."""
    startup = 120.0 + 3.0 * peers + model_bytes / 50e6
    one_round = 60.0 + 2 * peers * model_bytes / 10e6
    return startup, one_round, startup + rounds * one_round + 60.0


# --------------------------------------------------------------------------- child processes


def _serve(port: int, peers: int, params: int, rounds: int, out: Path) -> None:
    """The server process: FedAvg with timestamps, over Flower's legacy gRPC server."""
    import logging

    import numpy as np
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig, start_server
    from flwr.server.strategy import FedAvg

    logging.getLogger("flwr").setLevel(logging.WARNING)
    model_bytes = 4 * params
    startup_limit, round_limit, _ = _limits(peers, model_bytes, rounds)

    class TimedFedAvg(FedAvg):
        """FedAvg that notes when each fit round starts and when its aggregate exists."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ready_wall: float | None = None
            self.rounds: dict[int, dict[str, float | int]] = {}

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            if not client_manager.wait_for(peers, timeout=int(startup_limit)):
                raise RuntimeError(f"only {client_manager.num_available()} of {peers} connected")
            if self.ready_wall is None:
                self.ready_wall = time.time()
            self.rounds[server_round] = {"start": time.perf_counter()}
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            entry = self.rounds[server_round]
            entry["aggregate_start"] = time.perf_counter()
            aggregated = super().aggregate_fit(server_round, results, failures)
            entry["stop"] = time.perf_counter()
            entry["results"] = len(results)
            entry["failures"] = len(failures)
            return aggregated

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(n, dtype=np.float32) for n in tensor_sizes(params)]
    strategy = TimedFedAvg(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=peers,
        min_evaluate_clients=peers, min_available_clients=peers, accept_failures=False,
        initial_parameters=ndarrays_to_parameters(arrays))
    del arrays
    start_server(server_address=f"{HOST}:{port}", strategy=strategy,
                 config=ServerConfig(num_rounds=rounds, round_timeout=round_limit),
                 grpc_max_message_length=max_message_length(model_bytes))
    record = {"ready_wall": strategy.ready_wall,
              "rounds": [strategy.rounds[r] for r in sorted(strategy.rounds)],
              "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    out.write_text(json.dumps(record))


def _client(port: int, params: int, out: Path) -> None:
    """A client process: a NumPyClient whose fit hands back what it received."""
    import logging

    from flwr.client import NumPyClient, start_client

    logging.getLogger("flwr").setLevel(logging.WARNING)

    class Echo(NumPyClient):
        """Zero local epochs: the weights go back exactly as they came."""

        def get_parameters(self, config: dict[str, Any]) -> list[Any]:
            return []

        def fit(self, parameters: list[Any], config: dict[str, Any]) -> tuple[Any, int, dict]:
            return parameters, 1, {}

        def evaluate(self, parameters: list[Any], config: dict[str, Any]) -> tuple[Any, int, dict]:
            return 0.0, 1, {}

    start_client(server_address=f"{HOST}:{port}", client=Echo().to_client(), insecure=True,
                 grpc_max_message_length=max_message_length(4 * params))
    out.write_text(json.dumps(
        {"maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def _child_main(argv: list[str]) -> None:
    role = argv[0]
    parser = argparse.ArgumentParser(prog=f"flower_round.py {role}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--params", type=int, required=True)
    parser.add_argument("--peers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv[1:])
    if role == "_server":
        _serve(args.port, args.peers, args.params, args.rounds, args.out)
    else:
        _client(args.port, args.params, args.out)


# --------------------------------------------------------------------------- the parent


def _rss(pid: int) -> int:
    """Resident bytes of a live process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _MemorySampler(threading.Thread):
    """The largest total RSS of a set of processes, sampled until stopped."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY):
            self.peak = max(self.peak, sum(_rss(p.pid) for p in list(self.procs)))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then SIGKILL what is left after a bounded wait."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_WAIT)


def _wait_listening(port: int, server: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Flower server exited with {server.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"Flower server not listening on {HOST}:{port} after {limit:.0f} s")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def flower_round(peers: int, params: int, rounds: int) -> dict[str, Any]:
    """Run one Flower server and `peers` client processes for `rounds` FedAvg fit rounds of a
    `params`-parameter float32 model; return the per-round times, start-up and memory."""
    if peers < 1 or params < 8 or rounds < 1:
        raise ValueError("need peers >= 1, params >= 8, rounds >= 1")
    model_bytes = 4 * params
    startup_limit, _, run_limit = _limits(peers, model_bytes, rounds)
    script = str(Path(__file__).resolve())
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    sampler = _MemorySampler(procs)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flower_round-") as tmp:
        work = Path(tmp)
        logs: list[Path] = []

        def launch(role: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
            log = work / f"{out.stem}.log"
            logs.append(log)
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [sys.executable, script, role, "--port", str(port), "--params", str(params),
                     "--out", str(out), *extra],
                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env,
                    cwd=str(Path(script).parent))
            procs.append(proc)
            return proc

        try:
            sampler.start()
            launched = time.time()
            server = launch("_server", work / "server.json", "--peers", str(peers),
                            "--rounds", str(rounds))
            _wait_listening(port, server, startup_limit)
            listening = time.time()
            clients = [launch("_client", work / f"client-{i}.json") for i in range(peers)]
            try:
                server.wait(timeout=run_limit)
            except subprocess.TimeoutExpired as exc:
                raise TimeoutError(f"Flower run not done after {run_limit:.0f} s") from exc
            if server.returncode != 0:
                raise RuntimeError(f"Flower server exited with {server.returncode}:\n"
                                   + _tail(logs[0]))
            for client in clients:  # the server told them to disconnect; they exit on their own
                client.wait(timeout=30.0)
            record = json.loads((work / "server.json").read_text())
            client_rss = [json.loads((work / f"client-{i}.json").read_text())["maxrss_bytes"]
                          for i in range(peers) if (work / f"client-{i}.json").exists()]
        except Exception:
            for log in logs[:2]:  # the server's and the first client's
                sys.stderr.write(f"--- {log.name}\n{_tail(log)}\n")
            raise
        finally:
            sampler.done.set()
            sampler.join(timeout=5.0)
            _stop(procs)

    bad = [r for r in record["rounds"] if r.get("results") != peers or r.get("failures")]
    if bad or len(record["rounds"]) != rounds:
        raise RuntimeError(f"incomplete Flower rounds: {record['rounds']}")
    times = [r["stop"] - r["start"] for r in record["rounds"]]
    return {
        "peers": peers, "params": params, "model_bytes": model_bytes,
        "tensors": tensor_sizes(params), "rounds": rounds,
        "round_seconds": times, "median_seconds": statistics.median(times),
        "round_summary": summary(times),
        "aggregate_seconds": [r["stop"] - r["aggregate_start"] for r in record["rounds"]],
        "startup_seconds": record["ready_wall"] - launched,
        "server_listen_seconds": listening - launched,
        "moved_bytes_per_round": 2 * peers * model_bytes,
        "peak_rss_total_bytes": sampler.peak,
        "server_maxrss_bytes": record["maxrss_bytes"],
        "client_maxrss_bytes": max(client_rss) if client_rss else None,
        "grpc_max_message_length": max_message_length(model_bytes),
    }


def _short(number: int) -> str:
    """1e6 rather than 1000000 (or 1e+06) in the printed table."""
    return f"{number:.0e}".replace("e+0", "e").replace("e+", "e")


def _ints(text: str) -> list[int]:
    return [int(float(item)) for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_server", "_client"):
        _child_main(argv)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=_ints, default=[2, 4, 8],
                        help="client counts, comma separated (default 2,4,8)")
    parser.add_argument("--sizes", type=_ints, default=[1_000_000, 10_000_000],
                        help="parameter counts, comma separated (default 1e6,1e7)")
    parser.add_argument("--rounds", type=int, default=3, help="fit rounds per case (default 3)")
    parser.add_argument("--json", default=None,
                        help="result file (default bench/results/flower_round.json)")
    args = parser.parse_args(argv)
    # A SIGTERM to this script unwinds like Ctrl-C, so flower_round's finally stops the children.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    info = machine()
    results = []
    for params in args.sizes:
        for peers in args.peers:
            print(f"flower: {peers} peers x {_short(params)} parameters ...", file=sys.stderr,
                  flush=True)
            results.append(flower_round(peers, params, args.rounds))

    mib = 1 << 20
    rows = [[r["peers"], _short(r["params"]), round(r["model_bytes"] / mib, 1),
             r["startup_seconds"], r["median_seconds"], min(r["round_seconds"]),
             max(r["round_seconds"]), statistics.median(r["aggregate_seconds"]),
             round(r["moved_bytes_per_round"] / r["median_seconds"] / mib),
             round(r["peak_rss_total_bytes"] / mib)]
            for r in results]
    print(f"Flower {info['versions'].get('flwr', '?')} FedAvg fit round, legacy gRPC, "
          f"{args.rounds} rounds each; {describe(info)}")
    print(table(["peers", "params", "model MiB", "startup s", "round s (median)", "min s",
                 "max s", "aggregate s", "moved MiB/s", "peak RSS MiB"], rows))
    path = write_json("flower_round", {"rounds": args.rounds, "transport": "grpc-bidi",
                                       "results": results}, args.json)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
