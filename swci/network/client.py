"""The Swarm Network client interface and its HTTPS implementation (mutual TLS, httpx).

Every SWCI command that needs a Swarm Network goes through SwarmNetworkClient. Failures become
NetworkError with a message that names the API server, e.g.
`Unable to contact API-Server at 127.0.0.1:30304 (connection refused)`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

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


def _q(name: str) -> str:
    return quote(str(name), safe="")


class HttpSwarmNetworkClient:
    """SwarmNetworkClient over HTTPS with mutual TLS."""

    def __init__(self, host: str, port: int, *, scheme: str = "https",
                 ssl_context: ssl.SSLContext | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = f"{host}:{port}"
        self._base = f"{scheme}://{self.endpoint}"
        self._ssl_context = ssl_context
        self._timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        verify: ssl.SSLContext | bool = self._ssl_context or True
        try:
            with httpx.Client(base_url=self._base, verify=verify, timeout=self._timeout) as http:
                response = http.request(method, path, json=payload)
        except httpx.TimeoutException:
            raise NetworkError(f"Unable to contact API-Server at {self.endpoint} (timed out after "
                               f"{self._timeout:g} s)") from None
        except (httpx.TransportError, ssl.SSLError, OSError) as exc:
            raise NetworkError(f"Unable to contact API-Server at {self.endpoint} "
                               f"({_reason(exc)})") from None
        if response.status_code >= 400:
            raise NetworkError(_detail(response, self.endpoint))
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise NetworkError(f"API-Server at {self.endpoint} sent a reply that is not JSON "
                               f"(HTTP {response.status_code})") from None

    def version(self) -> dict[str, Any]:
        return self._call("GET", "/v1/version")

    def list_nodes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/nodes")

    def list_contracts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/contracts")

    def create_contract(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/v1/contracts", {"name": name})

    def contract_info(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/contracts/{_q(name)}")

    def contract_status(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/contracts/{_q(name)}/status")

    def perfdata(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/contracts/{_q(name)}/perfdata")

    def reset_contract(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/contracts/{_q(name)}/reset")

    def list_tasks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/tasks")

    def create_task(self, header: dict[str, str]) -> dict[str, Any]:
        return self._call("POST", "/v1/tasks", header)

    def register_task(self, definition: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/tasks/definitions", definition)

    def append_task_body(self, name: str, index: int, line: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/tasks/{_q(name)}/body", {"index": index, "line": line})

    def finalize_task(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/tasks/{_q(name)}/finalize")

    def delete_task(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/tasks/{_q(name)}")

    def task_info(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/tasks/{_q(name)}")

    def task_body(self, name: str) -> list[str]:
        return self._call("GET", f"/v1/tasks/{_q(name)}/body")

    def list_taskrunners(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/taskrunners")

    def create_taskrunner(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/v1/taskrunners", {"name": name})

    def taskrunner_info(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/taskrunners/{_q(name)}")

    def assign_task(self, taskrunner: str, task: str, *, peers: int | None = None,
                    all_peers: bool = False, target: str | None = None) -> dict[str, Any]:
        payload = {"task": task, "peers": peers, "all_peers": all_peers, "target": target}
        return self._call("POST", f"/v1/taskrunners/{_q(taskrunner)}/assign", payload)

    def taskrunner_status(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/taskrunners/{_q(name)}/status")

    def taskrunner_peer_status(self, name: str, peer: int | str) -> dict[str, Any]:
        return self._call("GET", f"/v1/taskrunners/{_q(name)}/peers/{_q(str(peer))}")

    def taskrunner_peers(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/taskrunners/{_q(name)}/peers")

    def reset_taskrunner(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/taskrunners/{_q(name)}/reset")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
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


def _detail(response: httpx.Response, endpoint: str) -> str:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error") or body
    except ValueError:
        detail = response.text.strip()[:200] or response.reason_phrase
    return f"API-Server at {endpoint} refused the request (HTTP {response.status_code}): {detail}"


def client_for(host: str, port: int, workspace: Path | None = None) -> SwarmNetworkClient:
    """The HTTPS client for an API server, with identity from HPE's SWARM_ID_* variables, or
    else the swci certificate of the local workspace's PKI when it has one."""
    from swci.network.tls import client_ssl_context

    return HttpSwarmNetworkClient(host, port, ssl_context=client_ssl_context(workspace=workspace))
