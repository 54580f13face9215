"""The errors of the typed SWCI web API client, one class per way an exchange can fail: a command
answered with an ``ERROR`` line (CommandError), a server that refuses this client (SwciRefused),
one that cannot be reached (SwciUnavailable), and a reply that is not the SWCI JSON
(SwciProtocolError), all of them SwciError."""

from __future__ import annotations

import re

__all__ = ["CommandError", "SwciError", "SwciProtocolError", "SwciRefused", "SwciUnavailable"]


class SwciError(Exception):
    """Any failure reported by this client (except WaitTimeout, a TimeoutError)."""


class CommandError(SwciError):
    """A command failed: the server answered with an ``ERROR`` line.

    ``line`` is that line (``ERROR : ...``), ``message`` the same without the ``ERROR :``
    prefix, ``command`` what was sent and ``lines`` all of the reply's CONTENT."""

    def __init__(self, line: str, command: str, lines: list[str] | None = None) -> None:
        super().__init__(f"{line} (command: {command})")
        self.line = line
        self.command = command
        self.lines = list(lines or [line])

    @property
    def message(self) -> str:
        """The error line without its ``ERROR :`` prefix."""
        return re.sub(r"^ERROR\s*:?\s*", "", self.line)


class SwciUnavailable(SwciError):
    """The server could not be reached, or the exchange broke off (the message says why)."""


class SwciRefused(SwciError):
    """The server refused this client: HTTP 401/403, or its TLS handshake refused our
    certificate (none sent, or not signed by a CA it trusts)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class SwciProtocolError(SwciError):
    """The reply is not what the SWCI web API sends (no JSON, no CONTENT, missing DATA, a field
    of the wrong type)."""
