"""The SN API's paths, spelled once: the server's route table binds a handler to each, and the
one client (`swarmlearning.sn.client`) fills in their parameters. A leaf module."""

from __future__ import annotations

import string
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Route:
    """One method and path of the SN API; `{name}` marks a path parameter."""

    method: str
    path: str

    def url(self, **params: object) -> str:
        """The path with each parameter filled in and quoted whole (a name may hold '/')."""
        wanted = {field for _, field, _, _ in string.Formatter().parse(self.path) if field}
        if set(params) != wanted:
            raise TypeError(f"{self.method} {self.path} takes {sorted(wanted)}, "
                            f"not {sorted(params)}")
        return self.path.format(**{key: quote(str(value), safe="")
                                   for key, value in params.items()})


VERSION = Route("GET", "/v1/version")
CHAIN = Route("GET", "/v1/chain")

NODES = Route("GET", "/v1/nodes")
REGISTER_NODE = Route("POST", "/v1/nodes")
NODES_ALIVE = Route("POST", "/v1/nodes/alive")
DEREGISTER_NODE = Route("DELETE", "/v1/nodes/{uid}")

CONTRACTS = Route("GET", "/v1/contracts")
CREATE_CONTRACT = Route("POST", "/v1/contracts")
CONTRACT = Route("GET", "/v1/contracts/{name}")
CONTRACT_STATUS = Route("GET", "/v1/contracts/{name}/status")
PERFDATA = Route("GET", "/v1/contracts/{name}/perfdata")
RESET_CONTRACT = Route("POST", "/v1/contracts/{name}/reset")
ROUND = Route("GET", "/v1/contracts/{name}/rounds/{round}")
CHECKIN = Route("POST", "/v1/contracts/{name}/checkins")
RECORD_MERGE = Route("POST", "/v1/contracts/{name}/merges")
PROGRESS = Route("POST", "/v1/contracts/{name}/progress")

TASKS = Route("GET", "/v1/tasks")
CREATE_TASK = Route("POST", "/v1/tasks")
REGISTER_TASK = Route("POST", "/v1/tasks/definitions")
TASK = Route("GET", "/v1/tasks/{name}")
DELETE_TASK = Route("DELETE", "/v1/tasks/{name}")
TASK_BODY = Route("GET", "/v1/tasks/{name}/body")
SET_TASK_BODY_LINE = Route("POST", "/v1/tasks/{name}/body")
FINALIZE_TASK = Route("POST", "/v1/tasks/{name}/finalize")

TASKRUNNERS = Route("GET", "/v1/taskrunners")
CREATE_TASKRUNNER = Route("POST", "/v1/taskrunners")
TASKRUNNER = Route("GET", "/v1/taskrunners/{name}")
ASSIGN_TASK = Route("POST", "/v1/taskrunners/{name}/assign")
TASKRUNNER_STATUS = Route("GET", "/v1/taskrunners/{name}/status")
TASKRUNNER_PEERS = Route("GET", "/v1/taskrunners/{name}/peers")
TASKRUNNER_PEER = Route("GET", "/v1/taskrunners/{name}/peers/{peer}")
ENROLL = Route("POST", "/v1/taskrunners/{name}/enroll")
REPORT_PEER_STATUS = Route("POST", "/v1/taskrunners/{name}/peers/{peer}/status")
RESET_TASKRUNNER = Route("POST", "/v1/taskrunners/{name}/reset")
