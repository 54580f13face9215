"""HPE's interpreter semantics: prompt counter, ERROR lines, EXIT ON FAILURE, EXIT, contexts,
the working directory, waits. The Swarm Network is the FakeNetwork of conftest.py."""

from __future__ import annotations

import datetime as dt

import pytest

from swci.interpreter import CollectingOutput, ExitCode, Outcome
from swci.language.parser import parse_script

from .conftest import run


def test_counter_advances_on_executed_commands_only(interp):
    out = CollectingOutput()
    code = interp.run_script(parse_script("# c\n\npwd\nLIST CONTEXTS\npwd\n"), out)
    assert code is None
    prompts = [line.split(">")[0] + ">" for line in out.lines if line.startswith("SWCI:")]
    assert prompts == ["SWCI:0 >", "SWCI:0 >", "SWCI:0 >", "SWCI:1 >", "SWCI:2 >"]
    assert interp.state.counter == 3


def test_failures_count_too_and_print_error(interp):
    assert run(interp, "SWITCH CONTEXT nope") == [
        "ERROR : Context 'nope' does not exist (known contexts: none yet)"]
    assert interp.state.counter == 1


def test_output_is_indented_by_four_spaces(interp):
    out = CollectingOutput()
    interp.run_line("pwd", out)
    assert out.lines == [f"    {interp.state.cwd}"]


def test_continue_on_error_by_default(interp):
    out = CollectingOutput()
    code = interp.run_script(parse_script("SWITCH CONTEXT nope\npwd\n"), out)
    assert code is None
    assert out.lines[-1] == f"    {interp.state.cwd}"


def test_exit_on_failure_stops_the_script(interp):
    out = CollectingOutput()
    script = "EXIT ON FAILURE\nSWITCH CONTEXT nope\npwd\n"
    assert interp.run_script(parse_script(script), out) == ExitCode.STOPPED_ON_FAILURE
    assert "    EXIT ON FAILURE IS TURNED ON" in out.lines
    assert not any(line.strip() == str(interp.state.cwd) for line in out.lines)


def test_exit_on_failure_off_restores_continue(interp):
    out = CollectingOutput()
    script = "EXIT ON FAILURE ON\nEXIT ON FAILURE OFF\nSWITCH CONTEXT nope\npwd\n"
    assert interp.run_script(parse_script(script), out) is None
    assert "    EXIT ON FAILURE IS TURNED OFF" in out.lines


def test_exit_ends_the_script(interp):
    out = CollectingOutput()
    assert interp.run_script(parse_script("pwd\nEXIT\npwd\n"), out) == ExitCode.OK
    assert sum(1 for line in out.lines if line.strip() == str(interp.state.cwd)) == 1


def test_run_line_syntax_error_is_an_error_line(interp):
    out = CollectingOutput()
    assert interp.run_line("LIST TASKSS", out) is Outcome.FAILED
    assert out.errors == ["ERROR : syntax error at column 6: unexpected 'TASKSS'; expected "
                          "CONTEXT, CONTEXTS, CONTRACTS, LOCAL, NODES, TASKRUNNER, TASKRUNNERS or "
                          "TASKS "
                          "(did you mean TASKS?)"]
    assert interp.state.counter == 0


# -- contexts --------------------------------------------------------------------------------------


def test_context_lifecycle(interp):
    assert run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1") == [
        "API Server is UP!", "CONTEXT CREATED : lab"]
    assert run(interp, "create context edge with service api.sn-1.swarm") == [
        "API Server is UP!", "CONTEXT CREATED : edge"]
    assert interp.state.contexts["edge"].port == 443
    assert run(interp, "SWITCH CONTEXT lab") == ["DEFAULT CONTEXT SET TO : lab"]
    assert run(interp, "LIST CONTEXTS") == [
        "   CONTEXT  API SERVER", "-  -------  ---------------", "   edge     api.sn-1.swarm",
        "*  lab      127.0.0.1:30304"]
    info = run(interp, "GET CONTEXT INFO")
    assert "NAME          : lab" in info and "API SERVER    : 127.0.0.1:30304" in info
    assert "DEFAULT       : no" in run(interp, "GET CONTEXT INFO edge")


def test_context_env(interp):
    run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1 4000", "SWITCH CONTEXT lab")
    assert run(interp, "LIST CONTEXT ENV") == ["(no env variables)"]
    assert run(interp, "SET CONTEXT ENV DATA /data") == ["CONTEXT ENV SET : DATA=/data"]
    assert run(interp, 'SET CONTEXT ENV lab NOTE "a b"') == ["CONTEXT ENV SET : NOTE=a b"]
    assert run(interp, "GET CONTEXT ENV DATA") == ["/data"]
    assert run(interp, "GET CONTEXT ENV lab NOTE") == ["a b"]
    assert run(interp, "LIST CONTEXT ENV lab") == ["DATA=/data", "NOTE=a b"]
    assert run(interp, "GET CONTEXT ENV NOPE") == [
        "ERROR : Env variable 'NOPE' is not set in context 'lab'"]


