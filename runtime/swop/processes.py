"""Child processes of a SWOP: started with their own log file, in their own process group, tied
to the SWOP's life (they get SIGTERM if the SWOP dies), and stopped by pid."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the SWOP exits, however it exits."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Child:
    """One started process and its log."""

    def __init__(self, name: str, command: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.offset = log.tell()
            # PDEATHSIG follows the thread that forks; SWOP children are forked from the
            # operator's long-lived task thread, which outlives them (it waits or cleans up).
            self.process = subprocess.Popen(self.command, cwd=cwd, env=dict(env),
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=_die_with_parent)

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
        """SIGTERM to its process group, then SIGKILL after `grace` seconds; returns the exit
        status (None if it could not be reaped)."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    return None
        # anything the child left in its group goes too
        _signal_group(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_line(child: Child, marker: str, timeout: float,
                  stop: threading.Event | None = None) -> bool:
    """True once `marker` appears in the child's log; False if it exits or time runs out.
    `stop` may be a threading.Event that ends the wait early."""
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
               stop: threading.Event | None = None, timeout: float = 3600.0) -> tuple[int, str]:
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
