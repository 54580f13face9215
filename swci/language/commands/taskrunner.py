"""Taskrunner commands: assign tasks to SWOPs and follow them."""

from __future__ import annotations

from dataclasses import dataclass

from swci.language.commands.base import Command, positive


@dataclass(frozen=True, kw_only=True)
class CreateTaskrunner(Command, rule="create_taskrunner"):
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class ListTaskrunners(Command, rule="list_taskrunners"):
    pass


@dataclass(frozen=True, kw_only=True)
class GetTaskrunnerInfo(Command, rule="get_taskrunner_info"):
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class AssignTask(Command, rule="assign_task"):
    task_name: str
    taskrunner_name: str
    peers_needed: int

    def problems(self) -> list[tuple[str, str]]:
        return positive(self.peers_needed, "peers_needed", "the number of peers")


@dataclass(frozen=True, kw_only=True)
class AssignTaskAllPeers(Command, rule="assign_task_all_peers"):
    task_name: str
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class AssignTaskTarget(Command, rule="assign_task_target"):
    task_name: str
    taskrunner_name: str
    swop_uid: str


@dataclass(frozen=True, kw_only=True)
class GetTaskrunnerStatus(Command, rule="get_taskrunner_status"):
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class GetTaskrunnerPeerStatus(Command, rule="get_taskrunner_peer_status"):
    taskrunner_name: str
    swop_peer: int | str


@dataclass(frozen=True, kw_only=True)
class ListTaskrunnerPeers(Command, rule="list_taskrunner_peers"):
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class WaitForTaskrunner(Command, rule="wait_for_taskrunner"):
    taskrunner_name: str


@dataclass(frozen=True, kw_only=True)
class ResetTaskrunner(Command, rule="reset_taskrunner"):
    taskrunner_name: str
