"""Live names for completion, refreshed in the background after each command."""

from __future__ import annotations

import threading
from typing import Any

from swci.interpreter import Interpreter

_NETWORK_LISTS = {
    "contracts": "list_contracts",
    "tasks": "list_tasks",
    "taskrunners": "list_taskrunners",
}


def _name_of(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("name", "NAME", "Name"):
            if key in item:
                return str(item[key])
    return None


class LiveNames:
    """Contexts from the session; contracts, tasks, taskrunners and SWOPs from the network."""

    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp
        self._lock = threading.Lock()
        self._network: dict[str, list[str]] = {}
        self._thread: threading.Thread | None = None

    def names(self, kind: str) -> list[str]:
        if kind == "contexts":
            return sorted(self.interp.state.contexts)
        with self._lock:
            return list(self._network.get(kind, []))

    def refresh(self) -> None:
        """Fetch network names in a background thread (one at a time)."""
        if self._thread is not None and self._thread.is_alive():
            return
        if self.interp.state.current is None:
            return
        self._thread = threading.Thread(target=self._fetch, name="swci-names", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            client = self.interp.network()
            found: dict[str, list[str]] = {}
            for kind, method in _NETWORK_LISTS.items():
                items = getattr(client, method)()
                found[kind] = sorted(n for n in map(_name_of, items) if n)
            nodes = client.list_nodes()
            found["swops"] = sorted(str(n.get("UUID", "")) for n in nodes
                                    if isinstance(n, dict) and n.get("NodeType") == "SWOP")
        except Exception:  # noqa: BLE001 - completion must never break the prompt
            return
        with self._lock:
            self._network = found
