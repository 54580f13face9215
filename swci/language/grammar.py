"""The SWCI grammar and its parser, loaded once: a leaf module that the parser, completion and
the syntax lines all read, and that imports nothing of theirs back."""

from __future__ import annotations

import functools
import importlib.resources

from lark import Lark


@functools.cache
def grammar_text() -> str:
    """The text of grammar/swci.lark, as shipped in the package."""
    return (importlib.resources.files("swci.grammar") / "swci.lark").read_text(encoding="utf-8")


@functools.cache
def line_parser() -> Lark:
    """The LALR parser for one SWCI line (cached; built once per process)."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        propagate_positions=True,
        cache=False,
    )


@functools.cache
def terminal_literals() -> dict[str, str]:
    """Terminal name -> its literal as the grammar writes it, for terminals that are literals."""
    return {t.name: t.pattern.value for t in line_parser().terminals if t.pattern.type == "str"}
