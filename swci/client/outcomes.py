"""How Client.wait ends when a taskrunner's task does not complete: TaskFailed (the taskrunner
went to ERROR; the failed SWOPs and their logs' last lines come with it) and WaitTimeout (a
TimeoutError carrying the last status read)."""

from __future__ import annotations

from swci.client.errors import SwciError
from swci.client.records import TaskrunnerStatus

__all__ = ["TaskFailed", "WaitTimeout"]


class TaskFailed(SwciError):
    """``wait`` saw the taskrunner in state ERROR.

    ``status`` is the final TaskrunnerStatus, ``failures`` maps each failed SWOP's UID to the
    last lines of its log (FAILURE_DETAILS), ``failed_peers`` lists ``"uid : reason"``."""

    def __init__(self, status: TaskrunnerStatus) -> None:
        reasons = "; ".join(status.failed_peers) or "no failed peer reported"
        super().__init__(f"task {status.task} on taskrunner {status.taskrunner} failed: "
                         f"{reasons}")
        self.status = status
        self.failures: dict[str, str] = dict(status.failure_details)
        self.failed_peers: list[str] = list(status.failed_peers)


class WaitTimeout(TimeoutError):
    """``wait`` ran out of time; ``status`` is the last status it read."""

    def __init__(self, message: str, status: TaskrunnerStatus) -> None:
        super().__init__(message)
        self.status = status
