"""Errors that name the place in the input: FILE:LINE:COL: message."""

from __future__ import annotations


class SwciSyntaxError(Exception):
    """A line that is not valid SWCI, with its source, line and column (both 1-based)."""

    def __init__(self, source: str, line: int, column: int, message: str, text: str = "") -> None:
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        self.text = text

    def caret(self) -> list[str]:
        """The offending line with a caret under the column, for terminal display."""
        if not self.text:
            return []
        return [self.text, " " * (self.column - 1) + "^"]
