"""A swarm stood up from the shell: START SN, HPE's mnist init script flow up to LIST TASKS
(context, both tasks created and finalized, listed) unchanged, then STOP SWARM. `sn1` in HPE's
script resolves to the local node started as sn1, as a container name does on Docker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swarmlearning.nodes.workspace import Workspace
from tests.hpe_examples import hpe_file, needs_hpe
from tests.swarm_processes import free_port, output_lines, run_swci
from tests.test_sn_network import BUILD_TASK, RUN_TASK

# HPE's mnist swci-init up to its first LIST TASKS of the run task, without the blocks that
# assign tasks to SWOPs (the Swarm Operator issue brings those).
HPE_STYLE_FLOW = """\
# SWCI context setup
EXIT ON FAILURE
wait for ip sn1
create context test-mnist with ip sn1
switch context test-mnist
EXIT ON FAILURE OFF

#Change to the directory where we are mounting the host
cd /platform/swarm/usr

# Create and finalize build task
EXIT ON FAILURE
create task from taskdefs/{build}.yaml
finalize task {build}
get task info {build}
get task body {build}
list tasks
EXIT ON FAILURE OFF

# Create and finalize swarm run task
EXIT ON FAILURE
create task from taskdefs/{run}.yaml
finalize task {run}
get task info {run}
get task body {run}
list tasks
EXIT ON FAILURE OFF
"""


@pytest.fixture
def workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.stop_all()


def _run(tmp_path: Path, workspace: Workspace, flow: str) -> subprocess.CompletedProcess:
    api, p2p = free_port(), free_port()
    script = (f"START SN sn1 SENTINEL API PORT {api} P2P PORT {p2p}\n{flow}\n"
              "LIST LOCAL NODES\nSTOP SWARM\nLIST LOCAL NODES\nEXIT\n")
    (tmp_path / "usr" / "swci-init").write_text(script)
    return run_swci("--usr-dir", str(tmp_path / "usr"), "--workspace", str(workspace.root),
                    "--init-script-name", "swci-init", cwd=tmp_path, env={}, timeout=180)


def _check(result: subprocess.CompletedProcess, build: str, run: str) -> list[str]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    lines = output_lines(result)
    assert lines[0].startswith("SENTINEL sn1 STARTED : pid ")
    assert "API Server is UP!" in lines and "CONTEXT CREATED : test-mnist" in lines
    assert f"Task Registered : {run}" in lines
    listing = lines.index(f"Task Registered : {run}")
    final = [line for line in lines[listing:] if line in ("ROOTTASK", build, run)]
    assert final[-3:] == ["ROOTTASK", build, run]
    assert "SN sn1 STOPPED" in lines
    assert lines[-1].startswith("No local nodes in ")
    return lines


def test_hpe_style_flow_runs_against_a_shell_started_sn(tmp_path, workspace):
    (tmp_path / "usr" / "taskdefs").mkdir(parents=True)
    (tmp_path / "usr" / "taskdefs" / "env_build_task.yaml").write_text(BUILD_TASK)
    (tmp_path / "usr" / "taskdefs" / "swarm_run_task.yaml").write_text(RUN_TASK)
    flow = HPE_STYLE_FLOW.format(build="env_build_task", run="swarm_run_task")
    lines = _check(_run(tmp_path, workspace, flow), "env_build_task", "swarm_run_task")
    assert "STATE      : FINALIZED" in lines
    assert not workspace.records()


@needs_hpe
def test_hpe_mnist_init_script_unchanged_up_to_list_tasks(tmp_path, workspace):
    """HPE's own files: swci-init cut before its first ASSIGN block and resumed at the run task's
    create block; the task YAML files as they are."""
    (tmp_path / "usr" / "taskdefs").mkdir(parents=True)
    for name in ("user_env_tf_build_task", "swarm_mnist_task"):
        text = hpe_file(f"examples/mnist/swci/taskdefs/{name}.yaml")
        (tmp_path / "usr" / "taskdefs" / f"{name}.yaml").write_text(text)
    init = hpe_file("examples/mnist/swci/swci-init")
    head, rest = init.split("# Assign build task", 1)
    run_block = "# Create and finalize swarm run task" + \
        rest.split("# Create and finalize swarm run task", 1)[1].split("# Assign run task")[0]
    _check(_run(tmp_path, workspace, head + run_block), "user_env_tf_build_task",
           "swarm_mnist_task")
