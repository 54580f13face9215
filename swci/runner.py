"""Running the text of a whole SWCI script in an interpreter: what `swci --script`, an init
script, piped input and `swci demo` share.

A leaf below the command line: swci.cli and swci.demo import it, and it imports neither, so
the subcommands (swci.commands_cli) can reach the demo without a way back to swci.cli.
"""

from __future__ import annotations

import sys

from swci.interpreter import ExitCode, Interpreter, StreamOutput
from swci.language.parser import ScriptSyntaxErrors, parse_script


def run_text(interp: Interpreter, text: str, source: str) -> ExitCode | None:
    """Parse a whole script first (nothing runs on a syntax error, each error is printed to
    stderr), then run it; the exit code if the session ended (EXIT, or a failure under EXIT ON
    FAILURE), else None."""
    try:
        lines = parse_script(text, source=source)
    except ScriptSyntaxErrors as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"swci: {len(exc.problems)} syntax error(s) in {source}; nothing was run",
              file=sys.stderr)
        return ExitCode.SYNTAX_ERROR
    return interp.run_script(lines, StreamOutput())
