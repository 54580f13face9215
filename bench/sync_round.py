"""Sync-round latency of real SL daemons, against the time to move the round's bytes.

A workspace on a temporary directory gets a throwaway PKI, a sentinel SN and N SL daemons on
127.0.0.1 (mutual TLS everywhere). N in-process ML clients (threads speaking the real local
channel) open a session each on a fresh training contract, do the initial sync, then `--rounds`
train syncs with random float32 weights of P parameters (4 tensors). A round's time is from the
moment the first peer sends its weights until the last peer holds the merged model: check-ins
(one batched transaction per SN), leader election, the leader fetching N-1 contributions over
mTLS, the merge, the merge record, and N-1 downloads of the merged model. The local channel
transfer (weights into and out of the SL) is included.

The byte-move floor is the contribution and merged bytes, 2 x (N-1) x 4P, at the loopback
bandwidth measured in this process (one TCP stream over 127.0.0.1, 256 MiB). The ratio round /
floor says what the protocol costs on top of moving the bytes.

Run: .venv/bin/python bench/sync_round.py [--peers 2,4] [--sizes 1e6,1e7] [--rounds 3]
                                          [--json bench/results/sync_round.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from swarmlearning.ml.channel import ChannelClient
from swarmlearning.nodes.workspace import Workspace
from swarmlearning.weights import to_bytes

RESULTS = Path(__file__).with_name("results")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_bandwidth(total: int = 256 << 20, chunk: int = 4 << 20) -> float:
    """Bytes per second through one TCP stream on 127.0.0.1."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    received = [0]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while received[0] < total:
                data = conn.recv(chunk)
                if not data:
                    break
                received[0] += len(data)

    thread = threading.Thread(target=sink)
    thread.start()
    payload = b"\0" * chunk
    with socket.create_connection(("127.0.0.1", port)) as client:
        started = time.perf_counter()
        sent = 0
        while sent < total:
            client.sendall(payload)
            sent += len(payload)
        thread.join()
        elapsed = time.perf_counter() - started
    server.close()
    return total / elapsed


def model(params: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [params // 2, params // 4, params // 8]
    sizes.append(params - sum(sizes))
    return {f"layer{i}": rng.standard_normal(n, dtype=np.float32) for i, n in enumerate(sizes)}


def run_case(workspace: Workspace, peers: int, params: int, rounds: int) -> dict:
    names = [f"sl-{peers}-{params}-{i}" for i in range(peers)]
    for name in names:
        workspace.start_sl(name, fs_port=free_port(), timeout=120)
    contract = f"bench-{peers}-{params}-{int(time.time() * 1000)}"

    sentinel = workspace.running_sentinel()
    assert sentinel is not None
    _create_contract(workspace, sentinel.host, sentinel.ports["api"], contract)
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


def _create_contract(workspace: Workspace, host: str, port: int, name: str) -> None:
    import httpx

    from swarmlearning.identity.tls import client_context

    context = client_context(workspace.identity("swci"))
    with httpx.Client(base_url=f"https://{host}:{port}", verify=context, timeout=30) as http:
        http.post("/v1/contracts", json={"name": name}).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="2,4")
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=str(RESULTS / "sync_round.json"))
    args = parser.parse_args(argv)
    peer_counts = [int(p) for p in args.peers.split(",")]
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    bandwidth = loopback_bandwidth()
    os.environ.setdefault("SL_WAIT_FOR_FULL_QUORUM_SECONDS", "30")
    rows = []
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "ws")
        workspace.start_sn("sentinel", sentinel=True, api_port=free_port(),
                           p2p_port=free_port(), timeout=120)
        try:
            for params in sizes:
                for peers in peer_counts:
                    row = run_case(workspace, peers, params, args.rounds)
                    floor = 2 * (peers - 1) * row["model_bytes"] / bandwidth
                    row["byte_move_seconds"] = floor
                    row["ratio"] = row["median_seconds"] / floor
                    rows.append(row)
                    print(f"{peers:>3} peers x {params / 1e6:>5.0f}M params: round "
                          f"{row['median_seconds']:.3f} s (median of {args.rounds}); byte move "
                          f"{floor:.3f} s; ratio {row['ratio']:.1f}", flush=True)
        finally:
            workspace.stop_all()
    print(f"\nloopback bandwidth {bandwidth / 1e9:.2f} GB/s; {os.cpu_count()} cores; "
          f"{platform.processor() or platform.machine()}")
    print(f"{'peers':>5} {'params':>8} {'round s':>9} {'bytes s':>9} {'ratio':>6}")
    for row in rows:
        print(f"{row['peers']:>5} {row['params'] / 1e6:>7.0f}M {row['median_seconds']:>9.3f} "
              f"{row['byte_move_seconds']:>9.3f} {row['ratio']:>6.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"loopback_bytes_per_second": bandwidth,
                                           "cores": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
