"""Why a taskrunner wait is not moving: the checks behind WAIT FOR TASKRUNNER's notes and
early failures, so that no wait sits silent for more than 30 s.

Each poll hands the watch the taskrunner status, its enrolled peers and the swarm's node list.
It answers with notes (said once per situation) and, when the task can no longer finish, a
fatal reason:
* nobody enrolled after the grace period: which SWOPs are alive, or that none is;
* fewer peers enrolled than needed: how many are missing and which live SWOPs stayed out;
* an enrolled SWOP stopped reporting while its task runs (it died or lost its SN): fatal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GRACE_SECONDS = 30.0
STALE_SECONDS = 60.0
ACTIVE_PEER_STATES = ("ENROLLED", "RUNNING")


def wall_clock() -> dt.datetime:
    """Local time, as the SN writes i-am-alive (tests replace it)."""
    return dt.datetime.now()


def _seen_at(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


@dataclass
class TaskWatch:
    """State kept across polls of one wait."""

    started: float
    now: Callable[[], dt.datetime] = field(default_factory=lambda: wall_clock)
    grace: float = GRACE_SECONDS
    stale: float = STALE_SECONDS
    said: set[str] = field(default_factory=set)
    enrolled_seen: int = -1
    enrolled_since: float = 0.0

    def check(self, clock: float, status: dict[str, Any], peers: list[dict[str, Any]],
              nodes: list[dict[str, Any]]) -> tuple[list[str], str | None]:
        """(notes, fatal reason or None) for this poll; `clock` is monotonic seconds."""
        notes: list[str] = []
        runner = str(status.get("TASKRUNNER", ""))
        swops = {str(n.get("UUID")): n for n in nodes if n.get("NodeType") == "SWOP"}
        live = {uid: n for uid, n in swops.items() if self._alive(n)}
        # SNs that say where a SWOP listens let the watch leave out SWOPs of other taskrunners
        listening = {uid: n for uid, n in live.items()
                     if str(n.get("TASKRUNNER") or runner) == runner}
        enrolled = int(status.get("ENROLLED_PEERS") or 0)
        if enrolled != self.enrolled_seen:
            first = self.enrolled_seen < 0
            self.enrolled_seen = enrolled
            self.enrolled_since = self.started if first else clock
        for peer in peers:
            uid = str(peer.get("SWOP_UID"))
            if str(peer.get("SWOP_PEER_STATUS")) not in ACTIVE_PEER_STATES or uid in live:
                continue
            node = swops.get(uid)
            last = f"last sign of life {node.get('i-am-alive')}" if node else "it left the swarm"
            return notes, (f"SWOP {uid} ({peer.get('NAME') or 'no group'}) stopped reporting "
                           f"while its task runs ({last}); restart it and ASSIGN TASK ... "
                           "TARGET it, or RESET TASKRUNNER")
        if clock - self.started < self.grace or clock - self.enrolled_since < self.grace:
            return notes, None
        names = ", ".join(f"{n.get('ContainerName') or uid} ({uid})"
                          for uid, n in listening.items())
        enrolled_uids = {str(p.get("SWOP_UID")) for p in peers}
        if enrolled == 0:
            if not listening:
                elsewhere = sorted({str(n.get("TASKRUNNER")) for n in live.values()})
                where = (f"; the live SWOPs listen on {', '.join(elsewhere)}" if elsewhere
                         else "")
                return notes, (f"no SWOP has enrolled after {self.grace:g} s and no live SWOP "
                               f"listens on {runner or 'this taskrunner'}{where}, so nothing can "
                               "run the task; start one (START SWOP <name> PROFILE <file>, or "
                               "swci run-swop)")
            self._say(notes, "none", f"no SWOP has enrolled after {self.grace:g} s; live SWOPs: "
                                     f"{names}. A SWOP enrolls only on its profile's taskrunner "
                                     "and only when it is not busy with another task")
            return notes, None
        needed = status.get("PEERS_NEEDED")
        have = int(status.get("ENROLLED_UNITS") or enrolled)
        if needed == "ALL":
            needed, have = status.get("SWOPS_NEEDED"), enrolled
        if isinstance(needed, int) and have < needed:
            idle = [f"{listening[uid].get('ContainerName') or uid} ({uid})" for uid in listening
                    if uid not in enrolled_uids]
            others = ("live SWOPs not enrolled: " + ", ".join(idle)) if idle else (
                "every live SWOP is already enrolled; start more SWOPs or ASSIGN TASK ... "
                "TARGET one")
            self._say(notes, f"short-{have}-{enrolled}", f"{needed - have} more peer(s) needed: "
                                                         f"{have} of {needed} enrolled; {others}")
        return notes, None

    def _alive(self, node: dict[str, Any]) -> bool:
        age = node.get("SECONDS_SINCE_ALIVE")
        if isinstance(age, int | float):  # the SN's own clock: no skew between machines
            return age <= self.stale
        seen = _seen_at(node.get("i-am-alive"))
        return seen is not None and (self.now() - seen).total_seconds() <= self.stale

    def _say(self, notes: list[str], key: str, text: str) -> None:
        if key not in self.said:
            self.said.add(key)
            notes.append(text)
