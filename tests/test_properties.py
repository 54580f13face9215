"""Property tests: no input line, however random, crashes the parser, the interpreter, the
completer or the highlighter; every bad line gets a syntax message or an ERROR line."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swci.interpreter import CollectingOutput, Outcome
from swci.language.errors import SwciSyntaxError
from swci.language.expect import keyword_text
from swci.language.parser import parse_line
from swci.shell.completion import StaticNames, suggest
from swci.shell.lexer import highlight

KEYWORDS = sorted(set(keyword_text().values()))
VALUES = ["x", "127.0.0.1", "0", "2", "30304", "70000", "1.5", '"a b"', "'q'", "#", "()", "-l",
          "..", "/", "taskdefs/run.yaml", "<HOST-IP>", "defaulttaskbb.taskdb.sml.hpe", "down.x",
          "\t", "é", '"', "ON", "OFF"]
WORDS = st.sampled_from(KEYWORDS + [k.lower() for k in KEYWORDS] + VALUES)
NEAR_VALID = st.lists(WORDS, min_size=0, max_size=9).map(" ".join)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                   max_size=80)
LINES = st.one_of(NEAR_VALID, ANY_TEXT)
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(LINES)
def test_parser_returns_a_command_or_a_syntax_error(line):
    try:
        parse_line(line)
    except SwciSyntaxError as exc:
        assert exc.message and 1 <= exc.column <= len(line) + 1


@SETTINGS
@given(st.lists(LINES, min_size=1, max_size=6))
def test_interpreter_never_crashes(interp, lines):
    interp.state.usr_dir = interp.state.cwd
    for line in lines:
        out = CollectingOutput()
        outcome = interp.run_line(line, out)
        if outcome in (Outcome.FAILED, Outcome.STOP):
            assert out.errors, (line, out.lines)
        if outcome in (Outcome.EXIT, Outcome.STOP):
            break


@SETTINGS
@given(LINES)
def test_completion_and_highlighting_never_crash(line):
    suggest(line, StaticNames({"contexts": ["a"]}))
    assert "".join(text for _, text in highlight(line)) == line
