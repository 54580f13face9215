"""Sync rounds, as one SL takes part in them.

Every decision is made from chain state that all peers see alike (through their SNs):
- a round is ready once `minPeers` have checked in, and unless every peer that checked in has
  finished training, or all expected peers are in (so finished peers don't spin rounds alone);
- it closes when every expected peer is in, or `SL_WAIT_FOR_FULL_QUORUM_SECONDS` after it became
  ready;
- its leader is the first check-in, in chain order, of a peer that may lead
  (`SL_MAKE_ME_ADMIN`); if that leader has not recorded a merge `SL_LEADER_FAILURE_BASE_TIMEOUT`
  seconds after the round closed, the next one takes over (LFDR), and so on;
- the leader fetches the contributions, drops the bad ones (hash, size, shapes, dtypes, NaN or
  Inf) and, with coordmedian or geomedian, the far outliers (`SL_MERGE_OUTLIER_FACTOR`), merges
  the rest in the order of their hashes (so the result does not depend on who leads), and
  records the merged blob's hash with the rejected contributions and their reasons (PERFDATA
  shows them); the contract accepts one merge per round,
  so a returning old leader finds the round done and just takes the merged model;
- round 0 of a contract is the initial sync: the leader's own weights become everyone's start.

One piece: this is the sync round engine, one state machine (check in, wait for the quorum, lead
or follow, take over from a silent leader, fetch the merge) over one lock and one clock; each
step reads the state the others leave, so split apart they would share their internals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarmlearning.merge import DEFAULT_OUTLIER_FACTOR, MergeError, robust_merge, screen
from swarmlearning.sl.blobs import BlobStore
from swarmlearning.sl.peerfetch import FetchError, PeerFetcher
from swarmlearning.sn.client import SNClient, SNError
from swarmlearning.weights import Buffer, WeightsError, from_bytes, to_bytes

log = logging.getLogger("swarm.sl")
FLAG_MAY_LEAD = 1
FLAG_DONE = 2
POLL_SECONDS = 1.0
NOTE_EVERY = 10.0
FETCH_SECONDS = 30.0
FETCH_THREADS = 8
MODES = ("inactive", "snapshot", "active")
MAX_REASON = 200  # bytes of a rejection's reason on the chain
MAX_REJECTED = 64  # rejections one merge records (the rest are in the leader's log)


class SessionError(RuntimeError):
    """A session cannot go on; the message is for the ML program's user."""


class Stopped(SessionError):
    """The SL is shutting down."""


@dataclass
class Session:
    """One ML program's training, as its SwarmCallback opened it."""

    contract: str
    min_peers: int
    weight: int = 1
    merge_method: str = "mean"
    mode: str = "snapshot"
    total_epochs: int = 0
    completed_epochs: int = 0
    loss: float = 0.0
    metric: float = 0.0
    led_last: bool = False
    syncs: int = 0


@dataclass(frozen=True)
class RoundResult:
    round: int
    blob: Buffer
    digest: str
    leader: bool
    over: bool


