"""What the one pooled SN client saves the shell: the polls of WAIT FOR TASKRUNNER over one kept
TLS connection, against a new connection for every request, which is what the shell did before,
in the same run against the same SN.

A fresh workspace on a temporary directory gets a throwaway PKI and a sentinel SN on 127.0.0.1
(mutual TLS). Then, for `--polls` polls, each poll being what one turn of the wait asks
(GET taskrunner status, GET taskrunner peers, GET nodes, on HPE's default taskrunner):

- pooled: the shell's client as the interpreter keeps it (`swci.network.client_for`, once);
- new each time: one TLS context, and a new connection (a TLS handshake) for every request,
  which is what the wait's client did before the SN clients became one.

The two are interleaved in blocks of `--block` polls, so drift of the machine hits both alike.
Reported: the median and p95 of one poll, and the ratio. The SN is stopped by pid at the end.

Run: .venv/bin/python bench/sn_client.py [--polls 200] [--block 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import describe, free_port, percentile, table, write_json

from swarmlearning.defaults import DEFAULT_TASKRUNNER
from swarmlearning.nodes.workspace import Workspace
from swci.network import HttpSwarmNetworkClient, SwarmNetworkClient, client_for
from swci.network.tls import client_ssl_context


def poll(client: SwarmNetworkClient) -> None:
    """One turn of WAIT FOR TASKRUNNER's loop."""
    client.taskrunner_status(DEFAULT_TASKRUNNER)
    client.taskrunner_peers(DEFAULT_TASKRUNNER)
    client.list_nodes()


class Fresh:
    """A new connection for every request, over one TLS context: what WAIT FOR TASKRUNNER did
    before the pool (its client opened an httpx client, and a connection, per request)."""

    def __init__(self, host: str, port: int, workspace: Path) -> None:
        self.host, self.port = host, port
        self.context = client_ssl_context(workspace=workspace)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            client = HttpSwarmNetworkClient(self.host, self.port, ssl_context=self.context)
            try:
                return getattr(client, name)(*args, **kwargs)
            finally:
                client.close()
        return call


def measure(polls: int, block: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swci-bench-client-") as tmp:
        workspace = Workspace(Path(tmp) / "ws")
        workspace.start_sn("sn1", api_port=free_port(), p2p_port=free_port())
        try:
            record = workspace.record("sn1")
            host, port = record.host, int(record.ports["api"])
            pooled = client_for(host, port, workspace.root)
            fresh = Fresh(host, port, workspace.root)
            for client in (pooled, fresh):  # warm both paths once
                poll(client)  # type: ignore[arg-type]
            times: dict[str, list[float]] = {"pooled": [], "new each time": []}
            done = 0
            while done < polls:
                for name, client in (("pooled", pooled), ("new each time", fresh)):
                    for _ in range(min(block, polls - done)):
                        began = time.perf_counter()
                        poll(client)  # type: ignore[arg-type]
                        times[name].append(time.perf_counter() - began)
                done += min(block, polls - done)
            pooled.close()
        finally:
            workspace.stop_all()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200, help="polls of each kind")
    parser.add_argument("--block", type=int, default=20, help="polls per interleaved block")
    parser.add_argument("--json", default=None, help="where to write the results")
    args = parser.parse_args(argv)
    print(describe(), flush=True)
    times = measure(args.polls, args.block)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [[name, len(values), f"{medians[name] * 1000:.2f}",
             f"{percentile(values, 95) * 1000:.2f}"] for name, values in times.items()]
    print(f"\nOne poll of WAIT FOR TASKRUNNER (3 requests), {args.polls} polls each, "
          f"interleaved in blocks of {args.block}")
    print(table(["client", "polls", "median ms", "p95 ms"], rows))
    ratio = medians["new each time"] / medians["pooled"]
    print(f"\na new client per request takes {ratio:.1f}x the pooled client's time per poll")
    path = write_json("sn_client", {"polls": args.polls, "block": args.block, "times": times,
                                    "median": medians, "ratio": ratio}, args.json)
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
