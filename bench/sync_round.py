"""Sync-round time of real SL daemons, against the time to move the round's bytes and against
Flower running the same exchange, in one run on one machine.

Ours: a workspace on a temporary directory gets a throwaway PKI, a sentinel SN and N SL daemons
on 127.0.0.1 (mutual TLS everywhere). N in-process ML clients (threads speaking the real local
channel) open a session each on a fresh training contract, do the initial sync, then `--rounds`
train syncs with random float32 weights of P parameters (4 tensors). A round's time runs from
the moment the first peer hands its weights to its SL until the last peer holds the merged model:
the local channel both ways, check-ins (batched per SN), the leader fetching N-1 contributions
over mTLS, the merge, the merge record on the chain, and N-1 downloads of the merged model.

The byte-move floor is what any exchange with one aggregator among the peers must move: N-1
contributions to it and N-1 merged models back, 2 x (N-1) x model bytes, at the loopback
bandwidth measured in this process over one TCP stream (plain, and again over TLS with the
swarm's own certificates). A third floor adds what content addressing must compute on top of
the TLS move: 3N-1 model-sized SHA-256 digests (each peer names its contribution, the leader
checks N-1 and names the merge, N-1 followers check it), at the one-core rate measured here.
Flower: `flower_round.flower_round` (bench/flower_round.py), one
server and N client processes over Flower's gRPC, FedAvg, zero local epochs; it is skipped
where its measured memory appetite (about 25 x N x model bytes) would not fit in the memory
available now, and so are our cases that would not (about 5 x N x model bytes).

Run: .venv/bin/python bench/sync_round.py [--peers 2,4,8,16] [--sizes 1e6,1e7] [--rounds 3]
                                          [--no-flower] [--json bench/results/sync_round.json]
The full grid of docs/benchmarks.md: --sizes 1e6,1e7,5e7.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from common import create_contract, describe, free_port, table, write_json

from swarmlearning.identity.tls import client_context, server_context
from swarmlearning.ml.channel import ChannelClient
from swarmlearning.nodes.workspace import Workspace
from swarmlearning.weights import to_bytes

FLOWER_APPETITE = 25  # model copies per peer that Flower's processes hold at their peak
OUR_APPETITE = 5  # ours: the ML's model and answer, the SL's two blobs, the leader's share


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _stream(total: int, chunk: int, wrap_server: Any = None, wrap_client: Any = None) -> float:
    """Bytes per second through one TCP stream on 127.0.0.1 (optionally TLS-wrapped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    done = threading.Event()

    def sink() -> None:
        conn, _ = listener.accept()
        if wrap_server is not None:
            conn = wrap_server(conn)
        with conn:
            buffer = bytearray(chunk)
            received = 0
            while received < total:
                count = conn.recv_into(buffer)
                if not count:
                    break
                received += count
        done.set()

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    payload = memoryview(bytes(chunk))
    client = socket.create_connection(("127.0.0.1", port))
    if wrap_client is not None:
        client = wrap_client(client)
    with client:
        started = time.perf_counter()
        sent = 0
        while sent < total:
            client.sendall(payload)
            sent += len(payload)
        done.wait(120)
        elapsed = time.perf_counter() - started
    thread.join(timeout=10)
    listener.close()
    return total / elapsed


def loopback_bandwidth(workspace: Workspace | None = None, total: int = 256 << 20,
                       chunk: int = 4 << 20, repeat: int = 3) -> dict[str, float]:
    """Best of `repeat` one-stream transfers: plain TCP, and TLS with the swarm's identity."""
    result = {"tcp": max(_stream(total, chunk) for _ in range(repeat))}
    if workspace is not None:
        identity = workspace.identity("sl")
        server, client = server_context(identity), client_context(identity)
        result["tls"] = max(_stream(
            total, chunk, lambda s: server.wrap_socket(s, server_side=True),
            lambda s: client.wrap_socket(s, server_hostname="127.0.0.1"))
            for _ in range(repeat))
    return result


def hash_rate(size: int = 40 << 20, repeat: int = 3) -> float:
    """SHA-256 bytes per second on one core, best of `repeat` (what content addressing costs)."""
    data = np.random.default_rng(0).bytes(size)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        hashlib.sha256(data).digest()
        best = min(best, time.perf_counter() - started)
    return size / best


def hashed_copies(peers: int) -> int:
    """Model-sized SHA-256 computations a round needs: each peer names its contribution (N),
    the leader checks the N-1 it fetches and names the merged model (1), and N-1 followers
    check the merged model they fetch."""
    return 3 * peers - 1


def model(params: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [params // 2, params // 4, params // 8]
    sizes.append(params - sum(sizes))
    return {f"layer{i}": rng.standard_normal(n, dtype=np.float32) for i, n in enumerate(sizes)}


def run_case(workspace: Workspace, peers: int, params: int, rounds: int) -> dict:
    names = [f"sl-{peers}-{params}-{i}" for i in range(peers)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # start them a few at a time
        list(pool.map(lambda name: workspace.start_sl(name, fs_port=free_port(), timeout=180),
                      names))
    contract = f"bench-{peers}-{params}-{int(time.time() * 1000)}"

    sentinel = workspace.running_sentinel()
    assert sentinel is not None
    create_contract(workspace, contract)
    blobs = [to_bytes(model(params, seed)) for seed in range(peers)]
    sent_at: list[list[float]] = [[0.0] * rounds for _ in range(peers)]
    got_at: list[list[float]] = [[0.0] * rounds for _ in range(peers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(peers)

    def ml(index: int) -> None:
        try:
            client = ChannelClient(str(workspace.root / "data" / names[index] / "channel.sock"))
            client.request("open", params={"syncFrequency": 1, "minPeers": peers,
                                           "trainingContract": contract,
                                           "checkinModelOnTrainEnd": "inactive"})
            client.request("sync", blobs[index], kind="init", completed_epochs=0)
            for number in range(rounds):
                barrier.wait(timeout=300)
                sent_at[index][number] = time.perf_counter()
                client.request("sync", blobs[index], kind="train", completed_epochs=0)
                got_at[index][number] = time.perf_counter()
            client.request("close", blobs[index], mode="inactive", completed_epochs=1)
            client.close()
        except BaseException as exc:  # noqa: BLE001 - reported after the threads end
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=ml, args=(i,)) for i in range(peers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    for name in names:
        workspace.stop(name)
    if errors:
        raise RuntimeError(f"{peers} peers x {params}: {errors[0]}")
    times = [max(got_at[i][r] for i in range(peers)) - min(sent_at[i][r] for i in range(peers))
             for r in range(rounds)]
    return {"peers": peers, "params": params, "model_bytes": len(blobs[0]),
            "round_seconds": times, "median_seconds": statistics.median(times)}


def _short(number: int) -> str:
    return f"{number / 1e6:g}M"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="2,4,8,16")
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-flower", action="store_true", help="skip the Flower runs")
    parser.add_argument("--json", default=None, help="default: bench/results/sync_round.json")
    args = parser.parse_args(argv)
    peer_counts = [int(p) for p in args.peers.split(",")]
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    os.environ.setdefault("SL_WAIT_FOR_FULL_QUORUM_SECONDS", "30")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "ws")
        workspace.start_sn("sentinel", sentinel=True, api_port=free_port(),
                           p2p_port=free_port(), timeout=120)
        try:
            bandwidth = loopback_bandwidth(workspace)
            bandwidth["sha256"] = hash_rate()
            print(f"loopback, one stream: TCP {bandwidth['tcp'] / 1e9:.2f} GB/s, TLS "
                  f"{bandwidth['tls'] / 1e9:.2f} GB/s; SHA-256 on one core "
                  f"{bandwidth['sha256'] / 1e9:.2f} GB/s", flush=True)
            for params in sizes:
                for peers in peer_counts:
                    rows.append(_case(workspace, peers, params, args, bandwidth))
        finally:
            workspace.stop_all()
    print(f"\n{describe()}; loopback one stream: TCP {bandwidth['tcp'] / 1e9:.2f} GB/s, "
          f"TLS {bandwidth['tls'] / 1e9:.2f} GB/s; SHA-256 {bandwidth['sha256'] / 1e9:.2f} GB/s")
    print(table(["peers", "params", "ours s", "bytes (TCP) s", "ours/bytes", "bytes (TLS) s",
                 "ours/bytes TLS", "TLS + SHA-256 s", "ours/that", "Flower s", "Flower/ours"],
                [[r["peers"], _short(r["params"]), r.get("median_seconds"),
                  r.get("byte_move_seconds"), r.get("ratio"), r.get("byte_move_tls_seconds"),
                  r.get("ratio_tls"), r.get("secure_floor_seconds"), r.get("ratio_secure"),
                  r.get("flower_median_seconds"), r.get("flower_ratio")]
                 for r in rows]))
    path = write_json("sync_round", {"loopback_bytes_per_second": bandwidth["tcp"],
                                     "loopback_tls_bytes_per_second": bandwidth["tls"],
                                     "sha256_bytes_per_second": bandwidth["sha256"],
                                     "rounds": args.rounds, "rows": rows}, args.json)
    print(f"wrote {path}")
    return 0


def _case(workspace: Workspace, peers: int, params: int, args: argparse.Namespace,
          bandwidth: dict[str, float]) -> dict[str, Any]:
    model_bytes = 4 * params
    free = available_memory()
    row: dict[str, Any] = {"peers": peers, "params": params, "model_bytes": model_bytes}
    if OUR_APPETITE * peers * model_bytes > 0.8 * free:
        row["skipped"] = f"needs about {OUR_APPETITE * peers * model_bytes / 2**30:.0f} GiB"
        print(f"{peers:>3} peers x {_short(params)}: skipped ({row['skipped']})", flush=True)
        return row
    row.update(run_case(workspace, peers, params, args.rounds))
    moved = 2 * (peers - 1) * row["model_bytes"]
    row["byte_move_seconds"] = moved / bandwidth["tcp"]
    row["byte_move_tls_seconds"] = moved / bandwidth["tls"]
    row["ratio"] = row["median_seconds"] / row["byte_move_seconds"]
    row["ratio_tls"] = row["median_seconds"] / row["byte_move_tls_seconds"]
    row["secure_floor_seconds"] = (row["byte_move_tls_seconds"] + hashed_copies(peers) *
                                   row["model_bytes"] / bandwidth["sha256"])
    row["ratio_secure"] = row["median_seconds"] / row["secure_floor_seconds"]
    line = (f"{peers:>3} peers x {_short(params)}: round {row['median_seconds']:.3f} s "
            f"(median of {args.rounds}); byte move {row['byte_move_seconds']:.3f} s; ratio "
            f"{row['ratio']:.2f}")
    if not args.no_flower:
        if FLOWER_APPETITE * peers * model_bytes > 0.8 * available_memory():
            row["flower_skipped"] = (f"needs about "
                                     f"{FLOWER_APPETITE * peers * model_bytes / 2**30:.0f} GiB")
            line += f"; Flower skipped ({row['flower_skipped']})"
        else:
            from flower_round import flower_round

            flower = flower_round(peers, params, args.rounds)
            row["flower_median_seconds"] = flower["median_seconds"]
            row["flower_round_seconds"] = flower["round_seconds"]
            row["flower_startup_seconds"] = flower["startup_seconds"]
            row["flower_ratio"] = flower["median_seconds"] / row["median_seconds"]
            line += (f"; Flower {flower['median_seconds']:.3f} s "
                     f"({row['flower_ratio']:.1f}x ours)")
    print(line, flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
