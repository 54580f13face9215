"""The SWCI web API (`swci serve`, a real process) in front of a real SN, with fields far over
their limits: the command line, an upload's name and size, and every kind of name or line a
command hands to the SN. Each is refused with the limit named (a 4xx, or an `ERROR :` line
that names it), none gets a 5xx, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swarmlearning.identity.tls import Identity, client_context
from swarmlearning.nodes.workspace import Workspace
from tests.swarm_processes import free_port

LONG = "n" * 161


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("web-limits")
    workspace = Workspace(root / "ws")
    usr = root / "usr"
    usr.mkdir()
    api = free_port()
    try:
        workspace.start_sn("sn1", sentinel=True, api_port=api, p2p_port=free_port())
        port = workspace.start_web(port=free_port(), usr_dir=usr).ports["web"]
        layout = workspace.pki()
        verify = client_context(Identity(cert=layout.cert("swci"), key=layout.key("swci"),
                                         capath=layout.capath), check_hostname=False)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify,
                          timeout=30) as client:
            for command in (f"CREATE CONTEXT lab WITH IP 127.0.0.1 {api}", "SWITCH CONTEXT lab",
                            "CREATE TASK RUN_SWARM limits-task me ROOTTASK done"):
                reply = client.post("/exec", params={"cmd": command})
                assert reply.status_code == 200 and not any(
                    line.startswith("ERROR") for line in reply.json()["CONTENT"]), reply.text
            yield client
    finally:
        workspace.stop_all(grace=5)


def run(web: httpx.Client, command: str) -> list[str]:
    reply = web.post("/exec", params={"cmd": command})
    assert reply.status_code == 200, reply.text
    return reply.json()["CONTENT"]


@pytest.mark.parametrize("command, words", [
    (f"CREATE CONTRACT {LONG}", "161 characters long; the limit is 160"),
    (f"CREATE TASKRUNNER {LONG}", "161 characters long; the limit is 160"),
    (f"CREATE TASK RUN_SWARM {LONG} me ROOTTASK done", "161 characters long; the limit is 160"),
    (f"CREATE TASK RUN_SWARM ok-name {LONG} ROOTTASK done",
     "161 characters long; the limit is 160"),
    (f"APPEND TASK BODY limits-task 1 {'x' * 161}", "161 characters long; the limit is 160"),
    ("APPEND TASK BODY limits-task 81 x", "body line index must be 1 to 80"),
])
def test_oversized_names_and_lines_are_refused_with_the_limit(web: httpx.Client, command: str,
                                                              words: str) -> None:
    lines = run(web, command)
    assert any(line.startswith("ERROR") and words in line for line in lines), lines
    assert all(len(line) < 400 for line in lines), lines  # the value is not echoed back
    stored = "\n".join(run(web, "LIST CONTRACTS") + run(web, "LIST TASKS")
                       + run(web, "LIST TASKRUNNERS"))
    assert LONG not in stored


def test_an_oversized_command_or_upload_is_refused_with_its_limit(web: httpx.Client,
                                                                  tmp_path: Path) -> None:
    reply = web.post("/exec", params={"cmd": "LIST TASKS " + "x" * 5000})
    assert reply.status_code == 422 and "at most 4096 characters" in reply.text
    reply = web.post("/uploadTaskDef", files={"file": ("t" * 200 + ".yaml", b"a: 1\n")})
    assert reply.status_code == 422 and "at most 128 characters" in reply.text
    reply = web.post("/uploadTaskDef", files={"file": ("big.yaml", b"x" * ((1 << 20) + 1))})
    assert reply.status_code == 413 and "larger than 1048576 bytes" in reply.text
