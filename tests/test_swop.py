"""The Swarm Operator with real processes: an SN, two SWOPs and their SL/ML pairs on 127.0.0.1
with mutual TLS, driven by SWCI scripts shaped like HPE's mnist init script."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from swarmlearning.nodes.workspace import NodeError, Workspace
from tests.swarm_processes import ROOT, free_port, output_lines, run_swci

TEMPLATE = Path(__file__).parent / "data" / "swop-digits" / "usr"
MODEL_DIR = ROOT / "examples" / "digits-pyt" / "model"
RUNNER = "defaulttaskbb.taskdb.sml.hpe"

RUN_DIGITS = """\
# runs in the user environment the build task made: its package and its ENV are here
import os, runpy, sys
import swci_digits_marker
assert swci_digits_marker.VALUE == 42
assert os.environ["DIGITS_BUILD"].startswith("digits-user-env"), os.environ["DIGITS_BUILD"]
print("user environment:", sys.prefix, flush=True)
sys.argv = ["model/digits_pyt.py"]
runpy.run_path("model/digits_pyt.py", run_name="__main__")
"""


def marker_wheel(directory: Path) -> Path:
    """A tiny wheel, so the build's `pip install` is real and needs no network."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "swci_digits_marker-0.1-py3-none-any.whl"
    info = "swci_digits_marker-0.1.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("swci_digits_marker.py", "VALUE = 42\n")
        wheel.writestr(f"{info}/METADATA",
                       "Metadata-Version: 2.1\nName: swci-digits-marker\nVersion: 0.1\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: swci-tests\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def swop_processes(workspace: Path) -> list[int]:
    """Pids of live processes a SWOP task started: their command line or SWOP_TASK_DIR names a
    task directory of one of the workspace's SWOPs."""
    pattern = re.compile(re.escape(str(workspace / "data")) + r"/[^/]+/tasks/")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (pattern.search(cmdline) or pattern.search(environ)) and state != "Z":
            found.append(int(entry.name))
    return found


class Site:
    """A test's user directory, project and workspace, with HPE's placeholders filled in."""

    def __init__(self, tmp_path: Path, suffix: str) -> None:
        self.root = tmp_path
        self.usr = tmp_path / "usr"
        shutil.copytree(TEMPLATE, self.usr)
        self.project = tmp_path / "project"
        (self.project / "results").mkdir(parents=True)
        (self.project / "run_digits.py").write_text(RUN_DIGITS)
        self.workspace = Workspace(tmp_path / "ws")
        self.api, self.p2p = free_port(), free_port()
        wheel = marker_wheel(tmp_path / "wheelhouse")
        certs = self.workspace.root / "pki" / "cert"
        self.fill({"<PROJECT-MODEL>": str(MODEL_DIR), "<PROJECT-CERTS>": str(certs),
                   "<PROJECT-CACERTS>": str(certs / "ca" / "capath"),
                   "<PROJECT>": str(self.project), "<WHEEL-URI>": wheel.as_uri(),
                   "<API-PORT>": str(self.api), "<P2P-PORT>": str(self.p2p),
                   "<SUFFIX>": suffix})

    def fill(self, values: dict[str, str]) -> None:
        for path in self.usr.rglob("*"):
            if path.is_file():
                text = path.read_text()
                for key, value in values.items():
                    text = text.replace(key, value)
                path.write_text(text)

    def swci(self, script: str, timeout: float = 240):  # noqa: ANN201
        (self.usr / "script.swci").write_text(script)
        return run_swci("--usr-dir", str(self.usr), "--workspace", str(self.workspace.root),
                        "--init-script-name", "script.swci", cwd=self.root, env={},
                        timeout=timeout)


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path, "")
    yield site
    site.workspace.stop_all(grace=5)


