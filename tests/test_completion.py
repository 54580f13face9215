"""Completion as plain data: what is suggested at the cursor."""

from __future__ import annotations

from pathlib import Path

from swci.shell.completion import StaticNames, suggest

NAMES = StaticNames({
    "contexts": ["lab", "prod"],
    "tasks": ["build_task", "swarm_task"],
    "taskrunners": ["defaulttaskbb.taskdb.sml.hpe", "tr2"],
    "contracts": ["defaultbb.cqdb.sml.hpe"],
    "swops": ["0a1b-swop"],
})


def texts(line: str, cwd: Path | None = None) -> list[str]:
    """What Tab would insert (hints, which insert nothing, left out)."""
    return [s.text for s in suggest(line, NAMES, cwd) if s.text]


def hints(line: str) -> list[str]:
    """The values to type that the completion menu shows without inserting."""
    return [s.display for s in suggest(line, NAMES) if not s.text]


def test_first_word_lists_every_command_start():
    first = texts("")
    for word in ("APPEND", "ASSIGN", "CREATE", "DELETE", "EXIT", "FINALIZE", "GET", "HELP",
                 "LIST", "PERFDATA", "RESET", "SET", "SLEEP", "SWITCH", "WAIT", "cd", "ls",
                 "pwd"):
        assert word in first


def test_partial_keyword_keeps_the_users_case():
    assert texts("cr") == ["create"]
    assert texts("CR") == ["CREATE"]
    assert texts("li") == ["list"]


def test_keywords_after_create():
    assert sorted(texts("CREATE ")) == ["CONTEXT", "CONTRACT", "TASK", "TASKRUNNER"]


def test_after_assign_task_name_comes_to():
    assert texts("ASSIGN TASK t ") == ["TO"]


def test_task_names_then_taskrunner_names():
    assert texts("ASSIGN TASK ") == ["build_task", "swarm_task"]
    assert texts("ASSIGN TASK sw") == ["swarm_task"]
    assert texts("ASSIGN TASK t TO ") == ["defaulttaskbb.taskdb.sml.hpe", "tr2"]


def test_after_taskrunner_name():
    assert sorted(texts("ASSIGN TASK t TO tr ")) == ["TARGET", "WITH"]
    assert texts("ASSIGN TASK t TO tr WITH ") == ["ALL"]
    assert hints("ASSIGN TASK t TO tr WITH ") == ["<PeersNeeded : int>"]
    assert texts("ASSIGN TASK t TO tr WITH 2 ") == ["PEERS"]
    assert texts("ASSIGN TASK t TO tr TARGET ") == ["0a1b-swop"]


def test_context_names():
    assert texts("SWITCH CONTEXT ") == ["lab", "prod"]
    assert texts("switch context p") == ["prod"]
    assert texts("GET CONTEXT INFO ") == ["lab", "prod"]


def test_context_or_env_name_position():
    assert "lab" in texts("GET CONTEXT ENV ")


def test_contract_names():
    assert texts("RESET CONTRACT ") == ["defaultbb.cqdb.sml.hpe"]
    assert texts("PERFDATA ") == ["CONTRACT", "defaultbb.cqdb.sml.hpe"]


def test_task_type_keywords():
    assert texts("CREATE TASK ") == ["FROM", "MAKE_SWARM_USER_CONTENT", "MAKE_USER_CONTAINER",
                                     "PULL_IMAGE", "RUN_SWARM"]


def test_exit_on_failure_switch():
    assert texts("EXIT ON FAILURE ") == ["OFF", "ON"]
    assert texts("EXIT ") == ["ON"]
    assert texts("exit o") == ["on"]


def test_wait_for_forms():
    assert texts("WAIT FOR ") == ["IP", "SERVICE", "TASKRUNNER"]
    assert hints("WAIT FOR ") == ["<Host : string>"]
    assert hints("SLEEP ") == ["<Seconds : number>"]


def test_multi_word_help():
    assert "CREATE" in texts("HELP ")
    assert sorted(texts("HELP CREATE ")) == ["CONTEXT", "CONTRACT", "TASK", "TASKRUNNER"]
    assert texts("HELP CREATE TASK ") == ["FROM"]
    assert texts("help get taskrunner p") == ["peer"]


def test_paths(tmp_path):
    (tmp_path / "taskdefs").mkdir()
    (tmp_path / "taskdefs" / "build.yaml").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    assert texts("CREATE TASK FROM ", tmp_path) == ["notes.txt", "taskdefs/"]
    assert texts("CREATE TASK FROM taskdefs/", tmp_path) == ["taskdefs/build.yaml"]
    assert texts("cd ", tmp_path) == ["taskdefs/"]


def test_nothing_after_a_complete_command_or_invalid_prefix():
    assert texts("LIST TASKS ") == []
    assert texts("LIST TASKSS ") == []
    assert texts("NONSENSE ") == []


def test_suggestions_say_what_they_are():
    kinds = {s.text: s.meta for s in suggest("ASSIGN TASK ", NAMES)}
    assert kinds == {"build_task": "task", "swarm_task": "task"}
    assert {s.meta for s in suggest("", NAMES)} == {"keyword"}
    assert {s.meta for s in suggest("SWITCH CONTEXT ", NAMES)} == {"context"}


def test_keyword_case_follows_the_last_keyword_typed():
    assert texts("create ") == ["context", "contract", "task", "taskrunner"]
    assert texts("assign task T1 to TR ") == ["target", "with"]
    assert texts("ASSIGN TASK t ") == ["TO"]
