"""The frozen records of the typed SWCI web API client: each kind of DATA the server sends
(nodes, tasks, taskrunners, their status and peers, contexts) read into a dataclass with typed
fields, keys this client does not know kept in ``extra``, and SwciProtocolError when a field is
missing or of the wrong type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmlearning.defaults import SN_API_PORT
from swarmlearning.states import TERMINAL_RUNNER_STATES
from swci.client.errors import SwciProtocolError

__all__ = [
    "TERMINAL_STATES",
    "CommandResult",
    "ContextInfo",
    "Node",
    "PeerStatus",
    "TaskInfo",
    "TaskSummary",
    "TaskrunnerStatus",
    "TaskrunnerSummary",
    "json_kind",
]

TERMINAL_STATES = TERMINAL_RUNNER_STATES  # the name this client has always offered


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
            raise SwciProtocolError(f"{what}: expected a JSON object, got {json_kind(raw)}")
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
            raise SwciProtocolError(f"{self.what}: {key} is {json_kind(value)}, not a string")
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
            raise SwciProtocolError(f"{self.what}: {key} is {json_kind(value)}, not a list")
        return tuple(str(item) for item in value)

    def mapping(self, key: str) -> dict[str, str]:
        value = self.get(key, {})
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            raise SwciProtocolError(f"{self.what}: {key} is {json_kind(value)}, not an object")
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


def json_kind(value: object) -> str:
    """What a JSON value is, for an error message: "an object", "a list", "null", ..."""
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
        return self.state.upper() in TERMINAL_RUNNER_STATES

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
    port: int = SN_API_PORT
    service: str | None = None
    current: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: object) -> ContextInfo:
        """Build from one item of DATA "contexts"."""
        f = _Fields(raw, "LIST CONTEXTS")
        return cls(name=f.text("name"), host=f.text("host", ""),
                   port=f.number("port", SN_API_PORT), service=f.text("service", None),
                   current=f.flag("current"), extra=f.extra())
