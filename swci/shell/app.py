"""The interactive prompt loop: SWCI:<n> > with completion, highlighting and history."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.utils import get_cwidth

from swci.interpreter import ExitCode, Interpreter, StreamOutput
from swci.language.errors import SwciSyntaxError
from swci.language.parser import ScriptSyntaxErrors, parse_line, parse_script
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


def build_session(interp: Interpreter, names: LiveNames, **io: Any) -> PromptSession:
    """One PromptSession with every piece of the shell wired in (io: input=, output= for tests)."""
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(
        **io,
        history=FileHistory(str(path)),
        auto_suggest=AutoSuggestFromHistory(),
        completer=SwciCompleter(names, cwd=lambda: interp.state.cwd),
        complete_while_typing=False,
        lexer=SwciLexer(),
        style=SWCI_STYLE,
        bottom_toolbar=lambda: toolbar_text(interp),
    )


def run_shell(interp: Interpreter, **io: Any) -> int:
    """Read, run, repeat until EXIT or Ctrl-D. Ctrl-C clears the line or cancels a wait."""
    names = LiveNames(interp)
    session = build_session(interp, names, **io)
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
        code = run_entry(interp, out, prompt, text)
        names.refresh()
        if code is not None:
            return code


def run_entry(interp: Interpreter, out: StreamOutput, prompt: str, text: str) -> int | None:
    """Run what was typed (or pasted: several lines run as a script). The exit code if the
    session ends, else None."""
    try:
        if "\n" in text.strip():
            try:
                lines = parse_script(text, source="<pasted>")
            except ScriptSyntaxErrors as exc:
                for problem in exc.problems:
                    out.error(f"syntax error at line {problem.line} column {problem.column}: "
                              f"{problem.message}")
                out.line("Nothing was run.")
                return None
            code = interp.run_script(lines, out)
            return None if code is None else int(code)
        try:
            command = parse_line(text, source="<prompt>")
        except SwciSyntaxError as exc:
            print(" " * (get_cwidth(prompt + text[: exc.column - 1])) + "^")
            out.error(f"syntax error at column {exc.column}: {exc.message}")
            return None
        if command is None:
            return None
        outcome = interp.execute(command, out)
    except KeyboardInterrupt:
        out.error("Cancelled")
        return None
    code = interp.session_end(outcome, out)
    return None if code is None else int(code)
