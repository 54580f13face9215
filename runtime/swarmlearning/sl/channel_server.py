"""The SL end of the local channel: one thread per connected ML program, each request answered
in order (protocol: swarmlearning.ml.channel)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmlearning.defaults import DEFAULT_CONTRACT, MERGE_METHODS
from swarmlearning.ml.channel import (
    PROTOCOL_VERSION,
    BadFrame,
    ChannelError,
    FrameTooLarge,
    recv_frame,
    send_frame,
)
from swarmlearning.sl.blobs import BlobStoreError
from swarmlearning.sl.rounds import MODES, RoundEngine, RoundResult, Session, SessionError

log = logging.getLogger("swarm.sl")
METHODS = MERGE_METHODS
MAX_CONTRACT = 160
MAX_WORD = 32
MAX_EPOCHS = 10**9
SHOWN = 40  # characters of a wrong value quoted back


def _shown(value: Any) -> str:
    """A wrong value as a refusal quotes it: its repr, cut to SHOWN characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + f"... ({len(text)} characters)"


def _whole(params: dict[str, Any], name: str, low: int, high: int, default: Any = None) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SessionError(f"{name} must be a whole number from {low} to {high}; got "
                           f"{_shown(value)}")
    return value


def _length(value: Any) -> str:
    return f"; got {len(value)}" if isinstance(value, str) else f"; got {type(value).__name__}"


def _word(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed` (case-insensitive); the refusal quotes a wrong value only when it is
    short."""
    if not isinstance(value, str):
        raise SessionError(f"{field} must be one of {', '.join(allowed)}; got a "
                           f"{type(value).__name__}")
    if len(value) > MAX_WORD:
        raise SessionError(f"{field} must be one of {', '.join(allowed)}; got "
                           f"{len(value)} characters (the limit is {MAX_WORD})")
    if value.lower() not in allowed:
        raise SessionError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value.lower()


def session_from(params: Any) -> Session:
    """A Session from the `open` request's parameters, checked again on this side."""
    if not isinstance(params, dict):
        raise SessionError("open needs a params object")
    contract = params.get("trainingContract") or DEFAULT_CONTRACT
    if not isinstance(contract, str) or len(contract) > MAX_CONTRACT:
        raise SessionError(f"trainingContract must be a name of at most {MAX_CONTRACT} "
                           "characters" + _length(contract))
    method = _word(params.get("mergeMethod") or "mean", "mergeMethod", METHODS)
    mode = _word(params.get("checkinModelOnTrainEnd") or "snapshot", "checkinModelOnTrainEnd",
                 MODES)
    return Session(contract=contract, min_peers=_whole(params, "minPeers", 1, 256),
                   weight=_whole(params, "nodeWeightage", 1, 100, 1), merge_method=method,
                   mode=mode, total_epochs=_whole(params, "totalEpochs", 0, MAX_EPOCHS, 0))


class ChannelServer:
    """Accepts ML programs on a Unix socket and serves their requests with a RoundEngine."""

    def __init__(self, path: Path, engine: RoundEngine,
                 report: Callable[[Session], None]) -> None:
        self.path = path
        self.engine = engine
        self.report = report
        self.sessions: list[Session] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.listen(8)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="channel")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="ml-session").start()

    def _serve(self, conn: socket.socket) -> None:
        session: Session | None = None
        log.info("ML program connected on %s", self.path)
        with conn:
            while True:
                try:
                    header, payload = recv_frame(conn, self.engine.store.max_bytes)
                except FrameTooLarge as exc:
                    log.error("ML program sent a %s; closing its channel", exc)
                    self._send(conn, {"type": "error", "message": f"{exc}; raise the SL's "
                                      "blob size limit (SL_MAX_BLOB_BYTES) or send a smaller "
                                      "model"})
                    return
                except BadFrame as exc:
                    log.error("ML program sent a bad request: %s", exc)
                    self._send(conn, {"type": "error", "message": str(exc)})
                    continue
                except (ChannelError, OSError) as exc:
                    log.info("ML program disconnected (%s)", exc)
                    return
                try:
                    session = self._handle(conn, session, header, payload)
                except (SessionError, BlobStoreError) as exc:
                    # BlobStoreError: a full disk or the size limit, said where and why
                    log.error("%s", exc)
                    self._send(conn, {"type": "error", "message": str(exc)})
                except Exception as exc:  # noqa: BLE001 - the ML gets the reason, the log the trace
                    log.exception("Request %s failed", header.get("type"))
                    self._send(conn, {"type": "error",
                                      "message": f"SL internal error: {type(exc).__name__}: "
                                                 f"{exc}"})

    def _send(self, conn: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
        try:
            send_frame(conn, header, payload)
        except OSError as exc:
            log.warning("Could not answer the ML program: %s", exc)

    def _handle(self, conn: socket.socket, session: Session | None, header: dict[str, Any],
                payload: bytes) -> Session | None:
        kind = header["type"]
        if header.get("version") != PROTOCOL_VERSION:
            raise SessionError(f"channel protocol version mismatch: this SL speaks version "
                               f"{PROTOCOL_VERSION}, the ML program sent "
                               f"{_shown(header.get('version'))}; install the same swci release "
                               "for both")

        def note(message: str) -> None:
            self._send(conn, {"type": "waiting", "message": message})

        if kind == "open":
            session = session_from(header.get("params"))
            status = self.engine.open(session)
            self.sessions.append(session)
            self.report(session)
            log.info("Session open: contract %s, minPeers %s, mergeMethod %s, weight %s, "
                     "on train end %s", session.contract, session.min_peers,
                     session.merge_method, session.weight, session.mode)
            self._send(conn, {"type": "ok", "session": {
                "contract": session.contract, "round": status["current_round"],
                "uid": self.engine.uid}})
            return session
        if session is None:
            raise SessionError(f"{_shown(kind)} before open: the ML program must open a "
                               "session first")
        if kind == "sync":
            sync_kind = header.get("kind", "train")
            if sync_kind not in ("init", "train"):
                raise SessionError(f"sync kind must be init or train; got {_shown(sync_kind)}")
            self._progress(session, header)
            result = self.engine.sync(session, payload, sync_kind, note)
            self._answer(conn, "merged", result)
            self.report(session)
        elif kind == "progress":
            self._progress(session, header)
            self.report(session)
            self._send(conn, {"type": "ok"})
        elif kind == "close":
            self._progress(session, header)
            mode = str(header.get("mode") or session.mode).lower()
            if mode not in MODES:
                raise SessionError(f"checkinModelOnTrainEnd must be one of {', '.join(MODES)}")
            session.mode = mode
            log.info("ML finished training; checking in with %r until every peer is done",
                     mode)
            result = self.engine.finish(session, payload, note)
            self._answer(conn, "final", result)
            self.report(session)
            log.info("Training on contract %s is complete (round %s)", session.contract,
                     result.round)
        else:
            raise SessionError(f"unknown request {_shown(kind)}")
        return session

    def _answer(self, conn: socket.socket, kind: str, result: RoundResult) -> None:
        self._send(conn, {"type": kind, "round": result.round, "leader": result.leader,
                          "over": result.over, "digest": result.digest}, result.blob)

    @staticmethod
    def _progress(session: Session, header: dict[str, Any]) -> None:
        for field, attr in (("completed_epochs", "completed_epochs"),
                            ("total_epochs", "total_epochs")):
            value = header.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_EPOCHS:
                setattr(session, attr, value)
        for field in ("loss", "metric"):
            value = header.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    setattr(session, field, float(value))
                except OverflowError:  # an integer too large for a float: not a loss
                    continue
