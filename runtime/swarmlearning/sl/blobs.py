"""Content-addressed weight blobs, pruned to the few that peers may still ask for.

Two kinds of store, one interface:
- in memory (`SL_RAM_INTENSIVE`, the default): a sync round never touches the disk. A blob is
  the very buffer the ML program or a peer sent; the file server sends it from there.
- on disk: `<sha256>.safetensors` files under the data directory, written atomically, and
  merged a tensor at a time, for models that do not fit in memory several times over. Blobs are
  not fsynced: they live for a few rounds, and a file that a crash of the machine cut short is
  found when the store opens (every blob is checked against its name then) and removed. The
  blobs an earlier run left are kept, the newest `keep` of them. A crash
  of the SL process alone loses nothing, as the page cache survives it.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

from swarmlearning.weights import Buffer, digest

HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
KEEP_IN_MEMORY = 3  # this round's contribution, the last merged model, and one before it
KEEP_ON_DISK = 6


class BlobStoreError(OSError):
    """A blob could not be stored (full disk, size limit); the message says where and why."""


class BlobStore:
    """Blobs by SHA-256, in memory or under one directory."""

    def __init__(self, root: Path, max_bytes: int = 8 << 30, keep: int | None = None,
                 memory: bool = False) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.memory = memory
        self.keep = keep or (KEEP_IN_MEMORY if memory else KEEP_ON_DISK)
        self._pinned: OrderedDict[str, None] = OrderedDict()
        self._held: dict[str, Buffer] = {}
        self._lock = threading.Lock()
        if memory:
            return
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob("*.part"):
            stale.unlink(missing_ok=True)
        kept = []
        for blob in root.glob("*.safetensors"):
            if digest(blob.read_bytes()) != blob.stem:
                blob.unlink(missing_ok=True)
            else:
                kept.append((blob.stat().st_mtime, blob.stem))
        # an earlier run's blobs count against `keep` too, newest last, so that restarts do
        # not pile them up (a 30-minute soak of train-and-restart cycles found that)
        for _, name in sorted(kept):
            self.pin(name)

    def path(self, name: str) -> Path:
        """Where an on-disk blob lives."""
        if not HEX_DIGEST.match(name):
            raise KeyError(f"not a blob name: {name!r}")
        return self.root / f"{name}.safetensors"

    def has(self, name: str) -> bool:
        if not HEX_DIGEST.match(name):
            return False
        if self.memory:
            return name in self._held
        return self.path(name).exists()

    def get(self, name: str) -> Buffer:
        """The blob's bytes; an OSError when it is not here (any more)."""
        if self.memory:
            with self._lock:
                data = self._held.get(name)
            if data is None:
                raise BlobStoreError(f"blob {name[:12]} is not held here")
            return data
        return self.path(name).read_bytes()

    def put(self, data: Buffer, name: str | None = None, pin: bool = True) -> str:
        """Store bytes; returns their SHA-256. `name` is that hash when the caller has just
        checked it (a fetched blob). Nothing half-written is ever visible. The buffer must not
        change afterwards: the memory store keeps it as it is. An unpinned blob is never
        pruned: its caller drops it when done (a leader's copy of a contribution)."""
        if len(data) > self.max_bytes:
            raise BlobStoreError(f"a {len(data)} byte blob is over the {self.max_bytes} byte "
                                 "limit")
        name = name or digest(data)
        if self.memory:
            with self._lock:
                self._held.setdefault(name, data)
        else:
            self._write(name, data)
        if pin:
            self.pin(name)
        return name

    def drop(self, name: str) -> None:
        """Remove a blob that nobody pinned."""
        with self._lock:
            if name in self._pinned:
                return
            self._held.pop(name, None)
        if not self.memory and HEX_DIGEST.match(name):
            self.path(name).unlink(missing_ok=True)

    def _write(self, name: str, data: Buffer) -> None:
        target = self.path(name)
        if target.exists():
            try:
                os.utime(target)  # stored again: the newest, for the order at the next open
                return
            except FileNotFoundError:  # pruned meanwhile: write it again
                pass
        part = target.with_suffix(f".{os.getpid()}-{threading.get_ident()}.part")
        try:
            with open(part, "wb") as handle:
                handle.write(data)
            os.replace(part, target)
        except OSError as exc:
            part.unlink(missing_ok=True)
            why = "no space left on the device" if exc.errno == errno.ENOSPC else str(exc)
            raise BlobStoreError(f"cannot store a {len(data)} byte blob in {self.root}: "
                                 f"{why}") from None

    def pin(self, name: str) -> None:
        """Keep this blob; the oldest beyond `keep` pinned ones are dropped."""
        with self._lock:
            self._pinned.pop(name, None)
            self._pinned[name] = None
            while len(self._pinned) > self.keep:
                old, _ = self._pinned.popitem(last=False)
                if self.memory:
                    self._held.pop(old, None)
                else:
                    self.path(old).unlink(missing_ok=True)
