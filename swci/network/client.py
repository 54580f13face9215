"""The Swarm Network client interface, and its implementation: the runtime's one SN client.

Every SWCI command that needs a Swarm Network goes through SwarmNetworkClient. Failures become
NetworkError with a message that names the API server, e.g.
`Unable to contact API-Server at 127.0.0.1:30304 (connection refused)`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

from swarmlearning.sn.client import SNBadReply, SNClient, SNRefused, SNUnreachable
from swarmlearning.sn.routes import Route

DEFAULT_TIMEOUT = 10.0


class NetworkError(Exception):
    """A Swarm Network request that failed; the message names the API server."""


class SwarmNetworkClient(Protocol):
    """What SWCI needs from a Swarm Network API server."""

    endpoint: str

    def version(self) -> dict[str, Any]: ...
    def list_nodes(self) -> list[dict[str, Any]]: ...
    def list_contracts(self) -> list[dict[str, Any]]: ...
    def create_contract(self, name: str) -> dict[str, Any]: ...
    def contract_info(self, name: str) -> dict[str, Any]: ...
    def contract_status(self, name: str) -> dict[str, Any]: ...
    def perfdata(self, name: str) -> list[dict[str, Any]]: ...
    def reset_contract(self, name: str) -> dict[str, Any]: ...
    def list_tasks(self) -> list[dict[str, Any]]: ...
    def create_task(self, header: dict[str, str]) -> dict[str, Any]: ...
    def register_task(self, definition: dict[str, Any]) -> dict[str, Any]: ...
    def append_task_body(self, name: str, index: int, line: str) -> dict[str, Any]: ...
    def finalize_task(self, name: str) -> dict[str, Any]: ...
    def delete_task(self, name: str) -> dict[str, Any]: ...
    def task_info(self, name: str) -> dict[str, Any]: ...
    def task_body(self, name: str) -> list[str]: ...
    def list_taskrunners(self) -> list[dict[str, Any]]: ...
    def create_taskrunner(self, name: str) -> dict[str, Any]: ...
    def taskrunner_info(self, name: str) -> dict[str, Any]: ...
    def assign_task(self, taskrunner: str, task: str, *, peers: int | None = None,
                    all_peers: bool = False, target: str | None = None) -> dict[str, Any]: ...
    def taskrunner_status(self, name: str) -> dict[str, Any]: ...
    def taskrunner_peer_status(self, name: str, peer: int | str) -> dict[str, Any]: ...
    def taskrunner_peers(self, name: str) -> list[dict[str, Any]]: ...
    def reset_taskrunner(self, name: str) -> dict[str, Any]: ...


class HttpSwarmNetworkClient(SNClient):
    """SwarmNetworkClient over HTTPS with mutual TLS: the runtime's SN client, without retries
    (a command fails at once), its errors worded as HPE's shell words them."""

    def __init__(self, host: str, port: int, *, scheme: str = "https",
                 ssl_context: ssl.SSLContext | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(host, port, ssl_context, scheme=scheme, retry_seconds=0.0,
                         timeout=timeout, connect_timeout=timeout)

    def call(self, route: Route, payload: Any = None, *, query: dict[str, Any] | None = None,
             **params: object) -> Any:
        try:
            return super().call(route, payload, query=query, **params)
        except SNUnreachable as exc:
            if exc.timed_out:
                raise NetworkError(f"Unable to contact API-Server at {self.endpoint} (timed out "
                                   f"after {self.timeout:g} s)") from None
            raise NetworkError(f"Unable to contact API-Server at {self.endpoint} "
                               f"({_reason(exc.cause)})") from None
        except SNRefused as exc:
            raise NetworkError(f"API-Server at {self.endpoint} refused the request "
                               f"(HTTP {exc.status}): {exc.detail}") from None
        except SNBadReply as exc:
            raise NetworkError(f"API-Server at {self.endpoint} sent a reply that is not JSON "
                               f"(HTTP {exc.status})") from None


def _reason(text: str) -> str:
    """A transport's failure in a few words, where it is a common one."""
    lowered = text.lower()
    for needle, reason in (("refused", "connection refused"),
                           ("name or service not known", "host name not found"),
                           ("nodename nor servname", "host name not found"),
                           ("temporary failure in name resolution", "host name not found"),
                           ("certificate verify failed", "certificate not trusted"),
                           ("unreachable", "network unreachable")):
        if needle in lowered:
            return reason
    return text


def client_for(host: str, port: int, workspace: Path | None = None) -> SwarmNetworkClient:
    """The HTTPS client for an API server, with identity from HPE's SWARM_ID_* variables, or
    else the swci certificate of the local workspace's PKI when it has one."""
    from swci.network.tls import client_ssl_context

    return HttpSwarmNetworkClient(host, port, ssl_context=client_ssl_context(workspace=workspace))