def test_hpe_shaped_flow_builds_then_trains_three_pairs_on_two_swops(site: Site) -> None:
    started = time.monotonic()
    result = site.swci((site.usr / "swci-init").read_text(), timeout=300)
    elapsed = time.monotonic() - started
    logs = "\n".join(p.read_text() for p in (site.workspace.root / "logs").glob("*.log"))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:] + logs[-6000:]
    lines = output_lines(result)
    assert "SWOP swop1 STARTED" in " ".join(lines) and "SWOP swop2 STARTED" in " ".join(lines)
    # three waits, each ending in HPE's summary block with COMPLETE
    assert lines.count("TASKRUNNER FINISHED") == 3
    assert lines.count("STATE : COMPLETE") == 3
    assert any(re.fullmatch(r"#+", line) for line in lines)
    # the run task's peers: both groups, with the SL/ML pairs each brought
    peers = lines[lines.index("LIST TASKRUNNER PEERS defaulttaskbb.taskdb.sml.hpe")
                  if "LIST TASKRUNNER PEERS defaulttaskbb.taskdb.sml.hpe" in lines else 0:]
    text = "\n".join(lines)
    assert "digits-org1" in text and "digits-org2" in text
    # every pair trained in the built environment and learnt
    results = {i: (site.project / "results" / f"peer{i}.json") for i in (1, 2, 3)}
    import json

    outcome = {i: json.loads(path.read_text()) for i, path in results.items()}
    assert all(r["accuracy"] >= 0.9 for r in outcome.values()), outcome
    assert len({r["weights"] for r in outcome.values()}) == 1
    assert "user environment:" in (site.workspace.root / "data" / "swop1").joinpath(
        "tasks").rglob("org1-user1.log").__next__().read_text()
    # nothing is left running, and the user's directories were not touched but for results
    assert swop_processes(site.workspace.root) == []
    assert sorted(p.name for p in site.project.iterdir()) == ["results", "run_digits.py"]
    assert elapsed < 180, f"the flow took {elapsed:.0f} s"
    del peers


# -- failures, reset and bad profiles on one running swarm -------------------------------------

CRASH = """\
print("loading data", flush=True)
print("epoch 0 of 8", flush=True)
raise ValueError("the data file is corrupt")
"""

SLEEP = """\
import time
print("training for a long time", flush=True)
time.sleep(600)
"""

