"""Where things are in a YAML document: the 1-based line and column of every node, kept by the
path that leads to it (a tuple of mapping keys and sequence indexes), and the rendering of such
a path as the field name a user reads (``Body.BuildSteps[3]``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PathPart = str | int
Path = tuple[Any, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class Position(NamedTuple):
    """A 1-based line and column in a source text."""

    line: int
    column: int


@dataclass
class MarkedDocument:
    """Parsed YAML plus where each of its nodes starts in the text.

    ``values`` maps a path (a tuple of mapping keys and sequence indexes, ``()`` for the whole
    document) to the position of the value found there; ``keys`` maps the path of a mapping entry
    to the position of its key.
    """

    data: Any
    source: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Sequence[Any], *, key: bool = False) -> Position:
        """Where ``path`` is in the text: its key when ``key`` is set and it has one, else its
        value; a path that has no recorded node falls back to its nearest recorded ancestor."""
        wanted = tuple(path)
        if key and wanted in self.keys:
            return self.keys[wanted]
        while wanted not in self.values and wanted:
            wanted = wanted[:-1]
        return self.values.get(wanted, Position(1, 1))


def offset_position(text: str, offset: int) -> Position:
    """The line and column of character ``offset`` of ``text``."""
    before = text[:offset]
    return Position(before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


def format_path(path: Sequence[Any]) -> str:
    """Render a path as ``Body.BuildSteps[3]``; ``""`` is the whole document."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text
