"""The Client class of the typed SWCI web API client and its transport: one ``POST /exec`` (or
``/uploadTaskDef``) per command over mutual TLS, the reply's CONTENT and DATA checked and its
failures raised as the errors of swci.client.errors, and a method per SWCI command that builds
the command text and returns the records of swci.client.records."""

from __future__ import annotations

import os
import re
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from swarmlearning.defaults import SN_API_PORT, SWCI_WEB_PORT, workspace_root
from swarmlearning.identity.pki import PkiLayout
from swarmlearning.identity.tls import Identity, IdentityError, client_context
from swci.client.errors import CommandError, SwciProtocolError, SwciRefused, SwciUnavailable
from swci.client.outcomes import TaskFailed, WaitTimeout
from swci.client.quoting import port_argument, quote
from swci.client.records import (
    CommandResult,
    ContextInfo,
    Node,
    PeerStatus,
    TaskInfo,
    TaskrunnerStatus,
    TaskrunnerSummary,
    TaskSummary,
    json_kind,
)

__all__ = ["DEFAULT_PORT", "DEFAULT_SN_API_PORT", "DEFAULT_TIMEOUT", "DEFAULT_WAIT_TIMEOUT",
           "Client"]

DEFAULT_PORT = SWCI_WEB_PORT
DEFAULT_SN_API_PORT = SN_API_PORT
DEFAULT_TIMEOUT = 60.0  # seconds for one HTTP request
DEFAULT_WAIT_TIMEOUT = 7200.0  # seconds: the shell's default maximum wait is 120 minutes

# OpenSSL reasons of the alerts a server sends when it will not accept our certificate.
_REFUSAL_REASONS = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
})
_UPLOADED = re.compile(r"^TASK DEFINITION UPLOADED\s*:\s*(?P<name>.+?)\s*$")
_REGISTERED = re.compile(r"^Task Registered\s*:\s*(?P<name>.+?)\s*$")

_T = TypeVar("_T")


