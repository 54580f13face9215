"""A SWOP killed with -9 in the middle of a task: an SN and two SWOPs (three SL/ML pairs) as
real processes, driven by SWCI scripts. The SWOP cannot report its own death; its SN reports
ERROR for it, with the reason, once it has been silent for three heartbeats, so WAIT FOR
TASKRUNNER ends instead of hanging, and ASSIGN TASK ... TARGET retries it once it is back."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.swarm_processes import output_lines
from tests.test_swop import RUNNER, Site, _context, _run_task, swop_processes

HEARTBEAT = 2.0  # the SN's: a SWOP silent for 3 x 2 + 2 s is taken as gone

# peer 3 (swop2's pair) hangs on its first attempt; every other run ends at once
HANGS_ONCE = """\
import os, time
from pathlib import Path
flag = Path("results") / ("attempted-" + os.environ["PEER_INDEX"])
if os.environ["PEER_INDEX"] == "3" and not flag.exists():
    flag.write_text("once")
    print("training for a long time", flush=True)
    time.sleep(600)
print("done", flush=True)
"""


def of_swop(root: Path, name: str) -> dict[int, bytes]:
    """The live processes of one SWOP's tasks, with their command lines."""
    marker = str(root / "data" / name / "tasks").encode()
    found = {}
    for pid in swop_processes(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found[pid] = cmdline.replace(b"\0", b" ")[:300]
    return found


@pytest.fixture
def site(tmp_path: Path):  # noqa: ANN201
    site = Site(tmp_path, "")
    (site.project / "hangs_once.py").write_text(HANGS_ONCE)
    try:
        site.workspace.start_sn("sn1", sentinel=True, api_port=site.api, p2p_port=site.p2p,
                                heartbeat=HEARTBEAT)
        for name in ("swop1", "swop2"):
            site.workspace.start_swop(name, site.usr / "swop" / f"{name}_profile.yaml")
        yield site
    finally:
        site.workspace.stop_all(grace=5)


def test_a_swop_killed_mid_task_is_reported_and_retried_by_target(site: Site) -> None:
    _run_task(site, "hang_run", "hangs_once.py")
    start = (_context(site) + "create task from taskdefs/hang_run.yaml\n"
             f"finalize task hang_run\nRESET TASKRUNNER {RUNNER}\n"
             f"ASSIGN TASK hang_run TO {RUNNER} WITH 3 PEERS\nEXIT\n")
    assert site.swci(start, timeout=60).returncode == 0
    root = site.workspace.root
    deadline = time.monotonic() + 60
    while not (site.project / "results" / "attempted-3").exists():
        assert time.monotonic() < deadline, "swop2's peer never started"
        time.sleep(0.2)
    uid = (root / "data" / "swop2" / "node-uid").read_text().strip()
    os.kill(site.workspace.record("swop2").pid, signal.SIGKILL)
    killed = time.monotonic()
    result = site.swci(_context(site) + f"WAIT FOR TASKRUNNER {RUNNER}\nEXIT\n", timeout=120)
    noticed = time.monotonic() - killed
    lines = output_lines(result)
    assert result.returncode != 0 and "STATE : ERROR" in lines, result.stdout[-3000:]
    failed = [line for line in lines if line.startswith(f"FAILED PEER : {uid} : ")]
    assert failed and "SWOP swop2 sent no sign of life for" in failed[0], lines
    assert "its part of task hang_run is lost" in failed[0]
    # the dead SWOP's SL and ML went with it (they die with their SWOP); swop1's stay until
    # the task ends
    deadline = time.monotonic() + 30
    while of_swop(root, "swop2") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert of_swop(root, "swop2") == {}
    site.workspace.start_swop("swop2", site.usr / "swop" / "swop2_profile.yaml")
    retry = (_context(site) + f"ASSIGN TASK hang_run TO {RUNNER} TARGET {uid}\n"
             f"WAIT FOR TASKRUNNER {RUNNER}\nGET TASKRUNNER STATUS {RUNNER}\nEXIT\n")
    result = site.swci(retry, timeout=120)
    lines = output_lines(result)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "STATE : COMPLETE" in lines and "COMPLETED_PEERS : 3" in lines, lines
    print(f"MEASURED SWOP kill -9 mid-task: WAIT FOR TASKRUNNER ended with its ERROR "
          f"{noticed:.1f} s after the kill (SN heartbeat {HEARTBEAT:g} s); TARGET retry "
          "completed the task")
