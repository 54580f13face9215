"""Syntax highlighting driven by the grammar: the parser's own tokens, and the point where a
line stops being valid SWCI shown as an error."""

from __future__ import annotations

import re
from collections.abc import Callable

from lark import UnexpectedInput
from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer

from swci.language.expect import expected_at
from swci.language.grammar import line_parser

_STYLES = {"WORD": "class:name", "STRING": "class:string", "INT": "class:number",
           "NUMBER": "class:number", "BODY_LINE": "class:text"}
_COMMENT = re.compile(r"#[^\n]*")


def highlight(line: str) -> StyleAndTextTuples:
    """Style fragments for one line."""
    styles = ["" for _ in line]
    error_at: int | None = None
    parser = line_parser().parse_interactive(line)
    try:
        for token in parser.iter_parse():
            style = _STYLES.get(token.type, "class:keyword")
            for i in range(token.start_pos or 0, token.end_pos or 0):
                styles[i] = style
    except UnexpectedToken as exc:
        if exc.token.type != "$END":
            error_at = exc.token.start_pos
    except UnexpectedCharacters as exc:
        error_at = exc.pos_in_stream
    except UnexpectedInput:
        error_at = None
    for match in _COMMENT.finditer(line):
        if error_at is not None and match.start() >= error_at:
            break
        if not styles[match.start()]:
            for i in range(match.start(), match.end()):
                styles[i] = "class:comment"
            break
    if error_at is not None:
        error_at = _word_start(line, error_at)
        if _still_typing(line, error_at):
            error_at = None
    if error_at is not None:
        for i in range(error_at, len(line)):
            styles[i] = "class:error"
    fragments: StyleAndTextTuples = []
    for ch, style in zip(line, styles, strict=True):
        if fragments and fragments[-1][0] == style:
            fragments[-1] = (style, fragments[-1][1] + ch)
        else:
            fragments.append((style, ch))
    return fragments


def _word_start(line: str, position: int) -> int:
    while position > 0 and not line[position - 1].isspace():
        position -= 1
    return position


def _still_typing(line: str, start: int) -> bool:
    """True when the bad part is the end of the line and may still become valid: a prefix of a
    keyword that fits there, or a quoted value not closed yet."""
    rest = line[start:]
    if not rest:
        return False
    expectation = expected_at(line[:start])
    if rest[0] in "\"'" and rest.count(rest[0]) == 1:
        return bool(expectation.roles)
    if any(ch.isspace() for ch in rest):
        return False
    return any(k.upper().startswith(rest.upper()) for k in expectation.keywords)


class SwciLexer(Lexer):
    """prompt_toolkit lexer over highlight()."""

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines
        return lambda number: highlight(lines[number]) if number < len(lines) else []
