"""Where command output goes: the terminal, a list of lines (web API, tests), or both."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

INDENT = "    "


class Output(Protocol):
    """A sink for command output."""

    def line(self, text: str = "") -> None:
        """One output line of a command (indented by the sink)."""

    def error(self, message: str) -> None:
        """A failure line, printed as 'ERROR : message'."""

    def echo(self, text: str) -> None:
        """A line echoed as it is (the prompt and the command of a script line)."""

    def status(self, text: str) -> None:
        """A transient progress message (waits); may be shown in place or dropped."""


class StreamOutput:
    """Writes to a text stream; progress is shown in place when the stream is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._status_shown = False

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def line(self, text: str = "") -> None:
        self._clear_status()
        self.stream.write(f"{INDENT}{text}".rstrip() + "\n")
        self.stream.flush()

    def error(self, message: str) -> None:
        self.line(f"ERROR : {message}")

    def echo(self, text: str) -> None:
        self._clear_status()
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        if self.stream.isatty():
            self.stream.write(f"\r\x1b[K{INDENT}{text}")
            self.stream.flush()
            self._status_shown = True


class CollectingOutput:
    """Keeps output lines in a list, as the web API returns them (CONTENT)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(f"{INDENT}{text}".rstrip())

    def error(self, message: str) -> None:
        self.lines.append(f"{INDENT}ERROR : {message}")

    def echo(self, text: str) -> None:
        self.lines.append(text)

    def status(self, text: str) -> None:
        pass

    @property
    def errors(self) -> list[str]:
        """The ERROR lines, without their indent."""
        return [line.strip() for line in self.lines if line.strip().startswith("ERROR ")]


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Rows as aligned text columns under a header and a rule."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
           for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
