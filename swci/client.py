"""A typed Python client for the SWCI web API (``swci serve``, port 30306).

The server runs SWCI commands for a client that it knows by its TLS client certificate::

    from swci.client import Client

    with Client("sn-host", cert="swci-1-cert.pem", key="swci-1-key.pem", capath="ca/capath") as c:
        c.switch_context("ctx")
        name = c.upload_task("mnist-task.yaml")
        c.create_task_from(name)
        c.finalize_task(name)
        c.assign_task(name, "defaulttaskbb.taskdb.sml.hpe", peers=2)
        status = c.wait("defaulttaskbb.taskdb.sml.hpe", timeout=3600)

Every call is one ``POST /exec?cmd=<command>``; the reply is ``{"CONTENT": [lines], "DATA": {}}``.
``run`` returns the lines and the structured DATA as they come; the typed helpers build the
command text (quoting names as the SWCI grammar accepts them) and turn DATA into frozen
dataclasses. Errors: ``CommandError`` (a command failed: an ``ERROR`` line), ``SwciRefused``
(HTTP 401/403 or a TLS handshake that refused this client's certificate), ``SwciUnavailable``
(the server cannot be reached), ``SwciProtocolError`` (the reply is not the SWCI JSON),
``TaskFailed`` and ``WaitTimeout`` (a ``TimeoutError``) from ``wait``.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from swarmlearning.identity.pki import PkiLayout
from swarmlearning.identity.tls import Identity, IdentityError, client_context

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SN_API_PORT",
    "Client",
    "CommandError",
    "CommandResult",
    "ContextInfo",
    "Node",
    "PeerStatus",
    "SwciError",
    "SwciProtocolError",
    "SwciRefused",
    "SwciUnavailable",
    "TaskFailed",
    "TaskInfo",
    "TaskSummary",
    "TaskrunnerStatus",
    "TaskrunnerSummary",
    "WaitTimeout",
    "quote",
]

DEFAULT_PORT = 30306
DEFAULT_SN_API_PORT = 30304
DEFAULT_TIMEOUT = 60.0  # seconds for one HTTP request
DEFAULT_WAIT_TIMEOUT = 7200.0  # seconds: the shell's default maximum wait is 120 minutes
TERMINAL_STATES = ("COMPLETE", "ERROR", "IDLE")

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
_BARE_WORD = re.compile(r"[^\s#\"']+")  # the grammar's WORD terminal
_KEYWORD = re.compile(r'"([A-Za-z_]+)"i')  # a case-insensitive keyword literal of the grammar

# -- errors ---------------------------------------------------------------------------------------


class SwciError(Exception):
    """Any failure reported by this client (except WaitTimeout, a TimeoutError)."""


class CommandError(SwciError):
    """A command failed: the server answered with an ``ERROR`` line.

    ``line`` is that line (``ERROR : ...``), ``message`` the same without the ``ERROR :``
    prefix, ``command`` what was sent and ``lines`` all of the reply's CONTENT."""

    def __init__(self, line: str, command: str, lines: list[str] | None = None) -> None:
        super().__init__(f"{line} (command: {command})")
        self.line = line
        self.command = command
        self.lines = list(lines or [line])

    @property
    def message(self) -> str:
        """The error line without its ``ERROR :`` prefix."""
        return re.sub(r"^ERROR\s*:?\s*", "", self.line)


class SwciUnavailable(SwciError):
    """The server could not be reached, or the exchange broke off (the message says why)."""


