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

    def mark(self, text: str = "#") -> None:
        """A progress mark added to the current line of marks (batch waits print `#`)."""

    def data(self, kind: str, value: object) -> None:
        """The structured result behind the lines (for the web API's typed clients)."""


class StreamOutput:
    """Writes to a text stream; progress is shown in place when the stream is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._status_shown = False
        self._marks_open = False

    @property
    def interactive(self) -> bool:
        """True when the stream is a terminal (progress may be drawn in place)."""
        return self.stream.isatty()

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False
        if self._marks_open:
            self.stream.write("\n")
            self._marks_open = False

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

    def data(self, kind: str, value: object) -> None:
        pass

    def mark(self, text: str = "#") -> None:
        if not self._marks_open:
            self._clear_status()
            self.stream.write(INDENT)
            self._marks_open = True
        self.stream.write(text)
        self.stream.flush()


class CollectingOutput:
    """Keeps output lines in a list, as the web API returns them (CONTENT)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.values: dict[str, object] = {}
        self._marks: int | None = None

    def data(self, kind: str, value: object) -> None:
        self.values[kind] = value

    def line(self, text: str = "") -> None:
        self.lines.append(f"{INDENT}{text}".rstrip())

    def error(self, message: str) -> None:
        self.lines.append(f"{INDENT}ERROR : {message}")

    def echo(self, text: str) -> None:
        self.lines.append(text)

    def status(self, text: str) -> None:
        pass

    def mark(self, text: str = "#") -> None:
        if self._marks is None or self._marks != len(self.lines) - 1:
            self.lines.append(INDENT)
            self._marks = len(self.lines) - 1
        self.lines[self._marks] += text

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
