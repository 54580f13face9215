"""Local node commands: start and stop swarm daemons under the shell's workspace."""

from __future__ import annotations

from dataclasses import dataclass

from swci.language.commands.base import Command, port_number


@dataclass(frozen=True, kw_only=True)
class StartSn(Command, rule="start_sn"):
    node_name: str
    sentinel: str | None = None
    sentinel_ip: str | None = None
    sentinel_port: int | None = None
    api_port: int | None = None
    p2p_port: int | None = None
    org_name: str | None = None

    @property
    def is_sentinel(self) -> bool:
        """SENTINEL alone makes this SN the sentinel; SENTINEL IP names another one."""
        return self.sentinel is not None and self.sentinel_ip is None

    def problems(self) -> list[tuple[str, str]]:
        return (port_number(self.sentinel_port, "sentinel_port")
                + port_number(self.api_port, "api_port") + port_number(self.p2p_port, "p2p_port"))


@dataclass(frozen=True, kw_only=True)
class StopSn(Command, rule="stop_sn"):
    node_name: str


@dataclass(frozen=True, kw_only=True)
class StartSl(Command, rule="start_sl"):
    node_name: str
    sn_node: str | None = None
    fs_port: int | None = None
    ml_command: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        return port_number(self.fs_port, "fs_port")


@dataclass(frozen=True, kw_only=True)
class StopSl(Command, rule="stop_sl"):
    node_name: str


@dataclass(frozen=True, kw_only=True)
class StartSwop(Command, rule="start_swop"):
    node_name: str
    profile_file: str
    sn_node: str | None = None


@dataclass(frozen=True, kw_only=True)
class StopSwop(Command, rule="stop_swop"):
    node_name: str


@dataclass(frozen=True, kw_only=True)
class StopSwarm(Command, rule="stop_swarm"):
    pass


@dataclass(frozen=True, kw_only=True)
class ListLocalNodes(Command, rule="list_local_nodes"):
    pass
