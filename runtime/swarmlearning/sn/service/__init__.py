"""What the SN API does: check a request against the cached state, write the chain, and shape
the answer with HPE's field names. Every refusal is a ServiceError with an HTTP status and a
sentence that says what is wrong and what to do. SwarmService composes one mixin per area:
nodes, training contracts with their sync rounds, tasks and taskrunners, over the shared
plumbing of `base`."""

from __future__ import annotations

import time
from collections.abc import Callable

from swarmlearning.chain.ledger import Ledger
from swarmlearning.sn.batching import Batcher
from swarmlearning.sn.service.base import ServiceError
from swarmlearning.sn.service.contracts import ContractsMixin
from swarmlearning.sn.service.nodes import NodesMixin
from swarmlearning.sn.service.taskrunners import TaskRunnersMixin
from swarmlearning.sn.service.tasks import TasksMixin
from swarmlearning.sn.view import SwarmView

__all__ = ["ServiceError", "SwarmService"]


class SwarmService(TasksMixin, ContractsMixin, TaskRunnersMixin, NodesMixin):
    """The SN's operations over one ledger and its cached view."""

    def __init__(self, ledger: Ledger, view: SwarmView,
                 clock: Callable[[], float] = time.time, checkin_window: float = 0.2,
                 progress_window: float = 1.0, alive_window: float = 30.0) -> None:
        super().__init__(ledger, view, clock, alive_window)
        self._pending_alive = set()
        self.checkins = Batcher(self._write_checkins, checkin_window,
                                complete=self._round_would_be_full)
        self.progress_reports = Batcher(self._write_progress, progress_window)
