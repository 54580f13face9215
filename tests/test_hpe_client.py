"""swarmlearning.swci.Swci, HPE's SWCI web client: the commands it sends, how it reads replies,
its cache, its task helpers, uploads, topology pictures and TLS. The SWCI server is an
httpx.MockTransport here, except in the TLS tests, which talk to a loopback HTTPS server."""

from __future__ import annotations

import http.server
import json
import logging
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import swarmlearning.swci as hpe_module
from swarmlearning.identity.pki import generate_pki
from swarmlearning.identity.tls import Identity, server_context
from swarmlearning.swci import Swci, swci, topology, transport
from swarmlearning.swci import client as client_module

from .conftest import Clock

Reply = list[str] | httpx.Response | Callable[[], list[str] | httpx.Response]


class FakeServer:
    """Answers /exec from a table of replies (default: one 'OK' line) and records every
    command; /uploadTaskDef keeps the uploaded files."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.commands: list[str] = []
        self.requests: list[httpx.Request] = []
        self.uploads: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/uploadTaskDef":
            self.uploads.append(request)
            return httpx.Response(200, json={"CONTENT": ["TASK DEFINITION UPLOADED : t.yaml"]})
        assert request.url.path == "/exec"
        command = request.url.params["cmd"]
        self.commands.append(command)
        reply = self.replies.get(command, ["OK"])
        if callable(reply):
            reply = reply()
        if isinstance(reply, httpx.Response):
            return reply
        return httpx.Response(200, json={"CONTENT": reply, "DATA": {}})

    def sequence(self, command: str, replies: list[list[str]]) -> None:
        """Answer `command` with each reply in turn, then keep giving the last one."""
        queue = list(replies)
        self.replies[command] = lambda: queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture(autouse=True)
def web_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The default logger writes under tmp_path, and the tests run in an empty directory."""
    log_file = tmp_path / "logs" / "swci-web.log"
    log_file.parent.mkdir()
    monkeypatch.setenv("SWCI_WEB_LOG", str(log_file))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in ("SWCI_RUN_TASK_MAX_WAIT_TIME", "SWCI_TASK_MAX_WAIT_TIME", "SWCI_WEB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    yield log_file
    logger = logging.getLogger(client_module.LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, client_module._OUR_HANDLER, False):
            logger.removeHandler(handler)
            handler.close()


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def connect(server: FakeServer, **kwargs: Any) -> Swci:
    return Swci("swci.test", _transport=httpx.MockTransport(server), **kwargs)


# -- names and construction ------------------------------------------------------------------------


def test_hpe_import_forms_give_the_class() -> None:
    assert swci is Swci
    assert hpe_module.Swci is Swci and hpe_module.swci is Swci
    assert [key.value for key in hpe_module.SwciCacheKey] == [
        "get context info ", "get contract info ", "get task body ", "get task info ",
        "get taskrunner info ", "list contexts", "list contracts", "list tasks",
        "list taskrunners"]


def test_constructor_validates_like_hpe(server: FakeServer) -> None:
    with pytest.raises(RuntimeError, match="SWCI IP not provided"):
        Swci(None, _transport=httpx.MockTransport(server))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="SWCI Port not Integer"):
        Swci("swci.test", port="30306", _transport=httpx.MockTransport(server))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="clientPKey given without clientCert"):
        Swci("swci.test", clientPKey="key.pem", _transport=httpx.MockTransport(server))
    assert server.requests == []


def test_a_command_is_a_post_with_the_command_in_the_query(server: FakeServer) -> None:
    client = Swci("10.1.2.3", port=31000, _transport=httpx.MockTransport(server))
    client.ls("-l dir with spaces+plus#hash&amp")
    (request,) = server.requests
    assert request.method == "POST"
    assert (request.url.scheme, request.url.host, request.url.port) == ("http", "10.1.2.3", 31000)
    assert request.url.path == "/exec"
    assert request.url.params["cmd"] == "ls -l dir with spaces+plus#hash&amp"
    assert request.content == b""


