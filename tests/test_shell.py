"""The interactive shell, driven in-process through prompt_toolkit's pipe input: what a user
typing at SWCI:0 > sees, Tab completion included."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from swci.interpreter import StreamOutput
from swci.shell.app import history_path, run_entry, run_shell
from swci.shell.names import LiveNames
from swci.shell.toolbar import toolbar_text

ENTER, TAB, CTRL_D = "\r", "\t", "\x04"


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("SWCI_HISTORY_FILE", str(tmp_path / "hist"))
    yield


def type_into_shell(interp, *keys: str) -> int:
    """Type keys one chunk at a time, as a person would: Tab completion runs asynchronously, so
    each chunk waits a moment for the shell to catch up. Ends with Ctrl-D."""
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        def typist() -> None:
            for key in (*keys, CTRL_D):
                time.sleep(0.15)
                pipe.send_text(key)

        thread = threading.Thread(target=typist, daemon=True)
        thread.start()
        code = run_shell(interp, input=pipe, output=DummyOutput())
        thread.join(timeout=10)
        return code


def test_tab_completes_keywords_and_context_names(interp, capsys):
    code = type_into_shell(
        interp,
        "CREATE CONTEXT lab WITH IP 127.0.0.1" + ENTER,
        "swi", TAB, " con", TAB, " la", TAB, ENTER,
        "get conte", TAB, " i", TAB, ENTER,
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "    DEFAULT CONTEXT SET TO : lab" in out
    assert "    NAME          : lab" in out
    assert interp.state.counter == 3


def test_history_is_written(interp, tmp_path):
    type_into_shell(interp, "pwd" + ENTER)
    assert "+pwd" in (tmp_path / "hist").read_text()
    assert history_path() == tmp_path / "hist"


def test_exit_ends_the_shell(interp, capsys):
    assert type_into_shell(interp, "EXIT" + ENTER, "pwd" + ENTER) == 0
    assert str(interp.state.cwd) not in capsys.readouterr().out


def test_syntax_error_caret_counts_screen_cells(interp, capsys):
    out = StreamOutput()
    assert run_entry(interp, out, "SWCI:0 > ", "SWITCH CONTEXT 任务 x") is None
    caret, error = capsys.readouterr().out.splitlines()
    assert caret == " " * (len("SWCI:0 > SWITCH CONTEXT ") + 5) + "^"
    assert error == "    ERROR : syntax error at column 19: unexpected 'x'; expected end of line"


def test_pasted_lines_run_as_a_script(interp, capsys):
    out = StreamOutput()
    assert run_entry(interp, out, "SWCI:0 > ", "pwd\nls\n") is None
    assert interp.state.counter == 2
    assert run_entry(interp, out, "SWCI:2 > ", "pwd\nLIST TASKSS\n") is None
    printed = capsys.readouterr().out
    assert "syntax error at line 2 column 6" in printed and "Nothing was run." in printed
    assert interp.state.counter == 2


def test_stop_on_failure_says_why(interp, capsys):
    out = StreamOutput()
    run_entry(interp, out, "SWCI:0 > ", "EXIT ON FAILURE")
    assert run_entry(interp, out, "SWCI:1 > ", "SWITCH CONTEXT nope") == 1
    assert "EXIT ON FAILURE is on: ending the session" in capsys.readouterr().out


def test_toolbar_and_live_context_names(interp):
    assert toolbar_text(interp).startswith(" no context | EXIT ON FAILURE off")
    interp.run_line("CREATE CONTEXT lab WITH IP 127.0.0.1", StreamOutput())
    interp.run_line("SWITCH CONTEXT lab", StreamOutput())
    assert toolbar_text(interp).startswith(" lab (127.0.0.1:30304) | EXIT ON FAILURE off")
    assert LiveNames(interp).names("contexts") == ["lab"]
