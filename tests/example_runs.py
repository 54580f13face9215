"""Run an example's SWCI init script as its README says, with free ports and a workspace of the
test's own, and make sure nothing it started is left running."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from swarmlearning.nodes.workspace import Workspace
from tests.swarm_processes import ROOT, free_port, run_swci
from tests.test_swop import swop_processes

SN_LINE = re.compile(r"^(START SN \S+)(.*)$", re.MULTILINE | re.IGNORECASE)


@dataclass
class ExampleRun:
    result: subprocess.CompletedProcess
    workspace: Workspace
    seconds: float

    def results(self, folder: Path) -> dict[str, dict]:
        """The RESULT_FILE JSONs the example's ML programs wrote under `folder`."""
        return {path.stem: json.loads(path.read_text()) for path in sorted(
            folder.rglob("results/*.json"))}

    def leftovers(self) -> list[str]:
        running = [r.name for r in self.workspace.records() if r.running()]
        return running + [str(pid) for pid in swop_processes(self.workspace.root)]


def with_free_ports(script: str) -> str:
    """Each START SN gets free API and P2P ports instead of the script's fixed ones."""
    def replace(match: re.Match) -> str:
        rest = re.sub(r"\s+(API|P2P) PORT \d+", "", match.group(2), flags=re.IGNORECASE)
        org = re.search(r"\s+ORG\s+\S+", rest, flags=re.IGNORECASE)
        rest = rest.replace(org.group(0), "") if org else rest
        return (f"{match.group(1)}{rest} API PORT {free_port()} P2P PORT {free_port()}"
                f"{org.group(0) if org else ''}")

    return SN_LINE.sub(replace, script)


def run_example(script: Path, tmp_path: Path, private: Path, timeout: float = 420) -> ExampleRun:
    """Run `scripts/init/<script>` from the repository root; results under `private` are
    cleared first."""
    for old in private.rglob("results/*.json"):
        old.unlink()
    copy = tmp_path / script.name
    copy.write_text(with_free_ports((ROOT / script).read_text()))
    workspace = Workspace(tmp_path / "ws")
    started = time.monotonic()
    try:
        result = run_swci("--script", str(copy), "--workspace", str(workspace.root), cwd=ROOT,
                          env={}, timeout=timeout)
    finally:
        workspace.stop_all(grace=5)
    return ExampleRun(result, workspace, time.monotonic() - started)