RUN_TASK = """\
Name: {name}
TaskType: RUN_SWARM
Author: swci-tests
Prereq: ROOTTASK
Outcome: {name}
Body:
    Command: {command}
    Entrypoint: python3
    WorkingDir: /tmp/test
    Envvars: ["EPOCHS": 8]
    PrivateContent: /tmp/test/
    SharedContent: ~
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """An SN and two SWOPs (three SL/ML pairs between them), started as LIST LOCAL NODES
    shows them."""
    site = Site(tmp_path_factory.mktemp("swop"), "-m")
    (site.project / "crash.py").write_text(CRASH)
    (site.project / "sleep_forever.py").write_text(SLEEP)
    try:
        site.workspace.start_sn("sn1", sentinel=True, api_port=site.api, p2p_port=site.p2p)
        for name in ("swop1", "swop2"):
            site.workspace.start_swop(name, site.usr / "swop" / f"{name}_profile.yaml")
        yield site
    finally:
        site.workspace.stop_all(grace=5)


def _context(site: Site) -> str:
    return ("EXIT ON FAILURE\n"
            f"create context c with ip 127.0.0.1 {site.api}\nswitch context c\n"
            "cd /platform/swarm/usr\n")


def _run_task(site: Site, name: str, command: str) -> None:
    (site.usr / "taskdefs" / f"{name}.yaml").write_text(RUN_TASK.format(name=name,
                                                                         command=command))


def test_a_crashing_ml_fails_the_wait_within_seconds_with_its_log(running: Site) -> None:
    _run_task(running, "crash_run", "crash.py")
    script = (_context(running) + "create task from taskdefs/crash_run.yaml\n"
              f"finalize task crash_run\nRESET TASKRUNNER {RUNNER}\n"
              f"ASSIGN TASK crash_run TO {RUNNER} WITH 3 PEERS\n"
              f"WAIT FOR TASKRUNNER {RUNNER}\nEXIT\n")
    started = time.monotonic()
    result = running.swci(script, timeout=120)
    elapsed = time.monotonic() - started
    lines = output_lines(result)
    assert result.returncode != 0, result.stdout[-4000:]
    assert "STATE : ERROR" in lines, result.stdout[-4000:]
    failed = [line for line in lines if line.startswith("FAILED PEER : ")]
    assert failed and re.search(r"ML org\d-user\d \(node \d\) exited with code 1", failed[0])
    assert "    | ValueError: the data file is corrupt" in lines
    assert "    | epoch 0 of 8" in lines
    assert lines[-1] == ("ERROR : Task has failed, check TASKRUNNER PEER STATUS for Error "
                         "description")
    assert elapsed < 30, f"the failure took {elapsed:.0f} s to surface"


def test_reset_taskrunner_stops_every_process_of_the_task(running: Site) -> None:
    _run_task(running, "long_run", "sleep_forever.py")
    marker = running.workspace.root
    script = (_context(running) + "create task from taskdefs/long_run.yaml\n"
              f"finalize task long_run\nRESET TASKRUNNER {RUNNER}\n"
              f"ASSIGN TASK long_run TO {RUNNER} WITH 3 PEERS\nEXIT\n")
    assert running.swci(script, timeout=60).returncode == 0
    deadline = time.monotonic() + 60
    while len(swop_processes(marker)) < 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(swop_processes(marker)) == 6, "three SL and three ML processes"
    result = running.swci(_context(running) + f"GET TASKRUNNER STATUS {RUNNER}\n"
                          f"RESET TASKRUNNER {RUNNER}\nEXIT\n", timeout=60)
    assert "TASK_STATE      : RUNNING" in output_lines(result)
    deadline = time.monotonic() + 30
    while swop_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in swop_processes(marker)}
    assert left == {}, "\n".join(p.read_text()[-3000:] for p in
                                  (running.workspace.root / "logs").glob("swop*.log"))
    # the SWOPs stay, and take the next task
    assert all(running.workspace.record(name).running() for name in ("swop1", "swop2"))


def test_a_profile_with_a_typo_is_refused_with_its_path(running: Site) -> None:
    profile = running.usr / "swop" / "swop1_profile.yaml"
    bad = running.usr / "swop" / "typo_profile.yaml"
    bad.write_text(profile.read_text().replace("usrenvvars :", "usrenvars :", 1))
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1)
                if "usrenvars" in text)
    result = running.swci("START SWOP typo PROFILE swop/typo_profile.yaml\nEXIT\n")
    text = result.stdout
    assert "SWOP typo exited with status 2 before it was ready" in text, text
    assert f"typo_profile.yaml:{line}:" in text
    assert "nodes[0].slnodedef" in text and "'usrenvars'" in text
    assert "did you mean 'usrenvvars'" in text
    with pytest.raises(NodeError, match="usrenvars"):
        running.workspace.start_swop("typo2", bad)


FLAKY = """\
import os, sys
from pathlib import Path
flag = Path("results") / ("attempted-" + os.environ["PEER_INDEX"])
if os.environ["PEER_INDEX"] == "3" and not flag.exists():
    flag.write_text("once")
    print("the first attempt fails", flush=True)
    sys.exit(5)
print("done", flush=True)
"""


def test_target_retries_the_failed_swop_and_completes_the_task(running: Site) -> None:
    (running.project / "flaky.py").write_text(FLAKY)
    _run_task(running, "flaky_run", "flaky.py")
    first = (_context(running) + "create task from taskdefs/flaky_run.yaml\n"
             f"finalize task flaky_run\nRESET TASKRUNNER {RUNNER}\n"
             f"ASSIGN TASK flaky_run TO {RUNNER} WITH 3 PEERS\nWAIT FOR TASKRUNNER {RUNNER}\n"
             "EXIT\n")
    lines = output_lines(running.swci(first, timeout=120))
    swop2 = (running.workspace.root / "data" / "swop2" / "node-uid").read_text().strip()
    assert f"FAILED PEER : {swop2} : ML org2-user1 (node 0) exited with code 5" in lines, lines
    assert "    | the first attempt fails" in lines
    retry = (_context(running) + f"ASSIGN TASK flaky_run TO {RUNNER} TARGET {swop2}\n"
             f"WAIT FOR TASKRUNNER {RUNNER}\nGET TASKRUNNER STATUS {RUNNER}\nEXIT\n")
    result = running.swci(retry, timeout=120)
    lines = output_lines(result)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "STATE : COMPLETE" in lines
    assert "COMPLETED_PEERS : 3" in lines


CONTENT_TASK = """\
Name: per_node_content
TaskType: MAKE_SWARM_USER_CONTENT
Author: swci-tests
Prereq: ROOTTASK
Outcome: digits-shards
Body:
    ContentType: SWARMCONTENT
    OpsList:
    - Operation: DOWNLOAD
      Target: {uri}
      Options:
      - Out: shards.tar.gz
    - Operation: EXTRACT
      Target: shards.tar.gz
      Options:
      - Out: data
