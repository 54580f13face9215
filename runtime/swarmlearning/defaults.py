"""The facts that swci and swarmlearning share, written once: HPE's default names, the default
ports, the readiness line each daemon logs when it serves, the merge methods, and the rule that
finds the local workspace.

A leaf module of the standard library only, so that the ML-side library (Python 3.8+) can import
it too."""

from __future__ import annotations

import enum
import os
from pathlib import Path

# HPE's names, kept so that scripts and programs written for HPE run unchanged.
DEFAULT_CONTRACT = "defaultbb.cqdb.sml.hpe"
DEFAULT_TASKRUNNER = "defaulttaskbb.taskdb.sml.hpe"
ROOT_TASK = "ROOTTASK"

# Ports (every one can be overridden).
SN_P2P_PORT = 30303  # the SN's peer port; the embedded chain's JSON-RPC
SN_API_PORT = 30304  # the SN REST API
SL_FS_PORT = 30305  # the SL's peer file server
SWCI_WEB_PORT = 30306  # the SWCI web API (`swci serve`)

# How a sync round's contributions can be merged; the first is the default.
MERGE_METHODS = ("mean", "coordmedian", "geomedian")


class NodeKind(str, enum.Enum):  # noqa: UP042 (StrEnum is 3.11+; the ML side runs on 3.8)
    """The kinds of daemon a workspace starts."""

    SN = "sn"
    SL = "sl"
    SWOP = "swop"
    SWCI = "swci"  # the SWCI web API

    # written as its value, as a StrEnum is ("sn", not "NodeKind.SN")
    __str__ = str.__str__
    __format__ = str.__format__


# The line each daemon logs once it serves, followed by its port (or taskrunner). Supervisors
# wait for it; HPE's wording, so that HPE's log watchers work too.
READY_LINES = {
    NodeKind.SN: "Starting SWARM-API-SERVER on port: ",
    NodeKind.SL: "Starting SWARM-LEARNING-FS on port: ",
    NodeKind.SWOP: "Starting SWARM-OPERATOR on taskrunner: ",
    NodeKind.SWCI: "Starting SWCI-WEB-API on port: ",
}

WORKSPACE_ENV = "SWARM_WORKSPACE"
WORKSPACE_DIR = ".swarm"


def workspace_root(explicit: str | os.PathLike[str] | None = None,
                   cwd: Path | None = None) -> Path:
    """Where local nodes and the throwaway PKI live: `explicit` (a --workspace option), else
    $SWARM_WORKSPACE, else .swarm in `cwd` (the current directory when not given); "~" is
    expanded, and the path is not resolved."""
    value = explicit or os.environ.get(WORKSPACE_ENV)
    if value:
        return Path(value).expanduser()
    return (cwd if cwd is not None else Path(".")) / WORKSPACE_DIR
