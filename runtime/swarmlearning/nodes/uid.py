"""A node's UUID: made once, kept in its data directory (kept apart from the SN's module so
that SL and SWOP start without loading the chain libraries)."""

from __future__ import annotations

import uuid
from pathlib import Path

UID_FILE = "node-uid"


def node_uid(data_dir: Path) -> str:
    """This node's UUID, made once and kept in its data directory."""
    path = data_dir / UID_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    uid = str(uuid.uuid4())
    path.write_text(uid + "\n", encoding="utf-8")
    return uid
