"""A whole training driven only through HPE's Python client, `swarmlearning.swci.Swci`, against
a real `swci serve`, SN and two SWOPs: upload, register, execute, as HPE's users write it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.swarm_processes import free_port
from tests.test_swop import Site, swop_processes


@pytest.fixture
def site(tmp_path: Path, monkeypatch):  # noqa: ANN201
    monkeypatch.setenv("SWCI_WEB_LOG", str(tmp_path / "swci-web.log"))
    site = Site(tmp_path, "")
    ws = site.workspace
    try:
        ws.start_sn("sn1", sentinel=True, api_port=site.api, p2p_port=site.p2p)
        for name in ("swop1", "swop2"):
            ws.start_swop(name, site.usr / "swop" / f"{name}_profile.yaml")
        site.web_port = ws.start_web(port=free_port(), usr_dir=site.usr).ports["web"]
        yield site
    finally:
        ws.stop_all(grace=5)


def test_an_unmodified_hpe_client_program_trains_a_swarm(site: Site) -> None:
    from swarmlearning.swci import Swci

    pki = site.workspace.pki()
    s = Swci("127.0.0.1", port=site.web_port, clientCert=str(pki.cert("swci")),
             clientPKey=str(pki.key("swci")), clientCABundle=str(pki.capath))
    assert s.createContext("testContext", ip="127.0.0.1", port=site.api)
    assert s.switchContext("testContext")
    assert "testContext" in " ".join(s.listContexts())
    for name in ("digits_build_ctx", "digits_build", "digits_run"):
        s.uploadTaskDefintion(str(site.usr / "taskdefs" / f"{name}.yaml"))
        assert s.registerTask(f"{name}.yaml") == [f"Registered Task : {name}"], s.getErrors()
    assert "digits_run" in s.listTasks()
    s.resetTaskRunner()
    s.executeTask("digits_build_ctx", peers=2, pollWaitInSec=1)
    s.executeTask("digits_build", peers=2, pollWaitInSec=1)
    assert s.isTaskDone("defaulttaskbb.taskdb.sml.hpe")
    s.executeTask("digits_run", peers=3, pollWaitInSec=2)
    results = [json.loads((site.project / "results" / f"peer{i}.json").read_text())
               for i in (1, 2, 3)]
    assert all(r["accuracy"] >= 0.9 for r in results), results
    status = s.getTaskRunnerStatus("defaulttaskbb.taskdb.sml.hpe")
    assert any("TASK_STATE" in line and "IDLE" in line for line in status), status
    nodes = s.listNodes()
    assert sum(line.startswith("SWOP") for line in nodes) == 2
    assert s.getTaskInfo("nothing-like-this") == [] and s.getErrors()
    # executeTask reset the taskrunner on success: the SWOPs clean up within seconds
    deadline = time.monotonic() + 30
    while swop_processes(site.workspace.root) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert swop_processes(site.workspace.root) == []
