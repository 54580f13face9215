"""Session commands: nodes, waits, the working directory, failure policy and help."""

from __future__ import annotations

from dataclasses import dataclass, field

from swci.language.commands.base import Command, port_number, positive


@dataclass(frozen=True, kw_only=True)
class ListNodes(Command, rule="list_nodes"):
    pass


@dataclass(frozen=True, kw_only=True)
class WaitForIp(Command, rule="wait_for_ip"):
    host: str
    port: int | None = None
    retries: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        return port_number(self.port) + positive(self.retries, "retries", "the number of retries")


@dataclass(frozen=True, kw_only=True)
class WaitForService(Command, rule="wait_for_service"):
    service: str
    retries: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        return positive(self.retries, "retries", "the number of retries")


@dataclass(frozen=True, kw_only=True)
class Sleep(Command, rule="sleep"):
    seconds: float


@dataclass(frozen=True, kw_only=True)
class Cd(Command, rule="cd"):
    dir_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ls(Command, rule="ls"):
    ls_arg: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Pwd(Command, rule="pwd"):
    pass


@dataclass(frozen=True, kw_only=True)
class ExitOnFailure(Command, rule="exit_on_failure"):
    failure_switch: str | None = None

    @property
    def enabled(self) -> bool:
        """True for EXIT ON FAILURE and EXIT ON FAILURE ON, False for ... OFF."""
        return self.failure_switch != "OFF"


@dataclass(frozen=True, kw_only=True)
class Exit(Command, rule="exit"):
    pass


@dataclass(frozen=True, kw_only=True)
class Help(Command, rule="help"):
    help_topic: list[str] = field(default_factory=list)
