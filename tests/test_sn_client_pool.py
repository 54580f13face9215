"""One connection, many requests: the SN client keeps its connection open between requests, and
a shell session keeps one client per API server and identity, so the polls of WAIT FOR
TASKRUNNER no longer make a TLS connection each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from swarmlearning.nodes.workspace import Workspace
from swci.interpreter import Interpreter, SessionState
from swci.network import HttpSwarmNetworkClient

from .test_network_client import http_server


class KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection open between requests
    peers: set[tuple[str, int]] = set()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        KeepAlive.peers.add(self.client_address)
        data = json.dumps({"TASK_STATE": "RUNNING", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    KeepAlive.peers = set()
    with http_server(KeepAlive) as port:
        yield port


def test_one_connection_serves_every_request(server: int):
    client = HttpSwarmNetworkClient("127.0.0.1", server, scheme="http")
    try:
        for _ in range(20):
            assert client.taskrunner_status("runner")["path"] == "/v1/taskrunners/runner/status"
            client.taskrunner_peers("runner")
    finally:
        client.close()
    assert len(KeepAlive.peers) == 1, KeepAlive.peers


def test_a_session_keeps_one_client_per_server_and_identity(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    for name in ("SWARM_ID_CERT", "SWARM_ID_KEY", "SWARM_ID_CAPATH", "SWARM_ID_CACERT"):
        monkeypatch.delenv(name, raising=False)
    interp = Interpreter(SessionState(cwd=tmp_path, workspace=tmp_path / "ws"))
    first = interp.client_factory("127.0.0.1", 30304)
    assert interp.client_factory("127.0.0.1", 30304) is first
    assert interp.client_factory("127.0.0.1", 31304) is not first
    # START SN makes the workspace PKI: from then on the session speaks as its swci identity
    Workspace(tmp_path / "ws").pki()
    second = interp.client_factory("127.0.0.1", 30304)
    assert second is not first and not first.http.is_closed  # a wait may still poll on it
    assert interp.client_factory("127.0.0.1", 30304) is second
    # a CA added to the capath (another organisation joins) is trusted from the next command
    Workspace(tmp_path / "ws").pki("org2")
    third = interp.client_factory("127.0.0.1", 30304)
    assert third is not second
    interp.close()
    assert first.http.is_closed and second.http.is_closed and third.http.is_closed
    assert interp.client_factory("127.0.0.1", 30304) is not third
