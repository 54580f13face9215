"""The grammar and the command objects: every command, its variants, and its bad forms."""

from __future__ import annotations

import pytest

from swci.language import commands as c
from swci.language.errors import SwciSyntaxError
from swci.language.parser import ScriptSyntaxErrors, parse_line, parse_script

GOOD = [
    ("CREATE CONTEXT c1 WITH IP 10.1.2.3", c.CreateContextIp(context_name="c1", host="10.1.2.3")),
    ("create context c1 with ip sn1 30305",
     c.CreateContextIp(context_name="c1", host="sn1", port=30305)),
    ("CREATE CONTEXT c1 sn1", c.CreateContextIp(context_name="c1", host="sn1")),
    ("CREATE CONTEXT c1 sn1 4000", c.CreateContextIp(context_name="c1", host="sn1", port=4000)),
    ("create context list with ip <HOST-IP>",
     c.CreateContextIp(context_name="list", host="<HOST-IP>")),
    ("create context ex with service api.sn-1.swarm",
     c.CreateContextService(context_name="ex", service="api.sn-1.swarm")),
    ("SWITCH CONTEXT ex", c.SwitchContext(context_name="ex")),
    ("LIST CONTEXTS", c.ListContexts()),
    ("GET CONTEXT INFO", c.GetContextInfo()),
    ("GET CONTEXT INFO ex", c.GetContextInfo(context_name="ex")),
    ("GET CONTEXT VERSION", c.GetContextVersion()),
    ("LIST CONTEXT ENV", c.ListContextEnv()),
    ("LIST CONTEXT ENV ex", c.ListContextEnv(context_name="ex")),
    ("GET CONTEXT ENV HOME", c.GetContextEnv(env_name="HOME")),
    ("GET CONTEXT ENV ex HOME", c.GetContextEnv(env_name="HOME", context_name="ex")),
    ("SET CONTEXT ENV K V", c.SetContextEnv(env_name="K", env_value="V")),
    ("SET CONTEXT ENV ex K 42", c.SetContextEnv(env_name="K", env_value="42", context_name="ex")),
    ('SET CONTEXT ENV K "a # b"', c.SetContextEnv(env_name="K", env_value="a # b")),
    ("CREATE CONTRACT ct", c.CreateContract(training_contract_name="ct")),
    ("LIST CONTRACTS", c.ListContracts()),
    ("GET CONTRACT INFO ct", c.GetContractInfo(training_contract_name="ct")),
    ("GET CONTRACT STATUS ct", c.GetContractStatus(training_contract_name="ct")),
    ("PERFDATA defaultbb.cqdb.sml.hpe",
     c.Perfdata(training_contract_name="defaultbb.cqdb.sml.hpe")),
    ("PERFDATA CONTRACT ct", c.Perfdata(training_contract_name="ct")),
    ("RESET CONTRACT ct", c.ResetContract(training_contract_name="ct")),
    ("create task from taskdefs/user_env_tf_build_task.yaml",
     c.CreateTaskFrom(task_def_file="taskdefs/user_env_tf_build_task.yaml")),
    ("CREATE TASK run_swarm t1 alice ROOTTASK t1",
     c.CreateTask(task_type="RUN_SWARM", task_name="t1", author="alice", prereq="ROOTTASK",
                  outcome="t1")),
    ("CREATE TASK PULL_IMAGE t2 'Alice B' t1 img:1",
     c.CreateTask(task_type="PULL_IMAGE", task_name="t2", author="Alice B", prereq="t1",
                  outcome="img:1")),
    ("APPEND TASK BODY t1 3 Command : model/mnist.py --epochs 2  ",
     c.AppendTaskBody(task_name="t1", body_index=3,
                      body_line="Command : model/mnist.py --epochs 2")),
    ("FINALIZE TASK t1", c.FinalizeTask(task_name="t1")),
    ("DELETE TASK t1", c.DeleteTask(task_name="t1")),
    ("GET TASK INFO t1", c.GetTaskInfo(task_name="t1")),
    ("GET TASK BODY t1", c.GetTaskBody(task_name="t1")),
    ("LIST TASKS", c.ListTasks()),
    ("CREATE TASKRUNNER tr", c.CreateTaskrunner(taskrunner_name="tr")),
    ("LIST TASKRUNNERS", c.ListTaskrunners()),
    ("GET TASKRUNNER INFO tr", c.GetTaskrunnerInfo(taskrunner_name="tr")),
    ("ASSIGN TASK t1 TO defaulttaskbb.taskdb.sml.hpe WITH 2 PEERS",
     c.AssignTask(task_name="t1", taskrunner_name="defaulttaskbb.taskdb.sml.hpe", peers_needed=2)),
    ("assign task t1 to tr with all peers",
     c.AssignTaskAllPeers(task_name="t1", taskrunner_name="tr")),
    ("ASSIGN TASK t1 TO tr TARGET 3f2a-77",
     c.AssignTaskTarget(task_name="t1", taskrunner_name="tr", swop_uid="3f2a-77")),
    ("GET TASKRUNNER STATUS tr", c.GetTaskrunnerStatus(taskrunner_name="tr")),
    ("GET TASKRUNNER PEER STATUS tr 0",
     c.GetTaskrunnerPeerStatus(taskrunner_name="tr", swop_peer=0)),
    ("GET TASKRUNNER PEER STATUS tr 12ab-cd",
     c.GetTaskrunnerPeerStatus(taskrunner_name="tr", swop_peer="12ab-cd")),
    ("LIST TASKRUNNER PEERS tr", c.ListTaskrunnerPeers(taskrunner_name="tr")),
    ("WAIT FOR TASKRUNNER tr", c.WaitForTaskrunner(taskrunner_name="tr")),
    ("RESET TASKRUNNER tr", c.ResetTaskrunner(taskrunner_name="tr")),
    ("LIST NODES", c.ListNodes()),
    ("wait for ip sn1", c.WaitForIp(host="sn1")),
    ("WAIT FOR IP sn1 30304 5", c.WaitForIp(host="sn1", port=30304, retries=5)),
    ("WAIT FOR sn1 30304", c.WaitForIp(host="sn1", port=30304)),
    ("wait for service api.sn-1.swarm", c.WaitForService(service="api.sn-1.swarm")),
    ("WAIT FOR SERVICE api.sn-1.swarm:443 3",
     c.WaitForService(service="api.sn-1.swarm:443", retries=3)),
    ("SLEEP 15", c.Sleep(seconds=15.0)),
    ("sleep 0.5", c.Sleep(seconds=0.5)),
    ("cd /platform/swarm/usr", c.Cd(dir_path="/platform/swarm/usr")),
    ("cd", c.Cd()),
    ("ls", c.Ls()),
    ("ls()", c.Ls()),
    ("ls -l taskdefs", c.Ls(ls_arg=["-l", "taskdefs"])),
    ("pwd", c.Pwd()),
    ("pwd()", c.Pwd()),
    ("EXIT ON FAILURE", c.ExitOnFailure()),
    ("EXIT ON FAILURE ON", c.ExitOnFailure(failure_switch="ON")),
    ("exit on failure off", c.ExitOnFailure(failure_switch="OFF")),
    ("EXIT", c.Exit()),
    ("HELP", c.Help()),
    ("help create contract", c.Help(help_topic=["create", "contract"])),
    ("START SN sn1 SENTINEL", c.StartSn(node_name="sn1", sentinel="SENTINEL")),
    ("start sn sn2 sentinel ip 10.0.0.5 31304 api port 32304 p2p port 32303",
     c.StartSn(node_name="sn2", sentinel="SENTINEL", sentinel_ip="10.0.0.5", sentinel_port=31304,
               api_port=32304, p2p_port=32303)),
    ("START SN sn3 API PORT 40000", c.StartSn(node_name="sn3", api_port=40000)),
    ("START SN sn4 API PORT 31304 P2P PORT 31303 ORG hospital-b",
     c.StartSn(node_name="sn4", api_port=31304, p2p_port=31303, org_name="hospital-b")),
    ("STOP SN sn1", c.StopSn(node_name="sn1")),
    ("START SL sl1", c.StartSl(node_name="sl1")),
    ('start sl sl2 sn sn2 fs port 31305 ml "python train.py --epochs 3"',
     c.StartSl(node_name="sl2", sn_node="sn2", fs_port=31305,
               ml_command="python train.py --epochs 3")),
    ("STOP SL sl1", c.StopSl(node_name="sl1")),
    ("START SWOP swop1 PROFILE swop/swop1_profile.yaml",
     c.StartSwop(node_name="swop1", profile_file="swop/swop1_profile.yaml")),
    ('start swop swop2 profile "my dir/p.yaml" sn sn2',
     c.StartSwop(node_name="swop2", profile_file="my dir/p.yaml", sn_node="sn2")),
    ("STOP SWOP swop1", c.StopSwop(node_name="swop1")),
    ("STOP SWARM", c.StopSwarm()),
    ("LIST LOCAL NODES", c.ListLocalNodes()),
]


