"""A web3 provider for Ethereum JSON-RPC over HTTP(S) with httpx, so that the embedded chain's
JSON-RPC endpoint can require mutual TLS like every other port of the swarm."""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
from web3.providers.base import JSONBaseProvider


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
