"""Child processes of a SWOP: started with their own log file, in their own process group, tied
to the SWOP's life, stopped by pid, and remembered on disk so that a SWOP killed outright
reaps what it left behind when it starts again.

* PR_SET_PDEATHSIG gives a direct child SIGTERM when the thread that forked it ends (the SWOP's
  task thread lives until the task is cleaned up, so this means: when the SWOP dies).
* Each child leads its own process group; stopping signals the whole group, so programs a child
  started go with it.
* A `ChildRegistry` keeps one file per live group leader; `reap_leftovers` kills the groups a
  previous SWOP process left (checked against the SWOP_TASK_DIR in their environment).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
TASK_DIR_ENV = "SWOP_TASK_DIR"

try:  # loaded here, in the parent: loading a library in a forked child of a threaded process
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # may deadlock
except (OSError, AttributeError):
    _PRCTL = None


def _child_setup(parent: int) -> None:
    """In the child before exec: SIGTERM when the SWOP goes, and not a moment later."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the SWOP died between fork and prctl
        os._exit(1)


class ChildRegistry:
    """One file per running child (its pid, which is its process group id) in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, pid: int, task_dir: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / str(pid)).write_text(str(task_dir), encoding="utf-8")

    def remove(self, pid: int) -> None:
        (self.directory / str(pid)).unlink(missing_ok=True)

    def reap_leftovers(self, log: object = None) -> list[int]:
        """Kill the process groups a previous SWOP left running; returns their ids."""
        reaped = []
        for entry in sorted(self.directory.glob("*")) if self.directory.is_dir() else ():
            task_dir = entry.read_text(encoding="utf-8").strip()
            if entry.name.isdigit() and _runs_task(int(entry.name), task_dir):
                _signal_group(int(entry.name), signal.SIGKILL)
                reaped.append(int(entry.name))
            entry.unlink(missing_ok=True)
        return reaped


def _runs_task(pid: int, task_dir: str) -> bool:
    """True if `pid` is alive and was started for `task_dir` (not a reused pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{TASK_DIR_ENV}={task_dir}".encode() in environ


class Child:
    """One started process and its log."""

    def __init__(self, name: str, command: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str], log_path: Path,
                 registry: ChildRegistry | None = None) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.registry = registry
        log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        with open(log_path, "ab") as log:
            self.offset = log.tell()
            self.process = subprocess.Popen(self.command, cwd=cwd, env=dict(env),
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=lambda: _child_setup(parent))
        if registry is not None:
            registry.add(self.process.pid, Path(env.get(TASK_DIR_ENV, "")))

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self.offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().rstrip().splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM to its process group, then SIGKILL after `grace` seconds."""
        stop_all([self], grace)
        return self.process.returncode


def stop_all(children: Iterable[Child], grace: float = 10.0) -> None:
    """Stop several children together: SIGTERM to every group, one shared wait of `grace`
    seconds, then SIGKILL to every group (also taking anything their programs started)."""
    children = list(children)
    for child in children:
        if child.process.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        _signal_group(child.pid, signal.SIGKILL)
        try:
            child.process.wait(5)
        except subprocess.TimeoutExpired:
            continue
        if child.registry is not None:
            child.registry.remove(child.pid)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_line(child: Child, marker: str, timeout: float,
                  stop: threading.Event | None = None) -> bool:
    """True once `marker` appears in the child's log; False if it exits, time runs out or
    `stop` is set."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in child.log_text():
            return True
        if child.poll() is not None:
            return False
        if stop is not None and stop.is_set():
            return False
        time.sleep(0.05)
    return False


def run_logged(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path,
               stop: threading.Event | None = None,
               timeout: float = 3600.0) -> tuple[int, str]:
    """Run a command to its end with its output appended to `log_path`; (status, output).
    A set `stop` event or the timeout kills it (status -15 / -9)."""
    child = Child(Path(command[0]).name, command, cwd=cwd, env=env, log_path=log_path)
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
            child.stop(grace=5)
            break
        time.sleep(0.05)
    return child.process.returncode, child.log_text()
