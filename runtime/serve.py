"""Serve ASGI apps with uvicorn behind mutual TLS, for every daemon of the swarm.

Sockets are bound before uvicorn starts, so a port in use is a clear error naming the port, not
a log line from deep inside uvicorn. SIGTERM and SIGINT stop every server of the process
gracefully; `on_ready` runs once all of them listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import uvicorn

WORKER_THREADS = 256


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


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to serve_all."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_all(listeners: list[Listener], tls: ssl.SSLContext,
              on_ready: Callable[[], None] = lambda: None,
              on_stop: Callable[[], None] = lambda: None) -> None:
    """Run the listeners until SIGTERM or SIGINT; every one requires TLS with `tls`."""
    sockets = [bind(item.host, item.port, item.label) for item in listeners]
    servers = []
    for item in listeners:
        config = uvicorn.Config(item.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5)
        config.load()
        config.ssl = tls
        servers.append(_QuietServer(config))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # long polls and batched writes each hold a worker thread while they wait
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS

        def stop() -> None:
            for server in servers:
                server.should_exit = True
            on_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        tasks = [asyncio.create_task(server.serve(sockets=[sock]))
                 for server, sock in zip(servers, sockets, strict=True)]
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)
        else:
            await loop.run_in_executor(None, on_ready)
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    finally:
        for sock in sockets:
            sock.close()
