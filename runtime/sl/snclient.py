"""What an SL asks of its SN: httpx over mutual TLS, every loop bounded."""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger("swarm.sl")


class SNError(RuntimeError):
    """The SN refused a request (status and reason) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SNClient:
    """The SN API, as used by an SL."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext,
                 retry_seconds: float = 60.0) -> None:
        self.base = f"https://{host}:{port}"
        self.retry_seconds = retry_seconds
        self.http = httpx.Client(base_url=self.base, verify=context,
                                 timeout=httpx.Timeout(45.0, connect=5.0))

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, payload: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One request; connection failures are retried for retry_seconds (the SN may be
        restarting), then raised as SNError(0, ...)."""
        deadline = time.monotonic() + self.retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, path, json=payload, params=params)
                break
            except httpx.TransportError as exc:
                if time.monotonic() >= deadline:
                    raise SNError(0, f"the SN at {self.base} is unreachable: {exc}") from None
                if attempt in (1, 10) or attempt % 30 == 0:
                    log.warning("SN at %s unreachable (%s); retrying", self.base, exc)
                time.sleep(min(1.0, 0.1 * attempt))
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise SNError(response.status_code, f"SN refused {method} {path}: {detail}")
        return response.json()

    def version(self) -> dict[str, Any]:
        return self.call("GET", "/v1/version")

    def register(self, uid: str, host: str, port: int, name: str, parent: str,
                 node_type: str = "SL", taskrunner: str = "") -> None:
        self.call("POST", "/v1/nodes", {"uid": uid, "node_type": node_type, "host": host,
                                        "port": port, "name": name, "parent": parent,
                                        "taskrunner": taskrunner})

    def deregister(self, uid: str) -> None:
        self.call("DELETE", f"/v1/nodes/{quote(uid, safe='')}")

    def alive(self, uid: str) -> None:
        self.call("POST", "/v1/nodes/alive", {"uids": [uid]})

    def contract(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/contracts/{quote(name, safe='')}/status")

    def round(self, contract: str, number: int | str = "current", wait: float = 0.0,
              seen: str = "") -> dict[str, Any]:
        return self.call("GET", f"/v1/contracts/{quote(contract, safe='')}/rounds/{number}",
                         params={"wait": wait, "seen": seen})

    def checkin(self, contract: str, uid: str, number: int, contribution: str, weight: int,
                flags: int, min_peers: int = 0) -> dict[str, Any]:
        return self.call("POST", f"/v1/contracts/{quote(contract, safe='')}/checkins",
                         {"uid": uid, "round": number, "contribution": contribution,
                          "weight": weight, "flags": flags, "min_peers": min_peers})

    def record_merge(self, contract: str, number: int, leader: str, merged: str,
                     participants: list[str], final: bool) -> dict[str, Any]:
        return self.call("POST", f"/v1/contracts/{quote(contract, safe='')}/merges",
                         {"round": number, "leader": leader, "merged": merged,
                          "participants": participants, "final": final})

    def progress(self, contract: str, report: dict[str, Any]) -> None:
        self.call("POST", f"/v1/contracts/{quote(contract, safe='')}/progress", report)
