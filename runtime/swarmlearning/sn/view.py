"""The SN's read cache of the chain, kept current from contract events.

Every read first catches up: one `eth_blockNumber`, and when the chain moved, one `eth_getLogs`
over the new block range only. The objects named by those events are re-read; nothing else is.
A training's events carry what changed, so a sync round costs no contract read at all: its row
after each change, a batch of check-ins (added to that round's cached check-ins), a merge record
(that round's). A progress report drops the progress table, rejected contributions the
rejection tallies, a reset the whole generation, and
an event this SN does not know (a contract deployed by an older version) drops everything cached
for that training, to be read again.
A write through this SN catches up the same way, so every client of any SN reads its own writes
and everything written before them.

On an external network a block can be replaced (a reorganisation of blocks not yet final). There
the view also remembers the hash of the last block it took in; when that block is no longer on
the chain, it reads everything again from the new head.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from swarmlearning.chain.ledger import Ledger

log = logging.getLogger("swarm.blCnt")

TASK_FIELDS = ("name", "task_type", "author", "prereq", "outcome", "state", "lines",
               "created_at", "updated_at", "finalized_at")
NODE_FIELDS = ("uid", "node_type", "host", "port", "name", "parent", "owner",
               "registered_at", "alive_at", "active")
TRAINING_FIELDS = ("name", "state", "round", "resets", "peers", "created_at", "updated_at")
RUNNER_FIELDS = ("name", "task", "state", "peers_needed", "all_peers", "target", "targeted",
                 "enrolled", "units", "done", "done_swops", "failed", "generation", "created_at",
                 "assigned_at", "finished_at", "updated_at")
PEER_FIELDS = ("swop_uid", "name", "status", "description", "detail", "operation", "units",
               "updated_at")
CHECKIN_FIELDS = ("peer", "contribution", "weight", "flags")
MERGE_FIELDS = ("leader", "merged", "participants", "merged_at")
PROGRESS_FIELDS = ("peer", "uid", "leader", "loss", "metric", "total_epochs",
                   "completed_epochs", "updated_at")
REJECTION_FIELDS = ("peer", "count", "round", "reason")


def _record(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


@dataclass
class _Table:
    """Objects of one kind by key, in the order the chain lists them."""

    rows: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    order: list[bytes] = field(default_factory=list)

    def put(self, key: bytes, row: dict[str, Any] | None) -> None:
        if row is None:
            self.rows.pop(key, None)
            return
        if key not in self.rows and key not in self.order:
            self.order.append(key)
        self.rows[key] = row

    def listed(self) -> list[dict[str, Any]]:
        return [self.rows[key] for key in self.order if key in self.rows]


class SwarmView:
    """Cached tasks, training contracts, taskrunners (with peers) and nodes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.tasks = _Table()
        self.trainings = _Table()
        self.runners = _Table()
        self.nodes = _Table()
        self.peers: dict[bytes, list[dict[str, Any]]] = {}
        self._bodies: dict[bytes, list[str]] = {}
        self._progress: dict[bytes, list[dict[str, Any]]] = {}
        self._rejections: dict[bytes, list[dict[str, Any]]] = {}
        self._checkins: dict[tuple[bytes, int], list[dict[str, Any]]] = {}
        self._merges: dict[tuple[bytes, int], dict[str, Any] | None] = {}
        self.block = -1
        self._block_hash: bytes | None = None  # of self.block, where reorganisations can happen
        self._synced_at = 0.0
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    # -- following the chain -----------------------------------------------------------------------

    def load(self) -> None:
        """Read everything once (at start-up), then follow events from the current block."""
        with self._lock:
            head = self.ledger.block_number()
            for key in self.ledger.keys("tasks"):
                self._reload_task(key)
            for key in self.ledger.keys("trainings"):
                self._reload_training(key)
            for key in self.ledger.keys("runners"):
                self._reload_runner(key)
            for key in self.ledger.keys("nodes"):
                self._reload_node(key)
            self.block = head
            self._remember(head)

    def _remember(self, block: int) -> None:
        if self.ledger.reorgs_possible:
            self._block_hash = self.ledger.block_hash(block)

    def _reorganised(self) -> bool:
        """True when the last block taken in is no longer on the chain."""
        if not self.ledger.reorgs_possible or self._block_hash is None or self.block < 0:
            return False
        return self.ledger.block_hash(self.block) != self._block_hash

    def sync_recent(self, max_age: float) -> None:
        """Catch up unless that was done less than max_age seconds ago: however many clients
        wait on this SN, it asks the chain at most once per max_age."""
        with self._lock:
            if time.monotonic() - self._synced_at >= max_age:
                self.sync()

    def wait_past(self, block: int, timeout: float) -> int:
        """Wait up to `timeout` seconds for the view to take in a block after `block` (a write
        of this SN's, or another SN's seen by a sync); returns the view's block."""
        with self._changed:
            if self.block <= block and timeout > 0:
                self._changed.wait(timeout)
            return self.block

    def sync(self) -> None:
        """Catch up with every block mined since the last call."""
        with self._lock:
            self._synced_at = time.monotonic()
            head = self.ledger.block_number()
            if head < self.block or self._reorganised():
                self._reload_all(head)
                return
            if head <= self.block:
                return
            # the head's hash before its logs: a reorganisation while they are read then shows
            # at the next sync
            head_hash = self.ledger.block_hash(head) if self.ledger.reorgs_possible else None
            # dicts, not sets: objects new to this SN are listed in the order the chain made them
            dirty: dict[str, dict[bytes, None]] = {"tasks": {}, "trainings": {}, "runners": {},
                                                   "nodes": {}}
            for kind, event, args in self.ledger.changes(self.block + 1, head):
                if event == "NodesAlive":
                    for key in args["keys"]:
                        row = self.nodes.rows.get(bytes(key))
                        if row is not None and row["alive_at"] < args["ts"]:
                            row["alive_at"] = args["ts"]
                            row["active"] = True
                    continue
                key = bytes(args["key"])
                if kind == "trainings" and self._apply_training(event, key, args):
                    continue
                dirty[kind][key] = None
            for key in dirty["tasks"]:
                self._reload_task(key)
            for key in dirty["trainings"]:
                self._reload_training(key)
            for key in dirty["runners"]:
                self._reload_runner(key)
            for key in dirty["nodes"]:
                self._reload_node(key)
            self.block = head
            self._block_hash = head_hash
            self._changed.notify_all()

    def _reload_all(self, head: int) -> None:
        log.warning("The chain reorganised below block %s (head %s): reading its state again",
                    self.block, head)
        self.tasks, self.trainings, self.runners, self.nodes = (_Table(), _Table(), _Table(),
                                                                _Table())
        self.peers.clear()
        self._bodies.clear()
        self._progress.clear()
        self._rejections.clear()
        self._checkins.clear()
        self._merges.clear()
        self.load()
        self._changed.notify_all()

    def _reload_task(self, key: bytes) -> None:
        row = _record(TASK_FIELDS, self.ledger.read("tasks", "task", key))
        self.tasks.put(key, row if row["state"] else None)
        self._bodies.pop(key, None)

    def _apply_training(self, event: str, key: bytes, args: dict[str, Any]) -> bool:
        """Take in a training's event from its contents; False when the row must be read."""
        if event == "TrainingChanged":
            self._set_training(key, {name: args["training"][name] for name in TRAINING_FIELDS})
            return True
        if event == "ProgressReported":
            self._progress.pop(key, None)
            return True
        if event == "Rejected":
            self._rejections.pop(key, None)
            return True
        if event not in ("CheckedIn", "Merged"):
            self._forget_rounds(key)
            return False
        row = self.trainings.rows.get(key)
        at = (key, args["round"])
        current = row is not None and row["resets"] == args["generation"]
        if event == "Merged":
            if current:
                self._merges[at] = {name: args["merge"][name] for name in MERGE_FIELDS}
            else:
                self._merges.pop(at, None)
            return True
        cached = self._checkins.get(at)
        if cached is None or not current:
            self._checkins.pop(at, None)  # read when asked for
            return True
        # as the contract does: a peer's new check-in replaces its old one in place
        where = {bytes(entry["peer"]): index for index, entry in enumerate(cached)}
        for entry in args["entries"]:
            record = {name: entry[name] for name in CHECKIN_FIELDS}
            index = where.get(bytes(record["peer"]))
            if index is None:
                where[bytes(record["peer"])] = len(cached)
                cached.append(record)
            else:
                cached[index] = record
        return True

    def _reload_training(self, key: bytes) -> None:
        self._set_training(key, _record(TRAINING_FIELDS,
                                        self.ledger.read("trainings", "training", key)))

    def _set_training(self, key: bytes, row: dict[str, Any]) -> None:
        old = self.trainings.rows.get(key)
        self.trainings.put(key, row if row["state"] else None)
        if old is None or not row["state"] or old["resets"] != row["resets"]:
            # a reset starts a new generation: its rounds and progress begin afresh
            self._forget_rounds(key)

    def _forget_rounds(self, key: bytes) -> None:
        self._progress.pop(key, None)
        self._rejections.pop(key, None)
        for cache in (self._checkins, self._merges):
            for cached in [k for k in cache if k[0] == key]:
                del cache[cached]

    def _reload_runner(self, key: bytes) -> None:
        row = _record(RUNNER_FIELDS, self.ledger.read("runners", "runner", key))
        self.runners.put(key, row if row["state"] else None)
        self.peers[key] = [_record(PEER_FIELDS, self.ledger.read("runners", "peer", key, i))
                           for i in range(row["enrolled"])]

    def _reload_node(self, key: bytes) -> None:
        row = _record(NODE_FIELDS, self.ledger.read("nodes", "node", key))
        self.nodes.put(key, row if row["registered_at"] else None)

    # -- reading -----------------------------------------------------------------------------------

    def task_body(self, key: bytes) -> list[str]:
        with self._lock:
            if key not in self._bodies:
                self._bodies[key] = list(self.ledger.read("tasks", "body_lines", key))
            return self._bodies[key]

    def progress(self, key: bytes) -> list[dict[str, Any]]:
        with self._lock:
            if key not in self._progress:
                self._progress[key] = [_record(PROGRESS_FIELDS, entry) for entry in
                                       self.ledger.read("trainings", "all_progress", key)]
            return self._progress[key]

    def rejections(self, key: bytes) -> list[dict[str, Any]]:
        """Per peer of this generation whose contributions a leader left out: how many, and
        the latest round and reason."""
        with self._lock:
            if key not in self._rejections:
                self._rejections[key] = [_record(REJECTION_FIELDS, entry) for entry in
                                         self.ledger.read("trainings", "all_rejections", key)]
            return self._rejections[key]

    def sync_round(self, key: bytes, number: int) -> dict[str, Any]:
        """One sync round of a training contract: its check-ins in chain order and its merge
        (None until the leader recorded one)."""
        with self._lock:
            at = (key, number)
            if at not in self._checkins:
                self._checkins[at] = [_record(CHECKIN_FIELDS, entry) for entry in
                                      self.ledger.read("trainings", "round_checkins", key,
                                                       number)]
            if at not in self._merges:
                merge = _record(MERGE_FIELDS, self.ledger.read("trainings", "round_merge", key,
                                                               number))
                self._merges[at] = merge if merge["merged_at"] else None
            return {"checkins": self._checkins[at], "merge": self._merges[at]}