def test_default_port_and_ipv6_host(server: FakeServer) -> None:
    Swci("fd00::5", _transport=httpx.MockTransport(server)).pwd()
    assert server.requests[0].url.host == "fd00::5"
    assert server.requests[0].url.port == 30306


# -- the command each method sends -----------------------------------------------------------------

COMMANDS: list[tuple[Callable[[Swci], object], str]] = [
    (lambda s: s.createContext("c", ip="10.0.0.1"), "create context c with ip 10.0.0.1 30304"),
    (lambda s: s.createContext("c", ip="10.0.0.1", port=16000),
     "create context c with ip 10.0.0.1 16000"),
    (lambda s: s.createContext("c", service="api.sn.swarm"),
     "create context c with service api.sn.swarm"),
    (lambda s: s.createContext("c", service="api.sn.swarm:17000"),
     "create context c with service api.sn.swarm:17000"),
    (lambda s: s.switchContext("c"), "switch context c"),
    (lambda s: s.listContexts(), "list contexts"),
    (lambda s: s.getContextInfo("c"), "get context info c"),
    (lambda s: s.createTrainingContract("ct"), "create contract ct"),
    (lambda s: s.listTrainingContracts(), "list contracts"),
    (lambda s: s.getTrainingContractInfo("ct"), "get contract info ct"),
    (lambda s: s.getTrainingContractStatus("ct"), "get contract status ct"),
    (lambda s: s.getTrainingContractPerformanceData("ct"), "perfdata ct"),
    (lambda s: s.getTrainingContractPerformanceData(), "perfdata defaultbb.cqdb.sml.hpe"),
    (lambda s: s.resetTrainingContract("ct"), "reset contract ct"),
    (lambda s: s.resetTrainingContract(), "reset contract defaultbb.cqdb.sml.hpe"),
    (lambda s: s.createTaskFrom("task.yaml"), "create task from task.yaml"),
    (lambda s: s.createTaskFrom(Path("dir/task.yaml")), "create task from dir/task.yaml"),
    (lambda s: s.finalizeTask("t"), "finalize task t"),
    (lambda s: s.deleteTask("t"), "delete task t"),
    (lambda s: s.getTaskInfo("t"), "get task info t"),
    (lambda s: s.getTaskBody("t"), "get task body t"),
    (lambda s: s.listTasks(), "list tasks"),
    (lambda s: s.listTaskRunners(), "list taskrunners"),
    (lambda s: s.getTaskRunnerInfo("tr"), "get taskrunner info tr"),
    (lambda s: s.assignTask("t", "tr", 2), "assign task t to tr with 2 peers"),
    (lambda s: s.assignTask("t", "tr", "3"), "assign task t to tr with 3 peers"),
    (lambda s: s.getTaskRunnerStatus("tr"), "get taskrunner status tr"),
    (lambda s: s.getTaskRunnerPeerStatus("tr", 1), "get taskrunner peer status tr 1"),
    (lambda s: s.resetTaskRunner("tr"), "reset taskrunner tr"),
    (lambda s: s.resetTaskRunner(), "reset taskrunner defaulttaskbb.taskdb.sml.hpe"),
    (lambda s: s.listNodes(), "list Nodes"),
    (lambda s: s.ls(), "ls"),
    (lambda s: s.ls("-l /data"), "ls -l /data"),
    (lambda s: s.pwd(), "pwd"),
    (lambda s: s.cd("/data"), "cd /data"),
    (lambda s: s.sleep(3), "sleep 3"),
]


