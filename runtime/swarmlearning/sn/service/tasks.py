"""Tasks on the TaskBoard: create one from its header or register a whole definition, write its
body line by line, finalize or delete it, and show it. A finalized task never changes."""

from __future__ import annotations

from typing import Any

from swarmlearning.chain.ledger import key_of
from swarmlearning.defaults import ROOT_TASK
from swarmlearning.sn.service.base import (
    ServiceBase,
    ServiceError,
    check_text,
    shown,
    timestamp,
)
from swarmlearning.states import TaskState

MAX_BODY_LINES = 80
TASK_TYPES = ("RUN_SWARM", "MAKE_SWARM_USER_CONTENT", "MAKE_USER_CONTAINER", "PULL_IMAGE")


class TasksMixin(ServiceBase):
    """The task operations of the SN API."""

    def _task(self, name: str) -> dict[str, Any]:
        return self._existing("tasks", name, "task")

    def list_tasks(self) -> list[dict[str, Any]]:
        self.view.sync()
        return [self._task_summary(row) for row in self.view.tasks.listed()]

    def _task_summary(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": row["name"], "TYPE": row["task_type"],
                "STATE": shown(TaskState, row["state"]), "AUTHOR": row["author"]}

    def _check_header(self, header: dict[str, Any]) -> tuple[str, str, str, str, str]:
        name = check_text(header.get("Name"), "Name")
        task_type = check_text(header.get("TaskType"), "TaskType")
        if task_type not in TASK_TYPES:
            raise ServiceError(422, f"TaskType {task_type!r} is not one of {', '.join(TASK_TYPES)}")
        author = check_text(header.get("Author"), "Author")
        prereq = check_text(header.get("Prereq"), "Prereq")
        outcome = check_text(header.get("Outcome"), "Outcome")
        self.view.sync()
        if key_of(name) in self.view.tasks.rows:
            raise ServiceError(409, f"task {name!r} already exists; tasks are permanent once "
                                    "finalized, so choose a new name (or DELETE TASK it if it "
                                    "is not finalized)")
        if key_of(prereq) not in self.view.tasks.rows:
            raise ServiceError(422, f"Prereq {prereq!r} is not a task; use {ROOT_TASK} or the "
                                    "name of a task created earlier")
        return name, task_type, author, prereq, outcome

    def create_task(self, header: dict[str, Any]) -> dict[str, Any]:
        fields = self._check_header(header)
        self._write("tasks", "create", *fields, self._now())
        return self.task_info(fields[0])

    def register_task(self, definition: dict[str, Any]) -> dict[str, Any]:
        """A whole task definition (HPE's task schema) in one transaction."""
        # imported when first used: the validator brings jsonschema and the schema files
        from swarmlearning.schemas.problems import DefinitionError
        from swarmlearning.schemas.taskbody import task_body_lines
        from swarmlearning.schemas.validate import validate_object

        problems = validate_object(definition, "task")
        if problems:
            raise ServiceError(422, "invalid task definition: " + "; ".join(problems))
        fields = self._check_header(definition)
        try:
            lines = task_body_lines(definition)[1:]
        except DefinitionError as exc:
            raise ServiceError(422, "invalid task definition: " + "; ".join(
                f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems)) from None
        if len(lines) > MAX_BODY_LINES:
            raise ServiceError(422, f"the task body is {len(lines)} lines long; a task holds at "
                                    f"most {MAX_BODY_LINES}")
        for number, line in enumerate(lines, start=1):
            check_text(line, f"Body line {number}", allow_empty=True)
        self._write("tasks", "register", *fields, lines, self._now())
        return {**self.task_info(fields[0]), "BODY_LINES": len(lines)}

    def append_task_body(self, name: str, index: Any, line: Any) -> dict[str, Any]:
        row = self._task(name)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 < index <= MAX_BODY_LINES:
            raise ServiceError(422, f"body line index must be 1 to {MAX_BODY_LINES}; line 0 is "
                                    "the document start")
        content = check_text(line, "body line", allow_empty=True)
        if row["state"] != TaskState.CREATED:
            raise ServiceError(409, f"task {name!r} is finalized; a finalized task cannot change")
        self._write("tasks", "set_lines", name, index, [content], self._now())
        return self.task_info(name)

    def finalize_task(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        if row["state"] != TaskState.CREATED:
            raise ServiceError(409, f"task {name!r} is already finalized")
        self._write("tasks", "finalize", name, self._now())
        return self.task_info(name)

    def delete_task(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        if row["state"] != TaskState.CREATED:
            raise ServiceError(409, f"task {name!r} is finalized; a finalized task cannot be "
                                    "deleted")
        self._write("tasks", "delete", name)
        return {"DELETED": name}

    def task_info(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        return {"NAME": row["name"], "TYPE": row["task_type"], "AUTHOR": row["author"],
                "PREREQ": row["prereq"], "OUTCOME": row["outcome"],
                "STATE": shown(TaskState, row["state"]), "BODY_LINES": row["lines"],
                "CREATED": timestamp(row["created_at"]), "UPDATED": timestamp(row["updated_at"]),
                "FINALIZED": timestamp(row["finalized_at"])}

    def task_body(self, name: str) -> list[str]:
        self._task(name)
        return ["---", *self.view.task_body(key_of(name))]
