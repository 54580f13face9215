"""The one client of the SN API: the shell, SLs, SWOPs and SNs joining a sentinel all use it.

One pooled httpx connection per client over mutual TLS, the paths from `swarmlearning.sn.routes`,
and typed errors: `SNUnreachable` (no answer: status 0), `SNRefused` (an HTTP error, with the
SN's reason), `SNUnavailable` (503: its chain is down or restarting) and `SNBadReply` (not JSON).
While the SN cannot be reached or answers 503, a call is retried for `retry_seconds` (0: never),
so a node rides out an SN restart and a shell command fails at once."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from swarmlearning.sn import routes
from swarmlearning.sn.routes import Route

log = logging.getLogger("swarm.snclient")
STOP_RETRY_SECONDS = 3.0  # how long a stopping node keeps trying an SN that does not answer


class SNError(RuntimeError):
    """A request the SN did not carry out; `status` is its HTTP status, 0 when none came."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SNUnreachable(SNError):
    """No answer: the connection failed or timed out. `cause` is what the transport said."""

    def __init__(self, message: str, cause: str, timed_out: bool) -> None:
        super().__init__(0, message)
        self.cause = cause
        self.timed_out = timed_out


class SNRefused(SNError):
    """The SN answered with an HTTP error; `detail` is its reason."""

    def __init__(self, status: int, message: str, detail: str) -> None:
        super().__init__(status, message)
        self.detail = detail


class SNUnavailable(SNRefused):
    """503: the SN is up but its chain is not (down or restarting)."""


class SNBadReply(SNError):
    """The SN answered, but not with JSON."""


