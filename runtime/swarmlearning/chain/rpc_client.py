"""web3 providers for Ethereum JSON-RPC: over HTTP(S) with httpx, so that the embedded chain's
JSON-RPC endpoint can require mutual TLS like every other port of the swarm, and over a
WebSocket (ws:// or wss://) for external nodes that offer one. `provider_for(url)` picks by the
URL's scheme."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
from typing import Any

import httpx
from web3.providers.base import JSONBaseProvider

MAX_MESSAGE = 64 << 20  # bytes of one WebSocket answer (a large eth_getLogs)


class RpcUnavailable(ConnectionError):
    """The JSON-RPC endpoint could not be reached; the message names it."""


class HttpxJsonRpcProvider(JSONBaseProvider):
    """JSON-RPC over one persistent httpx connection pool (thread-safe)."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = 30.0) -> None:
        super().__init__()
        self.url = url
        verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._http = httpx.Client(verify=verify, timeout=timeout)

    def make_request(self, method: Any, params: Any) -> Any:
        body = self.encode_rpc_request(method, params)
        try:
            response = self._http.post(self.url, content=body,
                                       headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise RpcUnavailable(f"Ethereum JSON-RPC at {self.url} is unreachable: "
                                 f"{exc or type(exc).__name__}") from None
        if response.status_code != 200:
            raise RpcUnavailable(f"Ethereum JSON-RPC at {self.url} answered HTTP "
                                 f"{response.status_code}: {response.text[:200]}")
        return json.loads(response.content)

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self.make_request("eth_chainId", [])
        except (RpcUnavailable, ValueError):
            return False
        return True

    def close(self) -> None:
        self._http.close()


class WebSocketJsonRpcProvider(JSONBaseProvider):
    """JSON-RPC over one WebSocket, one request at a time, connecting again (once per request)
    when the connection broke. web3 8 offers only an asynchronous WebSocket provider, and the
    SN's ledger is synchronous."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = 30.0) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self._ssl = ssl_context
        self._lock = threading.Lock()
        self._conn: Any = None
        self._ids = itertools.count(1)

    def _connect(self) -> Any:
        from websockets.sync.client import connect

        options: dict[str, Any] = {"open_timeout": self.timeout, "max_size": MAX_MESSAGE}
        if self.url.startswith("wss://"):
            options["ssl"] = self._ssl or ssl.create_default_context()
        return connect(self.url, **options)

    def make_request(self, method: Any, params: Any) -> Any:
        from websockets.exceptions import WebSocketException

        request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                           "id": request_id})
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.send(body)
                    while True:  # skip anything that is not this request's answer
                        answer = json.loads(self._conn.recv(timeout=self.timeout))
                        if isinstance(answer, dict) and answer.get("id") == request_id:
                            return answer
                except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                    self._drop()
                    if attempt == 2:
                        raise RpcUnavailable(f"Ethereum JSON-RPC at {self.url} is unreachable: "
                                             f"{exc or type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self.make_request("eth_chainId", [])
        except RpcUnavailable:
            return False
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close too
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def provider_for(url: str, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = 30.0) -> JSONBaseProvider:
    """The provider for a JSON-RPC URL: WebSocket for ws:// and wss://, HTTP for http:// and
    https://; anything else is a ValueError naming the URL."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("ws", "wss"):
        return WebSocketJsonRpcProvider(url, ssl_context, timeout)
    if scheme in ("http", "https"):
        return HttpxJsonRpcProvider(url, ssl_context, timeout)
    raise ValueError(f"--eth-rpc {url!r}: use an http://, https://, ws:// or wss:// URL")
