"""The typed SWCI web API client (swci.client): the command text it sends, how it reads each
kind of DATA, its errors, wait(), quoting. Unit tests answer through httpx.MockTransport; the
TLS tests run a small HTTPS server on 127.0.0.1 with real certificates."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearning.identity import (
    Identity,
    IdentityError,
    PkiLayout,
    generate_pki,
    server_context,
)
from swci.client import (
    Client,
    CommandError,
    CommandResult,
    ContextInfo,
    Node,
    PeerStatus,
    SwciProtocolError,
    SwciRefused,
    SwciUnavailable,
    TaskFailed,
    TaskInfo,
    TaskrunnerStatus,
    TaskrunnerSummary,
    TaskSummary,
    WaitTimeout,
    quote,
)
from swci.language.parser import parse_line

from .conftest import Clock

HOST = "swci.test"

# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    # The SN's certificate names another host and no IP: a host name check would refuse it.
    return generate_pki(tmp_path_factory.mktemp("org-a"), "OrgA", 1,
                        hosts=("sn.elsewhere.example",), ips=(), components=("sn", "swci"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return generate_pki(tmp_path_factory.mktemp("org-b"), "OrgB", 1, components=("sn", "swci"))


class FakeServer:
    """Answers /exec with CONTENT and DATA per command; records every request."""

    def __init__(self) -> None:
        self.replies: dict[str, Any] = {}
        self.commands: list[str] = []
        self.requests: list[httpx.Request] = []

    def reply(self, command: str, lines: list[str] | None = None, **data: Any) -> None:
        self.replies[command] = {"CONTENT": lines or [], "DATA": data}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        command = request.url.params.get("cmd", "")
        self.commands.append(command)
        answer = self.replies.get(command, {"CONTENT": ["ERROR : unknown command"]})
        if callable(answer):
            answer = answer()
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


def make_client(org: PkiLayout, handler: Callable[[httpx.Request], httpx.Response],
                **kwargs: Any) -> Client:
    return Client(HOST, cert=org.cert("swci"), key=org.key("swci"), capath=org.capath,
                  _transport=httpx.MockTransport(handler), **kwargs)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(org: PkiLayout, server: FakeServer) -> Iterator[Client]:
    with make_client(org, server) as c:
        yield c


# ---- the wire ------------------------------------------------------------------------------------


def test_run_posts_the_command_as_a_query_and_returns_lines_and_data(client, server):
    server.reply("LIST TASKS", ["ROOTTASK", "mnist"], tasks=[{"NAME": "ROOTTASK"}])
    result = client.run("LIST TASKS")
    assert result == CommandResult(lines=["ROOTTASK", "mnist"],
                                   data={"tasks": [{"NAME": "ROOTTASK"}]})
    assert result.text == "ROOTTASK\nmnist"
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url.scheme == "https"
    assert (request.url.host, request.url.port, request.url.path) == (HOST, 30306, "/exec")
    assert request.url.params["cmd"] == "LIST TASKS"
    assert request.content == b""


def test_a_reply_without_data_gives_empty_data(client, server):
    server.replies["SWITCH CONTEXT c"] = {"CONTENT": ["DEFAULT CONTEXT SET TO : c"]}
    assert client.switch_context("c") == CommandResult(["DEFAULT CONTEXT SET TO : c"], {})


def test_port_and_ipv6_host_go_into_the_url(org):
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"CONTENT": []})

    with Client("::1", 4443, cert=org.cert("swci"), key=org.key("swci"), cacert=org.ca_cert,
                _transport=httpx.MockTransport(handler)) as c:
        c.run("LIST TASKS")
    assert (seen[0].host, seen[0].port) == ("::1", 4443)


WITH_DATA: list[tuple[Callable[[Client], Any], str, str, Any]] = [
    (lambda c: c.nodes(), "LIST NODES", "nodes", []),
    (lambda c: c.tasks(), "LIST TASKS", "tasks", []),
    (lambda c: c.task("mnist"), "GET TASK INFO mnist", "task", {"NAME": "mnist"}),
    (lambda c: c.task_body("mnist"), "GET TASK BODY mnist", "task_body", ["---"]),
    (lambda c: c.taskrunners(), "LIST TASKRUNNERS", "taskrunners", []),
    (lambda c: c.taskrunner_status("tr"), "GET TASKRUNNER STATUS tr", "taskrunner_status",
     {"TASKRUNNER": "tr", "TASK_STATE": "IDLE"}),
    (lambda c: c.taskrunner_peers("tr"), "LIST TASKRUNNER PEERS tr", "taskrunner_peers", []),
    (lambda c: c.taskrunner_peer("tr", 2), "GET TASKRUNNER PEER STATUS tr 2", "taskrunner_peer",
     {"SWOP_UID": "u"}),
    (lambda c: c.taskrunner_peer("tr", "0xab"), "GET TASKRUNNER PEER STATUS tr 0xab",
     "taskrunner_peer", {"SWOP_UID": "0xab"}),
    (lambda c: c.contracts(), "LIST CONTRACTS", "contracts", []),
    (lambda c: c.contract_status("ct"), "GET CONTRACT STATUS ct", "contract_status", {}),
    (lambda c: c.perfdata("ct"), "PERFDATA ct", "perfdata", []),
    (lambda c: c.contexts(), "LIST CONTEXTS", "contexts", []),
]


@pytest.mark.parametrize(("call", "command", "kind", "value"), WITH_DATA,
                         ids=[case[1] for case in WITH_DATA])
def test_typed_helpers_send_their_command(client, server, call, command, kind, value):
    server.reply(command, **{kind: value})
    call(client)
    assert server.commands == [command]
    assert parse_line(command) is not None


@pytest.mark.parametrize(("call", "command", "kind", "value"), WITH_DATA,
                         ids=[case[1] for case in WITH_DATA])
def test_typed_helpers_need_their_data(client, server, call, command, kind, value):
    server.reply(command, other=value)
    with pytest.raises(SwciProtocolError, match=kind):
        call(client)


COMMANDS: list[tuple[Callable[[Client], Any], str]] = [
    (lambda c: c.create_context("ctx", "10.0.0.5"), "CREATE CONTEXT ctx WITH IP 10.0.0.5 30304"),
    (lambda c: c.create_context("ctx", "sn.example", port=31304),
     "CREATE CONTEXT ctx WITH IP sn.example 31304"),
    (lambda c: c.switch_context("ctx"), "SWITCH CONTEXT ctx"),
    (lambda c: c.finalize_task("mnist"), "FINALIZE TASK mnist"),
    (lambda c: c.assign_task("mnist", "tr", peers=2), "ASSIGN TASK mnist TO tr WITH 2 PEERS"),
    (lambda c: c.assign_task("mnist", "tr", all_peers=True),
     "ASSIGN TASK mnist TO tr WITH ALL PEERS"),
    (lambda c: c.assign_task("mnist", "tr", target="0x1f2e"),
     "ASSIGN TASK mnist TO tr TARGET 0x1f2e"),
    (lambda c: c.reset_taskrunner("tr"), "RESET TASKRUNNER tr"),
]


@pytest.mark.parametrize(("call", "command"), COMMANDS, ids=[case[1] for case in COMMANDS])
def test_command_helpers_send_their_command(client, server, call, command):
    server.reply(command, ["done"])
    assert call(client) == CommandResult(["done"], {})
    assert server.commands == [command]
    assert parse_line(command) is not None


@pytest.mark.parametrize("kwargs", [{}, {"peers": 2, "all_peers": True},
                                    {"peers": 1, "target": "u"}, {"all_peers": True,
                                                                  "target": "u"},
                                    {"peers": 0}, {"peers": -1}, {"peers": True},
                                    {"peers": "2"}])
def test_assign_task_needs_exactly_one_valid_form(client, server, kwargs):
    with pytest.raises(ValueError):
        client.assign_task("mnist", "tr", **kwargs)
    assert server.commands == []


@pytest.mark.parametrize("port", [0, 65536, -1, "30304", True])
def test_create_context_refuses_a_bad_port(client, server, port):
    with pytest.raises(ValueError, match="port"):
        client.create_context("ctx", "h", port)
    assert server.commands == []


def test_create_task_from_returns_the_registered_name(client, server):
    server.reply("CREATE TASK FROM mnist.yaml",
                 ["Task definition is valid", "Task Registered : MNIST-task"])
    assert client.create_task_from("mnist.yaml") == "MNIST-task"


def test_create_task_from_without_the_registered_line_is_a_protocol_error(client, server):
    server.reply("CREATE TASK FROM mnist.yaml", ["Task definition is valid"])
    with pytest.raises(SwciProtocolError, match="Task Registered"):
        client.create_task_from("mnist.yaml")


# ---- upload --------------------------------------------------------------------------------------


def test_upload_task_posts_the_file_as_multipart_field_file(org, tmp_path):
    definition = tmp_path / "mnist task.yaml"
    definition.write_text("Name: MNIST\nTaskType: RUN_SWARM\n", encoding="utf-8")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"CONTENT": ["TASK DEFINITION UPLOADED : mnist.yaml"]})

    with make_client(org, handler) as c:
        assert c.upload_task(definition) == "mnist.yaml"
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/uploadTaskDef")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.read()
    assert b'name="file"; filename="mnist task.yaml"' in body
    assert b"Name: MNIST\nTaskType: RUN_SWARM\n" in body


def test_a_refused_upload_is_a_command_error(org, tmp_path):
    definition = tmp_path / "bad.yaml"
    definition.write_text("Name: [\n", encoding="utf-8")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"CONTENT": ["ERROR : bad.yaml:1:7: not YAML"]})

    with make_client(org, handler) as c, pytest.raises(CommandError) as caught:
        c.upload_task(definition)
    assert caught.value.line == "ERROR : bad.yaml:1:7: not YAML"
    assert "bad.yaml" in caught.value.command


def test_an_upload_reply_without_the_name_is_a_protocol_error(org, tmp_path):
    definition = tmp_path / "t.yaml"
    definition.write_text("Name: t\n", encoding="utf-8")
    with make_client(org, lambda r: httpx.Response(200, json={"CONTENT": ["ok"]})) as c, \
            pytest.raises(SwciProtocolError, match="t.yaml"):
        c.upload_task(definition)


# ---- DATA into dataclasses -----------------------------------------------------------------------

NODE = {"NodeType": "SWOP", "HostIP": "10.0.0.7", "Port": 17000, "ContainerName": "swop1",
        "UUID": "0xaa", "ParentUUID": "0xbb", "i-am-alive": "2024-05-01 10:00:00",
        "TASKRUNNER": "tr", "SECONDS_SINCE_ALIVE": 3}


def test_nodes(client, server):
    old_sn = {k: v for k, v in NODE.items() if k not in ("TASKRUNNER", "SECONDS_SINCE_ALIVE")}
    server.reply("LIST NODES", nodes=[NODE, {**old_sn, "Port": "30304", "UUID": 170,
                                             "ZONE": "eu"}])
    first, second = client.nodes()
    assert first == Node(node_type="SWOP", host_ip="10.0.0.7", port=17000,
                         container_name="swop1", uuid="0xaa", parent_uuid="0xbb",
                         alive_at="2024-05-01 10:00:00", taskrunner="tr", seconds_since_alive=3)
    assert (second.port, second.taskrunner, second.seconds_since_alive) == (30304, None, None)
    assert second.uuid == "170"
    assert second.extra == {"ZONE": "eu"}
    assert first.extra == {}


def test_tasks(client, server):
    server.reply("LIST TASKS", tasks=[
        {"NAME": "ROOTTASK", "TYPE": "MAKE_SWARM_USER_CONTENT", "STATE": "FINALIZED",
         "AUTHOR": "HPE"},
        {"NAME": "mnist", "NEW": 1}])
    assert client.tasks() == [
        TaskSummary("ROOTTASK", "MAKE_SWARM_USER_CONTENT", "FINALIZED", "HPE"),
        TaskSummary("mnist", "", "", "", extra={"NEW": 1})]


def test_task_info(client, server):
    server.reply("GET TASK INFO mnist", task={
        "NAME": "mnist", "TYPE": "RUN_SWARM", "AUTHOR": "me", "PREREQ": "ROOTTASK",
        "OUTCOME": "model", "STATE": "FINALIZED", "BODY_LINES": "12",
        "CREATED": "2024-05-01 10:00:00", "UPDATED": "2024-05-01 10:01:00",
        "FINALIZED": "2024-05-01 10:02:00", "HASH": "0x12"})
    info = client.task("mnist")
    assert info == TaskInfo(name="mnist", type="RUN_SWARM", author="me", prereq="ROOTTASK",
                            outcome="model", state="FINALIZED", body_lines=12,
                            created="2024-05-01 10:00:00", updated="2024-05-01 10:01:00",
                            finalized="2024-05-01 10:02:00", extra={"HASH": "0x12"})
    assert info.is_finalized


def test_task_info_defaults(client, server):
    server.reply("GET TASK INFO t", task={"NAME": "t", "STATE": "CREATED"})
    info = client.task("t")
    assert (info.body_lines, info.finalized, info.prereq, info.is_finalized) == (0, "-", "", False)


def test_task_body(client, server):
    server.reply("GET TASK BODY mnist", task_body=["---", "BuildContext: ctx", "Outcome: x"])
    assert client.task_body("mnist") == ["---", "BuildContext: ctx", "Outcome: x"]


def test_taskrunners(client, server):
    server.reply("LIST TASKRUNNERS", taskrunners=[
        {"NAME": "tr", "STATE": "RUNNING", "TASK": "mnist"}, {"NAME": "idle"}])
    assert client.taskrunners() == [TaskrunnerSummary("tr", "RUNNING", "mnist"),
                                    TaskrunnerSummary("idle", "", "")]


STATUS = {"TASKRUNNER": "tr", "TASK": "mnist", "TASK_TYPE": "RUN_SWARM", "PEER_TYPE": "SL",
          "TASK_STATE": "RUNNING", "PEERS_NEEDED": 2, "SWOPS_NEEDED": None,
          "ENROLLED_PEERS": 2, "ACTIVE_PEERS": 1, "ENROLLED_UNITS": 4, "COMPLETED_PEERS": 1,
          "FAILED_PEERS": [], "FAILURE_DETAILS": {}, "GENERATION": 3, "TARGET": "",
          "ASSIGNED_TS": "2024-05-01 10:00:00", "FINISHED_TS": "-",
          "UPDATE_TS": "2024-05-01 10:05:00"}


def test_taskrunner_status(client, server):
    server.reply("GET TASKRUNNER STATUS tr", taskrunner_status=STATUS)
    status = client.taskrunner_status("tr")
    assert status == TaskrunnerStatus(
        taskrunner="tr", task="mnist", task_type="RUN_SWARM", peer_type="SL", state="RUNNING",
        peers_needed=2, swops_needed=None, enrolled_peers=2, active_peers=1, enrolled_units=4,
        completed_peers=1, failed_peers=(), failure_details={}, generation=3, target=None,
        assigned_ts="2024-05-01 10:00:00", finished_ts="-", update_ts="2024-05-01 10:05:00")
    assert (status.done, status.failed, status.completed, status.all_peers) == \
        (False, False, False, False)


def test_taskrunner_status_with_all_peers_failures_and_unknown_keys(client, server):
    server.reply("GET TASKRUNNER STATUS tr", taskrunner_status={
        **STATUS, "TASK_STATE": "ERROR", "PEERS_NEEDED": "ALL", "SWOPS_NEEDED": 3,
        "FAILED_PEERS": ["0xaa : exit 1"],
        "FAILURE_DETAILS": {"0xaa": "line 1\nline 2", "0xbb": None},
        "TARGET": "0xaa", "QUEUE": ["x"]})
    status = client.taskrunner_status("tr")
    assert (status.peers_needed, status.swops_needed, status.all_peers) == ("ALL", 3, True)
    assert status.failed_peers == ("0xaa : exit 1",)
    assert status.failure_details == {"0xaa": "line 1\nline 2", "0xbb": ""}
    assert status.target == "0xaa"
    assert status.extra == {"QUEUE": ["x"]}
    assert (status.done, status.failed) == (True, True)


def test_taskrunner_status_of_an_older_server_with_only_the_basics(client, server):
    server.reply("GET TASKRUNNER STATUS tr",
                 taskrunner_status={"TASKRUNNER": "tr", "TASK_STATE": "COMPLETE"})
    status = client.taskrunner_status("tr")
    assert (status.done, status.completed, status.failed) == (True, True, False)
    assert (status.failed_peers, status.failure_details, status.generation) == ((), {}, None)


@pytest.mark.parametrize(("state", "done"), [("COMPLETE", True), ("ERROR", True),
                                             ("IDLE", True), ("RUNNING", False),
                                             ("complete", True)])
def test_done_states(state, done):
    assert TaskrunnerStatus("tr", state=state).done is done


PEER = {"NAME": "swop1", "SWOP_UID": "0xaa", "OPERATION_ID": "RUN_SWARM", "PEER_COUNT": 2,
        "UPDATE_TS": "2024-05-01 10:05:00", "SWOP_PEER_INDEX": 0, "SWOP_PEER_STATUS": "ERROR",
        "SWOP_PEER_STATUS_DESC": "exit 1", "SWOP_PEER_DETAIL": "Traceback\nValueError"}


def test_taskrunner_peers(client, server):
    server.reply("LIST TASKRUNNER PEERS tr", taskrunner_peers=[
        PEER, {"SWOP_UID": "0xbb", "SWOP_PEER_INDEX": 1, "SWOP_PEER_STATUS": "RUNNING",
               "HOST": "h"}])
    first, second = client.taskrunner_peers("tr")
    assert first == PeerStatus(name="swop1", swop_uid="0xaa", operation_id="RUN_SWARM",
                               peer_count=2, update_ts="2024-05-01 10:05:00", index=0,
                               status="ERROR", status_desc="exit 1",
                               detail="Traceback\nValueError")
    assert first.failed and not second.failed
    assert (second.index, second.name, second.detail, second.extra) == (1, "", "", {"HOST": "h"})


def test_taskrunner_peer(client, server):
    server.reply("GET TASKRUNNER PEER STATUS tr 0", taskrunner_peer=PEER)
    assert client.taskrunner_peer("tr", 0).detail == "Traceback\nValueError"


def test_taskrunner_peer_refuses_a_negative_index(client, server):
    with pytest.raises(ValueError):
        client.taskrunner_peer("tr", -1)
    assert server.commands == []


def test_contracts_status_and_perfdata_pass_through(client, server):
    contract = {"NAME": "ct", "STATE": "RUNNING", "ROUND": 4, "ANY": [1]}
    perf = [{"SL": "sl1", "LOSS": 0.25}, {"SL": "sl2", "LOSS": 0.5}]
    server.reply("LIST CONTRACTS", contracts=[contract])
    server.reply("GET CONTRACT STATUS ct", contract_status=contract)
    server.reply("PERFDATA ct", perfdata=perf)
    assert client.contracts() == [contract]
    assert client.contract_status("ct") == contract
    assert client.perfdata("ct") == perf


def test_contexts(client, server):
    server.reply("LIST CONTEXTS", contexts=[
        {"name": "a", "host": "10.0.0.1", "port": 30304, "service": None, "current": True},
        {"name": "b", "host": "sn.example", "port": 443, "service": "sn.example",
         "current": False, "version": {"v": 1}},
        {"name": "c"}])
    assert client.contexts() == [
        ContextInfo("a", "10.0.0.1", 30304, None, True),
        ContextInfo("b", "sn.example", 443, "sn.example", False, extra={"version": {"v": 1}}),
        ContextInfo("c", "", 30304, None, False)]


@pytest.mark.parametrize(("command", "kind", "value", "match"), [
    ("LIST NODES", "nodes", [{**NODE, "Port": "high"}], "Port"),
    ("LIST NODES", "nodes", [{k: v for k, v in NODE.items() if k != "UUID"}], "UUID"),
    ("LIST NODES", "nodes", {"not": "a list"}, "nodes"),
    ("LIST NODES", "nodes", ["not an object"], "object"),
    ("LIST TASKS", "tasks", [{"TYPE": "RUN_SWARM"}], "NAME"),
    ("GET TASK INFO t", "task", {"NAME": "t", "BODY_LINES": 1.5}, "BODY_LINES"),
    ("GET TASK INFO t", "task", {"NAME": "t", "BODY_LINES": True}, "BODY_LINES"),
    ("GET TASK INFO t", "task", {"NAME": {"x": 1}}, "NAME"),
    ("GET TASKRUNNER STATUS t", "taskrunner_status", {**STATUS, "PEERS_NEEDED": "some"},
     "PEERS_NEEDED"),
    ("GET TASKRUNNER STATUS t", "taskrunner_status", {**STATUS, "FAILED_PEERS": "x"},
     "FAILED_PEERS"),
    ("LIST CONTRACTS", "contracts", [1], "object"),
])
def test_malformed_data_is_a_protocol_error(client, server, command, kind, value, match):
    server.reply(command, **{kind: value})
    calls = {"LIST NODES": client.nodes, "LIST TASKS": client.tasks,
             "GET TASK INFO t": lambda: client.task("t"),
             "GET TASKRUNNER STATUS t": lambda: client.taskrunner_status("t"),
             "LIST CONTRACTS": client.contracts}
    with pytest.raises(SwciProtocolError, match=match):
        calls[command]()


# ---- errors --------------------------------------------------------------------------------------


def test_the_first_error_line_is_a_command_error(client, server):
    server.reply("FINALIZE TASK x", ["checking", "ERROR : task 'x' is not finalized; FINALIZE "
                                     "TASK x first", "ERROR : second"])
    with pytest.raises(CommandError) as caught:
        client.finalize_task("x")
    error = caught.value
    assert error.line == "ERROR : task 'x' is not finalized; FINALIZE TASK x first"
    assert error.message == "task 'x' is not finalized; FINALIZE TASK x first"
    assert error.command == "FINALIZE TASK x"
    assert error.lines[0] == "checking"
    assert "FINALIZE TASK x" in str(error)


def test_a_line_that_only_mentions_error_is_not_a_failure(client, server):
    server.reply("GET TASK BODY t", ["0001: ERRORS: none", "0002:  ERROR in a log"],
                 task_body=["---"])
    assert client.task_body("t") == ["---"]


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_an_http_error_with_an_error_line_is_a_command_error(org, status):
    reply = httpx.Response(status, json={"CONTENT": ["ERROR : no task named 'x'"]})
    with make_client(org, lambda r: reply) as c, pytest.raises(CommandError) as caught:
        c.run("GET TASK INFO x")
    assert caught.value.message == "no task named 'x'"


def test_an_http_error_without_an_error_line_is_a_protocol_error(org):
    reply = httpx.Response(500, json={"CONTENT": ["oops"]})
    with make_client(org, lambda r: reply) as c, pytest.raises(SwciProtocolError, match="500"):
        c.run("LIST TASKS")


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("body", [{"json": {"CONTENT": ["ERROR : untrusted certificate"]}},
                                  {"text": "Forbidden"}])
def test_http_401_and_403_are_refusals(org, status, body):
    reply = httpx.Response(status, **body)
    with make_client(org, lambda r: reply) as c, pytest.raises(SwciRefused) as caught:
        c.run("LIST TASKS")
    assert caught.value.status_code == status
    assert f"{HOST}:30306" in str(caught.value)
    assert str(status) in str(caught.value)


def test_a_transport_error_is_unavailable_naming_the_server_and_the_cause(org):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with make_client(org, handler) as c, pytest.raises(SwciUnavailable) as caught:
        c.run("LIST TASKS")
    assert f"{HOST}:30306" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_timeout_is_unavailable(org):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with make_client(org, handler) as c, pytest.raises(SwciUnavailable, match="timed out"):
        c.nodes()


def test_a_tls_alert_refusing_our_certificate_is_a_refusal(org):
    def handler(request: httpx.Request) -> httpx.Response:
        alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
                                "certificate required")
        raise httpx.ReadError(str(alert), request=request) from alert

    with make_client(org, handler) as c, pytest.raises(SwciRefused) as caught:
        c.run("LIST TASKS")
    assert "TLSV13_ALERT_CERTIFICATE_REQUIRED" in str(caught.value)
    assert caught.value.status_code is None


@pytest.mark.parametrize(("reply", "error"), [
    (httpx.Response(200, text="<html>hello</html>"), SwciProtocolError),
    (httpx.Response(200, json=["CONTENT"]), SwciProtocolError),
    (httpx.Response(200, json={"CONTENT": [], "DATA": ["x"]}), SwciProtocolError),
    (httpx.Response(404, text="Not Found"), SwciProtocolError),
    (httpx.Response(502, text="Bad Gateway"), SwciUnavailable),
    (httpx.Response(503, text=""), SwciUnavailable),
])
def test_replies_that_are_not_swci_json(org, reply, error):
    with make_client(org, lambda r: reply) as c, pytest.raises(error):
        c.run("LIST TASKS")


def test_run_refuses_an_empty_command(client, server):
    with pytest.raises(ValueError):
        client.run("  ")
    assert server.commands == []


# ---- wait ----------------------------------------------------------------------------------------


def waiting_client(org: PkiLayout, server: FakeServer, states: list[dict[str, Any]],
                   clock: Clock) -> Client:
    def next_status() -> dict[str, Any]:
        status = states.pop(0) if len(states) > 1 else states[0]
        return {"CONTENT": [], "DATA": {"taskrunner_status": {**STATUS, **status}}}

    server.replies["GET TASKRUNNER STATUS tr"] = next_status
    return make_client(org, server, _clock=clock.monotonic, _sleep=clock.sleep)


def test_wait_polls_until_complete(org, server):
    clock = Clock()
    states = [{"TASK_STATE": "RUNNING"}, {"TASK_STATE": "RUNNING"},
              {"TASK_STATE": "COMPLETE", "COMPLETED_PEERS": 2}]
    with waiting_client(org, server, states, clock) as c:
        status = c.wait("tr", poll=5.0, timeout=60)
    assert status.completed and status.completed_peers == 2
    assert clock.slept == [5.0, 5.0]
    assert server.commands == ["GET TASKRUNNER STATUS tr"] * 3
    assert not any("WAIT" in command for command in server.commands)


def test_wait_returns_at_once_for_an_idle_taskrunner(org, server):
    clock = Clock()
    with waiting_client(org, server, [{"TASK_STATE": "IDLE"}], clock) as c:
        assert c.wait("tr").state == "IDLE"
    assert clock.slept == []


def test_wait_raises_task_failed_with_the_failure_details(org, server):
    clock = Clock()
    failed = {"TASK_STATE": "ERROR", "FAILED_PEERS": ["0xaa : exit 1"],
              "FAILURE_DETAILS": {"0xaa": "Traceback\nValueError: bad"}}
    with waiting_client(org, server, [{"TASK_STATE": "RUNNING"}, failed], clock) as c, \
            pytest.raises(TaskFailed) as caught:
        c.wait("tr", poll=2.0)
    error = caught.value
    assert error.status.failed and error.status.taskrunner == "tr"
    assert error.failures == {"0xaa": "Traceback\nValueError: bad"}
    assert error.failed_peers == ["0xaa : exit 1"]
    assert "0xaa : exit 1" in str(error) and "mnist" in str(error)
    assert clock.slept == [2.0]


def test_wait_times_out_without_waiting_past_the_deadline(org, server):
    clock = Clock()
    with waiting_client(org, server, [{"TASK_STATE": "RUNNING"}], clock) as c, \
            pytest.raises(TimeoutError) as caught:
        c.wait("tr", poll=4.0, timeout=10.0)
    assert isinstance(caught.value, WaitTimeout)
    assert caught.value.status.state == "RUNNING"
    assert "tr" in str(caught.value) and "RUNNING" in str(caught.value)
    assert clock.slept == [4.0, 4.0, 2.0]  # the last sleep ends at the deadline
    assert len(server.commands) == 4  # the status at the deadline is read too


def test_wait_sees_a_task_that_finishes_at_the_deadline(org, server):
    clock = Clock()
    states = [{"TASK_STATE": "RUNNING"}, {"TASK_STATE": "COMPLETE"}]
    with waiting_client(org, server, states, clock) as c:
        assert c.wait("tr", poll=30.0, timeout=1.0).completed
    assert clock.slept == [1.0]


@pytest.mark.parametrize(("poll", "timeout"), [(0, 10), (-1, 10), (1, -1)])
def test_wait_refuses_bad_intervals(client, server, poll, timeout):
    with pytest.raises(ValueError):
        client.wait("tr", poll=poll, timeout=timeout)
    assert server.commands == []


# ---- quoting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "quoted"), [
    ("mnist", "mnist"),
    ("MNIST-task_v2.yaml", "MNIST-task_v2.yaml"),
    ("/platform/swarm/usr/task.yaml", "/platform/swarm/usr/task.yaml"),
    ("my task", '"my task"'),
    ("run#1", '"run#1"'),
    ("tab\tname", '"tab\tname"'),
    ("it's", '"it\'s"'),
    ('say "hi"', "'say \"hi\"'"),
    (" padded ", '" padded "'),
    ("CONTRACT", '"CONTRACT"'),  # a keyword: PERFDATA CONTRACT would read it as one
    ("peers", '"peers"'),
    ("naïve\u00a0name", '"naïve\u00a0name"'),
])
def test_quote(name, quoted):
    assert quote(name) == quoted


@pytest.mark.parametrize("name", ["two\nlines", "cr\rhere", "", "both ' and \"", "nul\x00",
                                  "bell\x07", "line\u2028sep", "next\x85line"])
def test_values_that_cannot_be_expressed_are_refused(client, server, name):
    with pytest.raises(ValueError):
        quote(name)
    with pytest.raises(ValueError):
        client.finalize_task(name)
    assert server.commands == []


def test_quote_refuses_a_non_string():
    with pytest.raises(TypeError):
        quote(3)  # type: ignore[arg-type]


def test_awkward_names_reach_the_server_quoted_and_parse_back(client, server):
    server.reply('ASSIGN TASK "my task #2" TO \'runner "A"\' WITH ALL PEERS', ["ok"])
    server.reply('PERFDATA "CONTRACT"', perfdata=[])
    client.assign_task("my task #2", 'runner "A"', all_peers=True)
    client.perfdata("CONTRACT")
    assert server.commands == ['ASSIGN TASK "my task #2" TO \'runner "A"\' WITH ALL PEERS',
                               'PERFDATA "CONTRACT"']
    command = parse_line(server.commands[0])
    assert (command.task_name, command.taskrunner_name) == ("my task #2", 'runner "A"')
    assert parse_line(server.commands[1]).training_contract_name == "CONTRACT"
    assert server.requests[0].url.params["cmd"] == server.commands[0]


def test_a_numeric_uid_string_is_sent_as_a_word_and_an_index_as_an_int(client, server):
    server.reply("GET TASKRUNNER PEER STATUS tr 7", taskrunner_peer={"SWOP_UID": "u"})
    client.taskrunner_peer("tr", 7)
    assert parse_line(server.commands[0]).swop_peer == 7


_SENDABLE = st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")) | st.just("\t"),
                    min_size=1, max_size=30).filter(lambda s: not ('"' in s and "'" in s))


@settings(max_examples=300, deadline=None)
@given(task=_SENDABLE, runner=_SENDABLE, contract=_SENDABLE)
def test_every_sendable_value_parses_back_unchanged(task, runner, contract):
    assign = parse_line(f"ASSIGN TASK {quote(task)} TO {quote(runner)} WITH 3 PEERS")
    assert (assign.task_name, assign.taskrunner_name, assign.peers_needed) == (task, runner, 3)
    assert parse_line(f"PERFDATA {quote(contract)}").training_contract_name == contract
    assert parse_line(f"GET TASK INFO {quote(task)}").task_name == task


# ---- construction --------------------------------------------------------------------------------


def test_the_context_manager_closes_the_client(org, server):
    with make_client(org, server) as c:
        pass
    with pytest.raises(RuntimeError):
        c.run("LIST TASKS")


def test_bad_identity_paths_are_reported(org, tmp_path):
    with pytest.raises(IdentityError, match="cert"):
        Client(HOST, cert=tmp_path / "missing.pem", key=org.key("swci"), capath=org.capath)
    with pytest.raises(IdentityError, match="no CA to trust"):
        Client(HOST, cert=org.cert("swci"), key=org.key("swci"))


@pytest.mark.parametrize("host", ["", "a/b", "h:1?x", "a b"])
def test_bad_hosts_are_refused(org, host):
    with pytest.raises(ValueError, match="host"):
        Client(host, cert=org.cert("swci"), key=org.key("swci"), capath=org.capath)


def test_the_ssl_context_presents_our_certificate_without_a_host_name_check(org):
    with Client(HOST, cert=org.cert("swci"), key=org.key("swci"), capath=org.capath) as c:
        assert c.ssl_context.check_hostname is False
        assert c.ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert len(c.ssl_context.get_ca_certs()) == 1


def test_from_workspace_uses_the_workspace_swci_identity(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    generate_pki(workspace / "pki", "Local", 1, components=("sn", "swci"))
    monkeypatch.setenv("SWARM_WORKSPACE", str(workspace))
    with Client.from_workspace("10.1.2.3", 31306) as c:
        assert (c.host, c.port) == ("10.1.2.3", 31306)
        assert len(c.ssl_context.get_ca_certs()) == 1
    with Client.from_workspace(workspace=workspace) as c:
        assert c.address == "127.0.0.1:30306"


def test_from_workspace_without_a_pki_says_where_it_looked(tmp_path):
    with pytest.raises(IdentityError, match="swci-1-cert.pem"):
        Client.from_workspace(workspace=tmp_path / "empty")


# ---- real TLS on 127.0.0.1 -----------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"CONTENT": [f"you sent {self.path}"],
                           "DATA": {"contexts": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_server(org: PkiLayout) -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    identity = Identity.for_component(org.root, "sn", 1)
    httpd.socket = server_context(identity).wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_mutual_tls_with_a_certificate_of_another_host_name(org, tls_server):
    with Client("127.0.0.1", tls_server, cert=org.cert("swci"), key=org.key("swci"),
                capath=org.capath, timeout=10) as c:
        result = c.run("LIST CONTEXTS")
        assert c.contexts() == []
    assert result.lines == ["you sent /exec?cmd=LIST+CONTEXTS"]


def test_a_certificate_of_an_untrusted_ca_is_refused(org, stranger, tls_server):
    # The stranger trusts our CA, so only the server's check of the client certificate fails.
    with Client("127.0.0.1", tls_server, cert=stranger.cert("swci"), key=stranger.key("swci"),
                cacert=org.ca_cert, timeout=10) as c, pytest.raises(SwciRefused) as caught:
        c.run("LIST TASKS")
    assert f"127.0.0.1:{tls_server}" in str(caught.value)


def test_a_server_we_do_not_trust_is_unavailable(org, stranger, tls_server):
    with Client("127.0.0.1", tls_server, cert=org.cert("swci"), key=org.key("swci"),
                capath=stranger.capath, timeout=10) as c, \
            pytest.raises(SwciUnavailable, match="not signed by a CA in capath/cacert"):
        c.run("LIST TASKS")


def test_nothing_listening_is_unavailable(org):
    from .test_golden import closed_port

    port = closed_port()
    with Client("127.0.0.1", port, cert=org.cert("swci"), key=org.key("swci"),
                capath=org.capath, timeout=10) as c, pytest.raises(SwciUnavailable) as caught:
        c.run("LIST TASKS")
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_the_workspace_path_argument_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SWARM_WORKSPACE", str(tmp_path / "nowhere"))
    workspace = tmp_path / "ws"
    generate_pki(workspace / "pki", "Local", 1, components=("swci",))
    with Client.from_workspace(workspace=Path(workspace)) as c:
        assert c.port == 30306