class SwciRefused(SwciError):
    """The server refused this client: HTTP 401/403, or its TLS handshake refused our
    certificate (none sent, or not signed by a CA it trusts)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class SwciProtocolError(SwciError):
    """The reply is not what the SWCI web API sends (no JSON, no CONTENT, missing DATA, a field
    of the wrong type)."""


class TaskFailed(SwciError):
    """``wait`` saw the taskrunner in state ERROR.

    ``status`` is the final TaskrunnerStatus, ``failures`` maps each failed SWOP's UID to the
    last lines of its log (FAILURE_DETAILS), ``failed_peers`` lists ``"uid : reason"``."""

    def __init__(self, status: TaskrunnerStatus) -> None:
        reasons = "; ".join(status.failed_peers) or "no failed peer reported"
        super().__init__(f"task {status.task} on taskrunner {status.taskrunner} failed: "
                         f"{reasons}")
        self.status = status
        self.failures: dict[str, str] = dict(status.failure_details)
        self.failed_peers: list[str] = list(status.failed_peers)


class WaitTimeout(TimeoutError):
    """``wait`` ran out of time; ``status`` is the last status it read."""

    def __init__(self, message: str, status: TaskrunnerStatus) -> None:
        super().__init__(message)
        self.status = status


# -- quoting ---------------------------------------------------------------------------------------


@functools.cache
def _keywords() -> frozenset[str]:
    """Every keyword of the SWCI grammar, upper-cased: a bare word spelling one may be read as
    the keyword (PERFDATA CONTRACT), so such values are quoted."""
    from swci.language.parser import grammar_text

    return frozenset(word.upper() for word in _KEYWORD.findall(grammar_text()))


def _unsendable(value: str) -> str | None:
    """The first character that no SWCI argument can hold (a line break or a control
    character other than tab), or None."""
    for char in value:
        if char == "\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return char
    return None


def quote(value: str) -> str:
    """One SWCI argument as the grammar reads it back as ``value``.

    A plain word (no space, ``#`` or quote, and not a keyword) is sent as it is; anything else
    is double-quoted, or single-quoted when it holds a double quote. The grammar has no escapes,
    so a value holding both quote characters, a line break or another control character (tab
    is fine), or nothing at all, cannot be expressed: ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"an SWCI argument must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError("an SWCI argument cannot be empty")
    bad = _unsendable(value)
    if bad is not None:
        raise ValueError(f"{value!r}: an SWCI argument cannot hold the character {bad!r}")
    if _BARE_WORD.fullmatch(value) and value.upper() not in _keywords():
        return value
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise ValueError(f"{value!r}: an SWCI argument cannot hold both ' and \" (the grammar has "
                     "no escapes)")


def _port(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"port must be a whole number from 1 to 65535, not {value!r}")
    return str(value)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    """A command's output lines (CONTENT, indent removed) and its structured DATA by kind."""

    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The lines joined by newlines."""
        return "\n".join(self.lines)


_MISSING: Any = object()


class _Fields:
    """Reads one DATA record: typed values by key, and the keys nobody asked for (``extra``)."""

    _REQUIRED: Any = object()

    def __init__(self, raw: object, what: str) -> None:
        if not isinstance(raw, Mapping):
            raise SwciProtocolError(f"{what}: expected a JSON object, got {_kind(raw)}")
        self.raw: Mapping[str, Any] = raw
        self.what = what
        self.used: set[str] = set()

    def get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        if default is self._REQUIRED:
            raise SwciProtocolError(f"{self.what}: the field {key} is missing")
        return _MISSING

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.get(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, (dict, list)):
            raise SwciProtocolError(f"{self.what}: {key} is {_kind(value)}, not a string")
        return value if isinstance(value, str) else str(value)

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.get(key, default)
        return default if value is _MISSING else _as_int(value, f"{self.what}: {key}")

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "*")
        return bool(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, ())
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            raise SwciProtocolError(f"{self.what}: {key} is {_kind(value)}, not a list")
        return tuple(str(item) for item in value)

    def mapping(self, key: str) -> dict[str, str]:
        value = self.get(key, {})
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            raise SwciProtocolError(f"{self.what}: {key} is {_kind(value)}, not an object")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self.raw.items() if k not in self.used}



def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise SwciProtocolError(f"{where} is {value!r}, not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    raise SwciProtocolError(f"{where} is {value!r}, not a whole number")


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Node:
    """A node registered in the Swarm Network (LIST NODES). ``taskrunner`` and
    ``seconds_since_alive`` are None when an older SN does not say them."""

    node_type: str
    host_ip: str
    port: int
    container_name: str
    uuid: str
    parent_uuid: str
    alive_at: str  # i-am-alive, as the SN writes it
    taskrunner: str | None = None
    seconds_since_alive: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: object) -> Node:
        """Build from one item of DATA "nodes"."""
        f = _Fields(raw, "LIST NODES")
        return cls(node_type=f.text("NodeType"), host_ip=f.text("HostIP", ""),
                   port=f.number("Port", 0), container_name=f.text("ContainerName", ""),
                   uuid=f.text("UUID"), parent_uuid=f.text("ParentUUID", ""),
                   alive_at=f.text("i-am-alive", ""), taskrunner=f.text("TASKRUNNER", None),
                   seconds_since_alive=f.number("SECONDS_SINCE_ALIVE", None), extra=f.extra())


@dataclass(frozen=True)
class TaskSummary:
    """One task of LIST TASKS."""

    name: str
    type: str = ""
    state: str = ""
    author: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: object) -> TaskSummary:
        """Build from one item of DATA "tasks"."""
        f = _Fields(raw, "LIST TASKS")
        return cls(name=f.text("NAME"), type=f.text("TYPE", ""), state=f.text("STATE", ""),
                   author=f.text("AUTHOR", ""), extra=f.extra())


@dataclass(frozen=True)
class TaskInfo:
    """A task's header (GET TASK INFO). Times are as the SN writes them ("-" for never)."""

    name: str
    type: str = ""
    author: str = ""
    prereq: str = ""
    outcome: str = ""
    state: str = ""
    body_lines: int = 0
    created: str = "-"
    updated: str = "-"
    finalized: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_finalized(self) -> bool:
        """Whether the task is FINALIZED (and so can be assigned)."""
        return self.state.upper() == "FINALIZED"

    @classmethod
    def from_wire(cls, raw: object) -> TaskInfo:
        """Build from DATA "task"."""
        f = _Fields(raw, "GET TASK INFO")
        return cls(name=f.text("NAME"), type=f.text("TYPE", ""), author=f.text("AUTHOR", ""),
                   prereq=f.text("PREREQ", ""), outcome=f.text("OUTCOME", ""),
                   state=f.text("STATE", ""), body_lines=f.number("BODY_LINES", 0),
                   created=f.text("CREATED", "-"), updated=f.text("UPDATED", "-"),
                   finalized=f.text("FINALIZED", "-"), extra=f.extra())


@dataclass(frozen=True)
class TaskrunnerSummary:
    """One taskrunner of LIST TASKRUNNERS; ``task`` is "Empty" when it has none."""

    name: str
    state: str = ""
    task: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: object) -> TaskrunnerSummary:
        """Build from one item of DATA "taskrunners"."""
        f = _Fields(raw, "LIST TASKRUNNERS")
        return cls(name=f.text("NAME"), state=f.text("STATE", ""), task=f.text("TASK", ""),
                   extra=f.extra())


