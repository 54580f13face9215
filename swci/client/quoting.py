"""Command text for the typed SWCI web API client: each argument written so that the SWCI
grammar reads it back as the value given (a bare word when it can be one, else quoted), and
ports checked before they are written into a command."""

from __future__ import annotations

import functools
import re
import unicodedata

from swci.language.grammar import grammar_text

__all__ = ["port_argument", "quote"]

_BARE_WORD = re.compile(r"[^\s#\"']+")  # the grammar's WORD terminal
_KEYWORD = re.compile(r'"([A-Za-z_]+)"i')  # a case-insensitive keyword literal of the grammar


@functools.cache
def _keywords() -> frozenset[str]:
    """Every keyword of the SWCI grammar, upper-cased: a bare word spelling one may be read as
    the keyword (PERFDATA CONTRACT), so such values are quoted."""
    return frozenset(word.upper() for word in _KEYWORD.findall(grammar_text()))


def _unsendable(value: str) -> str | None:
    """The first character that no SWCI argument can hold (a line break or a control
    character other than tab), or None."""
    for char in value:
        if char == "\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return char
    return None


def quote(value: str) -> str:
    """One SWCI argument as the grammar reads it back as ``value``.

    A plain word (no space, ``#`` or quote, and not a keyword) is sent as it is; anything else
    is double-quoted, or single-quoted when it holds a double quote. The grammar has no escapes,
    so a value holding both quote characters, a line break or another control character (tab
    is fine), or nothing at all, cannot be expressed: ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"an SWCI argument must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError("an SWCI argument cannot be empty")
    bad = _unsendable(value)
    if bad is not None:
        raise ValueError(f"{value!r}: an SWCI argument cannot hold the character {bad!r}")
    if _BARE_WORD.fullmatch(value) and value.upper() not in _keywords():
        return value
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise ValueError(f"{value!r}: an SWCI argument cannot hold both ' and \" (the grammar has "
                     "no escapes)")


def port_argument(value: int) -> str:
    """A port as a command argument; ValueError unless it is a whole number from 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"port must be a whole number from 1 to 65535, not {value!r}")
    return str(value)
