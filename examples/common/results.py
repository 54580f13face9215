"""What the example programs report: a digest of the final weights (equal digests mean equal
models) and a JSON result file at RESULT_FILE, its directory made when needed."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def weights_digest(tensors: Iterable[tuple[str, Any]]) -> str:
    """SHA-256 over (name, array) pairs in name order; arrays need `.tobytes()`."""
    hasher = hashlib.sha256()
    for name, array in sorted(tensors, key=lambda item: item[0]):
        hasher.update(name.encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def write_result(result: dict[str, Any], path: str | None = None) -> None:
    """Write `result` as JSON to `path` (default: the RESULT_FILE variable; nothing if unset)."""
    target = path or os.environ.get("RESULT_FILE")
    if not target:
        return
    file = Path(target)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(result), encoding="utf-8")