class Client:
    """A connection to an SWCI web server, over mutual TLS.

    ``cert`` and ``key`` are this client's certificate and (unencrypted) key; the server is
    verified against ``capath`` (a directory of CA certificates) and/or ``cacert`` (one CA file),
    without a host name check: the certificates of a Swarm PKI name components, not hosts.
    Bad paths raise ``swarmlearning.identity.IdentityError`` (a ValueError) naming the file.
    ``timeout`` bounds each HTTP request, in seconds.

    ``_transport``, ``_clock`` and ``_sleep`` are for tests only: an ``httpx`` transport used
    instead of the network (``httpx.MockTransport``), and the monotonic clock and sleep that
    ``wait`` uses."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, cert: str | os.PathLike[str],
                 key: str | os.PathLike[str], capath: str | os.PathLike[str] | None = None,
                 cacert: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 _transport: httpx.BaseTransport | None = None,
                 _clock: Callable[[], float] | None = None,
                 _sleep: Callable[[float], None] | None = None) -> None:
        port_argument(port)
        if not host or any(c in host for c in "/?#@ \t\r\n"):
            raise ValueError(f"host must be a host name or IP address, not {host!r}")
        self.host = host
        self.port = port
        identity = Identity(cert=Path(cert), key=Path(key),
                            capath=Path(capath) if capath is not None else None,
                            cacert=Path(cacert) if cacert is not None else None)
        self.ssl_context: ssl.SSLContext = client_context(identity, check_hostname=False)
        netloc = f"[{host}]" if ":" in host else host
        self._http = httpx.Client(base_url=f"https://{netloc}:{port}", verify=self.ssl_context,
                                  timeout=timeout, transport=_transport)
        self._clock = _clock or time.monotonic
        self._sleep = _sleep or time.sleep

    @classmethod
    def from_workspace(cls, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                       workspace: str | os.PathLike[str] | None = None,
                       timeout: float = DEFAULT_TIMEOUT) -> Client:
        """A client with the swci identity of a local workspace's PKI (made by START SN), as
        the shell finds it: ``workspace``, else $SWARM_WORKSPACE, else ./.swarm."""
        root = workspace_root(workspace)
        layout = PkiLayout(root=root / "pki" / "cert", index=1)
        if not layout.cert("swci").exists():
            raise IdentityError(f"no swci certificate in the workspace {root}: expected "
                                f"{layout.cert('swci')} (START SN makes the workspace PKI)")
        return cls(host, port, cert=layout.cert("swci"), key=layout.key("swci"),
                   capath=layout.capath, timeout=timeout)

    def __repr__(self) -> str:
        return f"Client({self.host!r}, {self.port})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    @property
    def address(self) -> str:
        """host:port of the server."""
        return f"{self.host}:{self.port}"

    # -- transport ---------------------------------------------------------------------------

    def _post(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.post(path, **kwargs)
        except httpx.TransportError as exc:
            reason = _tls_refusal(exc)
            if reason is not None:
                raise SwciRefused(f"SWCI server {self.address} refused this client's certificate "
                                  f"({reason}); it must be signed by a CA the server "
                                  "trusts") from exc
            cause = str(exc) or type(exc).__name__
            if "CERTIFICATE_VERIFY_FAILED" in cause:
                cause = f"its certificate is not signed by a CA in capath/cacert ({cause})"
            raise SwciUnavailable(f"SWCI server {self.address} is unavailable for {what}: "
                                  f"{cause}") from exc

    def _reply(self, response: httpx.Response, what: str) -> CommandResult:
        """The CONTENT and DATA of a reply; raises on an ERROR line or an HTTP error."""
        status = response.status_code
        body = _json(response)
        content = body.get("CONTENT") if isinstance(body, dict) else None
        lines = ([str(line) for line in content] if isinstance(content, list) else None)
        error = next((line for line in lines or [] if line.startswith("ERROR ")), None)
        if status in (401, 403):
            reason = error or _snippet(response.text) or response.reason_phrase
            raise SwciRefused(f"SWCI server {self.address} refused {what} (HTTP {status}): "
                              f"{reason}", status_code=status)
        if lines is None:
            message = (f"SWCI server {self.address} answered {what} with HTTP {status}, not "
                       f"SWCI JSON: {_snippet(response.text) or '(empty)'}")
            if status in (502, 503, 504):
                raise SwciUnavailable(message)
            raise SwciProtocolError(message)
        if error is not None:
            raise CommandError(error, what, lines)
        if status >= 400:
            raise SwciProtocolError(f"SWCI server {self.address} answered {what} with HTTP "
                                    f"{status} but no ERROR line: {lines}")
        data = body.get("DATA") or {}
        if not isinstance(data, dict):
            raise SwciProtocolError(f"SWCI server {self.address}: DATA of {what} is "
                                    f"{json_kind(data)}, not an object")
        return CommandResult(lines=lines, data=data)

    # -- commands ----------------------------------------------------------------------------

    def run(self, command: str) -> CommandResult:
        """Run one SWCI command as it is written; its lines and DATA. Raises CommandError on
        the first ERROR line. Arguments in ``command`` must be quoted already (see quote)."""
        if not isinstance(command, str) or not command.strip():
            raise ValueError("command must be a non-empty string")
        response = self._post("/exec", repr(command), params={"cmd": command})
        return self._reply(response, command)

    def _data(self, command: str, kind: str, expected: type[_T]) -> _T:
        data = self.run(command).data
        if kind not in data:
            raise SwciProtocolError(f"SWCI server {self.address} sent no DATA {kind!r} for "
                                    f"{command}")
        value = data[kind]
        if not isinstance(value, expected):
            raise SwciProtocolError(f"DATA {kind!r} of {command} is {json_kind(value)}, not "
                                    f"{json_kind(expected())}")
        return value

    def nodes(self) -> list[Node]:
        """LIST NODES."""
        return [Node.from_wire(item) for item in self._data("LIST NODES", "nodes", list)]

    def tasks(self) -> list[TaskSummary]:
        """LIST TASKS."""
        return [TaskSummary.from_wire(item) for item in self._data("LIST TASKS", "tasks", list)]

    def task(self, name: str) -> TaskInfo:
        """GET TASK INFO <name>."""
        return TaskInfo.from_wire(self._data(f"GET TASK INFO {quote(name)}", "task", dict))

    def task_body(self, name: str) -> list[str]:
        """GET TASK BODY <name>: the body's lines as stored (line 0 is "---")."""
        body = self._data(f"GET TASK BODY {quote(name)}", "task_body", list)
        return [str(line) for line in body]

    def taskrunners(self) -> list[TaskrunnerSummary]:
        """LIST TASKRUNNERS."""
        return [TaskrunnerSummary.from_wire(item)
                for item in self._data("LIST TASKRUNNERS", "taskrunners", list)]

    def taskrunner_status(self, name: str) -> TaskrunnerStatus:
        """GET TASKRUNNER STATUS <name>."""
        return TaskrunnerStatus.from_wire(
            self._data(f"GET TASKRUNNER STATUS {quote(name)}", "taskrunner_status", dict))

    def taskrunner_peers(self, name: str) -> list[PeerStatus]:
        """LIST TASKRUNNER PEERS <name>."""
        return [PeerStatus.from_wire(item) for item in
                self._data(f"LIST TASKRUNNER PEERS {quote(name)}", "taskrunner_peers", list)]

    def taskrunner_peer(self, name: str, peer: int | str) -> PeerStatus:
        """GET TASKRUNNER PEER STATUS <name> <peer>: a peer by index (int) or SWOP UID (str)."""
        if isinstance(peer, bool) or not isinstance(peer, (int, str)):
            raise TypeError(f"peer must be an index (int) or a SWOP UID (str), not {peer!r}")
        if isinstance(peer, int):
            if peer < 0:
                raise ValueError(f"peer index must be 0 or more, not {peer}")
            which = str(peer)
        else:
            which = quote(peer)
        command = f"GET TASKRUNNER PEER STATUS {quote(name)} {which}"
        return PeerStatus.from_wire(self._data(command, "taskrunner_peer", dict))

    def contracts(self) -> list[Mapping[str, Any]]:
        """LIST CONTRACTS: each contract as the SN describes it."""
        items = self._data("LIST CONTRACTS", "contracts", list)
        return [_record(item, "LIST CONTRACTS") for item in items]

    def contract_status(self, name: str) -> Mapping[str, Any]:
        """GET CONTRACT STATUS <name>."""
        return self._data(f"GET CONTRACT STATUS {quote(name)}", "contract_status", dict)

    def perfdata(self, name: str) -> list[Mapping[str, Any]]:
        """PERFDATA <name>: one record per SL-ML pair of the training."""
        items = self._data(f"PERFDATA {quote(name)}", "perfdata", list)
        return [_record(item, "PERFDATA") for item in items]

    def contexts(self) -> list[ContextInfo]:
        """LIST CONTEXTS: the contexts of this client's session on the server."""
        return [ContextInfo.from_wire(item)
                for item in self._data("LIST CONTEXTS", "contexts", list)]

    def create_context(self, name: str, host: str,
                       port: int = DEFAULT_SN_API_PORT) -> CommandResult:
        """CREATE CONTEXT <name> WITH IP <host> <port> (the server checks the SN is up)."""
        return self.run(f"CREATE CONTEXT {quote(name)} WITH IP {quote(host)} {port_argument(port)}")

    def switch_context(self, name: str) -> CommandResult:
        """SWITCH CONTEXT <name>."""
        return self.run(f"SWITCH CONTEXT {quote(name)}")

    def upload_task(self, path: str | os.PathLike[str]) -> str:
        """Upload a task definition YAML (POST /uploadTaskDef); the name the server stored it
        under, for create_task_from."""
        source = Path(path)
        data = source.read_bytes()
        what = f"upload of {source.name}"
        response = self._post("/uploadTaskDef", what,
                              files={"file": (source.name, data, "application/x-yaml")})
        lines = self._reply(response, what).lines
        for line in lines:
            match = _UPLOADED.match(line)
            if match:
                return match["name"]
        raise SwciProtocolError(f"SWCI server {self.address} did not say under which name it "
                                f"stored {source.name}: {lines}")

    def create_task_from(self, name: str) -> str:
        """CREATE TASK FROM <name>: validate and register an uploaded task definition; the
        registered task's name."""
        command = f"CREATE TASK FROM {quote(name)}"
        lines = self.run(command).lines
        for line in lines:
            match = _REGISTERED.match(line)
            if match:
                return match["name"]
        raise SwciProtocolError(f"{command}: no 'Task Registered' line in {lines}")

    def finalize_task(self, name: str) -> CommandResult:
        """FINALIZE TASK <name>."""
        return self.run(f"FINALIZE TASK {quote(name)}")

    def assign_task(self, task: str, runner: str, peers: int | None = None,
                    all_peers: bool = False, target: str | None = None) -> CommandResult:
        """ASSIGN TASK <task> TO <runner>, with exactly one of: ``peers`` (WITH <n> PEERS),
        ``all_peers=True`` (WITH ALL PEERS) or ``target`` (TARGET <SWOP UID>)."""
        chosen = sum((peers is not None, bool(all_peers), target is not None))
        if chosen != 1:
            raise ValueError("assign_task needs exactly one of peers=<n>, all_peers=True or "
                             "target=<SWOP UID>")
        head = f"ASSIGN TASK {quote(task)} TO {quote(runner)}"
        if peers is not None:
            if isinstance(peers, bool) or not isinstance(peers, int) or peers < 1:
                raise ValueError(f"peers must be a whole number above 0, not {peers!r}")
            return self.run(f"{head} WITH {peers} PEERS")
        if all_peers:
            return self.run(f"{head} WITH ALL PEERS")
        assert target is not None
        return self.run(f"{head} TARGET {quote(target)}")

    def reset_taskrunner(self, name: str) -> CommandResult:
        """RESET TASKRUNNER <name>."""
        return self.run(f"RESET TASKRUNNER {quote(name)}")

    def wait(self, runner: str, poll: float = 2.0,
             timeout: float = DEFAULT_WAIT_TIMEOUT) -> TaskrunnerStatus:
        """Poll GET TASKRUNNER STATUS every ``poll`` seconds until the taskrunner is done; its
        final status (COMPLETE, or IDLE when it has no task: never assigned, or reset).

        Raises TaskFailed when the state is ERROR and WaitTimeout (a TimeoutError) when it is
        not done within ``timeout`` seconds. The server's WAIT FOR TASKRUNNER is not used: the
        wait stays on this side, so no request is held open."""
        if not poll > 0:
            raise ValueError(f"poll must be above 0 seconds, not {poll!r}")
        if not timeout >= 0:
            raise ValueError(f"timeout must be 0 seconds or more, not {timeout!r}")
        deadline = self._clock() + timeout
        while True:
            status = self.taskrunner_status(runner)
            if status.failed:
                raise TaskFailed(status)
            if status.done:
                return status
            left = deadline - self._clock()
            if left <= 0:
                raise WaitTimeout(f"taskrunner {runner} did not finish within {timeout:g} s "
                                  f"(task {status.task}, state {status.state}, "
                                  f"{status.completed_peers} peer(s) completed)", status)
            self._sleep(min(poll, left))


def _record(item: object, what: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise SwciProtocolError(f"{what}: expected a JSON object, got {json_kind(item)}")
    return item


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _tls_refusal(exc: BaseException) -> str | None:
    """The TLS alert by which the server refused our certificate, if that is what ``exc``
    (or an exception it came from) says; None for any other failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None) if isinstance(current, ssl.SSLError) else None
        if isinstance(reason, str) and reason.upper() in _REFUSAL_REASONS:
            return reason.upper()
        text = str(current).upper()
        for known in _REFUSAL_REASONS:
            if known in text or known.replace("_", " ") in text:
                return known
        current = current.__cause__ or current.__context__
    return None
