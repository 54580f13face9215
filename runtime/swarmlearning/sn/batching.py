"""Many callers, one transaction: requests that arrive within a short window for the same
group (a contract and round) are written together, and every caller gets that write's result.

This is what keeps a sync round at O(1) transactions per SN however many SLs it serves."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Batch:
    entries: list[Any] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Batcher:
    """Collect entries per group for `window` seconds, or until `limit` entries, or until
    `complete(group, entries)` says nobody else is coming (then the write goes at once, so the
    last caller of a round waits for no window), then call `write(group, entries)` once.
    `submit` blocks until that write finished, and raises what it raised."""

    def __init__(self, write: Callable[[Hashable, list[Any]], None], window: float,
                 limit: int = 64, wait_limit: float = 120.0,
                 complete: Callable[[Hashable, list[Any]], bool] | None = None) -> None:
        self.write = write
        self.complete = complete
        self.window = window
        self.limit = limit
        self.wait_limit = wait_limit
        self._open: dict[Hashable, _Batch] = {}
        self._lock = threading.Lock()
        self.transactions = 0

    def submit(self, group: Hashable, entry: Any) -> None:
        with self._lock:
            batch = self._open.get(group)
            first = batch is None
            if batch is None:
                batch = self._open[group] = _Batch()
            batch.entries.append(entry)
            if len(batch.entries) >= self.limit or self._complete(group, batch.entries):
                self._open.pop(group, None)
                batch.closed.set()
        if not first:
            if not batch.done.wait(self.wait_limit):
                raise TimeoutError(f"the batched write was not done in {self.wait_limit:.0f} s")
        else:
            batch.closed.wait(self.window)
            with self._lock:
                if self._open.get(group) is batch:
                    del self._open[group]
            try:
                self.transactions += 1
                self.write(group, batch.entries)
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                batch.error = exc
            finally:
                batch.done.set()
        if batch.error is not None:
            raise batch.error

    def _complete(self, group: Hashable, entries: list[Any]) -> bool:
        if self.complete is None:
            return False
        try:
            return self.complete(group, entries)
        except Exception:  # noqa: BLE001 - a failed guess only means waiting the window
            return False
