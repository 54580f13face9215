"""The states the contracts keep, as enums whose values are the Vyper constants (a test reads
the contract sources and compares). The SN API shows each state by its name."""

from __future__ import annotations

import enum


class TaskState(enum.IntEnum):
    """A task on the TaskBoard (`STATE_*` of TaskBoard.vy)."""

    NONE = 0
    CREATED = 1
    FINALIZED = 2


class TrainingState(enum.IntEnum):
    """A training contract on the TrainingBoard (`STATE_*` of TrainingBoard.vy)."""

    NONE = 0
    INITIALIZED = 1
    RUNNING = 2
    COMPLETED = 3


class RunnerState(enum.IntEnum):
    """A taskrunner on the TaskRunnerBoard (`STATE_*` of TaskRunnerBoard.vy)."""

    NONE = 0
    IDLE = 1
    RUNNING = 2
    COMPLETE = 3
    ERROR = 4


class PeerState(enum.IntEnum):
    """A SWOP enrolled in a taskrunner's task (`PEER_*` of TaskRunnerBoard.vy)."""

    NONE = 0
    ENROLLED = 1
    RUNNING = 2
    COMPLETE = 3
    ERROR = 4


def state_name(kind: type[enum.IntEnum], code: int) -> str:
    """The name the API shows for a state code, "?" for a code the enum does not know."""
    try:
        return kind(code).name
    except ValueError:
        return "?"


# A wait for a taskrunner ends in one of these: its task completed or failed, or it was reset.
TERMINAL_RUNNER_STATES = (RunnerState.COMPLETE.name, RunnerState.ERROR.name,
                          RunnerState.IDLE.name)