@dataclass(frozen=True)
class TaskrunnerStatus:
    """A taskrunner's current task and its peers (GET TASKRUNNER STATUS).

    ``peers_needed`` is a number, or "ALL" for WITH ALL PEERS (then ``swops_needed`` is how many
    SWOPs that meant). ``failed_peers`` holds ``"uid : reason"``; ``failure_details`` maps a
    failed SWOP's UID to the last lines of its log."""

    taskrunner: str
    task: str = ""
    task_type: str = ""
    peer_type: str = ""
    state: str = ""
    peers_needed: int | str = 0
    swops_needed: int | None = None
    enrolled_peers: int = 0
    active_peers: int = 0
    enrolled_units: int = 0
    completed_peers: int = 0
    failed_peers: tuple[str, ...] = ()
    failure_details: dict[str, str] = field(default_factory=dict)
    generation: int | None = None
    target: str | None = None
    assigned_ts: str = "-"
    finished_ts: str = "-"
    update_ts: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """The taskrunner is not running a task: COMPLETE, ERROR or IDLE."""
        return self.state.upper() in TERMINAL_STATES

    @property
    def failed(self) -> bool:
        """The task failed (state ERROR)."""
        return self.state.upper() == "ERROR"

    @property
    def completed(self) -> bool:
        """The task completed (state COMPLETE)."""
        return self.state.upper() == "COMPLETE"

    @property
    def all_peers(self) -> bool:
        """The task was assigned WITH ALL PEERS."""
        return self.peers_needed == "ALL"

    @classmethod
    def from_wire(cls, raw: object) -> TaskrunnerStatus:
        """Build from DATA "taskrunner_status"."""
        f = _Fields(raw, "GET TASKRUNNER STATUS")
        needed = f.get("PEERS_NEEDED", 0)
        if needed is _MISSING:
            needed = 0
        elif isinstance(needed, str) and needed.strip().upper() == "ALL":
            needed = "ALL"
        else:
            needed = _as_int(needed, "GET TASKRUNNER STATUS: PEERS_NEEDED")
        return cls(taskrunner=f.text("TASKRUNNER"), task=f.text("TASK", ""),
                   task_type=f.text("TASK_TYPE", ""), peer_type=f.text("PEER_TYPE", ""),
                   state=f.text("TASK_STATE"), peers_needed=needed,
                   swops_needed=f.number("SWOPS_NEEDED", None),
                   enrolled_peers=f.number("ENROLLED_PEERS", 0),
                   active_peers=f.number("ACTIVE_PEERS", 0),
                   enrolled_units=f.number("ENROLLED_UNITS", 0),
                   completed_peers=f.number("COMPLETED_PEERS", 0),
                   failed_peers=f.strings("FAILED_PEERS"),
                   failure_details=f.mapping("FAILURE_DETAILS"),
                   generation=f.number("GENERATION", None), target=f.text("TARGET", None) or None,
                   assigned_ts=f.text("ASSIGNED_TS", "-"), finished_ts=f.text("FINISHED_TS", "-"),
                   update_ts=f.text("UPDATE_TS", "-"), extra=f.extra())


