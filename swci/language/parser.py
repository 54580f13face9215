"""Load the SWCI grammar and parse lines and whole scripts into command objects."""

from __future__ import annotations

from dataclasses import dataclass

from lark import UnexpectedInput
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from swci.language.commands import Command, CommandValueError
from swci.language.errors import SwciSyntaxError
from swci.language.expect import describe_expected, expected_at, suggest_keyword
from swci.language.grammar import line_parser
from swci.language.transformer import CommandBuilder


@dataclass(frozen=True)
class ScriptLine:
    """One line of a script: its number, its text, and its command (None for blank or comment)."""

    number: int
    text: str
    command: Command | None


def parse_line(text: str, *, line: int = 1, source: str = "<input>") -> Command | None:
    """Parse one line; None for a blank or comment line. Raises SwciSyntaxError."""
    if "\n" in text.rstrip("\n"):
        raise SwciSyntaxError(source, line, text.index("\n") + 1, "one command per line", text)
    text = text.rstrip("\n")
    try:
        tree = line_parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, line, source) from None
    try:
        return CommandBuilder(line=line, text=text).transform(tree)
    except (CommandValueError, VisitError) as exc:
        err = exc.orig_exc if isinstance(exc, VisitError) else exc
        if not isinstance(err, CommandValueError):
            raise
        raise SwciSyntaxError(source, line, err.column, err.message, text) from None


def parse_script(text: str, *, source: str = "<script>") -> list[ScriptLine]:
    """Parse every line of a script. Raises ScriptSyntaxErrors listing every bad line."""
    lines: list[ScriptLine] = []
    problems: list[SwciSyntaxError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            lines.append(ScriptLine(number, raw, parse_line(raw, line=number, source=source)))
        except SwciSyntaxError as exc:
            problems.append(exc)
    if problems:
        raise ScriptSyntaxErrors(problems)
    return lines


class ScriptSyntaxErrors(Exception):
    """Every syntax problem found in a script."""

    def __init__(self, problems: list[SwciSyntaxError]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _syntax_error(exc: UnexpectedInput, text: str, line: int, source: str) -> SwciSyntaxError:
    """Turn a Lark error into a message that names the word, what fits there, and a guess."""

    incomplete = isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
    if incomplete:
        start = end = len(text.rstrip())
    else:
        if isinstance(exc, UnexpectedToken):
            position = exc.token.start_pos or 0
        elif isinstance(exc, UnexpectedCharacters):
            position = exc.pos_in_stream
        else:
            position = len(text.rstrip())
        start = end = position
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
    word = text[start:end]
    expectation = expected_at(text[:start])
    wanted = describe_expected(expectation)
    quote = word[:1] if word[:1] in "\"'" else ""
    shown = f'"{word}"' if "'" in word else f"'{word}'"
    if incomplete or not word:
        message = f"incomplete command: expected {wanted}" if wanted else "incomplete command"
    elif quote and text.count(quote, start) < 2:
        message = f"unterminated quote: {shown} needs a closing {quote}"
    else:
        guess = suggest_keyword(word, expectation)
        if not expectation.tokens:
            message = f"unexpected {shown}: not a command (HELP lists them)"
        else:
            message = f"unexpected {shown}"
            if wanted:
                message += f"; expected {wanted}"
        if guess:
            message += f" (did you mean {guess}?)"
    return SwciSyntaxError(source, line, start + 1, message, text)
