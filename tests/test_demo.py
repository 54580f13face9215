"""`make demo`'s main job, `swci demo`, as a user runs it from the repository root: the swarm
beats every peer alone by a wide margin, the summary and the plot exist, and nothing is left
running, also when it is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from swarmlearning.nodes.workspace import Workspace
from tests.swarm_processes import ROOT
from tests.test_swop import swop_processes


def demo(output: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "swci", "demo", "--output", str(output)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def leftovers(output: Path) -> list[str]:
    workspace = Workspace(output / "swarm")
    running = [r.name for r in workspace.records() if r.running()]
    return running + [str(pid) for pid in swop_processes(workspace.root)]


def test_the_demo_shows_a_swarm_beating_every_peer_alone(tmp_path: Path) -> None:
    output = tmp_path / "demo-output"
    started = time.monotonic()
    process = demo(output)
    text, _ = process.communicate(timeout=600)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, text[-6000:]
    summary = json.loads((output / "summary.json").read_text())
    assert set(summary) == {"peers", "central_accuracy", "wall_seconds"}
    assert [p["name"] for p in summary["peers"]] == ["peer1", "peer2", "peer3"]
    for peer in summary["peers"]:
        assert peer["swarm_accuracy"] >= 0.93, summary
        assert peer["swarm_accuracy"] >= peer["local_accuracy"] + 0.10, summary
    assert summary["central_accuracy"] >= 0.9
    assert (output / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Test accuracy on all ten digits" in text and "TASKRUNNER FINISHED" in text
    assert leftovers(output) == []
    assert elapsed < 180, f"the demo took {elapsed:.0f} s"


def test_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    output = tmp_path / "demo-output"
    process = demo(output)
    workspace = Workspace(output / "swarm")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(r.kind == "swop" and r.running() for r in workspace.records()):
            break
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    text, _ = process.communicate(timeout=120)
    assert process.returncode != 0, text[-3000:]
    assert "nothing is left running" in text or "Interrupted" in text, text[-3000:]
    deadline = time.monotonic() + 30
    while leftovers(output) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers(output) == []
