"""Local node commands: START/STOP SN, SL and SWOP, STOP SWARM, LIST LOCAL NODES."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from swarmlearning.defaults import SL_FS_PORT, SN_API_PORT, SN_P2P_PORT
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output, table
from swci.language import commands as c
from swci.registry import handles


def _workspace(interp: Interpreter):  # noqa: ANN202 - imported lazily: the runtime is heavy
    from swarmlearning.nodes.workspace import Workspace

    return Workspace(interp.state.workspace_dir())


def _started(interp: Interpreter, out: Output, what: str,
             start: Callable[[Any], Any]) -> Any:
    """Run `start(workspace)` with a progress message; a failure becomes the command's error."""
    from swarmlearning.nodes.workspace import NodeError

    out.status(f"Starting {what} ...")
    try:
        return start(_workspace(interp))
    except (NodeError, OSError, ValueError) as exc:
        raise CommandFailed(str(exc)) from None


@handles(c.StartSn, "Start a Swarm Network node here, as a background process under the "
                    "workspace. SENTINEL starts a new swarm; SENTINEL IP joins the sentinel at "
                    "that address; with neither, it joins the workspace's sentinel or becomes it. "
                    "ORG makes it (and the SL and SWOP nodes attached to it) part of another "
                    "organisation, with its own CA; the workspace's organisations trust each "
                    "other.")
def start_sn(interp: Interpreter, cmd: c.StartSn, out: Output) -> None:
    record = _started(interp, out, f"SN {cmd.node_name}", lambda ws: ws.start_sn(
        cmd.node_name, sentinel=cmd.is_sentinel, sentinel_ip=cmd.sentinel_ip,
        sentinel_port=cmd.sentinel_port, api_port=cmd.api_port or SN_API_PORT,
        p2p_port=cmd.p2p_port or SN_P2P_PORT, org=cmd.org_name))
    role = "SENTINEL" if record.role == "sentinel" else "SN"
    out.line(f"{role} {record.name} STARTED : pid {record.pid}, API "
             f"{record.host}:{record.ports['api']}")
    out.line(f"LOG : {record.log}")


@handles(c.StopSn, "Stop a Swarm Network node started from this workspace (SIGTERM, then "
                   "SIGKILL after 10 s); its chain data is kept.")
def stop_sn(interp: Interpreter, cmd: c.StopSn, out: Output) -> None:
    from swarmlearning.nodes.workspace import NodeError

    try:
        record = _workspace(interp).stop(cmd.node_name)
    except NodeError as exc:
        raise CommandFailed(str(exc)) from None
    out.line(f"{record.kind.upper()} {record.name} STOPPED")


@handles(c.StartSl, "Start a Swarm Learning node here, as a background process under the "
                    "workspace, registered with a local SN (by name; default: the sentinel). "
                    "ML runs that command beside it with SL_REQUEST_CHANNEL set, and the SL "
                    "exits when it ends; without ML, point your program at the channel shown.")
def start_sl(interp: Interpreter, cmd: c.StartSl, out: Output) -> None:
    record = _started(interp, out, f"SL {cmd.node_name}", lambda ws: ws.start_sl(
        cmd.node_name, sn=cmd.sn_node, fs_port=cmd.fs_port or SL_FS_PORT,
        ml_cmd=cmd.ml_command or ""))
    out.line(f"SL {record.name} STARTED : pid {record.pid}, file server "
             f"{record.host}:{record.ports['fs']}")
    out.line(f"CHANNEL : SL_REQUEST_CHANNEL={record.data_dir}/channel.sock")
    out.line(f"LOG : {record.log}")


@handles(c.StopSl, "Stop a Swarm Learning node started from this workspace (SIGTERM, then "
                   "SIGKILL after 10 s), and the ML program beside it.")
def stop_sl(interp: Interpreter, cmd: c.StopSl, out: Output) -> None:
    stop_sn(interp, cmd, out)


@handles(c.StartSwop, "Start a Swarm Operator here, as a background process under the "
                      "workspace, with a SWOP profile (HPE's profile YAML; its directory is the "
                      "SWOP's user directory), attached to a local SN (by name; default: the "
                      "sentinel). It listens on the profile's taskrunner.")
def start_swop(interp: Interpreter, cmd: c.StartSwop, out: Output) -> None:
    record = _started(interp, out, f"SWOP {cmd.node_name}", lambda ws: ws.start_swop(
        cmd.node_name, interp.state.resolve(cmd.profile_file), sn=cmd.sn_node))
    out.line(f"SWOP {record.name} STARTED : pid {record.pid}")
    out.line(f"LOG : {record.log}")


@handles(c.StopSwop, "Stop a Swarm Operator started from this workspace, and the SL and ML "
                     "processes of its running task.")
def stop_swop(interp: Interpreter, cmd: c.StopSwop, out: Output) -> None:
    stop_sn(interp, cmd, out)


@handles(c.StopSwarm, "Stop every node started from this workspace: SWOP, SL, then SN, the "
                      "sentinel last. Chain data is kept.")
def stop_swarm(interp: Interpreter, cmd: c.StopSwarm, out: Output) -> None:
    stopped = _workspace(interp).stop_all(
        report=lambda r: out.line(f"{r.kind.upper()} {r.name} STOPPED"))
    if not stopped:
        out.line("No local nodes are running")


@handles(c.ListLocalNodes, "List the nodes started from this workspace, running or not.")
def list_local_nodes(interp: Interpreter, cmd: c.ListLocalNodes, out: Output) -> None:
    records = _workspace(interp).records()
    if not records:
        out.line(f"No local nodes in {interp.state.workspace_dir()}")
        return
    rows = [[r.name, r.kind.upper(), r.role.upper(), r.org or "-", str(r.pid),
             ",".join(f"{k}={v}" for k, v in r.ports.items()),
             "RUNNING" if r.running() else "STOPPED",
             dt.datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S")]
            for r in records]
    for line in table(["NAME", "TYPE", "ROLE", "ORG", "PID", "PORTS", "STATE", "STARTED"], rows):
        out.line(line)
