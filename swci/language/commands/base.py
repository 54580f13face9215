"""The base of every typed SWCI command object."""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

COMMAND_CLASSES: dict[str, type[Command]] = {}


class CommandValueError(Exception):
    """A value that parses but is out of range, with the column of the offending argument."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True, kw_only=True)
class Command:
    """One parsed SWCI command: its grammar rule, source text and position (1-based)."""

    RULE: ClassVar[str] = ""
    line: int = 1
    column: int = 1
    text: str = ""

    def __init_subclass__(cls, rule: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if rule:
            if rule in COMMAND_CLASSES:
                raise TypeError(f"grammar rule {rule!r} already has a command class")
            cls.RULE = rule
            COMMAND_CLASSES[rule] = cls

    @classmethod
    @functools.cache
    def list_fields(cls) -> frozenset[str]:
        """Fields that collect a repeated argument into a list."""
        hints = typing.get_type_hints(cls)
        return frozenset(name for name, hint in hints.items() if typing.get_origin(hint) is list)

    @classmethod
    def build(cls, args: dict[str, Any], columns: dict[str, int], **position: Any) -> Command:
        """Make the command from its role arguments; subclasses sort out unusual shapes."""
        command = cls(**args, **position)
        for field, message in command.problems():
            raise CommandValueError(columns.get(field, position.get("column", 1)), message)
        return command

    def problems(self) -> list[tuple[str, str]]:
        """Values out of range, as (field, message) pairs; empty when the command is sound."""
        return []


def positive(value: int | None, field: str, what: str) -> list[tuple[str, str]]:
    """A problem when an optional integer is present and below 1."""
    if value is not None and value < 1:
        return [(field, f"{what} must be 1 or more, not {value}")]
    return []


def port_number(value: int | None, field: str = "port") -> list[tuple[str, str]]:
    """A problem when a port is present and outside 1..65535."""
    if value is not None and not 1 <= value <= 65535:
        return [(field, f"port must be between 1 and 65535, not {value}")]
    return []
