"""The interactive prompt loop: SWCI:<n> > with completion, highlighting and history."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory

from swci.interpreter import ExitCode, Interpreter, Outcome, StreamOutput
from swci.language.errors import SwciSyntaxError
from swci.language.parser import parse_line
from swci.shell.completer import SwciCompleter
from swci.shell.lexer import SwciLexer
from swci.shell.names import LiveNames
from swci.shell.style import SWCI_STYLE
from swci.shell.toolbar import toolbar_text


def history_path() -> Path:
    """Where the history lives: $SWCI_HISTORY_FILE, else <config dir>/swci/history."""
    explicit = os.environ.get("SWCI_HISTORY_FILE")
    if explicit:
        return Path(explicit)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "swci" / "history"


def build_session(interp: Interpreter, names: LiveNames) -> PromptSession:
    """One PromptSession with every piece of the shell wired in."""
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(
        history=FileHistory(str(path)),
        auto_suggest=AutoSuggestFromHistory(),
        completer=SwciCompleter(names, cwd=lambda: interp.state.cwd),
        complete_while_typing=False,
        lexer=SwciLexer(),
        style=SWCI_STYLE,
        bottom_toolbar=lambda: toolbar_text(interp),
    )


def run_shell(interp: Interpreter) -> int:
    """Read, run, repeat until EXIT or Ctrl-D. Ctrl-C clears the line or cancels a wait."""
    names = LiveNames(interp)
    session = build_session(interp, names)
    out = StreamOutput(sys.stdout)
    print("SWCI - Swarm Learning command interface. HELP lists commands; Tab completes.")
    while True:
        prompt = interp.state.prompt
        try:
            text = session.prompt(FormattedText([("class:prompt", prompt)]))
        except KeyboardInterrupt:
            continue
        except EOFError:
            return ExitCode.OK
        try:
            command = parse_line(text, source="<prompt>")
        except SwciSyntaxError as exc:
            print(" " * (len(prompt) + exc.column - 1) + "^")
            out.error(f"syntax error at column {exc.column}: {exc.message}")
            continue
        if command is None:
            continue
        try:
            outcome = interp.execute(command, out)
        except KeyboardInterrupt:
            out.error("Cancelled")
            continue
        names.refresh()
        if outcome is Outcome.EXIT:
            return ExitCode.OK
        if outcome is Outcome.STOP:
            return ExitCode.STOPPED_ON_FAILURE
