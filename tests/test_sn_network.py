"""The Swarm Network end to end: real SN processes on 127.0.0.1 with mutual TLS, two
organisations with their own CAs, the embedded chain served to the second SN as JSON-RPC, and
SWCI scripts run as real processes. Tests run in file order; the last ones restart and stop the
sentinel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from swarmlearning.identity.tls import Identity, client_context
from swci.network import HttpSwarmNetworkClient, NetworkError
from tests.swarm_processes import (
    SN,
    exchange_cas,
    free_port,
    identity_env,
    make_orgs,
    output_lines,
    run_swci,
)

BUILD_TASK = """\
Name: env_build_task
TaskType: MAKE_USER_CONTAINER
Author: tester
Prereq: ROOTTASK
Outcome: env-image
Body:
    BuildContext: build-ctx
    BuildType: INLINE
    BuildSteps:
    - FROM python:3.11
    - ' '
    - RUN pip install numpy
"""

RUN_TASK = """\
Name: swarm_run_task
TaskType: RUN_SWARM
Author: tester
Prereq: env_build_task
Outcome: swarm_run_task
Body:
    Command: model/train.py
    Entrypoint: python3
    WorkingDir: /tmp/test
    Envvars: ["MAX_EPOCHS": 2, "MIN_PEERS": 2]
    PrivateContent: /tmp/test/
    SharedContent:
    -   Src: /shared/model
        Tgt: /tmp/test/model
        MType: BIND
"""

BAD_TASK = """\
Name: broken_task
TaskType: MAKE_USER_CONTAINER
Author: tester
Prereq: ROOTTASK
Outcome: broken
Body:
    BuildContext: build-ctx
    BuildType: INLINE
