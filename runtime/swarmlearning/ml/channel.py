"""The local channel between an ML program (SwarmCallback) and its SL node.

One Unix stream socket, named by `SL_REQUEST_CHANNEL`. Each message is a frame: a 4-byte
big-endian header length, an 8-byte big-endian payload length, a JSON header and the payload
(safetensors bytes, or nothing). Every header has `type`; requests also carry `version`.

Requests (ML -> SL) and their answers:
- `open` {params}: the session's SwarmCallback parameters -> `ok` {session}
- `sync` {kind: "init" | "train", completed_epochs} + weights -> `merged` {round, leader, over}
  + merged weights. `init` makes every peer start from the same weights (or, for a late joiner,
  from the latest merged model).
- `progress` {completed_epochs, total_epochs, loss, metric} -> `ok`
- `close` {mode} + final weights -> `final` {round} + the swarm's final weights, once every peer
  has finished.
While a request waits (quorum, leader), the SL may send any number of `waiting` {message}
frames before the answer. A refused request is answered `error` {message}.

The ML end may start first: it waits up to `SL_CHANNEL_WAIT_SECONDS` (30 s) for the socket.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from swarmlearning import jsonbody
from swarmlearning.weights import new_buffer

PROTOCOL_VERSION = 1
CHANNEL_ENV = "SL_REQUEST_CHANNEL"
WAIT_ENV = "SL_CHANNEL_WAIT_SECONDS"
DEFAULT_WAIT = 30.0
RETRY_SECONDS = 0.05
_PREFIX = struct.Struct(">IQ")
MAX_HEADER = 1 << 20


class ChannelError(RuntimeError):
    """The channel broke, or the SL refused a request (the message says why)."""


class FrameTooLarge(ChannelError):
    """A frame over the receiver's limits; its payload was not read."""


class BadFrame(ChannelError):
    """A whole frame was read, but its header is not a JSON object with a type (the channel is
    still in step: the next frame can be read)."""


def _read_exact(sock: socket.socket, size: int) -> bytearray | memoryview:
    """Exactly `size` bytes, received straight into one buffer (models are large)."""
    buffer = new_buffer(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        count = sock.recv_into(view[filled:], min(size - filled, 1 << 22))
        if not count:
            raise ChannelError("the SL closed the channel")
        filled += count
    return buffer


def send_frame(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one frame."""
    head = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(_PREFIX.pack(len(head), len(payload)) + head)
    if payload:
        sock.sendall(payload)


def recv_frame(sock: socket.socket,
               max_payload: int = 1 << 40) -> tuple[dict[str, Any], bytearray | memoryview]:
    """Read one frame; a malformed frame raises ChannelError."""
    head_len, payload_len = _PREFIX.unpack(_read_exact(sock, _PREFIX.size))
    if head_len > MAX_HEADER:
        raise FrameTooLarge(f"frame header too large ({head_len} B; the limit is "
                            f"{MAX_HEADER} B)")
    if payload_len > max_payload:
        raise FrameTooLarge(f"frame too large (payload {payload_len} B; the limit is "
                            f"{max_payload} B)")
    raw = bytes(_read_exact(sock, head_len))
    payload = _read_exact(sock, payload_len)
    try:
        header = jsonbody.loads(raw)
    except ValueError as exc:  # TooDeep is one
        raise BadFrame(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadFrame("frame header is not a JSON object with a type")
    return header, payload


def wait_seconds() -> float:
    """How long an ML program waits for its SL's channel (`SL_CHANNEL_WAIT_SECONDS`)."""
    text = os.environ.get(WAIT_ENV, "")
    try:
        return max(float(text), 0.0) if text else DEFAULT_WAIT
    except ValueError:
        raise ChannelError(f"{WAIT_ENV}={text!r} is not a number of seconds") from None


def _connect(path: str, wait: float) -> socket.socket:
    """A connected socket to the SL's channel. An ML program may start before its SL (a task
    starts both at once), so a channel that is not there yet, or not listening yet, is tried
    again until `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(wait, 1.0))
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait:g} s" if wait > 0 else ""
                raise ChannelError(f"cannot reach the SL node at {path} ({exc.strerror})"
                                   f"{waited}; is the SL running with this channel? "
                                   f"({WAIT_ENV} sets how long to wait)") from None
            time.sleep(RETRY_SECONDS)
            continue
        except OSError as exc:
            sock.close()
            raise ChannelError(f"cannot reach the SL node at {path} ({exc}); is the SL "
                               "running with this channel?") from None
        sock.settimeout(None)
        return sock


class ChannelClient:
    """The ML end: one request at a time, answered in order."""

    def __init__(self, path: str | None = None, connect_timeout: float | None = None,
                 on_waiting: Callable[[str], None] | None = None) -> None:
        self.path = path or os.environ.get(CHANNEL_ENV, "")
        if not self.path:
            raise ChannelError(f"{CHANNEL_ENV} is not set: it must name the SL node's channel "
                               "socket (or set SWARM_LOOPBACK=True to train without a swarm)")
        self.on_waiting = on_waiting
        self.sock = _connect(self.path, wait_seconds() if connect_timeout is None
                             else connect_timeout)

    def request(self, message_type: str, payload: bytes = b"", /,
                **fields: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request and return the answer, passing `waiting` frames to on_waiting."""
        send_frame(self.sock, {"type": message_type, "version": PROTOCOL_VERSION, **fields},
                   payload)
        while True:
            header, body = recv_frame(self.sock)
            if header["type"] == "waiting":
                if self.on_waiting:
                    self.on_waiting(str(header.get("message", "")))
                continue
            if header["type"] == "error":
                raise ChannelError(str(header.get("message", "the SL refused the request")))
            return header, body

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
