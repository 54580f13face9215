"""SWOP children: whole process groups stop together, and a SWOP that died outright has its
leftovers reaped when it starts again."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from swarmlearning.swop.processes import Child, ChildRegistry, stop_all

SPAWNER = """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start(tmp_path: Path, name: str, registry: ChildRegistry | None = None) -> tuple[Child, int]:
    task_dir = tmp_path / "tasks" / "1-t"
    child = Child(name, [sys.executable, "-c", SPAWNER], cwd=tmp_path,
                  env={**os.environ, "SWOP_TASK_DIR": str(task_dir)},
                  log_path=tmp_path / f"{name}.log", registry=registry)
    deadline = time.monotonic() + 20
    while not child.log_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    return child, int(child.log_text().split()[0])


def test_stopping_takes_the_programs_a_child_started(tmp_path: Path) -> None:
    first, grandchild_1 = start(tmp_path, "a")
    second, grandchild_2 = start(tmp_path, "b")
    started = time.monotonic()
    stop_all([first, second], grace=5)
    assert time.monotonic() - started < 5  # both went on SIGTERM, waited for together
    assert first.poll() is not None and second.poll() is not None
    deadline = time.monotonic() + 5
    while (alive(grandchild_1) or alive(grandchild_2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild_1) and not alive(grandchild_2)


def test_leftovers_of_a_dead_swop_are_reaped_and_strangers_are_not(tmp_path: Path) -> None:
    registry = ChildRegistry(tmp_path / "children")
    child, grandchild = start(tmp_path, "left", registry)
    assert (tmp_path / "children" / str(child.pid)).exists()
    # a record whose pid now belongs to someone else is dropped, not killed
    stranger = os.getpid()
    (tmp_path / "children" / str(stranger)).write_text(str(tmp_path / "tasks" / "1-t"))
    reaped = ChildRegistry(tmp_path / "children").reap_leftovers()
    assert reaped == [child.pid]
    child.process.wait(5)
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    assert list((tmp_path / "children").iterdir()) == []
