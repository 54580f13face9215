"""Serve ASGI apps with uvicorn behind mutual TLS, for every daemon of the swarm.

Sockets are bound before uvicorn starts, so a port in use is a clear error naming the port, not
a log line from deep inside uvicorn. The servers run until a stop event is set: the daemon
sets it from its SIGINT/SIGTERM handler (swarmlearning.lifecycle), under which the whole run
happens; uvicorn's own per-server signal capture is switched off. `on_ready` runs once all of
them listen.

uvicorn does not hand the client certificate to the application. The protocol class is wrapped
so that each connection records its peer's certificate, after the TLS handshake, under the
connection's (server address, client address) pair; `peer_certificate(scope)` finds it for a
request. The key is the TCP connection itself, so nothing a client sends can change whose
certificate a request is attributed to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import uvicorn

from swarmlearning.lifecycle import stop_on_signal

WORKER_THREADS = 256
STOP_POLL_SECONDS = 0.05  # how often the servers look at the stop event (uvicorn ticks at 0.1)
_PEERS: dict[tuple[Any, Any], bytes] = {}


class PortInUse(OSError):
    """A listening port could not be bound; the message names it."""


@dataclass(frozen=True)
class Listener:
    """One ASGI app on one address."""

    app: Any
    host: str
    port: int
    label: str


def bind(host: str, port: int, label: str) -> socket.socket:
    """A listening TCP socket, or PortInUse naming what could not be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port} for the {label}: "
                        f"{exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def peer_certificate(scope: dict[str, Any]) -> bytes | None:
    """The DER certificate the client of this request's connection presented, or None."""
    server, client = scope.get("server"), scope.get("client")
    if not server or not client:
        return None
    return _PEERS.get((tuple(server), tuple(client)))


def _recording(protocol_class: type) -> type:
    """`protocol_class` (uvicorn's HTTP protocol) recording each connection's peer certificate."""

    class PeerRecording(protocol_class):  # type: ignore[misc, valid-type]
        _peer_key: tuple[Any, Any] | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and self.server and self.client:
                self._peer_key = (tuple(self.server), tuple(self.client))
                _PEERS[self._peer_key] = ssl_object.getpeercert(binary_form=True)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._peer_key is not None:
                _PEERS.pop(self._peer_key, None)
            super().connection_lost(exc)

    return PeerRecording


class _QuietServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers: it runs under the daemon's lifecycle
    (swarmlearning.lifecycle.capture_signals), which stops it through serve_all's stop event."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's per-server capture, neutralised."""
        yield


def serve_all(listeners: list[Listener], tls: ssl.SSLContext,
              on_ready: Callable[[], None] = lambda: None,
              stop: threading.Event | None = None) -> None:
    """Run the listeners, each requiring TLS with `tls`, until `stop` is set; `on_ready` runs
    once all of them listen (not when a stop came first). The caller owns the signals: it sets
    `stop` from its SIGINT/SIGTERM handler. Without `stop`, serve_all makes one and stops on
    SIGINT or SIGTERM itself."""
    if stop is None:
        stop = threading.Event()
        with stop_on_signal(stop):
            serve_all(listeners, tls, on_ready, stop)
        return
    if stop.is_set():
        return
    sockets = [bind(item.host, item.port, item.label) for item in listeners]
    servers = []
    for item in listeners:
        config = uvicorn.Config(item.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        config.load()
        config.ssl = tls
        config.http_protocol_class = _recording(config.http_protocol_class)
        servers.append(_QuietServer(config))

    async def watch(event: threading.Event) -> None:
        while not event.is_set():
            await asyncio.sleep(STOP_POLL_SECONDS)
        for server in servers:
            server.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # long polls and batched writes each hold a worker thread while they wait
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        watcher = asyncio.create_task(watch(stop))
        tasks = [asyncio.create_task(server.serve(sockets=[sock]))
                 for server, sock in zip(servers, sockets, strict=True)]
        try:
            while not all(server.started for server in servers):
                if stop.is_set() or any(task.done() for task in tasks):
                    break
                await asyncio.sleep(0.01)
            else:
                await loop.run_in_executor(None, on_ready)
            await asyncio.gather(*tasks)
        finally:
            watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        for sock in sockets:
            sock.close()