def test_create_context_against_unreachable_server(interp):
    assert run(interp, "CREATE CONTEXT x WITH IP down.example 30304") == [
        "ERROR : Unable to contact API-Server at down.example:30304 (connection refused)"]
    assert "x" not in interp.state.contexts


def test_recreating_a_context_elsewhere_is_refused(interp):
    run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1")
    assert run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.2") == [
        "ERROR : Context 'lab' already exists and points at 127.0.0.1:30304; pick another name"]
    assert run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1")[-1] == "CONTEXT CREATED : lab"


@pytest.mark.parametrize("line", [
    "LIST NODES", "LIST CONTRACTS", "CREATE CONTRACT c", "PERFDATA c", "LIST TASKS",
    "FINALIZE TASK t", "ASSIGN TASK t TO tr WITH 2 PEERS", "WAIT FOR TASKRUNNER tr",
    "RESET TASKRUNNER tr", "GET CONTEXT VERSION",
])
def test_network_commands_need_a_context(interp, line):
    assert run(interp, line) == [
        "ERROR : No context is set. Use CREATE CONTEXT <name> WITH IP <ip> and SWITCH CONTEXT "
        "<name> first"]


def test_network_commands_name_the_unreachable_server(interp, networks):
    run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1", "SWITCH CONTEXT lab")
    networks["127.0.0.1:30304"].up = False
    assert run(interp, "LIST TASKS") == [
        "ERROR : Unable to contact API-Server at 127.0.0.1:30304 (connection refused)"]


# -- the working directory -------------------------------------------------------------------------


def test_cd_ls_pwd(interp, tmp_path):
    (tmp_path / "taskdefs").mkdir()
    (tmp_path / "taskdefs" / "run.yaml").write_text("x: 1\n")
    (tmp_path / ".hidden").write_text("")
    assert run(interp, "ls") == ["taskdefs/"]
    assert run(interp, "ls -a") == [".hidden", "taskdefs/"]
    assert run(interp, "cd taskdefs") == [f"Current Directory : {tmp_path / 'taskdefs'}"]
    assert run(interp, "pwd()") == [str(tmp_path / "taskdefs")]
    assert run(interp, "ls()") == ["run.yaml"]
    assert run(interp, "ls -l")[0].endswith("run.yaml")
    assert run(interp, "cd ..") == [f"Current Directory : {tmp_path}"]
    assert run(interp, "ls -z") == ["ERROR : ls: unknown option -z (known: -a, -l)"]
    assert run(interp, "ls nope") == ["ERROR : ls: nope: no such file or directory"]
    assert run(interp, "cd nope") == [
        f"ERROR : Cannot change directory: {tmp_path / 'nope'} does not exist"]


def test_hpe_usr_dir_maps_to_usr_dir(interp, tmp_path):
    interp.state.usr_dir = tmp_path
    (tmp_path / "taskdefs").mkdir()
    assert run(interp, "cd /platform/swarm/usr/taskdefs") == [
        f"Current Directory : {tmp_path / 'taskdefs'}"]
    assert run(interp, "cd") == [f"Current Directory : {tmp_path}"]


# -- waits -----------------------------------------------------------------------------------------


def test_wait_for_ip_succeeds(interp, clock):
    assert run(interp, "WAIT FOR IP 127.0.0.1") == ["API Server is UP!"]
    assert clock.slept == []


def test_wait_for_ip_gives_up_with_the_reason(interp, clock):
    assert run(interp, "WAIT FOR IP down.example 30304 3") == [
        "ERROR : API-Server at down.example:30304 is not up after 3 attempts. Last error: "
        "Unable to contact API-Server at down.example:30304 (connection refused)"]
    assert clock.slept == [5.0, 5.0]


def test_wait_for_service_uses_port_443(interp, networks):
    assert run(interp, "WAIT FOR SERVICE api.sn-1.swarm 1") == ["API Server is UP!"]
    assert "api.sn-1.swarm:443" in networks


def test_sleep(interp, clock):
    assert run(interp, "SLEEP 2.5") == []
    assert clock.slept == [2.5]


def _context(interp, networks):
    run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1", "SWITCH CONTEXT lab")
    return networks["127.0.0.1:30304"]


def test_wait_for_taskrunner_complete(interp, networks, clock):
    network = _context(interp, networks)
    network.statuses = [{"TASK_STATE": "RUNNING", "TASK_TYPE": "RUN_SWARM"},
                        {"TASK_STATE": "RUNNING"}, {"TASK_STATE": "COMPLETE"}]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert lines[0] == "WAITING FOR TASKRUNNER TO COMPLETE - Maximum wait time is : 120 mins"
    # one `#` per poll, then HPE's summary block
    assert lines[1:4] == ["##", "TASKRUNNER FINISHED", "STATE : COMPLETE"]
    assert clock.slept == [2.0, 2.0]


