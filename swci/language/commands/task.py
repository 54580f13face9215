"""Task commands: define, inspect and finalize SWOP tasks."""

from __future__ import annotations

from dataclasses import dataclass

from swci.language.commands.base import Command, positive


@dataclass(frozen=True, kw_only=True)
class CreateTaskFrom(Command, rule="create_task_from"):
    task_def_file: str


@dataclass(frozen=True, kw_only=True)
class CreateTask(Command, rule="create_task"):
    task_type: str
    task_name: str
    author: str
    prereq: str
    outcome: str


@dataclass(frozen=True, kw_only=True)
class AppendTaskBody(Command, rule="append_task_body"):
    task_name: str
    body_index: int
    body_line: str

    def problems(self) -> list[tuple[str, str]]:
        return positive(self.body_index, "body_index", "a task body index")


@dataclass(frozen=True, kw_only=True)
class FinalizeTask(Command, rule="finalize_task"):
    task_name: str


@dataclass(frozen=True, kw_only=True)
class DeleteTask(Command, rule="delete_task"):
    task_name: str


@dataclass(frozen=True, kw_only=True)
class GetTaskInfo(Command, rule="get_task_info"):
    task_name: str


@dataclass(frozen=True, kw_only=True)
class GetTaskBody(Command, rule="get_task_body"):
    task_name: str


@dataclass(frozen=True, kw_only=True)
class ListTasks(Command, rule="list_tasks"):
    pass
