"""What an SL asks of its SN: httpx over mutual TLS, every loop bounded."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger("swarm.sl")
STOP_RETRY_SECONDS = 3.0  # how long a stopping node keeps trying an SN that does not answer


class SNError(RuntimeError):
    """The SN refused a request (status and reason) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SNClient:
    """The SN API, as used by an SL."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext,
                 retry_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = f"https://{host}:{port}"
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.sleep = sleep
        self._give_up_at: float | None = None
        self.http = httpx.Client(base_url=self.base, verify=context,
                                 timeout=httpx.Timeout(45.0, connect=5.0))

    def close(self) -> None:
        self.http.close()

    def stop_retrying_after(self, seconds: float) -> None:
        """From `seconds` from now on, no call waits for an SN that does not answer, calls in
        flight included: a stopping node's last reports share one short deadline."""
        self._give_up_at = self.clock() + seconds

    def call(self, method: str, path: str, payload: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One request. While the SN cannot be reached, or answers 503 (its chain is down or
        restarting), it is retried for retry_seconds, then raised as SNError (status 0 or
        503). A retried write that did land the first time is taken as a repeat: a check-in
        replaces the node's own, a registration overwrites, a second merge record for the
        round is refused with 409 (which the leader reads as "already recorded")."""
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, path, json=payload, params=params)
            except httpx.TransportError as exc:
                status, reason = 0, f"the SN at {self.base} is unreachable: {exc}"
            else:
                if response.status_code != 503:
                    break
                status, reason = 503, f"the SN at {self.base} is unavailable: " \
                                      f"{_detail(response)}"
            now = self.clock()
            if now - started >= self.retry_seconds or (
                    self._give_up_at is not None and now >= self._give_up_at):
                raise SNError(status, reason) from None
            if attempt in (1, 10) or attempt % 30 == 0:
                log.warning("%s; retrying", reason)
            self.sleep(min(1.0, 0.1 * attempt))
        if response.status_code >= 400:
            raise SNError(response.status_code,
                          f"SN refused {method} {path}: {_detail(response)}")
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
                     participants: list[str], final: bool,
                     rejected: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The leader's record of a round; `rejected` lists {uid, reason} of the contributions
        it left out (PERFDATA shows them)."""
        return self.call("POST", f"/v1/contracts/{quote(contract, safe='')}/merges",
                         {"round": number, "leader": leader, "merged": merged,
                          "participants": participants, "final": final,
                          "rejected": rejected or []})

    def progress(self, contract: str, report: dict[str, Any]) -> None:
        self.call("POST", f"/v1/contracts/{quote(contract, safe='')}/progress", report)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text
