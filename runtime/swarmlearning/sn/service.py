"""What the SN API does: check a request against the cached state, write the chain, and shape
the answer with HPE's field names. Every refusal is a ServiceError with an HTTP status and a
sentence that says what is wrong and what to do."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from swarmlearning.chain.ledger import ChainRejected, Ledger, key_of
from swarmlearning.identity.principal import IN_PROCESS, Principal
from swarmlearning.sn.batching import Batcher
from swarmlearning.sn.view import SwarmView

MAX_TEXT = 160
MAX_EPOCHS = 10**9
MAX_REJECTED = 64  # rejected contributions one merge records (the contract's MAX_BATCH)
MAX_REASON = 200  # bytes of a rejection's reason (the contract's MAX_REASON)
POLL_SECONDS = 0.1  # how often a long poll looks for blocks that other SNs made
MAX_BODY_LINES = 80
ROOT_TASK = "ROOTTASK"
DEFAULT_CONTRACT = "defaultbb.cqdb.sml.hpe"
DEFAULT_TASKRUNNER = "defaulttaskbb.taskdb.sml.hpe"
TASK_TYPES = ("RUN_SWARM", "MAKE_SWARM_USER_CONTENT", "MAKE_USER_CONTAINER", "PULL_IMAGE")
TASK_STATES = {1: "CREATED", 2: "FINALIZED"}
TRAINING_STATES = {1: "INITIALIZED", 2: "RUNNING", 3: "COMPLETED"}
RUNNER_STATES = {1: "IDLE", 2: "RUNNING", 3: "COMPLETE", 4: "ERROR"}
PEER_STATES = {1: "ENROLLED", 2: "RUNNING", 3: "COMPLETE", 4: "ERROR"}
PEER_STATE_CODES = {name: code for code, name in PEER_STATES.items()}
NODE_TYPES = ("SENTINEL", "SN", "SL", "SWOP")
# a SWOP's registry name carries the taskrunner it listens on: "<name>|<taskrunner>"
LISTENS_ON = "|"
MAX_DETAIL = 1024
FLAG_MAY_LEAD = 1
FLAG_DONE = 2
MAX_WEIGHT = 100
MAX_PEERS = 256
MAX_ROUND_WAIT = 30.0
FIXED_POINT = 1_000_000


class ServiceError(Exception):
    """A refused request: HTTP status and reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _text(value: Any, field: str, *, allow_empty: bool = False, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ServiceError(422, f"{field} must be a string")
    if not value and not allow_empty:
        raise ServiceError(422, f"{field} is empty")
    if len(value) > limit:
        raise ServiceError(422, f"{field} is {len(value)} characters long; the limit is {limit}")
    return value


def _rejected_columns(entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {"REJECTED": 0, "LAST_REJECTION": "-"}
    return {"REJECTED": entry["count"],
            "LAST_REJECTION": f"round {entry['round']}: {entry['reason']}"}


def _rejections(rejected: Any) -> list[tuple[bytes, str]]:
    """A merge's rejected contributions as the contract takes them: (peer key, reason)."""
    if rejected is None:
        return []
    if not isinstance(rejected, list) or len(rejected) > MAX_REJECTED:
        raise ServiceError(422, f"rejected must list at most {MAX_REJECTED} "
                                "{uid, reason} objects")
    entries = []
    for item in rejected:
        if not isinstance(item, dict):
            raise ServiceError(422, "each rejected entry must be an object {uid, reason}")
        uid = _text(item.get("uid"), "rejected uid", limit=64)
        reason = _text(item.get("reason"), "rejected reason", limit=MAX_REASON)
        size = len(reason.encode("utf-8"))
        if size > MAX_REASON:
            raise ServiceError(422, f"rejected reason is {size} bytes in UTF-8; the limit is "
                                    f"{MAX_REASON}")
        entries.append((key_of(uid), reason))
    return entries


class SwarmService:
    """The SN's operations over one ledger and its cached view."""

    def __init__(self, ledger: Ledger, view: SwarmView,
                 clock: Callable[[], float] = time.time, checkin_window: float = 0.2,
                 progress_window: float = 1.0, alive_window: float = 30.0) -> None:
        self.ledger = ledger
        self.view = view
        self.clock = clock
        self.alive_window = alive_window
        self._pending_alive: set[str] = set()
        self.checkins = Batcher(self._write_checkins, checkin_window,
                                complete=self._round_would_be_full)
        self.progress_reports = Batcher(self._write_progress, progress_window)

    def _now(self) -> int:
        return int(self.clock())

    def _write(self, kind: str, function: str, *args: Any) -> None:
        try:
            self.ledger.transact(kind, function, *args)
        except ChainRejected as exc:
            raise ServiceError(409, str(exc)) from None
        finally:
            self.view.sync()

    # -- tasks -------------------------------------------------------------------------------------

    def _existing(self, table: str, name: str, noun: str) -> dict[str, Any]:
        """The cached row of a named object, or 404 naming the command that lists them."""
        self.view.sync()
        row = getattr(self.view, table).rows.get(key_of(name))
        if row is None:
            raise ServiceError(404, f"{noun} {name!r} does not exist (LIST {noun.upper()}S "
                                    f"shows the {noun}s)")
        return row

    def _new(self, table: str, name: str, noun: str, why: str = "") -> None:
        """409 when a named object already exists."""
        _text(name, f"{noun} name")
        self.view.sync()
        if key_of(name) in getattr(self.view, table).rows:
            raise ServiceError(409, f"{noun} {name!r} already exists{why}")

    def _task(self, name: str) -> dict[str, Any]:
        return self._existing("tasks", name, "task")

    def list_tasks(self) -> list[dict[str, Any]]:
        self.view.sync()
        return [self._task_summary(row) for row in self.view.tasks.listed()]

    def _task_summary(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": row["name"], "TYPE": row["task_type"],
                "STATE": TASK_STATES.get(row["state"], "?"), "AUTHOR": row["author"]}

    def _check_header(self, header: dict[str, Any]) -> tuple[str, str, str, str, str]:
        name = _text(header.get("Name"), "Name")
        task_type = _text(header.get("TaskType"), "TaskType")
        if task_type not in TASK_TYPES:
            raise ServiceError(422, f"TaskType {task_type!r} is not one of {', '.join(TASK_TYPES)}")
        author = _text(header.get("Author"), "Author")
        prereq = _text(header.get("Prereq"), "Prereq")
        outcome = _text(header.get("Outcome"), "Outcome")
        self.view.sync()
        if key_of(name) in self.view.tasks.rows:
            raise ServiceError(409, f"task {name!r} already exists; tasks are permanent once "
                                    "finalized, so choose a new name (or DELETE TASK it if it "
                                    "is not finalized)")
        if key_of(prereq) not in self.view.tasks.rows:
            raise ServiceError(422, f"Prereq {prereq!r} is not a task; use ROOTTASK or the name "
                                    "of a task created earlier")
        return name, task_type, author, prereq, outcome

    def create_task(self, header: dict[str, Any]) -> dict[str, Any]:
        fields = self._check_header(header)
        self._write("tasks", "create", *fields, self._now())
        return self.task_info(fields[0])

    def register_task(self, definition: dict[str, Any]) -> dict[str, Any]:
        """A whole task definition (HPE's task schema) in one transaction."""
        from swarmlearning.schemas.validate import (
            DefinitionError,
            task_body_lines,
            validate_object,
        )

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
            _text(line, f"Body line {number}", allow_empty=True)
        self._write("tasks", "register", *fields, lines, self._now())
        return {**self.task_info(fields[0]), "BODY_LINES": len(lines)}

    def append_task_body(self, name: str, index: Any, line: Any) -> dict[str, Any]:
        row = self._task(name)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 < index <= MAX_BODY_LINES:
            raise ServiceError(422, f"body line index must be 1 to {MAX_BODY_LINES}; line 0 is "
                                    "the document start")
        text = _text(line, "body line", allow_empty=True)
        if row["state"] != 1:
            raise ServiceError(409, f"task {name!r} is finalized; a finalized task cannot change")
        self._write("tasks", "set_lines", name, index, [text], self._now())
        return self.task_info(name)

    def finalize_task(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        if row["state"] != 1:
            raise ServiceError(409, f"task {name!r} is already finalized")
        self._write("tasks", "finalize", name, self._now())
        return self.task_info(name)

    def delete_task(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        if row["state"] != 1:
            raise ServiceError(409, f"task {name!r} is finalized; a finalized task cannot be "
                                    "deleted")
        self._write("tasks", "delete", name)
        return {"DELETED": name}

    def task_info(self, name: str) -> dict[str, Any]:
        row = self._task(name)
        return {"NAME": row["name"], "TYPE": row["task_type"], "AUTHOR": row["author"],
                "PREREQ": row["prereq"], "OUTCOME": row["outcome"],
                "STATE": TASK_STATES.get(row["state"], "?"), "BODY_LINES": row["lines"],
                "CREATED": _when(row["created_at"]), "UPDATED": _when(row["updated_at"]),
                "FINALIZED": _when(row["finalized_at"])}

    def task_body(self, name: str) -> list[str]:
        self._task(name)
        return ["---", *self.view.task_body(key_of(name))]

    # -- training contracts ------------------------------------------------------------------------

    def _training(self, name: str) -> dict[str, Any]:
        return self._existing("trainings", name, "contract")

    def list_contracts(self) -> list[dict[str, Any]]:
        self.view.sync()
        return [self._contract_status(row) for row in self.view.trainings.listed()]

    def create_contract(self, name: str) -> dict[str, Any]:
        self._new("trainings", name, "contract", "; contracts are permanent")
        self._write("trainings", "create", name, self._now())
        return self.contract_info(name)

    def contract_info(self, name: str) -> dict[str, Any]:
        row = self._training(name)
        return {"NAME": row["name"], "UID": "0x" + key_of(name).hex(),
                "ADDRESS": self.ledger.addresses.trainings, "CREATED": _when(row["created_at"])}

    def _contract_status(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": row["name"], "STATE": TRAINING_STATES.get(row["state"], "?"),
                "ROUND": row["round"], "PEERS": row["peers"], "RESETS": row["resets"],
                "UPDATED": _when(row["updated_at"])}

    def contract_status(self, name: str) -> dict[str, Any]:
        row = self._training(name)
        status = self._contract_status(row)
        current = self.view.sync_round(key_of(name), row["round"])
        status["CHECKED_IN"] = len(current["checkins"])
        status["EXPECTED_PEERS"] = self._expected_peers(key_of(name), current)
        last = self.view.sync_round(key_of(name), row["round"] - 1) if row["round"] else None
        merge = last["merge"] if last else None
        status["LAST_LEADER"] = self._uid_of(merge["leader"]) if merge else "-"
        status["LAST_MERGE"] = _when(merge["merged_at"]) if merge else "-"
        return status

    def reset_contract(self, name: str) -> dict[str, Any]:
        row = self._training(name)
        if row["state"] != 3:
            raise ServiceError(409, f"contract {name!r} is "
                                    f"{TRAINING_STATES.get(row['state'], '?')}; only a completed "
                                    "contract can be reset")
        self._write("trainings", "reset", name, self._now())
        return self.contract_status(name)

    def perfdata(self, name: str) -> list[dict[str, Any]]:
        """Per SL-ML pair: HPE's columns, then how many of its contributions leaders left out
        of their merges and the latest reason. A peer that never reported progress but had a
        contribution rejected gets a row too (its progress columns empty)."""
        self._training(name)
        key = key_of(name)
        rejected = {bytes(r["peer"]): r for r in self.view.rejections(key)}
        rows = []
        for p in self.view.progress(key):
            rows.append({"UID": p["uid"], "ADMIN": "Y" if p["leader"] else "N",
                         "LOSS": p["loss"] / 1e6, "METRIC": p["metric"] / 1e6,
                         "TOTAL_EPOCHS": p["total_epochs"],
                         "COMPLETED_EPOCHS": p["completed_epochs"],
                         **_rejected_columns(rejected.pop(bytes(p["peer"]), None))})
        for peer, entry in rejected.items():
            rows.append({"UID": self._uid_of(peer), "ADMIN": "N", "LOSS": "", "METRIC": "",
                         "TOTAL_EPOCHS": "", "COMPLETED_EPOCHS": "",
                         **_rejected_columns(entry)})
        return rows

    # -- sync rounds -------------------------------------------------------------------------------

    def _uid_of(self, peer: bytes) -> str:
        row = self.view.nodes.rows.get(bytes(peer))
        return row["uid"] if row else "0x" + bytes(peer).hex()

    def _expected_peers(self, key: bytes, current: dict[str, Any]) -> int:
        """Peers this round should wait for: those that reported progress in this generation
        and whose node is alive, and whoever already checked in."""
        now = self._now()
        peers = {bytes(c["peer"]) for c in current["checkins"]}
        for entry in self.view.progress(key):
            node = self.view.nodes.rows.get(bytes(entry["peer"]))
            if node and node["active"] and now - node["alive_at"] <= self.alive_window:
                peers.add(bytes(entry["peer"]))
        return len(peers)

    def _peer(self, peer: bytes) -> dict[str, Any]:
        node = self.view.nodes.rows.get(bytes(peer)) or {}
        return {"uid": self._uid_of(peer), "host": node.get("host", ""),
                "port": node.get("port", 0)}

    def sync_round(self, name: str, number: Any = None, wait: Any = 0, seen: Any = "") -> dict[
            str, Any]:
        """A round's check-ins and merge. With `wait`, a long poll: answers as soon as the
        round's version differs from `seen`, or after `wait` seconds (at most 30)."""
        try:
            wait = min(max(float(wait or 0), 0.0), MAX_ROUND_WAIT)
            number = None if number in (None, "", "current") else int(number)
        except (TypeError, ValueError):
            raise ServiceError(422, "round must be a whole number or 'current', and wait a "
                                    "number of seconds") from None
        deadline = time.monotonic() + wait
        block = self.view.block
        status = self._round_status(name, number)
        while status["version"] == seen:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # woken at once by this SN's own writes; other SNs' blocks are looked for every
            # POLL_SECONDS, by whichever waiter comes first
            newest = self.view.wait_past(block, min(left, POLL_SECONDS))
            if newest == block:
                self.view.sync_recent(POLL_SECONDS)
                newest = self.view.block
            if newest != block:
                block = newest
                status = self._round_status(name, number)
        return status

    def _round_status(self, name: str, number: int | None) -> dict[str, Any]:
        row = self._training(name)
        key = key_of(name)
        number = row["round"] if number is None else number
        current = self.view.sync_round(key, number)
        checkins = [{**self._peer(c["peer"]), "contribution": bytes(c["contribution"]).hex(),
                     "weight": c["weight"], "may_lead": bool(c["flags"] & FLAG_MAY_LEAD),
                     "done": bool(c["flags"] & FLAG_DONE)} for c in current["checkins"]]
        merge = current["merge"]
        merged = None if merge is None else {
            "leader": self._uid_of(merge["leader"]), "merged": bytes(merge["merged"]).hex(),
            "participants": [self._uid_of(p) for p in merge["participants"]],
            "merged_at": merge["merged_at"]}
        expected = self._expected_peers(key, current)
        state = TRAINING_STATES.get(row["state"], "?")
        version = (f"{row['resets']}:{row['round']}:{state}:{number}:{len(checkins)}:"
                   f"{merge is not None}:{expected}")
        return {"contract": name, "state": state, "current_round": row["round"],
                "generation": row["resets"], "round": number, "checkins": checkins,
                "merge": merged, "expected_peers": expected, "version": version}

    def checkin(self, name: str, uid: Any, number: Any, contribution: Any, weight: Any,
                flags: Any, min_peers: Any = 0) -> dict[str, Any]:
        """Check an SL in for the current round; the SN writes the check-ins that arrive
        together in one transaction. `min_peers` (the session's minPeers; 0 when not given)
        lets the batch go as soon as that many are in while no peer of the contract has
        reported progress yet (the first rounds), instead of waiting out the window."""
        uid = _text(uid, "uid", limit=64)
        row = self._training(name)
        if not isinstance(contribution, str) or len(contribution) != 64:
            raise ServiceError(422, "contribution must be the blob's SHA-256 as 64 hex digits")
        try:
            digest = bytes.fromhex(contribution)
        except ValueError:
            raise ServiceError(422, "contribution must be the blob's SHA-256 as 64 hex "
                                    "digits") from None
        for field, value, top in (("round", number, 2**63), ("weight", weight, MAX_WEIGHT),
                                  ("flags", flags, FLAG_MAY_LEAD | FLAG_DONE),
                                  ("min_peers", min_peers, MAX_PEERS)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ServiceError(422, f"{field} must be a whole number from 0 to {top}")
        if row["state"] == 3:
            raise ServiceError(409, f"contract {name!r} is COMPLETED; RESET CONTRACT {name} "
                                    "to train again")
        if number != row["round"]:
            raise ServiceError(409, f"check-in for round {number}, but contract {name!r} is at "
                                    f"round {row['round']}")
        self.checkins.submit((name, number), (key_of(uid), digest, weight, flags, min_peers))
        return self._round_status(name, number)

    def _round_would_be_full(self, group: Any, entries: list[Any]) -> bool:
        """Whether these check-ins bring in every peer the round waits for (every live peer
        that reported progress in this generation), or, before any has, the largest minPeers
        the check-ins name: then nobody is left to batch with."""
        name, number = group
        key = key_of(name)
        now = self._now()
        waited = {bytes(entry["peer"]) for entry in self.view.progress(key)
                  if (node := self.view.nodes.rows.get(bytes(entry["peer"]))) and
                  node["active"] and now - node["alive_at"] <= self.alive_window}
        current = self.view.sync_round(key, number)
        arrived = {bytes(c["peer"]) for c in current["checkins"]}
        arrived.update(bytes(entry[0]) for entry in entries)
        if not waited:
            least = max((entry[4] for entry in entries if len(entry) > 4), default=0)
            return least > 0 and len(arrived) >= least
        return waited <= arrived

    def _write_checkins(self, group: Any, entries: list[Any]) -> None:
        name, number = group
        self._write("trainings", "checkin", name, number, [entry[:4] for entry in entries],
                    self._now())

    def record_merge(self, name: str, number: Any, leader: Any, merged: Any,
                     participants: Any, final: Any, rejected: Any = None) -> dict[str, Any]:
        """The leader's one transaction per round: the merged model's hash, who is in it, and
        the contributions it left out, each with its peer's UID and the reason."""
        self._training(name)
        leader = _text(leader, "leader", limit=64)
        if not isinstance(merged, str) or len(merged) != 64:
            raise ServiceError(422, "merged must be the blob's SHA-256 as 64 hex digits")
        try:
            digest = bytes.fromhex(merged)
        except ValueError:
            raise ServiceError(422, "merged must be 64 hex digits") from None
        if not isinstance(participants, list) or not participants or len(participants) > 256:
            raise ServiceError(422, "participants must list 1 to 256 peer UIDs")
        peers = [key_of(_text(uid, "participant", limit=64)) for uid in participants]
        left_out = _rejections(rejected)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ServiceError(422, "round must be a whole number")
        self._write("trainings", "record_merge", name, number, key_of(leader), digest, peers,
                    left_out, bool(final), self._now())
        return self._round_status(name, number)

    def report_progress(self, name: str, uid: Any, leader: Any, loss: Any, metric: Any,
                        total_epochs: Any, completed_epochs: Any) -> dict[str, Any]:
        """Loss, metric and epochs of one SL/ML pair, for PERFDATA (batched per contract)."""
        uid = _text(uid, "uid", limit=64)
        self._training(name)

        def fixed(value: Any, field: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ServiceError(422, f"{field} must be a number")
            if value != value or abs(value) > 1e12:
                return 0
            return int(round(value * FIXED_POINT))

        def count(value: Any, field: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ServiceError(422, f"{field} must be a whole number of epochs")
            if value > MAX_EPOCHS:
                raise ServiceError(422, f"{field} is over the limit of {MAX_EPOCHS} epochs")
            return value

        entry = (key_of(uid), uid, bool(leader), fixed(loss, "loss"), fixed(metric, "metric"),
                 count(total_epochs, "total_epochs"), count(completed_epochs, "completed_epochs"),
                 self._now())
        self.progress_reports.submit(name, entry)
        return {"REPORTED": uid}

    def _write_progress(self, name: Any, entries: list[Any]) -> None:
        self._write("trainings", "report_progress", name, entries)

    # -- taskrunners -------------------------------------------------------------------------------

    def _runner(self, name: str) -> dict[str, Any]:
        return self._existing("runners", name, "taskrunner")

    def list_taskrunners(self) -> list[dict[str, Any]]:
        self.view.sync()
        return [{"NAME": row["name"], "STATE": RUNNER_STATES.get(row["state"], "?"),
                 "TASK": row["task"] or "Empty"} for row in self.view.runners.listed()]

    def create_taskrunner(self, name: str) -> dict[str, Any]:
        self._new("runners", name, "taskrunner")
        self._write("runners", "create", name, self._now())
        return self.taskrunner_info(name)

    def taskrunner_info(self, name: str) -> dict[str, Any]:
        row = self._runner(name)
        return {"NAME": row["name"], "UID": "0x" + key_of(name).hex(),
                "ADDRESS": self.ledger.addresses.runners, "CREATED": _when(row["created_at"])}

    def assign_task(self, runner: str, task: str, *, peers: Any = None, all_peers: bool = False,
                    target: Any = None) -> dict[str, Any]:
        row = self._runner(runner)
        task_row = self._task(task)
        if task_row["state"] != 2:
            raise ServiceError(409, f"task {task!r} is not finalized; FINALIZE TASK {task} first")
        target = target or ""
        if target:
            _text(target, "target SWOP UID", limit=64)
            peers = 1
        elif all_peers:
            peers = len(self.live_swops(runner))
            if peers == 0:
                raise ServiceError(409, f"WITH ALL PEERS needs live SWOPs listening on {runner}, "
                                        f"and none has reported in the last "
                                        f"{self.alive_window:g} s (LIST NODES shows them)")
        elif not isinstance(peers, int) or isinstance(peers, bool) or peers < 1:
            raise ServiceError(422, "peers needed must be a whole number above 0")
        joining = target and row["state"] in (2, 4)
        if joining and row["task"] != task:
            raise ServiceError(409, f"taskrunner {runner!r} runs task {row['task']!r}, not "
                                    f"{task!r}; TARGET adds a SWOP to the running task only")
        if row["state"] != 1 and not joining:
            raise ServiceError(409, f"taskrunner {runner!r} is "
                                    f"{RUNNER_STATES.get(row['state'], '?')} with task "
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
                  if p["status"] == 4]
        details = {p["swop_uid"]: p["detail"] for p in peers if p["status"] == 4 and p["detail"]}
        return {"TASKRUNNER": row["name"], "TASK": row["task"] or "Empty",
                "TASK_TYPE": task_type or "-",
                "PEER_TYPE": "SL" if task_type == "RUN_SWARM" else "SWOP",
                "TASK_STATE": RUNNER_STATES.get(row["state"], "?"),
                "PEERS_NEEDED": "ALL" if row["all_peers"] else row["peers_needed"],
                "SWOPS_NEEDED": row["peers_needed"] if row["all_peers"] else None,
                "ENROLLED_PEERS": row["enrolled"],
                "ACTIVE_PEERS": sum(1 for p in peers if p["status"] in (1, 2)),
                "ENROLLED_UNITS": row["units"], "COMPLETED_PEERS": row["done"],
                "FAILED_PEERS": failed, "FAILURE_DETAILS": details,
                "GENERATION": row["generation"], "TARGET": row["target"],
                "ASSIGNED_TS": _when(row["assigned_at"]), "FINISHED_TS": _when(row["finished_at"]),
                "UPDATE_TS": _when(row["updated_at"])}

    def _peer_status(self, index: int, peer: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": peer["name"], "SWOP_UID": peer["swop_uid"],
                "OPERATION_ID": peer["operation"], "PEER_COUNT": peer["units"],
                "UPDATE_TS": _when(peer["updated_at"]), "SWOP_PEER_INDEX": index,
                "SWOP_PEER_STATUS": PEER_STATES.get(peer["status"], "?"),
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
        _text(swop_uid, "SWOP UID", limit=64)
        _text(group, "group name", allow_empty=True)
        if not isinstance(units, int) or isinstance(units, bool) or not 1 <= units <= 4096:
            raise ServiceError(422, "units must be a whole number from 1 to 4096")
        if row["state"] == 4:
            raise ServiceError(409, f"taskrunner {name!r} has failed; ASSIGN TASK "
                                    f"{row['task']} TO {name} TARGET <SWOP-UID> retries a SWOP, "
                                    f"RESET TASKRUNNER {name} starts over")
        if row["state"] != 2:
            raise ServiceError(409, f"taskrunner {name!r} has no running task")
        self._write("runners", "enroll", name, swop_uid, group, units, self._now())
        return self.taskrunner_peer_status(name, swop_uid)

    def report(self, name: str, swop_uid: str, status: str, description: str = "",
               detail: str = "") -> dict[str, Any]:
        self._runner(name)
        code = PEER_STATE_CODES.get(str(status).upper())
        if code is None or code == 1:
            raise ServiceError(422, "status must be RUNNING, COMPLETE or ERROR")
        _text(description, "description", allow_empty=True)
        _text(detail, "detail", allow_empty=True, limit=MAX_DETAIL)
        self._write("runners", "report", name, swop_uid, code, description, detail, self._now())
        return self.taskrunner_peer_status(name, swop_uid)

    # -- nodes -------------------------------------------------------------------------------------

    def register_node(self, uid: str, node_type: str, host: str, port: int, name: str,
                      parent: str, taskrunner: str = "",
                      owner: Principal = IN_PROCESS) -> dict[str, Any]:
        """Register (or re-register) a node. The first registration binds the UID to `owner`,
        the identity of the certificate it came with; only that identity may register it again
        or act for it (check-ins, merges, progress, liveness, enrolment)."""
        _text(uid, "uid", limit=64)
        if node_type not in NODE_TYPES:
            raise ServiceError(422, f"node type must be one of {', '.join(NODE_TYPES)}")
        if LISTENS_ON in name:
            raise ServiceError(422, f"a node name may not contain {LISTENS_ON!r}")
        if taskrunner:
            if node_type != "SWOP":
                raise ServiceError(422, "only a SWOP listens on a taskrunner")
            name = f"{name}{LISTENS_ON}{_text(taskrunner, 'taskrunner')}"
        self.view.sync()
        row = self.view.nodes.rows.get(key_of(uid))
        if row is not None and bytes(row["owner"]) != owner.key:
            raise ServiceError(403, f"node {uid!r} is registered to another identity; the "
                                    f"certificate of this connection, {owner.name}, cannot "
                                    "register it again")
        self._write("nodes", "register", uid, node_type, _text(host, "host"), int(port),
                    _text(name, "name", allow_empty=True), _text(parent, "parent",
                                                                allow_empty=True, limit=64),
                    owner.key, self._now())
        return {"UUID": uid}

    def authorize(self, uids: list[Any], caller: Principal) -> None:
        """403 unless every one of `uids` is a node registered by `caller`'s identity: a peer
        cannot check in, merge, report or enrol for another node's UID."""
        for uid in uids:
            if not isinstance(uid, str):
                continue  # the handler's own validation names the field
            _text(uid, "uid", limit=64)
            row = self.view.nodes.rows.get(key_of(uid))
            if row is None or bytes(row["owner"]) != caller.key:
                self.view.sync()  # registered a moment ago, maybe through another SN
                row = self.view.nodes.rows.get(key_of(uid))
            if row is None:
                raise ServiceError(403, f"node {uid!r} is not registered; a node registers "
                                        "with its SN (POST /v1/nodes) before it takes part")
            if bytes(row["owner"]) != caller.key:
                raise ServiceError(403, f"node {uid!r} belongs to another identity; the "
                                        f"certificate of this connection, {caller.name}, "
                                        "cannot act for it")

    def note_alive(self, uids: list[Any]) -> dict[str, Any]:
        """Remember signs of life; flush_alive writes them all in one transaction."""
        for uid in uids:
            self._pending_alive.add(_text(uid, "uid", limit=64))
        return {"PENDING": len(self._pending_alive)}

    def flush_alive(self, own: list[str]) -> None:
        uids = sorted(set(own) | self._pending_alive)
        self._pending_alive.clear()
        for start in range(0, len(uids), 128):
            self._write("nodes", "alive", [key_of(uid) for uid in uids[start:start + 128]],
                        self._now())

    def fail_silent_swops(self, parent: str) -> list[str]:
        """Report ERROR for the running task of every SWOP of this SN (`parent`) that stopped
        sending signs of life (killed, its host gone): a SWOP that died without a word must not
        leave WAIT FOR TASKRUNNER hanging. ASSIGN TASK ... TARGET <uid> retries it once it is
        back. Returns the SWOP UIDs reported."""
        self.view.sync()
        now = self._now()
        reported = []
        for runner in self.view.runners.listed():
            if RUNNER_STATES.get(runner["state"]) != "RUNNING":
                continue
            for peer in self.view.peers.get(key_of(runner["name"]), []):
                if PEER_STATES.get(peer["status"]) not in ("ENROLLED", "RUNNING"):
                    continue
                node = self.view.nodes.rows.get(key_of(peer["swop_uid"]))
                if node is None or node["parent"] != parent:
                    continue
                silent = now - node["alive_at"]
                if node["active"] and silent <= self.alive_window:
                    continue
                name = node["name"].partition(LISTENS_ON)[0] or peer["swop_uid"]
                why = ("stopped" if not node["active"] else
                       f"sent no sign of life for {silent} s (since {_when(node['alive_at'])})")
                self._write("runners", "report", runner["name"], peer["swop_uid"],
                            PEER_STATE_CODES["ERROR"],
                            f"SWOP {name} {why}; its part of task {runner['task']} is lost",
                            f"ASSIGN TASK {runner['task']} TO {runner['name']} TARGET "
                            f"{peer['swop_uid']} retries it once the SWOP is back", now)
                reported.append(peer["swop_uid"])
        return reported

    def deregister_node(self, uid: str) -> None:
        self._write("nodes", "deregister", uid, self._now())

    def list_nodes(self) -> list[dict[str, Any]]:
        self.view.sync()
        now = self._now()
        return [{"NodeType": row["node_type"], "HostIP": row["host"], "Port": row["port"],
                 "ContainerName": row["name"].partition(LISTENS_ON)[0], "UUID": row["uid"],
                 "ParentUUID": row["parent"], "i-am-alive": _when(row["alive_at"]),
                 "TASKRUNNER": row["name"].partition(LISTENS_ON)[2],
                 "SECONDS_SINCE_ALIVE": max(0, now - row["alive_at"])}
                for row in self.view.nodes.listed() if row["active"]]
