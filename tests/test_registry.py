"""One source of truth: grammar rules, command classes, registry entries and syntax lines agree."""

from __future__ import annotations

import re

import pytest

from swci.language.commands import COMMAND_CLASSES
from swci.language.parser import line_parser, parse_line
from swci.language.syntax import grammar_rules
from swci.registry import all_specs, command_names, find

SAMPLES = {"int": "3", "number": "1.5", "string": "x1", "text": "Command : run.py",
           "int|string": "3"}


def _fill(line: str, keep_optional: bool) -> str:
    def sample(match: re.Match) -> str:
        kind = match.group(2).replace(" ...", "")
        return SAMPLES.get(kind, kind.split("|")[0])

    if not keep_optional:
        while re.search(r"\[[^\[\]]*\]", line):
            line = re.sub(r"\[[^\[\]]*\]", "", line)
    line = re.sub(r"[<\[]?(\w+) : ([^>\]]+)[>\]]", sample, line)
    return " ".join(line.replace("[", " ").replace("]", " ").split())


def _command_rules() -> set[str]:
    rules = set()
    for rule in line_parser().rules:
        name = rule.alias or rule.origin.name
        if name in COMMAND_CLASSES:
            rules.add(str(name))
    return rules


def test_every_grammar_command_has_a_class_and_a_handler():
    specs = {spec.rule for spec in all_specs()}
    assert specs == set(COMMAND_CLASSES) == _command_rules()


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.rule)
def test_every_syntax_line_parses_to_its_command(spec):
    assert spec.syntax, spec.rule
    for line in spec.syntax:
        for keep in (True, False):
            text = _fill(line, keep)
            command = parse_line(text)
            assert type(command) is spec.command_class, (line, text)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.rule)
def test_every_command_has_a_description(spec):
    assert spec.description.endswith(".") and len(spec.description) > 15


def test_help_lists_every_hpe_command_name():
    hpe_2_3_0 = {
        "CREATE CONTEXT", "SWITCH CONTEXT", "LIST CONTEXTS", "GET CONTEXT INFO",
        "GET CONTEXT VERSION", "LIST CONTEXT ENV", "GET CONTEXT ENV", "SET CONTEXT ENV",
        "CREATE CONTRACT", "LIST CONTRACTS", "GET CONTRACT INFO", "GET CONTRACT STATUS",
        "PERFDATA", "RESET CONTRACT", "CREATE TASK FROM", "CREATE TASK", "APPEND TASK BODY",
        "FINALIZE TASK", "DELETE TASK", "GET TASK INFO", "GET TASK BODY", "LIST TASKS",
        "CREATE TASKRUNNER", "LIST TASKRUNNERS", "GET TASKRUNNER INFO", "ASSIGN TASK",
        "GET TASKRUNNER STATUS", "GET TASKRUNNER PEER STATUS", "LIST TASKRUNNER PEERS",
        "WAIT FOR TASKRUNNER", "RESET TASKRUNNER", "WAIT FOR IP", "WAIT FOR SERVICE", "SLEEP",
        "CD", "LS", "PWD", "LIST NODES", "EXIT", "EXIT ON FAILURE", "HELP",
    }
    local_nodes = {"START SN", "STOP SN", "START SL", "STOP SL", "START SWOP", "STOP SWOP",
                   "STOP SWARM", "LIST LOCAL NODES"}
    assert set(command_names()) == hpe_2_3_0 | local_nodes


def test_find_exact_then_prefix():
    assert [s.rule for s in find(["create", "task"])] == ["create_task"]
    assert {s.rule for s in find(["ASSIGN", "TASK"])} == {
        "assign_task", "assign_task_all_peers", "assign_task_target"}
    assert {s.name for s in find(["CREATE"])} == {
        "CREATE CONTEXT", "CREATE CONTRACT", "CREATE TASK", "CREATE TASK FROM",
        "CREATE TASKRUNNER"}
    assert find(["NOSUCH"]) == []


def test_rendered_syntax_matches_hpe_style():
    by_rule = {spec.rule: spec.syntax for spec in all_specs()}
    assert by_rule["create_contract"] == ("CREATE CONTRACT <TrainingContractName : string>",)
    assert by_rule["get_context_env"] == (
        "GET CONTEXT ENV [ContextName : string] <EnvName : string>",)
    assert by_rule["perfdata"] == ("PERFDATA [CONTRACT] <TrainingContractName : string>",)
    assert by_rule["help"] == ("HELP [HelpTopic : string ...]",)


def test_override_only_where_lalr_needs_it():
    overridden = {name for name, rule in grammar_rules().items() if rule.override}
    assert overridden == {"set_context_env"}
