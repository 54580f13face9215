"""Task commands, served by the Swarm Network of the active context: CREATE TASK (FROM a file
checked against HPE's task schema), APPEND TASK BODY, FINALIZE, DELETE, GET and LIST TASKS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swci.interpreter.handlers.format import data, fields
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output
from swci.language import commands as c
from swci.registry import handles


def load_task_definition(interp: Interpreter, path: str, out: Output) -> dict[str, Any]:
    """Read a task YAML (relative to the working directory, or else, in web mode, one the client
    uploaded) and check it against HPE's task schema; each problem is printed as
    file:line:col: field path: message."""
    from swarmlearning.schemas import DefinitionError, task_body_lines, validate_document

    target = interp.state.resolve(path)
    uploads = interp.state.uploads
    if not target.exists() and uploads is not None and (uploads / Path(path).name).is_file():
        target = uploads / Path(path).name  # a file sent with /uploadTaskDef
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CommandFailed(f"Cannot read task definition {target}: {reason}") from None
    try:
        document = validate_document(text, str(target), "task")
        task_body_lines(document, source=str(target))
    except DefinitionError as exc:
        for problem in exc.problems[:-1]:
            out.error(str(problem))
        raise CommandFailed(str(exc.problems[-1])) from None
    return document


@handles(c.CreateTaskFrom, "Validate a task definition YAML file, then register the task and "
                           "its body.")
def create_task_from(interp: Interpreter, cmd: c.CreateTaskFrom, out: Output) -> None:
    definition = load_task_definition(interp, cmd.task_def_file, out)
    out.line("Task definition is valid")
    data(out, "task", interp.network().register_task(definition))
    out.line(f"Task Registered : {definition['Name']}")


@handles(c.CreateTask, "Register an empty task header; APPEND TASK BODY fills it in.")
def create_task(interp: Interpreter, cmd: c.CreateTask, out: Output) -> None:
    data(out, "task", interp.network().create_task({
        "Name": cmd.task_name, "TaskType": cmd.task_type, "Author": cmd.author,
        "Prereq": cmd.prereq, "Outcome": cmd.outcome}))
    out.line(f"Task Registered : {cmd.task_name}")


@handles(c.AppendTaskBody, "Add or replace line <BodyIndex> (1 or more) of a task that is not "
                           "finalized.")
def append_task_body(interp: Interpreter, cmd: c.AppendTaskBody, out: Output) -> None:
    interp.network().append_task_body(cmd.task_name, cmd.body_index, cmd.body_line)
    out.line(f"Task Body Appended : {cmd.task_name} line {cmd.body_index}")


@handles(c.FinalizeTask, "Freeze a task so it can be assigned; it can no longer change.")
def finalize_task(interp: Interpreter, cmd: c.FinalizeTask, out: Output) -> None:
    interp.network().finalize_task(cmd.task_name)
    out.line(f"Task Finalized : {cmd.task_name}")


@handles(c.DeleteTask, "Delete a task that is not finalized.")
def delete_task(interp: Interpreter, cmd: c.DeleteTask, out: Output) -> None:
    interp.network().delete_task(cmd.task_name)
    out.line(f"Task Deleted : {cmd.task_name}")


@handles(c.GetTaskInfo, "Show a task's header: type, author, prerequisite, outcome, state.")
def get_task_info(interp: Interpreter, cmd: c.GetTaskInfo, out: Output) -> None:
    fields(out, data(out, "task", interp.network().task_info(cmd.task_name)))


@handles(c.GetTaskBody, "Print a task's body as numbered lines.")
def get_task_body(interp: Interpreter, cmd: c.GetTaskBody, out: Output) -> None:
    body = data(out, "task_body", interp.network().task_body(cmd.task_name))
    for index, line in enumerate(body):
        out.line(f"{index:04d}: {line}")


@handles(c.ListTasks, "List the tasks, ROOTTASK first.")
def list_tasks(interp: Interpreter, cmd: c.ListTasks, out: Output) -> None:
    for task in data(out, "tasks", interp.network().list_tasks()):
        out.line(str(task.get("NAME", task)) if isinstance(task, dict) else str(task))