def _fields(command: c.Command) -> dict:
    data = dict(vars(command))
    for key in ("line", "column", "text"):
        data.pop(key)
    return data


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t for t, _ in GOOD])
def test_good_forms(text, expected):
    command = parse_line(text)
    assert type(command) is type(expected)
    assert _fields(command) == _fields(expected)
    assert command.text == text


def test_every_command_class_has_a_good_form():
    covered = {type(expected) for _, expected in GOOD}
    assert covered == set(c.COMMAND_CLASSES.values())


def test_enabled_flag_of_exit_on_failure():
    assert parse_line("EXIT ON FAILURE").enabled
    assert parse_line("EXIT ON FAILURE on").enabled
    assert not parse_line("EXIT ON FAILURE OFF").enabled


@pytest.mark.parametrize("text", ["", "   ", "# a comment", "   # indented comment"])
def test_blank_and_comment_lines(text):
    assert parse_line(text) is None


def test_trailing_comment():
    assert parse_line("LIST TASKS   # all of them") == parse_line("LIST TASKS   # all of them")
    assert isinstance(parse_line("LIST TASKS # all"), c.ListTasks)


def test_position_is_kept():
    command = parse_line("   LIST TASKS", line=7)
    assert (command.line, command.column) == (7, 4)


BAD = [
    ("CREATE CONTRACT", 16, "incomplete command: expected <TrainingContractName : string>"),
    ("LIST TASKSS", 6, "did you mean TASKS?"),
    ("crate context a with ip h", 1, "did you mean CREATE?"),
    ("ASSIGN TASK t TO tr WITH 0 PEERS", 26, "the number of peers must be 1 or more, not 0"),
    ("ASSIGN TASK t TO tr WITH two PEERS", 26, "expected ALL or <PeersNeeded : int>"),
    ("ASSIGN TASK t TO tr WITH 2", 27, "incomplete command: expected PEERS"),
    ("CREATE CONTEXT a WITH IP h 70000", 28, "port must be between 1 and 65535"),
    ("WAIT FOR IP h 30304 0", 21, "the number of retries must be 1 or more"),
    ("APPEND TASK BODY t 0 x", 20, "a task body index must be 1 or more"),
    ("CREATE TASK BUILD t a b c", 13, "unexpected 'BUILD'"),
    ("SLEEP soon", 7, "expected <Seconds : number>"),
    ("EXIT ON FAILURE MAYBE", 17, "expected OFF, ON or end of line"),
    ("LIST TASKS extra", 12, "unexpected 'extra'; expected end of line"),
    ("GET TASKRUNNER PEER STATUS tr", 30, "expected <SwopPeer : int|string>"),
    ("SET CONTEXT ENV onlyname", 25, "incomplete command"),
    ('SWITCH CONTEXT "unterminated', 16,
     """unterminated quote: '"unterminated' needs a closing \""""),
    ("SWITCH CONTEXT 'abc", 16, """unterminated quote: "'abc" needs a closing '"""),
    ("FROB x", 1, "unexpected 'FROB': not a command (HELP lists them)"),
    ("LIST CONTEXTS\tNODES", 15, "unexpected 'NODES'"),
]


@pytest.mark.parametrize(("text", "column", "message"), BAD, ids=[t for t, _, _ in BAD])
def test_bad_forms_name_the_column(text, column, message):
    with pytest.raises(SwciSyntaxError) as info:
        parse_line(text, line=3, source="s.swci")
    err = info.value
    assert (err.line, err.column) == (3, column), str(err)
    assert message in err.message
    assert str(err).startswith(f"s.swci:3:{column}: ")


def test_two_lines_are_not_one_command():
    with pytest.raises(SwciSyntaxError):
        parse_line("LIST TASKS\nLIST NODES")


def test_script_reports_every_bad_line():
    text = "LIST TASKS\nLIST TASKSS\n# fine\nCREATE CONTRACT\n"
    with pytest.raises(ScriptSyntaxErrors) as info:
        parse_script(text, source="x.swci")
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 6), (4, 16)]


def test_script_keeps_comments_and_blank_lines():
    lines = parse_script("# head\n\nLIST TASKS\n")
    assert [(line.number, line.command is None) for line in lines] == [
        (1, True), (2, True), (3, False)]
