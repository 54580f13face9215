"""One interpreter session per client certificate: contexts, working directory and uploads of
one identity are never seen by another."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from swci.interpreter import Interpreter, SessionState


@dataclass
class Session:
    """The interpreter of one client identity, and the lock its state-changing commands take."""

    identity: str
    name: str
    interp: Interpreter
    uploads: Path
    lock: threading.Lock = field(default_factory=threading.Lock)


def identity_of(der: bytes) -> tuple[str, str]:
    """(SHA-256 fingerprint, subject common name) of a DER certificate."""
    fingerprint = hashlib.sha256(der).hexdigest()
    try:
        names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)
        name = str(names[0].value) if names else fingerprint[:16]
    except ValueError:
        name = fingerprint[:16]
    return fingerprint, name


class Sessions:
    """Sessions by certificate fingerprint, made on first use."""

    def __init__(self, root: Path, *, usr_dir: Path | None = None,
                 workspace: Path | None = None,
                 make_interpreter: Callable[[SessionState], Interpreter] = Interpreter) -> None:
        self.root = root
        self.usr_dir = usr_dir
        self.workspace = workspace
        self.make_interpreter = make_interpreter
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def for_certificate(self, der: bytes) -> Session:
        fingerprint, name = identity_of(der)
        with self._lock:
            session = self._sessions.get(fingerprint)
            if session is None:
                uploads = self.root / "clients" / fingerprint[:16] / "uploads"
                uploads.mkdir(parents=True, exist_ok=True)
                cwd = self.usr_dir or uploads
                state = SessionState(cwd=cwd, usr_dir=self.usr_dir, workspace=self.workspace,
                                     uploads=uploads)
                session = Session(fingerprint, name, self.make_interpreter(state), uploads)
                self._sessions[fingerprint] = session
            return session

    def __len__(self) -> int:
        return len(self._sessions)
