"""Golden files: whole scripts run by the real swci command, output compared line by line.

tests/golden/NAME.swci runs as `swci --script NAME.swci` in a scratch directory holding
taskdefs/run.yaml; tests/golden/NAME.out holds stdout, stderr and the exit code. $TMP stands for
the scratch directory and $PORT for a closed port on 127.0.0.1. Set SWCI_UPDATE_GOLDEN=1 to
rewrite the .out files, then read the diff before committing it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
SCRIPTS = sorted(GOLDEN.glob("*.swci"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_swci(*args: str, cwd: Path, stdin: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the swci console entry point as a real process, bounded in time."""
    full_env = {**os.environ, "SWCI_HISTORY_FILE": str(cwd / ".history"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "swci", *args], cwd=cwd, input=stdin or "",
                          capture_output=True, text=True, timeout=60, env=full_env)


def scratch(tmp_path: Path) -> Path:
    (tmp_path / "taskdefs").mkdir()
    (tmp_path / "taskdefs" / "run.yaml").write_text("Name: run\n")
    (tmp_path / "taskdefs" / ".keep").write_text("")
    return tmp_path


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_golden(script, tmp_path):
    work = scratch(tmp_path)
    port = str(closed_port())
    (work / script.name).write_text(script.read_text().replace("$PORT", port))
    result = run_swci("--script", script.name, cwd=work)
    actual = (result.stdout + "--- stderr ---\n" + result.stderr
              + f"--- exit {result.returncode} ---\n")
    actual = actual.replace(str(work.resolve()), "$TMP").replace(port, "$PORT")
    expected_file = script.with_suffix(".out")
    if os.environ.get("SWCI_UPDATE_GOLDEN"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()