@dataclass(frozen=True)
class PeerStatus:
    """One SWOP enrolled on a taskrunner (LIST TASKRUNNER PEERS, GET TASKRUNNER PEER STATUS).
    ``detail`` is the evidence of a failure: the last lines of the SWOP's log."""

    name: str
    swop_uid: str
    operation_id: str = ""
    peer_count: int = 0
    update_ts: str = "-"
    index: int = 0
    status: str = ""
    status_desc: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """This SWOP reported ERROR."""
        return self.status.upper() == "ERROR"

    @classmethod
    def from_wire(cls, raw: object) -> PeerStatus:
        """Build from one item of DATA "taskrunner_peers", or from DATA "taskrunner_peer"."""
        f = _Fields(raw, "TASKRUNNER PEER STATUS")
        return cls(name=f.text("NAME", ""), swop_uid=f.text("SWOP_UID"),
                   operation_id=f.text("OPERATION_ID", ""), peer_count=f.number("PEER_COUNT", 0),
                   update_ts=f.text("UPDATE_TS", "-"), index=f.number("SWOP_PEER_INDEX", 0),
                   status=f.text("SWOP_PEER_STATUS", ""),
                   status_desc=f.text("SWOP_PEER_STATUS_DESC", ""),
                   detail=f.text("SWOP_PEER_DETAIL", ""), extra=f.extra())


@dataclass(frozen=True)
class ContextInfo:
    """A context of the server's session for this client (LIST CONTEXTS)."""

    name: str
    host: str = ""
    port: int = DEFAULT_SN_API_PORT
    service: str | None = None
    current: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: object) -> ContextInfo:
        """Build from one item of DATA "contexts"."""
        f = _Fields(raw, "LIST CONTEXTS")
        return cls(name=f.text("name"), host=f.text("host", ""),
                   port=f.number("port", DEFAULT_SN_API_PORT), service=f.text("service", None),
                   current=f.flag("current"), extra=f.extra())


# -- the client ------------------------------------------------------------------------------------

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
        _port(port)
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
        root = Path(workspace or os.environ.get("SWARM_WORKSPACE") or ".swarm")
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
                                    f"{_kind(data)}, not an object")
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
            raise SwciProtocolError(f"DATA {kind!r} of {command} is {_kind(value)}, not "
                                    f"{_kind(expected())}")
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
        return self.run(f"CREATE CONTEXT {quote(name)} WITH IP {quote(host)} {_port(port)}")

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
        raise SwciProtocolError(f"{what}: expected a JSON object, got {_kind(item)}")
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
