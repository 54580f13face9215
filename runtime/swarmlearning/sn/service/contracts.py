"""Training contracts on the TrainingBoard and the sync rounds they run: create, show and reset
a contract; check SLs in for a round (batched), record a leader's merge with the contributions
it left out, answer a round's state (long poll included), and keep each SL/ML pair's progress
for PERFDATA."""

from __future__ import annotations

import time
from typing import Any

from swarmlearning.chain.ledger import key_of
from swarmlearning.sn.batching import Batcher
from swarmlearning.sn.service.base import (
    ServiceBase,
    ServiceError,
    check_text,
    shown,
    timestamp,
)
from swarmlearning.states import TrainingState

MAX_EPOCHS = 10**9
MAX_REJECTED = 64  # rejected contributions one merge records (the contract's MAX_BATCH)
MAX_REASON = 200  # bytes of a rejection's reason (the contract's MAX_REASON)
POLL_SECONDS = 0.1  # how often a long poll looks for blocks that other SNs made
FLAG_MAY_LEAD = 1
FLAG_DONE = 2
MAX_WEIGHT = 100
MAX_PEERS = 256
MAX_ROUND_WAIT = 30.0
FIXED_POINT = 1_000_000


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
        uid = check_text(item.get("uid"), "rejected uid", limit=64)
        reason = check_text(item.get("reason"), "rejected reason", limit=MAX_REASON)
        size = len(reason.encode("utf-8"))
        if size > MAX_REASON:
            raise ServiceError(422, f"rejected reason is {size} bytes in UTF-8; the limit is "
                                    f"{MAX_REASON}")
        entries.append((key_of(uid), reason))
    return entries


class ContractsMixin(ServiceBase):
    """The contract, sync-round and progress operations of the SN API. The composing class
    sets up the two batchers, with `_write_checkins` (complete once `_round_would_be_full`)
    and `_write_progress` as their writers."""

    checkins: Batcher
    progress_reports: Batcher

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
                "ADDRESS": self.ledger.addresses.trainings,
                "CREATED": timestamp(row["created_at"])}

    def _contract_status(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"NAME": row["name"], "STATE": shown(TrainingState, row["state"]),
                "ROUND": row["round"], "PEERS": row["peers"], "RESETS": row["resets"],
                "UPDATED": timestamp(row["updated_at"])}

    def contract_status(self, name: str) -> dict[str, Any]:
        row = self._training(name)
        status = self._contract_status(row)
        current = self.view.sync_round(key_of(name), row["round"])
        status["CHECKED_IN"] = len(current["checkins"])
        status["EXPECTED_PEERS"] = self._expected_peers(key_of(name), current)
        last = self.view.sync_round(key_of(name), row["round"] - 1) if row["round"] else None
        merge = last["merge"] if last else None
        status["LAST_LEADER"] = self._uid_of(merge["leader"]) if merge else "-"
        status["LAST_MERGE"] = timestamp(merge["merged_at"]) if merge else "-"
        return status

    def reset_contract(self, name: str) -> dict[str, Any]:
        row = self._training(name)
        if row["state"] != TrainingState.COMPLETED:
            raise ServiceError(409, f"contract {name!r} is "
                                    f"{shown(TrainingState, row['state'])}; only a completed "
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
        state = shown(TrainingState, row["state"])
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
        uid = check_text(uid, "uid", limit=64)
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
        if row["state"] == TrainingState.COMPLETED:
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
        leader = check_text(leader, "leader", limit=64)
        if not isinstance(merged, str) or len(merged) != 64:
            raise ServiceError(422, "merged must be the blob's SHA-256 as 64 hex digits")
        try:
            digest = bytes.fromhex(merged)
        except ValueError:
            raise ServiceError(422, "merged must be 64 hex digits") from None
        if not isinstance(participants, list) or not participants or len(participants) > 256:
            raise ServiceError(422, "participants must list 1 to 256 peer UIDs")
        peers = [key_of(check_text(uid, "participant", limit=64)) for uid in participants]
        left_out = _rejections(rejected)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ServiceError(422, "round must be a whole number")
        self._write("trainings", "record_merge", name, number, key_of(leader), digest, peers,
                    left_out, bool(final), self._now())
        return self._round_status(name, number)

    # -- progress ----------------------------------------------------------------------------------

    def report_progress(self, name: str, uid: Any, leader: Any, loss: Any, metric: Any,
                        total_epochs: Any, completed_epochs: Any) -> dict[str, Any]:
        """Loss, metric and epochs of one SL/ML pair, for PERFDATA (batched per contract)."""
        uid = check_text(uid, "uid", limit=64)
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
