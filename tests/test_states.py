"""The state enums are the contracts' constants: every `STATE_*` and `PEER_*` constant of each
Vyper source is a member of its enum with the same value, and no member is missing from it."""

from __future__ import annotations

import enum
import re
from pathlib import Path

import pytest

import swarmlearning.chain
from swarmlearning.states import (
    TERMINAL_RUNNER_STATES,
    PeerState,
    RunnerState,
    TaskState,
    TrainingState,
    state_name,
)

CONTRACTS = Path(swarmlearning.chain.__file__).parent / "contracts"
CONSTANT = re.compile(r"^(STATE|PEER)_([A-Z]+): constant\(uint8\) = (\d+)$", re.MULTILINE)


def constants(source: str, prefix: str) -> dict[str, int]:
    text = (CONTRACTS / source).read_text(encoding="utf-8")
    return {name: int(value) for kind, name, value in CONSTANT.findall(text) if kind == prefix}


@pytest.mark.parametrize(("source", "prefix", "kind"), [
    ("TaskBoard.vy", "STATE", TaskState),
    ("TrainingBoard.vy", "STATE", TrainingState),
    ("TaskRunnerBoard.vy", "STATE", RunnerState),
    ("TaskRunnerBoard.vy", "PEER", PeerState),
])
def test_enum_matches_the_contract(source: str, prefix: str, kind: type[enum.IntEnum]):
    found = constants(source, prefix)
    assert found, f"no {prefix}_ constants in {source}"
    members = {member.name: member.value for member in kind if member.name != "NONE"
               or "NONE" in found}
    assert members == found


def test_names_and_terminal_states():
    assert state_name(RunnerState, 4) == "ERROR"
    assert state_name(RunnerState, 9) == "?"
    assert set(TERMINAL_RUNNER_STATES) == {"COMPLETE", "ERROR", "IDLE"}