class SNClient:
    """The SN API at host:port, one method per route."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, *,
                 scheme: str = "https", retry_seconds: float = 60.0, timeout: float = 45.0,
                 connect_timeout: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = f"{host}:{port}"
        self.base = f"{scheme}://{self.endpoint}"
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self._give_up_at: float | None = None
        self.http = httpx.Client(base_url=self.base,
                                 verify=context if context is not None else True,
                                 timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()

    def __enter__(self) -> SNClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop_retrying_after(self, seconds: float) -> None:
        """From `seconds` from now on, no call waits for an SN that does not answer, calls in
        flight included: a stopping node's last reports share one short deadline."""
        self._give_up_at = self.clock() + seconds

    # -- one request -------------------------------------------------------------------------------

    def call(self, route: Route, payload: Any = None, *, query: dict[str, Any] | None = None,
             **params: object) -> Any:
        """One request to `route` with its path parameters, retried as the class says. A
        retried write that did land the first time is taken as a repeat: a check-in replaces
        the node's own, a registration overwrites, a second merge record for the round is
        refused with 409 (which the leader reads as "already recorded")."""
        path = route.url(**params)
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(route.method, path, json=payload, params=query)
            except (httpx.TransportError, ssl.SSLError, OSError) as exc:
                cause = str(exc) or type(exc).__name__
                problem: SNError = SNUnreachable(
                    f"the SN at {self.base} is unreachable: {cause}", cause,
                    isinstance(exc, httpx.TimeoutException))
            else:
                if response.status_code != 503:
                    break
                detail = _detail(response)
                problem = SNUnavailable(503, f"the SN at {self.base} is unavailable: {detail}",
                                        detail)
            now = self.clock()
            if now - started >= self.retry_seconds or (
                    self._give_up_at is not None and now >= self._give_up_at):
                raise problem from None
            if attempt in (1, 10) or attempt % 30 == 0:
                log.warning("%s; retrying", problem)
            self.sleep(min(1.0, 0.1 * attempt))
        if response.status_code >= 400:
            detail = _detail(response)
            raise SNRefused(response.status_code,
                            f"SN refused {route.method} {path}: {detail}", detail)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise SNBadReply(response.status_code,
                             f"the SN at {self.base} sent a reply that is not JSON "
                             f"(HTTP {response.status_code})") from None

    # -- this SN and its nodes ---------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return self.call(routes.VERSION)

    def chain(self) -> dict[str, Any]:
        """Where the chain and the contracts are (asked of a sentinel by a joining SN)."""
        return self.call(routes.CHAIN)

    def list_nodes(self) -> list[dict[str, Any]]:
        return self.call(routes.NODES)

    def register(self, uid: str, host: str, port: int, name: str, parent: str,
                 node_type: str = "SL", taskrunner: str = "") -> None:
        self.call(routes.REGISTER_NODE, {"uid": uid, "node_type": node_type, "host": host,
                                         "port": port, "name": name, "parent": parent,
                                         "taskrunner": taskrunner})

    def deregister(self, uid: str) -> None:
        self.call(routes.DEREGISTER_NODE, uid=uid)

    def alive(self, uid: str) -> None:
        self.call(routes.NODES_ALIVE, {"uids": [uid]})

    # -- training contracts and sync rounds --------------------------------------------------------

    def list_contracts(self) -> list[dict[str, Any]]:
        return self.call(routes.CONTRACTS)

    def create_contract(self, name: str) -> dict[str, Any]:
        return self.call(routes.CREATE_CONTRACT, {"name": name})

    def contract_info(self, name: str) -> dict[str, Any]:
        return self.call(routes.CONTRACT, name=name)

    def contract_status(self, name: str) -> dict[str, Any]:
        return self.call(routes.CONTRACT_STATUS, name=name)

    def perfdata(self, name: str) -> list[dict[str, Any]]:
        return self.call(routes.PERFDATA, name=name)

    def reset_contract(self, name: str) -> dict[str, Any]:
        return self.call(routes.RESET_CONTRACT, name=name)

    def round(self, contract: str, number: int | str = "current", wait: float = 0.0,
              seen: str = "") -> dict[str, Any]:
        """A sync round; with `wait`, a long poll that answers once the round differs from
        the version `seen`."""
        return self.call(routes.ROUND, query={"wait": wait, "seen": seen}, name=contract,
                         round=number)

    def checkin(self, contract: str, uid: str, number: int, contribution: str, weight: int,
                flags: int, min_peers: int = 0) -> dict[str, Any]:
        return self.call(routes.CHECKIN, {"uid": uid, "round": number,
                                          "contribution": contribution, "weight": weight,
                                          "flags": flags, "min_peers": min_peers},
                         name=contract)

    def record_merge(self, contract: str, number: int, leader: str, merged: str,
                     participants: list[str], final: bool,
                     rejected: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The leader's record of a round; `rejected` lists {uid, reason} of the contributions
        it left out (PERFDATA shows them)."""
        return self.call(routes.RECORD_MERGE, {"round": number, "leader": leader,
                                               "merged": merged, "participants": participants,
                                               "final": final, "rejected": rejected or []},
                         name=contract)

    def progress(self, contract: str, report: dict[str, Any]) -> None:
        self.call(routes.PROGRESS, report, name=contract)

    # -- tasks -------------------------------------------------------------------------------------

    def list_tasks(self) -> list[dict[str, Any]]:
        return self.call(routes.TASKS)

    def create_task(self, header: dict[str, str]) -> dict[str, Any]:
        return self.call(routes.CREATE_TASK, header)

    def register_task(self, definition: dict[str, Any]) -> dict[str, Any]:
        return self.call(routes.REGISTER_TASK, definition)

    def append_task_body(self, name: str, index: int, line: str) -> dict[str, Any]:
        return self.call(routes.SET_TASK_BODY_LINE, {"index": index, "line": line}, name=name)

    def finalize_task(self, name: str) -> dict[str, Any]:
        return self.call(routes.FINALIZE_TASK, name=name)

    def delete_task(self, name: str) -> dict[str, Any]:
        return self.call(routes.DELETE_TASK, name=name)

    def task_info(self, name: str) -> dict[str, Any]:
        return self.call(routes.TASK, name=name)

    def task_body(self, name: str) -> list[str]:
        return self.call(routes.TASK_BODY, name=name)

    # -- taskrunners -------------------------------------------------------------------------------

    def list_taskrunners(self) -> list[dict[str, Any]]:
        return self.call(routes.TASKRUNNERS)

    def create_taskrunner(self, name: str) -> dict[str, Any]:
        return self.call(routes.CREATE_TASKRUNNER, {"name": name})

    def taskrunner_info(self, name: str) -> dict[str, Any]:
        return self.call(routes.TASKRUNNER, name=name)

    def assign_task(self, taskrunner: str, task: str, *, peers: int | None = None,
                    all_peers: bool = False, target: str | None = None) -> dict[str, Any]:
        return self.call(routes.ASSIGN_TASK, {"task": task, "peers": peers,
                                              "all_peers": all_peers, "target": target},
                         name=taskrunner)

    def taskrunner_status(self, name: str) -> dict[str, Any]:
        return self.call(routes.TASKRUNNER_STATUS, name=name)

    def taskrunner_peer_status(self, name: str, peer: int | str) -> dict[str, Any]:
        return self.call(routes.TASKRUNNER_PEER, name=name, peer=peer)

    def taskrunner_peers(self, name: str) -> list[dict[str, Any]]:
        return self.call(routes.TASKRUNNER_PEERS, name=name)

    def enroll(self, taskrunner: str, uid: str, group: str, units: int) -> dict[str, Any]:
        return self.call(routes.ENROLL, {"swop_uid": uid, "group": group, "units": units},
                         name=taskrunner)

    def report(self, taskrunner: str, uid: str, status: str, description: str,
               detail: str = "") -> dict[str, Any]:
        """An enrolled SWOP's status (RUNNING, COMPLETE, ERROR) with what it is doing."""
        return self.call(routes.REPORT_PEER_STATUS, {"status": status,
                                                     "description": description,
                                                     "detail": detail},
                         name=taskrunner, peer=uid)

    def reset_taskrunner(self, name: str) -> dict[str, Any]:
        return self.call(routes.RESET_TASKRUNNER, name=name)


def _detail(response: httpx.Response) -> str:
    """The SN's reason for an error answer: its `detail` (or `error`) field, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        body = body.get("detail") or body.get("error") or body
    return str(body)
