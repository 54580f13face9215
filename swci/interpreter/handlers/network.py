"""Commands served by the Swarm Network of the active context: contracts, tasks, taskrunners,
nodes. Each goes through the one SwarmNetworkClient interface."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from swci.interpreter.handlers.format import fields, rows
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output
from swci.language import commands as c
from swci.registry import handles

NODE_COLUMNS = ("NodeType", "HostIP", "Port", "ContainerName", "UUID", "ParentUUID", "i-am-alive")
TERMINAL_STATES = ("COMPLETE", "ERROR", "IDLE")
DEFAULT_MAX_WAIT_MINUTES = 120.0
POLL_SECONDS = 2.0

def _data(out: Output, kind: str, value: Any) -> Any:
    """Hand the structured result to the output (the web API returns it as DATA), pass it on."""
    out.data(kind, value)
    return value


# -- nodes ----------------------------------------------------------------------------------------


@handles(c.ListNodes, "List the nodes registered in the Swarm Network (SN, SL, SWOP) with their "
                      "parent SN and last sign of life.")
def list_nodes(interp: Interpreter, cmd: c.ListNodes, out: Output) -> None:
    nodes = interp.network().list_nodes()
    out.data("nodes", nodes)
    out.line(", ".join(NODE_COLUMNS))
    for node in nodes:
        out.line(", ".join(str(node.get(column, "")) for column in NODE_COLUMNS))


# -- training contracts ----------------------------------------------------------------------------


@handles(c.CreateContract, "Create a training contract, for a training that runs beside others.")
def create_contract(interp: Interpreter, cmd: c.CreateContract, out: Output) -> None:
    interp.network().create_contract(cmd.training_contract_name)
    out.line(f"CONTRACT CREATED : {cmd.training_contract_name}")


@handles(c.ListContracts, "List the training contracts.")
def list_contracts(interp: Interpreter, cmd: c.ListContracts, out: Output) -> None:
    rows(out, _data(out, "contracts", interp.network().list_contracts()))


@handles(c.GetContractInfo, "Show a training contract's static information.")
def get_contract_info(interp: Interpreter, cmd: c.GetContractInfo, out: Output) -> None:
    fields(out, _data(out, "contract", interp.network().contract_info(cmd.training_contract_name)))


@handles(c.GetContractStatus, "Show a training contract's state.")
def get_contract_status(interp: Interpreter, cmd: c.GetContractStatus, out: Output) -> None:
    fields(out, _data(out, "contract_status",
                      interp.network().contract_status(cmd.training_contract_name)))


@handles(c.Perfdata, "Show, per SL-ML pair of a training, its leader status, loss, metric and "
                     "epochs.")
def perfdata(interp: Interpreter, cmd: c.Perfdata, out: Output) -> None:
    rows(out, _data(out, "perfdata", interp.network().perfdata(cmd.training_contract_name)),
         empty="No performance data yet")


@handles(c.ResetContract, "Return a completed training contract to its initial state, so the "
                          "training can run again.")
def reset_contract(interp: Interpreter, cmd: c.ResetContract, out: Output) -> None:
    interp.network().reset_contract(cmd.training_contract_name)
    out.line(f"CONTRACT RESET : {cmd.training_contract_name}")


# -- tasks -----------------------------------------------------------------------------------------


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
    _data(out, "task", interp.network().register_task(definition))
    out.line(f"Task Registered : {definition['Name']}")


@handles(c.CreateTask, "Register an empty task header; APPEND TASK BODY fills it in.")
def create_task(interp: Interpreter, cmd: c.CreateTask, out: Output) -> None:
    _data(out, "task", interp.network().create_task({
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
    fields(out, _data(out, "task", interp.network().task_info(cmd.task_name)))


@handles(c.GetTaskBody, "Print a task's body as numbered lines.")
def get_task_body(interp: Interpreter, cmd: c.GetTaskBody, out: Output) -> None:
    body = _data(out, "task_body", interp.network().task_body(cmd.task_name))
    for index, line in enumerate(body):
        out.line(f"{index:04d}: {line}")


@handles(c.ListTasks, "List the tasks, ROOTTASK first.")
def list_tasks(interp: Interpreter, cmd: c.ListTasks, out: Output) -> None:
    for task in _data(out, "tasks", interp.network().list_tasks()):
        out.line(str(task.get("NAME", task)) if isinstance(task, dict) else str(task))


# -- taskrunners -----------------------------------------------------------------------------------


@handles(c.CreateTaskrunner, "Create a taskrunner, for a group of SWOPs that runs its own tasks.")
def create_taskrunner(interp: Interpreter, cmd: c.CreateTaskrunner, out: Output) -> None:
    interp.network().create_taskrunner(cmd.taskrunner_name)
    out.line(f"TASKRUNNER CREATED : {cmd.taskrunner_name}")


@handles(c.ListTaskrunners, "List the taskrunners.")
def list_taskrunners(interp: Interpreter, cmd: c.ListTaskrunners, out: Output) -> None:
    rows(out, _data(out, "taskrunners", interp.network().list_taskrunners()))


@handles(c.GetTaskrunnerInfo, "Show a taskrunner's static information.")
def get_taskrunner_info(interp: Interpreter, cmd: c.GetTaskrunnerInfo, out: Output) -> None:
    fields(out, _data(out, "taskrunner", interp.network().taskrunner_info(cmd.taskrunner_name)))


@handles(c.AssignTask, "Start a finalized task on an idle taskrunner; <PeersNeeded> peers must "
                       "succeed (SL-ML pairs for RUN_SWARM, SWOPs otherwise).")
def assign_task(interp: Interpreter, cmd: c.AssignTask, out: Output) -> None:
    _data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, peers=cmd.peers_needed))
    out.line("Task assigned to TaskRunner")


@handles(c.AssignTaskAllPeers, "Start a task on every SWOP listening on the taskrunner.")
def assign_task_all_peers(interp: Interpreter, cmd: c.AssignTaskAllPeers, out: Output) -> None:
    _data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, all_peers=True))
    out.line("Task assigned to TaskRunner")


@handles(c.AssignTaskTarget, "Run a task on one SWOP (UID from LIST NODES): adds it to a running "
                             "task or retries its failed part.")
def assign_task_target(interp: Interpreter, cmd: c.AssignTaskTarget, out: Output) -> None:
    _data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, target=cmd.swop_uid))
    out.line("Task assigned to TaskRunner")


# machine-facing fields of the SN's replies that the shell shows elsewhere or not at all
HIDDEN_STATUS_FIELDS = ("FAILURE_DETAILS", "GENERATION", "TARGET")


@handles(c.GetTaskrunnerStatus, "Show a taskrunner's current task, its state and its peers.")
def get_taskrunner_status(interp: Interpreter, cmd: c.GetTaskrunnerStatus, out: Output) -> None:
    status = _data(out, "taskrunner_status",
                   interp.network().taskrunner_status(cmd.taskrunner_name))
    shown = {k: v for k, v in status.items()
             if k not in HIDDEN_STATUS_FIELDS and not (k == "SWOPS_NEEDED" and v is None)}
    if status.get("TARGET"):
        shown["TARGET"] = status["TARGET"]
    fields(out, shown)


@handles(c.GetTaskrunnerPeerStatus, "Show one enrolled SWOP's status, by index or UID, with "
                                    "the evidence of a failure (the last lines of its log).")
def get_taskrunner_peer_status(interp: Interpreter, cmd: c.GetTaskrunnerPeerStatus,
                               out: Output) -> None:
    status = _data(out, "taskrunner_peer",
                   interp.network().taskrunner_peer_status(cmd.taskrunner_name, cmd.swop_peer))
    detail = str(status.get("SWOP_PEER_DETAIL", "") or "")
    fields(out, {k: v for k, v in status.items() if k != "SWOP_PEER_DETAIL"})
    for text in detail.splitlines():
        out.line(f"    | {text}")


@handles(c.ListTaskrunnerPeers, "List the SWOPs enrolled on a taskrunner.")
def list_taskrunner_peers(interp: Interpreter, cmd: c.ListTaskrunnerPeers, out: Output) -> None:
    peers = [{k: v for k, v in peer.items() if k != "SWOP_PEER_DETAIL"}
             for peer in _data(out, "taskrunner_peers",
                               interp.network().taskrunner_peers(cmd.taskrunner_name))]
    rows(out, peers, empty="No SWOP is enrolled")


@handles(c.ResetTaskrunner, "Return a taskrunner to idle and clean up what its task started.")
def reset_taskrunner(interp: Interpreter, cmd: c.ResetTaskrunner, out: Output) -> None:
    interp.network().reset_taskrunner(cmd.taskrunner_name)
    out.line(f"TASKRUNNER RESET : {cmd.taskrunner_name}")


def max_wait_minutes(task_type: str | None, env: dict[str, str] | None = None) -> float:
    """SWCI_RUN_TASK_MAX_WAIT_TIME for RUN_SWARM, SWCI_GENERIC_TASK_MAX_WAIT_TIME otherwise."""
    env = dict(os.environ if env is None else env)
    name = ("SWCI_RUN_TASK_MAX_WAIT_TIME" if task_type == "RUN_SWARM"
            else "SWCI_GENERIC_TASK_MAX_WAIT_TIME")
    raw = env.get(name) or env.get("SWCI_TASK_MAX_WAIT_TIME")
    try:
        return float(raw) if raw else DEFAULT_MAX_WAIT_MINUTES
    except ValueError:
        raise CommandFailed(f"{name}={raw!r} is not a number of minutes") from None


@handles(c.WaitForTaskrunner, "Wait until the taskrunner's task completes or fails, showing "
                              "progress. It fails at once when a peer fails (with the peer, its "
                              "reason and the last lines of its log), says within 30 s why a task "
                              "is not moving, and Ctrl-C ends the wait but not the task.")
def wait_for_taskrunner(interp: Interpreter, cmd: c.WaitForTaskrunner, out: Output) -> None:
    from swci.interpreter.taskwatch import TaskWatch
    from swci.interpreter.waitview import wait_view

    client = interp.network()
    name = cmd.taskrunner_name
    status = client.taskrunner_status(name)
    if str(status.get("TASK_STATE", "")).upper() == "IDLE":
        raise CommandFailed(f"Taskrunner {name} has no task (IDLE); ASSIGN TASK <task> TO "
                            f"{name} WITH <n> PEERS first")
    limit = max_wait_minutes(status.get("TASK_TYPE"))
    out.line(f"WAITING FOR TASKRUNNER TO COMPLETE - Maximum wait time is : {limit:g} mins")
    started = interp.monotonic()
    deadline = started + limit * 60
    watch = TaskWatch(started=started)
    view = wait_view(out, name)
    try:
        while str(status.get("TASK_STATE", "")).upper() not in TERMINAL_STATES:
            if interp.monotonic() >= deadline:
                view.close()
                out.line("WARNING - Maximum configured SWCI wait time is over")
                raise CommandFailed(f"Taskrunner {name} did not finish within {limit:g} mins "
                                    f"(state {status.get('TASK_STATE', 'unknown')})")
            peers = client.taskrunner_peers(name)
            view.update(status, peers)
            notes, fatal = watch.check(interp.monotonic(), status, peers, client.list_nodes())
            for note in notes:
                view.note(note)
            if fatal:
                view.close()
                raise CommandFailed(fatal)
            interp.sleep(POLL_SECONDS)
            status = client.taskrunner_status(name)
    except KeyboardInterrupt:
        view.close()
        raise CommandFailed(f"Stopped waiting (Ctrl-C); task {status.get('TASK', '?')} goes on. "
                            f"GET TASKRUNNER STATUS {name} shows it") from None
    finally:
        view.close()
    state = str(status.get("TASK_STATE")).upper()
    out.line("TASKRUNNER FINISHED")
    out.line(f"STATE : {state}")
    out.line(f"TIME  : {dt.datetime.now():%Y-%m-%d %H:%M:%S}")
    if state == "IDLE":
        raise CommandFailed(f"Taskrunner {name} was reset while waiting")
    if state == "ERROR":
        details = status.get("FAILURE_DETAILS") or {}
        for failure in status.get("FAILED_PEERS", []) or []:
            out.line(f"FAILED PEER : {failure}")
            uid = str(failure).split(" : ", 1)[0]
            for text in str(details.get(uid, "")).splitlines():
                out.line(f"    | {text}")
        raise CommandFailed("Task has failed, check TASKRUNNER PEER STATUS for Error description")