class LazyBlob(Mapping[str, np.ndarray]):
    """A stored blob read one tensor at a time (the layer-by-layer merge)."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open

        self._file = safe_open(str(path), framework="numpy")
        self._names = list(self._file.keys())

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        return self._file.get_tensor(name)

    def __iter__(self) -> Any:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class RoundEngine:
    """One SL's part in the sync rounds of its sessions."""

    def __init__(self, uid: str, sn: SNClient, store: BlobStore, peers: PeerFetcher,
                 stop: threading.Event, *, make_me_admin: bool = True,
                 wait_full_quorum: float = 30.0, leader_failure_timeout: float = 600.0,
                 ram_intensive: bool = True, merge_backend: str = "numpy",
                 outlier_factor: float = DEFAULT_OUTLIER_FACTOR) -> None:
        self.uid = uid
        self.sn = sn
        self.store = store
        self.peers = peers
        self.stop = stop
        self.make_me_admin = make_me_admin
        self.wait_full_quorum = wait_full_quorum
        self.leader_failure_timeout = leader_failure_timeout
        self.ram_intensive = ram_intensive
        self.merge_backend = merge_backend
        self.outlier_factor = outlier_factor
        self._scratch: list[str] = []  # a leader's unpinned copies of contributions
        self._gathered = 0.0  # when the leader last had every contribution in hand
        self.latest: tuple[int, str] | None = None

    # -- the session's requests --------------------------------------------------------------------

    def open(self, session: Session) -> dict[str, Any]:
        status = self._call(self.sn.round, session.contract)
        if status["state"] == "COMPLETED":
            raise SessionError(f"training contract {session.contract!r} is COMPLETED; run "
                               f"RESET CONTRACT {session.contract} in SWCI to train again")
        return status

    def sync(self, session: Session, blob: Buffer, kind: str,
             note: Callable[[str], None]) -> RoundResult:
        """Contribute weights at a sync point (or, for a late joiner's initial sync, take the
        latest merged model) and return the round's merged model."""
        _parse(blob, "the ML program's weights")
        own = self.store.put(blob)
        return self._take_part(session, own, kind, done=False, note=note)

    def finish(self, session: Session, blob: Buffer,
               note: Callable[[str], None]) -> RoundResult:
        """The ML finished training: keep checking in per `checkinModelOnTrainEnd` until every
        peer has finished, then return the swarm's final model."""
        _parse(blob, "the ML program's final weights")
        final = self.store.put(blob)
        while True:
            contribution = final
            if session.mode == "active" and self.latest is not None and \
                    self.store.has(self.latest[1]):
                contribution = self.latest[1]
            result = self._take_part(session, contribution, "train", done=True, note=note)
            if result.over:
                return result

    # -- one round ---------------------------------------------------------------------------------

    def _take_part(self, session: Session, own: str, kind: str, done: bool,
                   note: Callable[[str], None]) -> RoundResult:
        while True:
            self._check_stop()
            status = self._call(self.sn.round, session.contract)
            number = status["current_round"]
            if status["state"] == "COMPLETED":
                if number == 0:
                    raise SessionError(f"contract {session.contract!r} completed without a "
                                       "merged model")
                return self._adopt(session, number - 1, over=True)
            if kind == "init" and number > 0:
                note(f"joining contract {session.contract!r} at round {number}: starting "
                     "from the latest merged model")
                return self._adopt(session, number - 1, over=False)
            weight = 0 if done and session.mode == "inactive" else session.weight
            flags = (FLAG_MAY_LEAD if self.make_me_admin else 0) | (FLAG_DONE if done else 0)
            try:
                answer = self._call(self.sn.checkin, session.contract, self.uid, number, own,
                                    weight, flags, session.min_peers)
            except SNError as exc:
                if exc.status == 409:
                    log.info("Check-in for round %s refused (%s); reading the contract again",
                             number, exc)
                    continue
                raise SessionError(str(exc)) from None
            log.info("Checked in for round %s of %s (weight %s%s)", number, session.contract,
                     weight, ", finished" if done else "")
            # the check-in's answer is the round as it stood right after the write: the
            # first poll, without asking again
            first = answer if isinstance(answer, dict) and answer.get("round") == number \
                else None
            result = self._await_round(session, number, own, note, first)
            if result is not None:
                session.syncs += 1
                return result

    def _await_round(self, session: Session, number: int, own: str,
                     note: Callable[[str], None],
                     first: dict[str, Any] | None = None) -> RoundResult | None:
        seen = ""
        ready_at: float | None = None
        closed_at: float | None = None
        tried: set[int] = set()
        noted: dict[str, float] = {}

        def say(key: str, message: str, every: float = NOTE_EVERY) -> None:
            now = time.monotonic()
            if now - noted.get(key, -every) >= every:
                noted[key] = now
                log.info("%s", message)
                note(message)

        while True:
            self._check_stop()
            if first is not None:
                status, first = first, None
            else:
                status = self._call(self.sn.round, session.contract, number, POLL_SECONDS,
                                    seen)
            seen = status["version"]
            merge_record = status["merge"]
            if merge_record is not None:
                return self._merged(session, number, status, own, note)
            if status["current_round"] != number:
                return None  # the contract was reset or moved on without this round
            checkins = status["checkins"]
            count, expected = len(checkins), max(status["expected_peers"], session.min_peers)
            all_done = all(c["done"] for c in checkins)
            if count < session.min_peers or (all_done and count < expected):
                ready_at = closed_at = None
                missing = max(session.min_peers - count, 1)
                say("quorum", f"round {number}: {count} peer(s) checked in, minPeers is "
                              f"{session.min_peers}; waiting for {missing} more")
                continue
            now = time.monotonic()
            if ready_at is None:
                ready_at = now
            if closed_at is None:
                if count >= expected or now - ready_at >= self.wait_full_quorum:
                    closed_at = now
                else:
                    say("full", f"round {number}: {count} of {expected} peers in; waiting "
                                f"up to {self.wait_full_quorum:g} s for the rest")
                    continue
            attempt = int((now - closed_at) // self.leader_failure_timeout) \
                if self.leader_failure_timeout > 0 else 0
            candidates = [c for c in checkins if c["may_lead"]] or checkins
            leader = candidates[attempt % len(candidates)]["uid"]
            if attempt > 0 and attempt not in tried:
                previous = candidates[(attempt - 1) % len(candidates)]["uid"]
                say(f"lfdr{attempt}", f"round {number}: leader {previous} recorded no merge "
                                      f"within {self.leader_failure_timeout:g} s; {leader} "
                                      "takes over", every=0)
            if leader == self.uid and attempt not in tried:
                tried.add(attempt)
                result = self._lead(session, number, own, status)
                if result is not None:
                    return result
            elif leader != self.uid:
                tried.add(attempt)
                say(f"leader{attempt}", f"round {number}: {count} peers in; {leader} is "
                                        "merging")

    # -- leading -----------------------------------------------------------------------------------

    def _lead(self, session: Session, number: int, own: str,
              status: dict[str, Any]) -> RoundResult | None:
        checkins = status["checkins"]
        started = self._gathered = time.monotonic()
        rejected: dict[str, str] = {}
        if number == 0:
            blob, merged, used = self.store.get(own), own, [c["uid"] for c in checkins]
        else:
            built = self._merge(session, number, own, checkins, rejected)
            if built is None:
                return None
            blob, used = built
            merged = self.store.put(blob)
        built_at = time.monotonic()
        expected = max(status["expected_peers"], session.min_peers)
        final = all(c["done"] for c in checkins) and len(checkins) >= expected
        try:
            self._call(self.sn.record_merge, session.contract, number, self.uid, merged, used,
                       final, [{"uid": uid, "reason": _fit(reason)}
                               for uid, reason in list(rejected.items())[:MAX_REJECTED]])
        except SNError as exc:
            if exc.status == 409:
                log.info("Round %s: another leader recorded first (%s)", number, exc)
                return None
            raise SessionError(str(exc)) from None
        log.info("Round %s: merged %d contribution(s) with %s in %.2f s as leader (gathered "
                 "in %.2f s, merged in %.2f s, recorded in %.2f s)%s", number, len(used),
                 session.merge_method, time.monotonic() - started, self._gathered - started,
                 built_at - self._gathered, time.monotonic() - built_at,
                 "; training complete" if final else "")
        session.led_last = True
        self.latest = (number, merged)
        return RoundResult(number, blob, merged, leader=True, over=final)

    def _merge(self, session: Session, number: int, own: str, checkins: list[dict[str, Any]],
               rejected: dict[str, str]) -> tuple[bytearray, list[str]] | None:
        """The merged model's bytes and the UIDs in it; None when nothing could be merged.
        Every contribution left out goes into `rejected` ({uid: reason}) and the log."""
        weighted = [c for c in checkins if c["weight"] > 0]
        # in the order of their hashes, not of their check-ins: the same contributions give
        # the same merged model to the bit, whoever leads and whoever checked in first
        entries = sorted(weighted or checkins, key=lambda c: (c["contribution"], c["uid"]))
        weights = [float(c["weight"]) if weighted else 1.0 for c in entries]
        try:
            return self._merge_gathered(session, number, entries, weights, rejected)
        finally:
            for name in self._scratch:
                self.store.drop(name)
            self._scratch.clear()

    def _merge_gathered(self, session: Session, number: int, entries: list[dict[str, Any]],
                        weights: list[float], rejected: dict[str, str]
                        ) -> tuple[bytearray, list[str]] | None:

        def reject(uid: str, reason: str) -> None:
            reason = reason or "no reason given"
            log.warning("Round %s: rejected the contribution of %s: %s", number, uid, reason)
            rejected[uid] = reason

        loaded = self._gather(number, entries, reject)
        self._gathered = time.monotonic()
        models: list[Mapping[str, np.ndarray]] = []
        kept: list[tuple[dict[str, Any], float]] = []
        for entry, weight, model in zip(entries, weights, loaded, strict=True):
            if model is not None:
                models.append(model)
                kept.append((entry, weight))
        good = list(range(len(models)))
        try:
            # the merge checks every contribution as it goes (a NaN or Inf shows in the
            # result), so clean rounds read each one once; a bad one sends the round through
            # the screen, which drops every bad contribution, and the rest are merged again
            result, far = self._merge_models(session, models, [w for _, w in kept])
        except MergeError as exc:
            if exc.peer is None:
                log.error("Round %s: merge failed: %s", number, exc)
                return None
            good, bad = screen(models)
            for index, reason in bad:
                reject(kept[index][0]["uid"], reason)
            if not good:
                log.error("Round %s: no usable contribution to merge", number)
                return None
            try:
                result, far = self._merge_models(session, [models[i] for i in good],
                                                 [kept[i][1] for i in good])
            except MergeError as exc:
                log.error("Round %s: merge failed: %s", number, exc)
                return None
            far = [(good[index], reason) for index, reason in far]
        for index, reason in far:
            reject(kept[index][0]["uid"], reason)
        left_out = {index for index, _ in far}
        return to_bytes(result), [kept[i][0]["uid"] for i in good if i not in left_out]

    def _merge_models(self, session: Session, models: list[Mapping[str, np.ndarray]],
                      weights: list[float]
                      ) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
        return robust_merge(session.merge_method, models, weights,
                            outlier_factor=self.outlier_factor,
                            layerwise=not self.ram_intensive, backend=self.merge_backend)

    def _gather(self, number: int, entries: list[dict[str, Any]],
                reject: Callable[[str, str], None]) -> list[Mapping[str, np.ndarray] | None]:
        """Every contribution: those held here first (so that nothing fetched can push them
        out), then the others, fetched from the peers at once; None where one could not be had.
        In RAM-intensive mode fetched blobs stay in memory (their owners serve them);
        otherwise they are written unpinned, read a tensor at a time, and dropped after the
        merge."""

        def held(entry: dict[str, Any]) -> Mapping[str, np.ndarray] | None:
            try:
                return self._load(entry["contribution"])
            except (WeightsError, SessionError, OSError) as exc:
                reject(entry["uid"], str(exc))
                return None

        def fetched(entry: dict[str, Any]) -> Mapping[str, np.ndarray] | None:
            name = entry["contribution"]
            try:
                data = self.peers.fetch(entry["host"], entry["port"], name)
                if self.ram_intensive:
                    return _parse(data, f"the contribution of {entry['uid']}")
                self.store.put(data, name, pin=False)
                self._scratch.append(name)
                return self._load(name)
            except (FetchError, WeightsError, SessionError, OSError) as exc:
                reject(entry["uid"], str(exc))
                return None

        local = {i for i, e in enumerate(entries) if self.store.has(e["contribution"])}
        loaded: dict[int, Mapping[str, np.ndarray] | None] = {i: held(entries[i])
                                                               for i in local}
        remote = [i for i in range(len(entries)) if i not in local]
        if len(remote) <= 1:
            loaded.update({i: fetched(entries[i]) for i in remote})
        else:
            with ThreadPoolExecutor(max_workers=min(len(remote), FETCH_THREADS),
                                    thread_name_prefix="fetch") as pool:
                loaded.update(zip(remote, pool.map(fetched, [entries[i] for i in remote]),
                                  strict=True))
        return [loaded[i] for i in range(len(entries))]

    def _load(self, name: str) -> Mapping[str, np.ndarray]:
        if self.ram_intensive:
            return _parse(self.store.get(name), f"blob {name[:12]}")
        try:
            return LazyBlob(self.store.path(name))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad blob
            raise WeightsError(f"blob {name[:12]} is not safetensors: {exc}") from None

    # -- following ---------------------------------------------------------------------------------

    def _merged(self, session: Session, number: int, status: dict[str, Any],
                own: str | None = None,
                note: Callable[[str], None] = lambda message: None) -> RoundResult:
        record = status["merge"]
        name = record["merged"]
        leader = record["leader"] == self.uid
        session.led_last = leader
        over = status["state"] == "COMPLETED" and status["current_round"] == number + 1
        blob = self._fetch_merged(number, name, record, status["checkins"], note)
        if blob is None:
            if own is None or not self.store.has(own):
                raise SessionError(f"round {number}: the merged model {name[:12]} is not "
                                   "available from any peer")
            message = (f"round {number}: the merged model {name[:12]} is not available from "
                       "any peer (its leader went away after recording it); carrying on with "
                       "this node's own weights")
            log.error("%s", message)
            note(message)
            return RoundResult(number, self.store.get(own), own, leader=False, over=over)
        self.latest = (number, name)
        return RoundResult(number, blob, name, leader=leader, over=over)

    def _adopt(self, session: Session, number: int, over: bool) -> RoundResult:
        status = self._call(self.sn.round, session.contract, number)
        if status["merge"] is None:
            raise SessionError(f"round {number} of {session.contract!r} has no merged model")
        result = self._merged(session, number, status)
        return RoundResult(result.round, result.blob, result.digest, result.leader, over)

    def _fetch_merged(self, number: int, name: str, record: dict[str, Any],
                      checkins: list[dict[str, Any]],
                      note: Callable[[str], None]) -> Buffer | None:
        """The merged blob: from this node's store, else the leader, else any participant
        (content addressing makes every copy as good as the leader's). None when no peer has
        served it within FETCH_SECONDS."""
        if self.store.has(name):
            self.store.pin(name)
            return self.store.get(name)
        where = {c["uid"]: (c["host"], c["port"]) for c in checkins}
        order = [record["leader"]] + [uid for uid in record["participants"]
                                      if uid != record["leader"]]
        started = time.monotonic()
        last_note = started
        problems: list[str] = []
        while time.monotonic() - started < FETCH_SECONDS:
            for uid in order:
                if uid == self.uid or uid not in where:
                    continue
                try:
                    data = self.peers.fetch(*where[uid], name)
                except FetchError as exc:
                    problems.append(str(exc))
                    continue
                self.store.put(data, name)
                log.info("Round %s: fetched the merged model from %s in %.2f s", number, uid,
                         time.monotonic() - started)
                return data
            if time.monotonic() - last_note >= NOTE_EVERY:
                last_note = time.monotonic()
                message = (f"round {number}: cannot fetch the merged model yet "
                           f"({problems[-1] if problems else 'no peer holds it'}); retrying")
                log.warning("%s", message)
                note(message)
            self._check_stop()
            time.sleep(1.0)
        log.warning("Round %s: giving up on the merged model %s after %.0f s: %s", number,
                    name[:12], FETCH_SECONDS, "; ".join(problems[-3:]))
        return None

    # -- plumbing ----------------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped("the SL node is stopping")

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except SNError as exc:
            if exc.status in (0, 404, 422, 503):
                raise SessionError(str(exc)) from None
            raise


def _parse(blob: Buffer, what: str) -> dict[str, np.ndarray]:
    try:
        return from_bytes(blob)
    except WeightsError as exc:
        raise SessionError(f"{what}: {exc}") from None


def _fit(reason: str) -> str:
    """A reason cut to MAX_REASON bytes of UTF-8 (at a character boundary), marked when cut."""
    data = reason.encode("utf-8")
    if len(data) <= MAX_REASON:
        return reason
    return data[:MAX_REASON - 3].decode("utf-8", errors="ignore") + "..."