"""


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    root = tmp_path_factory.mktemp("swarm")
    orgs = make_orgs(root / "pki", "a", "b", "c")
    exchange_cas(orgs["a"], orgs["b"])
    sentinel_port = free_port()
    second = SN("sn2", orgs["b"], root / "sn2", root / "logs" / "sn2.log",
                sentinel_port=sentinel_port)
    sentinel = SN("sn1", orgs["a"], root / "sn1", root / "logs" / "sn1.log",
                  api_port=sentinel_port)
    try:
        second.start()
        # the second SN starts first: it must wait for its sentinel, not fail
        second.wait_for("Waiting for the sentinel SN at 127.0.0.1:")
        sentinel.start()
        sentinel.wait_ready()
        second.wait_ready()
        yield {"root": root, "orgs": orgs, "sentinel": sentinel, "second": second}
    finally:
        second.stop()
        sentinel.stop()


def _usr(root: Path, name: str) -> Path:
    usr = root / name
    (usr / "taskdefs").mkdir(parents=True, exist_ok=True)
    return usr


def _script(swarm, sn: SN, org: str, body: str, usr: Path) -> subprocess.CompletedProcess:
    text = (f"EXIT ON FAILURE\ncreate context ctx with ip 127.0.0.1 {sn.api_port}\n"
            f"switch context ctx\ncd /platform/swarm/usr\n{body}")
    (usr / "script.swci").write_text(text)
    return run_swci("--usr-dir", str(usr), "--script", "script.swci", cwd=usr,
                    env=identity_env(swarm["orgs"][org]))


def _list(swarm, sn: SN, org: str, what: str) -> list[str]:
    usr = _usr(swarm["root"], f"list-{sn.name}-{org}")
    result = _script(swarm, sn, org, f"{what}\n", usr)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = output_lines(result)
    return lines[lines.index("DEFAULT CONTEXT SET TO : ctx") + 2:]


def test_second_sn_waited_for_its_sentinel(swarm):
    assert "Waiting for the sentinel SN at 127.0.0.1:" in swarm["second"].log()
    assert "Joined the chain at https://127.0.0.1:" in swarm["second"].log()


def test_tasks_created_through_one_sn_are_seen_through_the_other(swarm):
    usr = _usr(swarm["root"], "usr-a")
    (usr / "taskdefs" / "build.yaml").write_text(BUILD_TASK)
    (usr / "taskdefs" / "run.yaml").write_text(RUN_TASK)
    result = _script(swarm, swarm["sentinel"], "a",
                     "create task from taskdefs/build.yaml\nfinalize task env_build_task\n"
                     "create task from taskdefs/run.yaml\nfinalize task swarm_run_task\n"
                     "get task body env_build_task\nlist tasks\n", usr)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = output_lines(result)
    assert "Task Registered : env_build_task" in lines
    assert "0001: BuildContext: build-ctx" in lines
    assert lines[-3:] == ["ROOTTASK", "env_build_task", "swarm_run_task"]
    through_second = _list(swarm, swarm["second"], "b", "list tasks")
    assert through_second == ["ROOTTASK", "env_build_task", "swarm_run_task"]
    # and the other way round: a contract made through the second SN
    usr_b = _usr(swarm["root"], "usr-b")
    made = _script(swarm, swarm["second"], "b", "create contract org-b-training\n", usr_b)
    assert made.returncode == 0, made.stdout + made.stderr
    contracts = _list(swarm, swarm["sentinel"], "a", "list contracts")
    assert any(line.startswith("org-b-training ") for line in contracts)


def test_list_nodes_shows_both_sns_as_csv(swarm):
    lines = _list(swarm, swarm["sentinel"], "a", "list nodes")
    assert lines[0] == "NodeType, HostIP, Port, ContainerName, UUID, ParentUUID, i-am-alive"
    rows = [line.split(", ") for line in lines[1:]]
    by_name = {row[3]: row for row in rows}
    assert by_name["sn1"][0] == "SENTINEL" and by_name["sn2"][0] == "SN"
    assert by_name["sn2"][5] == by_name["sn1"][4]  # the second SN's parent is the sentinel
    assert all(len(row) == 7 for row in rows)


def test_finalized_task_cannot_be_deleted_or_changed(swarm):
    usr = _usr(swarm["root"], "usr-final")
    result = _script(swarm, swarm["second"], "b",
                     "EXIT ON FAILURE OFF\ndelete task env_build_task\n"
                     "append task body env_build_task 2 RUN echo\n", usr)
    errors = [line for line in output_lines(result) if line.startswith("ERROR")]
    assert len(errors) == 2
    assert "cannot be deleted" in errors[0] and "cannot change" in errors[1]


def test_malformed_task_yaml_names_the_field_and_stores_nothing(swarm):
    before = _list(swarm, swarm["sentinel"], "a", "list tasks")
    usr = _usr(swarm["root"], "usr-bad")
    (usr / "taskdefs" / "bad.yaml").write_text(BAD_TASK)
    result = _script(swarm, swarm["sentinel"], "a", "create task from taskdefs/bad.yaml\n", usr)
    assert result.returncode == 1
    error = next(line for line in output_lines(result) if line.startswith("ERROR"))
    assert "taskdefs/bad.yaml:7:5: Body.BuildSteps: required key is missing" in error
    assert _list(swarm, swarm["sentinel"], "a", "list tasks") == before
    # the SN checks too: a client that skips SWCI's check gets a 422 naming the field
    ident = Identity(cert=swarm["orgs"]["a"].cert("swci"), key=swarm["orgs"]["a"].key("swci"),
                     capath=swarm["orgs"]["a"].capath)
    with httpx.Client(verify=client_context(ident), timeout=30) as http:
        reply = http.post(f"https://127.0.0.1:{swarm['sentinel'].api_port}/v1/tasks/definitions",
                          json={"Name": "x", "TaskType": "PULL_IMAGE", "Author": "a",
                                "Prereq": "ROOTTASK", "Outcome": "o",
                                "Body": {"Tag": "1", "RepoName": "r"}})
    assert reply.status_code == 422
    assert "Body.OrgAndReg" in reply.json()["detail"]
    assert _list(swarm, swarm["sentinel"], "a", "list tasks") == before


def test_openapi_is_published(swarm):
    ident = Identity(cert=swarm["orgs"]["b"].cert("swci"), key=swarm["orgs"]["b"].key("swci"),
                     capath=swarm["orgs"]["b"].capath)
    with httpx.Client(verify=client_context(ident), timeout=30) as http:
        spec = http.get(f"https://127.0.0.1:{swarm['second'].api_port}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/tasks/definitions" in spec["paths"]


def test_client_from_an_unknown_ca_is_refused(swarm):
    foreign = Identity(cert=swarm["orgs"]["c"].cert("swci"), key=swarm["orgs"]["c"].key("swci"),
                       capath=swarm["orgs"]["a"].capath)
    for port in (swarm["sentinel"].api_port, swarm["sentinel"].p2p_port):
        client = HttpSwarmNetworkClient("127.0.0.1", port, ssl_context=client_context(foreign),
                                        timeout=10)
        with pytest.raises(NetworkError):
            client.version()
    # a trusted client on the same ports gets through (the refusal is about the CA)
    trusted = Identity(cert=swarm["orgs"]["a"].cert("swci"), key=swarm["orgs"]["a"].key("swci"),
                       capath=swarm["orgs"]["a"].capath)
    client = HttpSwarmNetworkClient("127.0.0.1", swarm["sentinel"].api_port,
                                    ssl_context=client_context(trusted), timeout=10)
    assert client.version()["NODE_TYPE"] == "SENTINEL"
    # SWCI with the foreign identity says the API server could not be reached
    usr = _usr(swarm["root"], "usr-c")
    result = _script(swarm, swarm["sentinel"], "c", "list tasks\n", usr)
    assert result.returncode == 1
    assert any("Unable to contact API-Server" in line for line in output_lines(result))


def test_completion_offers_live_names_from_the_sn(swarm, monkeypatch, tmp_path):
    from swci.interpreter import CollectingOutput, Interpreter, SessionState
    from swci.shell.completion import suggest
    from swci.shell.names import LiveNames

    for key, value in identity_env(swarm["orgs"]["b"]).items():
        monkeypatch.setenv(key, value)
    interp = Interpreter(SessionState(cwd=tmp_path))
    out = CollectingOutput()
    interp.run_line(f"CREATE CONTEXT live WITH IP 127.0.0.1 {swarm['second'].api_port}", out)
    interp.run_line("SWITCH CONTEXT live", out)
    assert not out.errors
    names = LiveNames(interp)
    names.refresh()
    names._thread.join(timeout=30)
    assert {"env_build_task", "swarm_run_task", "ROOTTASK"} <= set(names.names("tasks"))
    assert "defaulttaskbb.taskdb.sml.hpe" in names.names("taskrunners")
    offered = [s.text for s in suggest("FINALIZE TASK env_", names)]
    assert "env_build_task" in offered


def test_state_survives_kill_9_of_the_sentinel(swarm):
    sentinel = swarm["sentinel"]
    tasks = _list(swarm, sentinel, "a", "list tasks")
    contracts = _list(swarm, sentinel, "a", "list contracts")
    assert "env_build_task" in tasks
    sentinel.kill9()
    sentinel.start()
    sentinel.wait_ready(occurrence=2)
    assert "Embedded chain resumed from" in sentinel.log()
    assert _list(swarm, sentinel, "a", "list tasks") == tasks
    assert [c.split()[0] for c in _list(swarm, sentinel, "a", "list contracts")] == \
        [c.split()[0] for c in contracts]
    # the second SN reconnects to the restarted chain on its own
    assert _list(swarm, swarm["second"], "b", "list tasks") == tasks


def test_sigterm_stops_an_sn_cleanly(swarm):
    second = swarm["second"]
    assert second.stop() == 0
    assert second.log().rstrip().endswith("SN stopped")


def test_a_chain_from_another_version_is_named_not_used(tmp_path):
    """A sentinel whose saved chain holds contracts this version was not built with stops with
    a message naming them (here: the registry's address points at another contract), and the
    chain is left as it was."""
    orgs = make_orgs(tmp_path / "pki", "a")
    sentinel = SN("old", orgs["a"], tmp_path / "sn", tmp_path / "logs" / "old.log")
    sentinel.start().wait_ready()
    assert sentinel.stop() == 0
    saved = tmp_path / "sn" / "contracts.json"
    addresses = json.loads(saved.read_text())
    addresses["nodes"], addresses["trainings"] = addresses["trainings"], addresses["nodes"]
    saved.write_text(json.dumps(addresses))
    chain_files = {p: p.read_bytes() for p in (tmp_path / "sn").rglob("*") if p.is_file()}
    sentinel.start()
    assert sentinel.process.wait(timeout=60) == 1
    log = sentinel.log()
    assert "holds NodeRegistry, TrainingBoard as deployed by another version of swci" in log
    assert "Traceback" not in log
    assert {p: p.read_bytes() for p in chain_files} == chain_files
