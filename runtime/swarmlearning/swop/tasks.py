"""What a SWOP runtime is handed: a task as read back from the chain, the context to run it in,
and the one way to fail (TaskFailed, with a short description and the log lines behind it)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from swarmlearning.defaults import SN_API_PORT
from swarmlearning.swop.profile import Profile

DESCRIPTION_LIMIT = 160
DETAIL_LIMIT = 1024


class TaskFailed(RuntimeError):
    """A task step failed. `description` (one line, at most 160 bytes on chain) says what and
    where; `detail` holds the evidence, such as the last lines of a log (at most 1024 bytes)."""

    def __init__(self, description: str, detail: str = "") -> None:
        super().__init__(description)
        self.description = description
        self.detail = detail


@dataclass(frozen=True)
class TaskDefinition:
    """A finalized task: its header and its parsed Body (HPE's task schema)."""

    name: str
    task_type: str
    author: str
    prereq: str
    outcome: str
    body: Mapping[str, Any]


@dataclass
class TaskContext:
    """Everything a runtime needs to run one task on this SWOP.

    `workdir` is this task's own directory in the SWOP workspace (sandboxes, logs);
    `volumes` holds content "volumes" (one directory each) and `envs` the user environments
    (MAKE_USER_CONTAINER outcomes); `prereq` is the Prereq task when it is not ROOTTASK.
    `log` writes a line to the SWOP log; `progress` publishes a short status on the chain
    (rate-limited by the caller); `stop` is set when the task must end (RESET TASKRUNNER or
    SWOP shutdown) and every wait in a runtime must honour it.
    """

    task: TaskDefinition
    profile: Profile
    workdir: Path
    volumes: Path
    envs: Path
    prereq: TaskDefinition | None = None
    host_ip: str = "127.0.0.1"
    sn_ip: str = "127.0.0.1"
    sn_api_port: int = SN_API_PORT
    identity: Any = None
    keep: bool = False
    log: Callable[[str], None] = print
    progress: Callable[[str], None] = lambda text: None
    stop: threading.Event = field(default_factory=threading.Event)


class Runtime(Protocol):
    """A way of running tasks: `process` (local processes, the default) or `docker`.

    Each operation blocks until its step is done and returns a one-line description of the
    result; it raises TaskFailed on failure and returns early (raising TaskFailed("stopped"))
    once `ctx.stop` is set. `run_swarm` returns when every ML program of this SWOP has exited
    successfully; its SL nodes keep serving peers until `cleanup`. `cleanup` stops everything
    the task started (no process or container may remain) and removes what it made unless
    `ctx.keep` (SWOP_KEEP_CONTAINERS)."""

    name: str

    def build_user_container(self, ctx: TaskContext) -> str: ...
    def pull_image(self, ctx: TaskContext) -> str: ...
    def make_content(self, ctx: TaskContext) -> str: ...
    def run_swarm(self, ctx: TaskContext) -> str: ...
    def cleanup(self, ctx: TaskContext) -> None: ...


def require_nodes(ctx: TaskContext) -> None:
    """RUN_SWARM needs at least one slnodedef in this SWOP's profile."""
    if not ctx.profile.nodes:
        raise TaskFailed(f"the profile {Path(ctx.profile.source).name} has no nodes, so this "
                         "SWOP has no SL/ML pair to run")


def clip(text: str, limit: int) -> str:
    """Text cut to at most `limit` UTF-8 bytes, keeping the end (where the cause usually is)
    for multi-line text and the start for one line."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    if "\n" in text:
        return "…" + data[-(limit - 3):].decode("utf-8", "ignore")
    return data[:limit - 3].decode("utf-8", "ignore") + "…"