"""


def test_all_peers_fills_one_content_volume_per_sl_node(running: Site) -> None:
    archive = running.root / "shards.tar.gz"
    (running.root / "shard.txt").write_text("a shard")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(running.root / "shard.txt", arcname="shard.txt")
    (running.usr / "taskdefs" / "per_node_content.yaml").write_text(
        CONTENT_TASK.format(uri=archive.as_uri()))
    script = (_context(running) + "create task from taskdefs/per_node_content.yaml\n"
              f"finalize task per_node_content\nRESET TASKRUNNER {RUNNER}\n"
              f"ASSIGN TASK per_node_content TO {RUNNER} WITH ALL PEERS\n"
              f"WAIT FOR TASKRUNNER {RUNNER}\nLIST NODES\nEXIT\n")
    result = running.swci(script, timeout=120)
    lines = output_lines(result)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "STATE : COMPLETE" in lines
    data = running.workspace.root / "data"
    volumes = sorted(str(p.relative_to(data)) for p in data.glob("swop*/volumes/*/data/*"))
    assert volumes == ["swop1/volumes/digits-shards-0/data/shard.txt",
                       "swop1/volumes/digits-shards-1/data/shard.txt",
                       "swop2/volumes/digits-shards-0/data/shard.txt"]
    # both SWOPs are in LIST NODES, under the SN
    swops = [line for line in lines if line.startswith("SWOP")]
    assert len(swops) == 2 and all("swop" in line for line in swops)


def test_a_swop_stopped_mid_task_fails_it_and_takes_its_processes(running: Site) -> None:
    _run_task(running, "stopped_run", "sleep_forever.py")
    script = (_context(running) + "create task from taskdefs/stopped_run.yaml\n"
              f"finalize task stopped_run\nRESET TASKRUNNER {RUNNER}\n"
              f"ASSIGN TASK stopped_run TO {RUNNER} WITH 3 PEERS\nEXIT\n")
    assert running.swci(script, timeout=60).returncode == 0
    root = running.workspace.root
    deadline = time.monotonic() + 60
    while len(swop_processes(root)) < 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(swop_processes(root)) == 6
    running.workspace.stop("swop2")
    try:
        result = running.swci(_context(running) + f"WAIT FOR TASKRUNNER {RUNNER}\nEXIT\n",
                              timeout=60)
        lines = output_lines(result)
        assert "STATE : ERROR" in lines, result.stdout[-3000:]
        assert any(line.startswith("FAILED PEER : ") and "swop2 was stopped during the task"
                   in line for line in lines), lines
        # swop2's pair is gone with it; swop1's stay until the reset
        assert len(swop_processes(root)) == 4
        running.swci(_context(running) + f"RESET TASKRUNNER {RUNNER}\nEXIT\n", timeout=60)
        deadline = time.monotonic() + 30
        while swop_processes(root) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert swop_processes(root) == []
    finally:
        running.workspace.start_swop("swop2", running.usr / "swop" / "swop2_profile.yaml")


def test_a_task_whose_body_is_not_a_task_fails_with_that_reason(running: Site) -> None:
    script = (_context(running) + "CREATE TASK RUN_SWARM garbled swci-tests ROOTTASK garbled\n"
              'APPEND TASK BODY garbled 1 "Command: [unclosed"\n'
              f"FINALIZE TASK garbled\nRESET TASKRUNNER {RUNNER}\n"
              f"ASSIGN TASK garbled TO {RUNNER} WITH 1 PEERS\n"
              f"WAIT FOR TASKRUNNER {RUNNER}\nEXIT\n")
    result = running.swci(script, timeout=60)
    lines = output_lines(result)
    assert "STATE : ERROR" in lines, result.stdout[-3000:]
    assert any("task garbled: its body is not" in line for line in lines), lines[-3:]
    # both SWOPs are still up and take the next task
    assert all(running.workspace.record(name).running() for name in ("swop1", "swop2"))