def test_wait_for_taskrunner_error_names_the_failed_peers(interp, networks):
    network = _context(interp, networks)
    network.statuses = [{"TASK_STATE": "ERROR",
                         "FAILED_PEERS": ["swop-1: ML program exited with code 1"]}]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert "FAILED PEER : swop-1: ML program exited with code 1" in lines
    assert lines[-1] == ("ERROR : Task has failed, check TASKRUNNER PEER STATUS for Error "
                         "description")


def test_wait_for_taskrunner_times_out(interp, networks, clock, monkeypatch):
    monkeypatch.setenv("SWCI_RUN_TASK_MAX_WAIT_TIME", "1")
    network = _context(interp, networks)
    network.statuses = [{"TASK_STATE": "RUNNING", "TASK_TYPE": "RUN_SWARM",
                         "ENROLLED_PEERS": 1, "PEERS_NEEDED": 1}]
    # a live, enrolled SWOP whose training simply takes longer than the limit
    now = dt.datetime(2026, 11, 21, 12, 0, 0)
    monkeypatch.setattr("swci.interpreter.taskwatch.wall_clock", lambda: now)
    network.list_nodes = lambda: [{"NodeType": "SWOP", "UUID": "u1",
                                   "i-am-alive": f"{now:%Y-%m-%d %H:%M:%S}"}]
    network.taskrunner_peers = lambda name: [{"SWOP_UID": "u1", "SWOP_PEER_STATUS": "RUNNING"}]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert lines[0].endswith("Maximum wait time is : 1 mins")
    assert "WARNING - Maximum configured SWCI wait time is over" in lines
    assert lines[-1].startswith("ERROR : Taskrunner tr did not finish within 1 mins")
    assert sum(clock.slept) == pytest.approx(60.0)


def test_bad_wait_time_setting(interp, networks, monkeypatch):
    monkeypatch.setenv("SWCI_GENERIC_TASK_MAX_WAIT_TIME", "soon")
    network = _context(interp, networks)
    network.statuses = [{"TASK_STATE": "RUNNING"}]
    assert run(interp, "WAIT FOR TASKRUNNER tr") == [
        "ERROR : SWCI_GENERIC_TASK_MAX_WAIT_TIME='soon' is not a number of minutes"]


# -- task definitions ------------------------------------------------------------------------------


def test_create_task_from_reports_yaml_position(interp, networks, tmp_path):
    _context(interp, networks)
    (tmp_path / "bad.yaml").write_text("Name: t\nBody:\n  - a\n - b\n")
    line = run(interp, "CREATE TASK FROM bad.yaml")[0]
    assert line.startswith(f"ERROR : {tmp_path / 'bad.yaml'}:4:2: invalid YAML")


def test_create_task_from_missing_keys(interp, networks, tmp_path):
    _context(interp, networks)
    (tmp_path / "t.yaml").write_text("Name: t\nTaskType: RUN_SWARM\n")
    where = tmp_path / "t.yaml"
    assert run(interp, "CREATE TASK FROM t.yaml") == [
        f"ERROR : {where}:1:1: {key}: required key is missing"
        for key in ("Author", "Prereq", "Outcome", "Body")]
    assert not any(call[0] == "register_task" for call in networks["127.0.0.1:30304"].calls)


def test_create_task_from_registers(interp, networks, tmp_path):
    network = _context(interp, networks)
    (tmp_path / "t.yaml").write_text(
        "Name: t\nTaskType: PULL_IMAGE\nAuthor: me\nPrereq: ROOTTASK\nOutcome: t\n"
        "Body: {Tag: '1', RepoName: r, OrgAndReg: o/, Auth: null}\n")
    assert run(interp, "CREATE TASK FROM t.yaml") == [
        "Task definition is valid", "Task Registered : t"]
    assert network.calls[-1][0] == "register_task"


# -- help ------------------------------------------------------------------------------------------


def test_help_lists_and_explains(interp):
    listing = run(interp, "HELP")
    assert listing[0].startswith("Commands")
    assert any(line.split()[:2] == ["CREATE", "CONTRACT"] for line in listing)
    assert run(interp, "help create contract") == [
        "CREATE CONTRACT <TrainingContractName : string>",
        "    Create a training contract, for a training that runs beside others."]
    assert run(interp, "HELP HELP")[0] == "HELP [HelpTopic : string ...]"
    assert run(interp, "HELP CREAT CONTRACT") == [
        "ERROR : No command is called 'CREAT CONTRACT'; did you mean CREATE CONTRACT, "
        "RESET CONTRACT or CREATE CONTEXT?"]
