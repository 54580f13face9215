"""The HTTP Swarm Network client against real sockets on 127.0.0.1: every failure becomes a
NetworkError that names the API server and says what went wrong."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from swci.network import HttpSwarmNetworkClient, NetworkError

from .test_golden import closed_port


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        routes = {
            "/v1/version": (200, "application/json", json.dumps({"version": "9.9"})),
            "/v1/tasks": (200, "text/html", "<html>not json</html>"),
            "/v1/contracts/nope": (404, "application/json",
                                   json.dumps({"detail": "no contract named nope"})),
        }
        status, kind, body = routes.get(self.path, (500, "text/plain", "boom"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1 in a thread, serving `handler`; yields its port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[int]:
    with http_server(Handler) as port:
        yield port


def test_reply_is_json(server):
    client = HttpSwarmNetworkClient("127.0.0.1", server, scheme="http")
    assert client.version() == {"version": "9.9"}


def test_http_error_names_server_status_and_reason(server):
    client = HttpSwarmNetworkClient("127.0.0.1", server, scheme="http")
    with pytest.raises(NetworkError) as info:
        client.contract_info("nope")
    assert str(info.value) == (f"API-Server at 127.0.0.1:{server} refused the request "
                               "(HTTP 404): no contract named nope")


def test_non_json_reply(server):
    client = HttpSwarmNetworkClient("127.0.0.1", server, scheme="http")
    with pytest.raises(NetworkError, match=r"sent a reply that is not JSON \(HTTP 200\)"):
        client.list_tasks()


def test_connection_refused():
    port = closed_port()
    client = HttpSwarmNetworkClient("127.0.0.1", port)
    with pytest.raises(NetworkError) as info:
        client.version()
    assert str(info.value) == f"Unable to contact API-Server at 127.0.0.1:{port} " \
                              "(connection refused)"


def test_silent_server_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = HttpSwarmNetworkClient("127.0.0.1", port, timeout=0.5)
        with pytest.raises(NetworkError, match=r"timed out after 0.5 s"):
            client.version()


def test_tls_to_a_plain_server_is_a_clear_error(server):
    client = HttpSwarmNetworkClient("127.0.0.1", server, timeout=2)
    with pytest.raises(NetworkError, match=rf"Unable to contact API-Server at 127.0.0.1:{server}"):
        client.version()
