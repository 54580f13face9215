"""Context commands: which Swarm Network the shell talks to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swci.language.commands.base import Command, port_number


@dataclass(frozen=True, kw_only=True)
class CreateContextIp(Command, rule="create_context_ip"):
    context_name: str
    host: str
    port: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        return port_number(self.port)


@dataclass(frozen=True, kw_only=True)
class CreateContextService(Command, rule="create_context_service"):
    context_name: str
    service: str


@dataclass(frozen=True, kw_only=True)
class SwitchContext(Command, rule="switch_context"):
    context_name: str


@dataclass(frozen=True, kw_only=True)
class ListContexts(Command, rule="list_contexts"):
    pass


@dataclass(frozen=True, kw_only=True)
class GetContextInfo(Command, rule="get_context_info"):
    context_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class GetContextVersion(Command, rule="get_context_version"):
    context_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ListContextEnv(Command, rule="list_context_env"):
    context_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class GetContextEnv(Command, rule="get_context_env"):
    env_name: str
    context_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SetContextEnv(Command, rule="set_context_env"):
    env_name: str
    env_value: str
    context_name: str | None = None

    @classmethod
    def build(cls, args: dict[str, Any], columns: dict[str, int], **position: Any) -> Command:
        words = [str(word) for word in args["env_word"]]
        context_name = words.pop(0) if len(words) == 3 else None
        return cls(env_name=words[0], env_value=words[1], context_name=context_name, **position)
