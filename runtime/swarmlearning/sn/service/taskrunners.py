"""Taskrunners on the TaskRunnerBoard: create and show one, assign it a finalized task (for a
number of SWOPs, all live ones, or one target SWOP), enrol SWOPs in its task, take their
reports, show each enrolled SWOP, and reset it."""

from __future__ import annotations

from typing import Any

from swarmlearning.chain.ledger import key_of
from swarmlearning.sn.service.base import (
    ServiceBase,
    ServiceError,
    check_text,
    shown,
    timestamp,
)
from swarmlearning.sn.service.nodes import LISTENS_ON
from swarmlearning.states import PeerState, RunnerState, TaskState

MAX_DETAIL = 1024
# the states a SWOP may report about its part of a task (it enrols as ENROLLED)
REPORTED_STATES = (PeerState.RUNNING, PeerState.COMPLETE, PeerState.ERROR)


class TaskRunnersMixin(ServiceBase):
    """The taskrunner operations of the SN API."""

    def _runner(self, name: str) -> dict[str, Any]:
        return self._existing("runners", name, "taskrunner")

    def list_taskrunners(self) -> list[dict[str, Any]]:
        self.view.sync()
        return [{"NAME": row["name"], "STATE": shown(RunnerState, row["state"]),
                 "TASK": row["task"] or "Empty"} for row in self.view.runners.listed()]

    def create_taskrunner(self, name: str) -> dict[str, Any]:
        self._new("runners", name, "taskrunner")
        self._write("runners", "create", name, self._now())
        return self.taskrunner_info(name)

    def taskrunner_info(self, name: str) -> dict[str, Any]:
        row = self._runner(name)
        return {"NAME": row["name"], "UID": "0x" + key_of(name).hex(),
                "ADDRESS": self.ledger.addresses.runners,
                "CREATED": timestamp(row["created_at"])}

    def assign_task(self, runner: str, task: str, *, peers: Any = None, all_peers: bool = False,
                    target: Any = None) -> dict[str, Any]:
        row = self._runner(runner)
        task_row = self._existing("tasks", task, "task")
        if task_row["state"] != TaskState.FINALIZED:
            raise ServiceError(409, f"task {task!r} is not finalized; FINALIZE TASK {task} first")
        target = target or ""
        if target:
            check_text(target, "target SWOP UID", limit=64)
            peers = 1
        elif all_peers:
            peers = len(self.live_swops(runner))
            if peers == 0:
                raise ServiceError(409, f"WITH ALL PEERS needs live SWOPs listening on {runner}, "
                                        f"and none has reported in the last "
                                        f"{self.alive_window:g} s (LIST NODES shows them)")
        elif not isinstance(peers, int) or isinstance(peers, bool) or peers < 1:
            raise ServiceError(422, "peers needed must be a whole number above 0")
        joining = target and row["state"] in (RunnerState.RUNNING, RunnerState.ERROR)
        if joining and row["task"] != task:
            raise ServiceError(409, f"taskrunner {runner!r} runs task {row['task']!r}, not "
                                    f"{task!r}; TARGET adds a SWOP to the running task only")
        if row["state"] != RunnerState.IDLE and not joining:
            raise ServiceError(409, f"taskrunner {runner!r} is "
                                    f"{shown(RunnerState, row['state'])} with task "
                                    f"{row['task']!r}; RESET TASKRUNNER {runner} first")
        self._write("runners", "assign", runner, task, peers, all_peers, target, self._now())
        return self.taskrunner_status(runner)

    def live_swops(self, runner: str) -> list[dict[str, Any]]:
        """SWOP nodes listening on `runner` that reported in within the alive window."""
        self.view.sync()
        now = self._now()
        return [row for row in self.view.nodes.listed()
                if row["active"] and row["node_type"] == "SWOP"
                and row["name"].rpartition(LISTENS_ON)[2] == runner
                and now - row["alive_at"] <= self.alive_window]

    def taskrunner_status(self, name: str) -> dict[str, Any]:
        row = self._runner(name)
        peers = self.view.peers.get(key_of(name), [])
        task_type = ""
        if row["task"]:
            task_row = self.view.tasks.rows.get(key_of(row["task"]))
            task_type = task_row["task_type"] if task_row else ""
        failed = [f"{p['swop_uid']} : {p['description'] or 'failed'}" for p in peers
                  if p["status"] == PeerState.ERROR]
        details = {p["swop_uid"]: p["detail"] for p in peers
                   if p["status"] == PeerState.ERROR and p["detail"]}
        active = sum(1 for p in peers if p["status"] in (PeerState.ENROLLED, PeerState.RUNNING))
        return {"TASKRUNNER": row["name"], "TASK": row["task"] or "Empty",
                "TASK_TYPE": task_type or "-",
                "PEER_TYPE": "SL" if task_type == "RUN_SWARM" else "SWOP",
                "TASK_STATE": shown(RunnerState, row["state"]),
                "PEERS_NEEDED": "ALL" if row["all_peers"] else row["peers_needed"],
                "SWOPS_NEEDED": row["peers_needed"] if row["all_peers"] else None,
                "ENROLLED_PEERS": row["enrolled"],
                "ACTIVE_PEERS": active,
                "ENROLLED_UNITS": row["units"], "COMPLETED_PEERS": row["done"],
                "FAILED_PEERS": failed, "FAILURE_DETAILS": details,
                "GENERATION": row["generation"], "TARGET": row["target"],
                "ASSIGNED_TS": timestamp(row["assigned_at"]),
                "FINISHED_TS": timestamp(row["finished_at"]),
                "UPDATE_TS": timestamp(row["updated_at"])}

    def _peer_status(self, index: int, peer: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": peer["name"], "SWOP_UID": peer["swop_uid"],
                "OPERATION_ID": peer["operation"], "PEER_COUNT": peer["units"],
                "UPDATE_TS": timestamp(peer["updated_at"]), "SWOP_PEER_INDEX": index,
                "SWOP_PEER_STATUS": shown(PeerState, peer["status"]),
                "SWOP_PEER_STATUS_DESC": peer["description"] or "-",
                "SWOP_PEER_DETAIL": peer["detail"]}

    def taskrunner_peers(self, name: str) -> list[dict[str, Any]]:
        self._runner(name)
        return [self._peer_status(i, p) for i, p in enumerate(self.view.peers.get(key_of(name),
                                                                                  []))]

    def taskrunner_peer_status(self, name: str, peer: str) -> dict[str, Any]:
        self._runner(name)
        peers = self.view.peers.get(key_of(name), [])
        if peer.isdigit():
            index = int(peer)
            if index >= len(peers):
                raise ServiceError(404, f"taskrunner {name!r} has {len(peers)} enrolled SWOP(s); "
                                        f"there is no index {index}")
            return self._peer_status(index, peers[index])
        for index, entry in enumerate(peers):
            if entry["swop_uid"] == peer:
                return self._peer_status(index, entry)
        raise ServiceError(404, f"no SWOP with UID {peer!r} is enrolled on taskrunner {name!r}")

    def reset_taskrunner(self, name: str) -> dict[str, Any]:
        self._runner(name)
        self._write("runners", "reset", name, self._now())
        return self.taskrunner_status(name)

    def enroll(self, name: str, swop_uid: str, group: str, units: Any = 1) -> dict[str, Any]:
        row = self._runner(name)
        check_text(swop_uid, "SWOP UID", limit=64)
        check_text(group, "group name", allow_empty=True)
        if not isinstance(units, int) or isinstance(units, bool) or not 1 <= units <= 4096:
            raise ServiceError(422, "units must be a whole number from 1 to 4096")
        if row["state"] == RunnerState.ERROR:
            raise ServiceError(409, f"taskrunner {name!r} has failed; ASSIGN TASK "
                                    f"{row['task']} TO {name} TARGET <SWOP-UID> retries a SWOP, "
                                    f"RESET TASKRUNNER {name} starts over")
        if row["state"] != RunnerState.RUNNING:
            raise ServiceError(409, f"taskrunner {name!r} has no running task")
        self._write("runners", "enroll", name, swop_uid, group, units, self._now())
        return self.taskrunner_peer_status(name, swop_uid)

    def report(self, name: str, swop_uid: str, status: str, description: str = "",
               detail: str = "") -> dict[str, Any]:
        self._runner(name)
        code = PeerState.__members__.get(str(status).upper())
        if code not in REPORTED_STATES:
            raise ServiceError(422, "status must be RUNNING, COMPLETE or ERROR")
        check_text(description, "description", allow_empty=True)
        check_text(detail, "detail", allow_empty=True, limit=MAX_DETAIL)
        self._write("runners", "report", name, swop_uid, int(code), description, detail,
                    self._now())
        return self.taskrunner_peer_status(name, swop_uid)
