"""Content-addressed weight blobs on disk: `<sha256>.safetensors` files, written atomically,
pruned to the few that peers may still ask for."""

from __future__ import annotations

import errno
import os
import re
from collections import OrderedDict
from pathlib import Path

from swarmlearning.weights import digest

HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobStoreError(OSError):
    """A blob could not be stored (full disk, size limit); the message says where and why."""


class BlobStore:
    """Blobs by SHA-256 under one directory."""

    def __init__(self, root: Path, max_bytes: int = 8 << 30, keep: int = 6) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keep = keep
        self._pinned: OrderedDict[str, None] = OrderedDict()
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob("*.part"):
            stale.unlink(missing_ok=True)

    def path(self, name: str) -> Path:
        if not HEX_DIGEST.match(name):
            raise KeyError(f"not a blob name: {name!r}")
        return self.root / f"{name}.safetensors"

    def has(self, name: str) -> bool:
        return HEX_DIGEST.match(name) is not None and self.path(name).exists()

    def get(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def put(self, data: bytes) -> str:
        """Store bytes; returns their SHA-256. Nothing half-written is ever visible."""
        if len(data) > self.max_bytes:
            raise BlobStoreError(f"a {len(data)} byte blob is over the {self.max_bytes} byte "
                                 "limit")
        name = digest(data)
        target = self.path(name)
        if not target.exists():
            part = target.with_suffix(f".{os.getpid()}.part")
            try:
                with open(part, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(part, target)
            except OSError as exc:
                part.unlink(missing_ok=True)
                why = "no space left on the device" if exc.errno == errno.ENOSPC else str(exc)
                raise BlobStoreError(f"cannot store a {len(data)} byte blob in {self.root}: "
                                     f"{why}") from None
        self.pin(name)
        return name

    def pin(self, name: str) -> None:
        """Keep this blob; the oldest beyond `keep` pinned ones are deleted."""
        self._pinned.pop(name, None)
        self._pinned[name] = None
        while len(self._pinned) > self.keep:
            old, _ = self._pinned.popitem(last=False)
            self.path(old).unlink(missing_ok=True)
