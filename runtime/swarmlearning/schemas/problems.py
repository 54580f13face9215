"""What a check of a SWOP YAML document reports: a Problem is one thing wrong, at a file, line,
column and field path, and a DefinitionError carries every problem of a document that cannot be
used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where it is (file, line, column, field path) and why."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionError(ValueError):
    """A document is not valid YAML or does not match its schema; ``problems`` lists why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
