"""Blobs from other SLs' file servers: one HTTP/1.1 GET over mutual TLS per blob, the body read
straight into a buffer of the announced size, then checked against its SHA-256.

This is the hot path of a sync round (a leader fetches every contribution, every peer fetches
the merged model), so it speaks the little HTTP it needs on a plain TLS socket: a general
client spends twice the CPU per byte. Everything it reads is bounded: the header block, the
announced size (by the blob size limit) and the time of every socket operation."""

from __future__ import annotations

import socket
import ssl

from swarmlearning.weights import digest, new_buffer

MAX_HEAD = 64 << 10
PIECE = 1 << 20


class FetchError(RuntimeError):
    """A peer's blob could not be fetched or did not match its hash."""


class PeerFetcher:
    """Blobs from other SLs' file servers, verified against their SHA-256."""

    def __init__(self, context: ssl.SSLContext, max_bytes: int, timeout: float = 60.0,
                 connect_timeout: float = 5.0) -> None:
        self.context = context
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def close(self) -> None:
        """Nothing is kept open between fetches."""

    def fetch(self, host: str, port: int, name: str) -> bytearray | memoryview:
        """The blob `name` from the file server at host:port, checked against its name."""
        where = f"https://{host}:{port}/v1/blobs/{name}"
        try:
            data = self._get(host, port, f"/v1/blobs/{name}", where)
        except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
            raise FetchError(f"{where}: {exc or type(exc).__name__}") from None
        if digest(data) != name:
            raise FetchError(f"{where}: the content does not match its SHA-256 (tampered or "
                             "corrupt)")
        return data

    def _get(self, host: str, port: int, path: str, where: str) -> bytearray | memoryview:
        raw = socket.create_connection((host, port), timeout=self.connect_timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = self.context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        with sock:
            sock.settimeout(self.timeout)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         "Accept: application/octet-stream\r\nConnection: close\r\n\r\n"
                         .encode("ascii"))
            head, rest = _read_head(sock, where)
            size = self._length(head, where)
            data = new_buffer(size)
            view = memoryview(data)
            filled = min(len(rest), size)
            view[:filled] = rest[:filled]
            while filled < size:
                count = sock.recv_into(view[filled:], min(size - filled, PIECE))
                if not count:
                    raise FetchError(f"{where}: the peer closed the connection after {filled} "
                                     f"of {size} bytes")
                filled += count
            return data

    def _length(self, head: str, where: str) -> int:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise FetchError(f"{where}: not an HTTP answer")
        if parts[1] != "200":
            raise FetchError(f"{where}: HTTP {parts[1]}")
        fields = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if "transfer-encoding" in fields:
            raise FetchError(f"{where}: a {fields['transfer-encoding']} body; a blob is sent "
                             "with its length")
        announced = fields.get("content-length", "")
        if not announced.isdigit():
            raise FetchError(f"{where}: the answer does not say its length")
        size = int(announced)
        if size > self.max_bytes:
            raise FetchError(f"{where}: {size} bytes is over the {self.max_bytes} byte limit")
        return size


def _read_head(sock: ssl.SSLSocket, where: str) -> tuple[str, bytes]:
    """The status line and header fields, and whatever of the body came with them."""
    received = bytearray()
    while True:
        end = received.find(b"\r\n\r\n")
        if end >= 0:
            return received[:end].decode("latin-1"), bytes(received[end + 4:])
        if len(received) > MAX_HEAD:
            raise FetchError(f"{where}: the answer's header is over {MAX_HEAD} bytes")
        chunk = sock.recv(16 << 10)
        if not chunk:
            raise FetchError(f"{where}: the peer closed the connection before answering")
        received += chunk
