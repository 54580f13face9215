"""How a wait shows progress: a live panel on a terminal (rich), `#` marks everywhere else."""

from __future__ import annotations

from typing import Any, Protocol

from swci.interpreter.output import Output, StreamOutput


class WaitView(Protocol):
    def update(self, status: dict[str, Any], peers: list[dict[str, Any]]) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class MarksView:
    """HPE's batch display: one `#` per poll on a line of marks. A peer's change of status or
    progress text, and notes, get lines of their own, so a log shows what the wait saw."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.seen: dict[str, tuple[str, str]] = {}

    def update(self, status: dict[str, Any], peers: list[dict[str, Any]]) -> None:
        for peer in peers:
            uid = str(peer.get("SWOP_UID", ""))
            now = (str(peer.get("SWOP_PEER_STATUS", "")),
                   str(peer.get("SWOP_PEER_STATUS_DESC", "-")))
            if self.seen.get(uid) != now:
                self.seen[uid] = now
                self.out.line(f"PEER {peer.get('NAME') or '-'} {uid} : {now[0]} : {now[1]}")
        self.out.mark("#")

    def note(self, text: str) -> None:
        self.out.line(f"NOTE : {text}")

    def close(self) -> None:
        pass


class LiveView:
    """A terminal panel: the taskrunner's progress bar and one line per enrolled SWOP."""

    def __init__(self, out: StreamOutput, name: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.out = out
        self.name = name
        self.console = Console(file=out.stream)
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def update(self, status: dict[str, Any], peers: list[dict[str, Any]]) -> None:
        self.live.update(self._render(status, peers))

    def _render(self, status: dict[str, Any], peers: list[dict[str, Any]]) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        needed = status.get("PEERS_NEEDED")
        done = int(status.get("COMPLETED_PEERS") or 0)
        total = needed if isinstance(needed, int) and needed > 0 else max(
            int(status.get("ENROLLED_UNITS") or 0), 1)
        head = Table.grid(padding=(0, 1))
        head.add_row(Text(f"{self.name}", style="bold"),
                     Text(str(status.get("TASK_STATE", "?")), style="cyan"),
                     ProgressBar(total=total, completed=min(done, total), width=30),
                     Text(f"{done}/{needed if needed is not None else '?'} "
                          f"{str(status.get('PEER_TYPE', 'peer'))} peers complete"))
        rows = Table(box=None, show_header=True, header_style="dim", padding=(0, 1))
        for column in ("SWOP", "GROUP", "STATUS", "WHAT"):
            rows.add_column(column)
        for peer in peers:
            state = str(peer.get("SWOP_PEER_STATUS", "?"))
            style = {"COMPLETE": "green", "ERROR": "red"}.get(state, "yellow")
            rows.add_row(str(peer.get("SWOP_UID", ""))[:13], str(peer.get("NAME", "")),
                         Text(state, style=style), str(peer.get("SWOP_PEER_STATUS_DESC", "")))
        task = Text(f"task {status.get('TASK', '?')} ({status.get('TASK_TYPE', '?')}), "
                    f"{status.get('ENROLLED_PEERS', 0)} SWOP(s) enrolled", style="dim")
        return Group(head, task, rows) if peers else Group(head, task)

    def note(self, text: str) -> None:
        self.live.console.print(f"    NOTE : {text}")

    def close(self) -> None:
        self.live.stop()


def wait_view(out: Output, name: str) -> WaitView:
    """The live panel on a terminal, marks otherwise."""
    if isinstance(out, StreamOutput) and out.interactive:
        return LiveView(out, name)
    return MarksView(out)