@pytest.mark.parametrize(("call", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_each_method_sends_hpes_command(server: FakeServer, call: Callable[[Swci], object],
                                        command: str) -> None:
    call(connect(server))
    assert server.commands == [command]


def test_create_context_needs_an_ip_or_a_service(server: FakeServer) -> None:
    with pytest.raises(RuntimeError, match="either IP or Service name is mandatory"):
        connect(server).createContext("c")
    assert server.requests == []


def test_sleep_allows_the_reply_to_take_that_long(server: FakeServer) -> None:
    connect(server).sleep(1000)
    timeout = server.requests[0].extensions["timeout"]
    assert timeout["read"] >= 1000
    assert timeout["connect"] == transport.CONNECT_TIMEOUT


def test_every_request_has_a_timeout(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWCI_WEB_TIMEOUT", "42")
    connect(server).pwd()
    timeout = server.requests[0].extensions["timeout"]
    assert timeout["read"] == 42 and timeout["connect"] == transport.CONNECT_TIMEOUT


# -- replies ---------------------------------------------------------------------------------------


def test_content_elements_are_split_into_stripped_lines(server: FakeServer) -> None:
    server.replies["list tasks"] = ["  NAME  TYPE \n  ----\n t1    RUN_SWARM  ", "done"]
    client = connect(server)
    assert client.listTasks() == ["NAME  TYPE", "----", "t1    RUN_SWARM", "done"]
    assert client.getErrors() is None


def test_the_first_error_line_fails_the_command(server: FakeServer) -> None:
    server.replies["get task info nope"] = ["checking", "ERROR : no task 'nope'", "ERROR : 2nd"]
    client = connect(server)
    assert client.getTaskInfo("nope") == []
    assert client.getErrors() == "ERROR : no task 'nope'"
    assert client.pwd() == ["OK"]
    assert client.getErrors() is None


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(422, json={"CONTENT": ["ERROR : cmd is missing"], "DATA": {}}),
     "ERROR : cmd is missing"),
    (httpx.Response(401, json={"CONTENT": ["ERROR : a client certificate is required"]}),
     "ERROR : a client certificate is required"),
    (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502 without JSON"),
    (httpx.Response(500, json={"CONTENT": []}), "HTTP 500"),
    (httpx.Response(200, json={}), "ERROR : Command did not produce output"),
    (httpx.Response(200, json={"LINES": ["x"]}), "has no CONTENT list"),
])
def test_failed_replies_give_no_lines_and_an_error(server: FakeServer, response: httpx.Response,
                                                   expected: str) -> None:
    server.replies["pwd"] = response
    client = connect(server)
    assert client.pwd() == []
    error = client.getErrors()
    assert error is not None and error.startswith("ERROR ") and expected in error


def test_a_transport_failure_gives_no_lines_and_an_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = Swci("swci.test", _transport=httpx.MockTransport(refuse))
    assert client.listNodes() == []
    error = client.getErrors() or ""
    assert error.startswith("ERROR : Exception occurred during POST request")
    assert "connection refused" in error and "clientCert" in error


# -- cache -----------------------------------------------------------------------------------------


def test_cached_commands_are_sent_once(server: FakeServer) -> None:
    server.replies["list tasks"] = ["t1", "t2"]
    client = connect(server)
    first = client.listTasks()
    first.append("changed by the caller")
    assert client.listTasks() == ["t1", "t2"]
    assert server.commands == ["list tasks"]
    client.clearCache()
    client.listTasks()
    assert server.commands == ["list tasks", "list tasks"]


def test_cached_hit_clears_the_previous_error(server: FakeServer) -> None:
    server.replies["get task info bad"] = ["ERROR : no task"]
    client = connect(server)
    client.listTasks()
    client.getTaskInfo("bad")
    assert client.getErrors() == "ERROR : no task"
    assert client.listTasks() == ["OK"]
    assert client.getErrors() is None
    assert server.commands.count("list tasks") == 1


def test_caching_can_be_disabled(server: FakeServer) -> None:
    client = connect(server, enableCaching=False)
    client.listContexts()
    client.listContexts()
    assert server.commands == ["list contexts", "list contexts"]


@pytest.mark.parametrize("reply", [["ERROR : down"], []])
def test_errors_and_empty_replies_are_not_cached(server: FakeServer, reply: list[str]) -> None:
    server.replies["list taskrunners"] = reply
    client = connect(server)
    client.listTaskRunners()
    client.listTaskRunners()
    assert server.commands == ["list taskrunners", "list taskrunners"]


def test_dynamic_commands_are_never_cached(server: FakeServer) -> None:
    client = connect(server)
    for _ in range(2):
        client.getTaskRunnerStatus("tr")
        client.listNodes()
        client.getTrainingContractStatus("ct")
    assert len(server.commands) == 6


INVALIDATIONS: list[tuple[str, Callable[[Swci], object], Callable[[Swci], object]]] = [
    ("create context / list", lambda s: s.listContexts(),
     lambda s: s.createContext("c", ip="10.0.0.1")),
    ("create context / info", lambda s: s.getContextInfo("c"),
     lambda s: s.createContext("c", service="api.sn")),
    ("switch / tasks", lambda s: s.listTasks(), lambda s: s.switchContext("other")),
    ("switch / runner info", lambda s: s.getTaskRunnerInfo("tr"),
     lambda s: s.switchContext("other")),
    ("create contract / list", lambda s: s.listTrainingContracts(),
     lambda s: s.createTrainingContract("ct")),
    ("reset contract / list", lambda s: s.listTrainingContracts(),
     lambda s: s.resetTrainingContract("ct")),
    ("create task / list", lambda s: s.listTasks(), lambda s: s.createTaskFrom("t.yaml")),
    ("delete task / list", lambda s: s.listTasks(), lambda s: s.deleteTask("t")),
    ("delete task / info", lambda s: s.getTaskInfo("t"), lambda s: s.deleteTask("t")),
    ("delete task / body", lambda s: s.getTaskBody("t"), lambda s: s.deleteTask("t")),
    ("finalize task / info", lambda s: s.getTaskInfo("t"), lambda s: s.finalizeTask("t")),
    ("assign / runners", lambda s: s.listTaskRunners(), lambda s: s.assignTask("t", "tr", 1)),
    ("reset runner / runners", lambda s: s.listTaskRunners(), lambda s: s.resetTaskRunner("tr")),
]


@pytest.mark.parametrize(("read", "change"), [(r, c) for _, r, c in INVALIDATIONS],
                         ids=[name for name, _, _ in INVALIDATIONS])
def test_changes_drop_the_cached_replies_they_affect(server: FakeServer,
                                                     read: Callable[[Swci], object],
                                                     change: Callable[[Swci], object]) -> None:
    client = connect(server)
    read(client)
    read(client)
    assert len(server.commands) == 1
    change(client)
    read(client)
    assert len(server.commands) == 3
    assert server.commands[0] == server.commands[2]


def test_unrelated_changes_keep_the_cache(server: FakeServer) -> None:
    client = connect(server)
    client.listContexts()
    client.getTaskBody("other")
    client.createTrainingContract("ct")
    client.deleteTask("t")
    client.resetTaskRunner("tr")
    client.listContexts()
    client.getTaskBody("other")
    assert server.commands.count("list contexts") == 1
    assert server.commands.count("get task body other") == 1


def test_create_task_from_drops_the_new_tasks_cached_info(server: FakeServer) -> None:
    server.replies["create task from t.yaml"] = ["Task definition is valid",
                                                 "Task Registered : t"]
    client = connect(server)
    client.getTaskInfo("t")
    client.createTaskFrom("t.yaml")
    client.getTaskInfo("t")
    assert server.commands.count("get task info t") == 2


# -- registerTask / isTaskDone ---------------------------------------------------------------------


def test_register_task_creates_and_finalizes(server: FakeServer) -> None:
    server.replies["create task from mnist.yaml"] = ["Task definition is valid",
                                                     "Task Registered : mnist_train"]
    server.replies["finalize task mnist_train"] = ["TASK FINALIZED : mnist_train"]
    client = connect(server)
    assert client.registerTask("mnist.yaml") == ["Registered Task : mnist_train"]
    assert server.commands == ["create task from mnist.yaml", "finalize task mnist_train"]


def test_register_task_without_finalize_returns_the_create_output(server: FakeServer) -> None:
    server.replies["create task from t.yaml"] = ["Task Registered : t"]
    client = connect(server)
    assert client.registerTask("t.yaml", finalize=False) == ["Task Registered : t"]
    assert server.commands == ["create task from t.yaml"]


def test_register_task_stops_at_a_failed_create(server: FakeServer) -> None:
    server.replies["create task from t.yaml"] = ["ERROR : t.yaml: no such file"]
    client = connect(server)
    assert client.registerTask("t.yaml") == []
    assert client.getErrors() == "ERROR : t.yaml: no such file"
    assert server.commands == ["create task from t.yaml"]


def test_register_task_reports_a_failed_finalize(server: FakeServer) -> None:
    server.replies["create task from t.yaml"] = ["Task Registered : t"]
    server.replies["finalize task t"] = ["ERROR : task t is already finalized"]
    client = connect(server)
    assert client.registerTask("t.yaml") == []
    assert client.getErrors() == "ERROR : task t is already finalized"


@pytest.mark.parametrize(("state", "done"), [
    ("COMPLETE", True), ("ERROR", True), ("IDLE", True), ("RUNNING", False),
    ("ASSIGNED", False),
])
def test_is_task_done_reads_task_state(server: FakeServer, state: str, done: bool) -> None:
    server.replies["get taskrunner status tr"] = [
        "NAME       : tr", f"TASK_STATE : {state}", "TASK       : t"]
    assert connect(server).isTaskDone("tr") is done


def test_is_task_done_raises_when_the_status_fails(server: FakeServer) -> None:
    server.replies["get taskrunner status tr"] = ["ERROR : no taskrunner 'tr'"]
    with pytest.raises(RuntimeError, match="no taskrunner 'tr'"):
        connect(server).isTaskDone("tr")


# -- executeTask -----------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(client_module, "_monotonic", fake.monotonic)
    monkeypatch.setattr(client_module, "_sleep", fake.sleep)
    return fake


def status(state: str) -> list[str]:
    return ["TASK       : t", f"TASK_STATE : {state}"]


def test_execute_task_polls_reports_and_resets(server: FakeServer, clock: Clock,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    server.sequence("get taskrunner status tr", [status("RUNNING"), status("RUNNING"),
                                                 status("COMPLETE")])
    server.replies["get taskrunner peer status tr 0"] = ["PEER 0 : done"]
    server.replies["get taskrunner peer status tr 1"] = ["PEER 1 : done"]
    lines = connect(server).executeTask("t", tr="tr", peers=2, pollWaitInSec=30)
    assert server.commands == [
        "assign task t to tr with 2 peers",
        "get taskrunner status tr", "get taskrunner status tr", "get taskrunner status tr",
        "get taskrunner status tr",
        "get taskrunner peer status tr 0", "get taskrunner peer status tr 1",
        "reset taskrunner tr"]
    assert clock.slept == [30, 30]
    rule = "=" * 40
    assert lines == [*status("COMPLETE"), rule, "PEER 0 : done", rule, "PEER 1 : done", rule]
    printed = capsys.readouterr().out
    assert "Assigned task t on tr for execution" in printed
    assert printed.count("Waiting for task t to complete") == 2
    assert "PEER 1 : done" in printed


def test_execute_task_uses_hpes_defaults(server: FakeServer, clock: Clock) -> None:
    default_tr = "defaulttaskbb.taskdb.sml.hpe"
    server.sequence(f"get taskrunner status {default_tr}", [status("RUNNING"),
                                                           status("COMPLETE")])
    connect(server).executeTask("t")
    assert server.commands[0] == f"assign task t to {default_tr} with 1 peers"
    assert clock.slept == [120]
    assert server.commands[-2:] == [f"get taskrunner peer status {default_tr} 0",
                                    f"reset taskrunner {default_tr}"]


@pytest.mark.parametrize(("final", "reset_on_success"), [("ERROR", True), ("COMPLETE", False)])
def test_execute_task_resets_only_a_completed_task_when_asked(server: FakeServer,
                                                              clock: Clock, final: str,
                                                              reset_on_success: bool) -> None:
    server.replies["get taskrunner status tr"] = status(final)
    connect(server).executeTask("t", tr="tr", resetTROnSuccess=reset_on_success)
    assert "reset taskrunner tr" not in server.commands
    assert clock.slept == []


def test_execute_task_stops_when_the_task_cannot_be_assigned(server: FakeServer,
                                                             clock: Clock) -> None:
    server.replies["assign task t to tr with 1 peers"] = ["ERROR : task t is not finalized"]
    client = connect(server)
    assert client.executeTask("t", tr="tr") == []
    assert client.getErrors() == "ERROR : task t is not finalized"
    assert server.commands == ["assign task t to tr with 1 peers"]


def test_execute_task_gives_up_after_the_maximum_wait(server: FakeServer, clock: Clock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWCI_RUN_TASK_MAX_WAIT_TIME", "2")  # minutes
    server.replies["get taskrunner status tr"] = status("RUNNING")
    client = connect(server)
    lines = client.executeTask("t", tr="tr", pollWaitInSec=50)
    assert sum(clock.slept) == pytest.approx(120)
    assert clock.slept == [50, 50, 20]
    assert "reset taskrunner tr" not in server.commands
    assert lines[:2] == status("RUNNING")
    assert "did not finish within 2 mins" in (client.getErrors() or "")


def test_execute_task_polls_at_least_every_second(server: FakeServer, clock: Clock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWCI_RUN_TASK_MAX_WAIT_TIME", "0.1")
    server.replies["get taskrunner status tr"] = status("RUNNING")
    connect(server).executeTask("t", tr="tr", pollWaitInSec=0)
    assert clock.slept == [1.0] * 6


def test_execute_task_raises_when_the_status_cannot_be_read(server: FakeServer,
                                                            clock: Clock) -> None:
    server.replies["get taskrunner status tr"] = ["ERROR : SN unreachable"]
    with pytest.raises(RuntimeError, match="SN unreachable"):
        connect(server).executeTask("t", tr="tr")


# -- uploadTaskDefintion ---------------------------------------------------------------------------


def test_upload_sends_the_file_as_multipart_field_file(server: FakeServer,
                                                       tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("Name: t\nTaskType: RUN_SWARM\n")
    reply = connect(server).uploadTaskDefintion(task)
    assert json.loads(reply) == {"CONTENT": ["TASK DEFINITION UPLOADED : t.yaml"]}
    (request,) = server.uploads
    assert request.method == "POST" and request.url.path == "/uploadTaskDef"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="file"; filename="task.yaml"' in body
    assert b"Name: t\nTaskType: RUN_SWARM\n" in body
    assert server.commands == []


def test_upload_has_the_corrected_spelling_too() -> None:
    assert Swci.uploadTaskDefinition is Swci.uploadTaskDefintion


def test_upload_of_a_missing_file_raises(server: FakeServer, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="Task definition file not found"):
        connect(server).uploadTaskDefintion(tmp_path / "nope.yaml")
    assert server.requests == []


def test_upload_transport_failure_raises(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    task = tmp_path / "task.yaml"
    task.write_text("Name: t\n")
    client = Swci("swci.test", _transport=httpx.MockTransport(refuse))
    with pytest.raises(RuntimeError, match="upload failed"):
        client.uploadTaskDefintion(str(task))


def test_upload_refusal_is_returned_and_kept_as_the_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"CONTENT": ["ERROR : file name not allowed"]})

    task = tmp_path / "task.yaml"
    task.write_text("Name: t\n")
    client = Swci("swci.test", _transport=httpx.MockTransport(refuse))
    assert "file name not allowed" in client.uploadTaskDefintion(task)
    assert client.getErrors() == "ERROR : file name not allowed"


# -- plotTopology ----------------------------------------------------------------------------------

HEADER = "NodeType, HostIP, Port, ContainerName, UUID, ParentUUID, i-am-alive"
NODES = [
    HEADER,
    "SN, 10.0.0.1, 30303, sn1, u-sn1, u-sn1, 2024-01-01 10:00:00",
    "SN, 10.0.0.2, 30303, sn2, u-sn2, u-sn1, 2024-01-01 10:00:01",
    "SWOP, 10.0.0.3, 0, swop1, u-swop1, u-sn1, 2024-01-01 10:00:02",
    "SL, 10.0.0.4, 30305, sl1, u-sl1, u-sn2, 2024-01-01 10:00:03",
    "SL, 10.0.0.5, 30305, sl2, u-sl2, u-gone, 2024-01-01 10:00:04",
]


def test_topology_graph_joins_nodes_to_their_parent_sn() -> None:
    pytest.importorskip("networkx")
    nodes = topology.parse_nodes(NODES)
    assert [n["ContainerName"] for n in nodes] == ["sn1", "sn2", "swop1", "sl1", "sl2"]
    graph = topology.build_graph(nodes, "#sn", "#swop", "#sl",
                                 topology.label_columns(["ContainerName", "parentUUID"]))
    assert sorted(tuple(sorted(e)) for e in graph.edges) == [(0, 1), (0, 2), (1, 3)]
    assert [graph.nodes[i]["colour"] for i in range(5)] == ["#sn", "#sn", "#swop", "#sl", "#sl"]
    assert graph.nodes[2]["label"] == "SW\n10.0.0.3\nswop1\nu-sn1"
    assert graph.nodes[3]["label"] == "SL\n10.0.0.4\nsl1\nu-sn2"
    assert graph.nodes[4]["i-am-alive"] == "2024-01-01 10:00:04"


def test_topology_rejects_unknown_label_attributes() -> None:
    with pytest.raises(ValueError, match="unknown attribute 'Colour'"):
        topology.label_columns(["Colour"])
    assert topology.label_columns(["NodeType", "port", "Port"]) == ["Port"]


def test_plot_topology_writes_a_png(server: FakeServer, tmp_path: Path) -> None:
    pytest.importorskip("networkx")
    pytest.importorskip("matplotlib")
    server.replies["list Nodes"] = NODES
    client = connect(server)
    target = tmp_path / "pictures" / "swarm.png"
    written = client.plotTopology(attrs=["UUID"], path=target)
    assert written == str(target)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    default = client.plotTopology()
    assert default == str(Path.cwd() / "swci-topology.png")
    assert Path(default).read_bytes().startswith(b"\x89PNG")
    assert server.commands == ["list Nodes", "list Nodes"]


def test_plot_topology_returns_none_when_list_nodes_fails(server: FakeServer) -> None:
    pytest.importorskip("networkx")
    pytest.importorskip("matplotlib")
    server.replies["list Nodes"] = ["ERROR : no context"]
    client = connect(server)
    assert client.plotTopology() is None
    assert client.getErrors() == "ERROR : no context"
    assert not (Path.cwd() / "swci-topology.png").exists()


@pytest.mark.parametrize("missing", ["networkx", "matplotlib"])
def test_plot_topology_says_what_to_install(server: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                            missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    with pytest.raises(ImportError, match="pip install networkx matplotlib"):
        connect(server).plotTopology()
    assert server.requests == []


# -- logging ---------------------------------------------------------------------------------------


def test_default_logger_writes_to_swci_web_log_not_the_cwd(server: FakeServer,
                                                           web_log: Path) -> None:
    server.replies["pwd"] = ["ERROR : something broke"]
    connect(server).pwd()
    connect(server).pwd()
    assert web_log.read_text().count("ERROR : something broke") == 2
    assert list(Path.cwd().iterdir()) == []


def test_log_level_names_and_numbers(server: FakeServer) -> None:
    client = connect(server, logLv=logging.ERROR)
    logger = logging.getLogger(client_module.LOGGER_NAME)
    assert logger.level == logging.ERROR
    client.setLogLevel(logging.DEBUG)
    assert logger.level == logging.DEBUG
    client.setLogLevel("INFO")
    assert logger.level == logging.INFO
    client.setLogLevel("LOUD")
    assert logger.level == logging.WARNING


def test_a_given_logger_is_used_as_it_is(server: FakeServer, web_log: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("my-program")
    server.replies["pwd"] = ["ERROR : broken"]
    with caplog.at_level(logging.INFO, logger="my-program"):
        client = connect(server, logger=mine, logLv=logging.CRITICAL)
        assert mine.level == logging.INFO  # the constructor's logLv is for its own logger only
        client.pwd()
    assert ("my-program", logging.ERROR, "ERROR : broken") in caplog.record_tuples
    assert not web_log.exists()


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # The certificates name hosts other than 127.0.0.1: host names must not be checked.
    own = generate_pki(tmp_path_factory.mktemp("org-a"), "OrgA", 1, hosts=["sn.example"],
                       ips=["10.9.9.9"], components=("swci", "sn"))
    other = generate_pki(tmp_path_factory.mktemp("org-b"), "OrgB", 1, components=("swci",))
    return {"own": own, "other": other}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        body = json.dumps({"CONTENT": [f"{self.path}\nclient {subject.get('commonName')}"]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(pki: dict[str, Any]) -> Iterator[int]:
    """A loopback HTTPS server that requires a client certificate from OrgA's CA."""
    layout = pki["own"]
    context = server_context(Identity(cert=layout.cert("sn"), key=layout.key("sn"),
                                      capath=layout.capath))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.mark.timeout(60)
def test_mutual_tls_with_a_ca_directory(pki: dict[str, Any], tls_server: int) -> None:
    layout = pki["own"]
    client = Swci("127.0.0.1", port=tls_server, clientCert=str(layout.cert("swci")),
                  clientPKey=str(layout.key("swci")), clientCABundle=str(layout.capath))
    assert client.listNodes() == ["/exec?cmd=list+Nodes", "client SWCI-1"], client.getErrors()


@pytest.mark.timeout(60)
def test_mutual_tls_with_a_combined_pem_and_a_ca_file(pki: dict[str, Any], tls_server: int,
                                                      tmp_path: Path) -> None:
    layout = pki["own"]
    combined = tmp_path / "swci-combined.pem"
    combined.write_bytes(layout.cert("swci").read_bytes() + layout.key("swci").read_bytes())
    client = Swci("127.0.0.1", port=tls_server, clientCert=combined,
                  clientCABundle=layout.ca_cert)
    assert client.pwd() == ["/exec?cmd=pwd", "client SWCI-1"], client.getErrors()


@pytest.mark.timeout(60)
def test_a_server_from_another_ca_is_refused(pki: dict[str, Any], tls_server: int) -> None:
    own, other = pki["own"], pki["other"]
    client = Swci("127.0.0.1", port=tls_server, clientCert=own.cert("swci"),
                  clientPKey=own.key("swci"), clientCABundle=other.capath)
    assert client.pwd() == []
    assert "CERTIFICATE_VERIFY_FAILED" in (client.getErrors() or "")


@pytest.mark.timeout(60)
def test_without_a_ca_bundle_the_server_is_not_verified(pki: dict[str, Any], tls_server: int,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    own = pki["own"]
    with caplog.at_level(logging.WARNING, logger=client_module.LOGGER_NAME):
        client = Swci("127.0.0.1", port=tls_server, clientCert=own.cert("swci"),
                      clientPKey=own.key("swci"))
    assert "NOT verified" in caplog.text
    assert client.pwd() == ["/exec?cmd=pwd", "client SWCI-1"], client.getErrors()


def test_tls_context_settings(pki: dict[str, Any], tmp_path: Path) -> None:
    own = pki["own"]
    logger = logging.getLogger("test-hpe-client")
    context = transport.tls_context(own.cert("swci"), own.key("swci"), own.capath, logger)
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1
    open_context = transport.tls_context(own.cert("swci"), own.key("swci"), None, logger)
    assert open_context.verify_mode == ssl.CERT_NONE
    with pytest.raises(RuntimeError, match="clientCABundle=.*no such file or directory"):
        transport.tls_context(own.cert("swci"), own.key("swci"), tmp_path / "nope", logger)
    with pytest.raises(RuntimeError, match="clientCert=.*cannot load"):
        transport.tls_context(tmp_path / "missing.pem", None, own.capath, logger)
    not_a_ca = tmp_path / "not-a-ca.pem"
    not_a_ca.write_text("hello\n")
    with pytest.raises(RuntimeError, match="not a PEM CA certificate"):
        transport.tls_context(own.cert("swci"), own.key("swci"), not_a_ca, logger)


def test_secure_clients_use_https(pki: dict[str, Any], server: FakeServer) -> None:
    own = pki["own"]
    Swci("swci.test", clientCert=own.cert("swci"), clientPKey=own.key("swci"),
         clientCABundle=own.capath, _transport=httpx.MockTransport(server)).pwd()
    assert str(server.requests[0].url).startswith("https://swci.test:30306/exec?")
