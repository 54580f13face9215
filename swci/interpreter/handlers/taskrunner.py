"""Taskrunner commands, served by the Swarm Network of the active context: CREATE, LIST, GET
INFO and STATUS, ASSIGN TASK, peers, RESET and WAIT FOR TASKRUNNER."""

from __future__ import annotations

import datetime as dt
import os

from swarmlearning.states import TERMINAL_RUNNER_STATES
from swci.interpreter.handlers.format import data, fields, rows
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output
from swci.language import commands as c
from swci.registry import handles

DEFAULT_MAX_WAIT_MINUTES = 120.0
POLL_SECONDS = 2.0


@handles(c.CreateTaskrunner, "Create a taskrunner, for a group of SWOPs that runs its own tasks.")
def create_taskrunner(interp: Interpreter, cmd: c.CreateTaskrunner, out: Output) -> None:
    interp.network().create_taskrunner(cmd.taskrunner_name)
    out.line(f"TASKRUNNER CREATED : {cmd.taskrunner_name}")


@handles(c.ListTaskrunners, "List the taskrunners.")
def list_taskrunners(interp: Interpreter, cmd: c.ListTaskrunners, out: Output) -> None:
    rows(out, data(out, "taskrunners", interp.network().list_taskrunners()))


@handles(c.GetTaskrunnerInfo, "Show a taskrunner's static information.")
def get_taskrunner_info(interp: Interpreter, cmd: c.GetTaskrunnerInfo, out: Output) -> None:
    fields(out, data(out, "taskrunner", interp.network().taskrunner_info(cmd.taskrunner_name)))


@handles(c.AssignTask, "Start a finalized task on an idle taskrunner; <PeersNeeded> peers must "
                       "succeed (SL-ML pairs for RUN_SWARM, SWOPs otherwise).")
def assign_task(interp: Interpreter, cmd: c.AssignTask, out: Output) -> None:
    data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, peers=cmd.peers_needed))
    out.line("Task assigned to TaskRunner")


@handles(c.AssignTaskAllPeers, "Start a task on every SWOP listening on the taskrunner.")
def assign_task_all_peers(interp: Interpreter, cmd: c.AssignTaskAllPeers, out: Output) -> None:
    data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, all_peers=True))
    out.line("Task assigned to TaskRunner")


@handles(c.AssignTaskTarget, "Run a task on one SWOP (UID from LIST NODES): adds it to a running "
                             "task or retries its failed part.")
def assign_task_target(interp: Interpreter, cmd: c.AssignTaskTarget, out: Output) -> None:
    data(out, "taskrunner_status", interp.network().assign_task(
        cmd.taskrunner_name, cmd.task_name, target=cmd.swop_uid))
    out.line("Task assigned to TaskRunner")


# machine-facing fields of the SN's replies that the shell shows elsewhere or not at all
HIDDEN_STATUS_FIELDS = ("FAILURE_DETAILS", "GENERATION", "TARGET")


@handles(c.GetTaskrunnerStatus, "Show a taskrunner's current task, its state and its peers.")
def get_taskrunner_status(interp: Interpreter, cmd: c.GetTaskrunnerStatus, out: Output) -> None:
    status = data(out, "taskrunner_status",
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
    status = data(out, "taskrunner_peer",
                   interp.network().taskrunner_peer_status(cmd.taskrunner_name, cmd.swop_peer))
    detail = str(status.get("SWOP_PEER_DETAIL", "") or "")
    fields(out, {k: v for k, v in status.items() if k != "SWOP_PEER_DETAIL"})
    for text in detail.splitlines():
        out.line(f"    | {text}")


@handles(c.ListTaskrunnerPeers, "List the SWOPs enrolled on a taskrunner.")
def list_taskrunner_peers(interp: Interpreter, cmd: c.ListTaskrunnerPeers, out: Output) -> None:
    peers = [{k: v for k, v in peer.items() if k != "SWOP_PEER_DETAIL"}
             for peer in data(out, "taskrunner_peers",
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
        while str(status.get("TASK_STATE", "")).upper() not in TERMINAL_RUNNER_STATES:
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
