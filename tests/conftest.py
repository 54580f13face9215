"""Shared fixtures. FakeNetwork is a unit-test stand-in for an SN API server; it never touches
the network, so property tests can type any address without sending a packet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swci.interpreter import CollectingOutput, Interpreter, SessionState
from swci.network import NetworkError


class FakeNetwork:
    """An in-memory SwarmNetworkClient for unit tests."""

    def __init__(self, endpoint: str, up: bool = True) -> None:
        self.endpoint = endpoint
        self.up = up
        self.statuses: list[dict[str, Any]] = [{"TASK_STATE": "COMPLETE"}]
        self.calls: list[tuple[str, tuple]] = []

    def _check(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if not self.up:
            raise NetworkError(f"Unable to contact API-Server at {self.endpoint} "
                               "(connection refused)")

    def version(self) -> dict[str, Any]:
        self._check("version")
        return {"version": "test"}

    def taskrunner_status(self, name: str) -> dict[str, Any]:
        self._check("taskrunner_status", name)
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._check(name, *args)
            return []
        return call


class Clock:
    """A fake clock whose sleep advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        assert len(self.slept) < 10_000, "a wait that never ends"

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def networks() -> dict[str, FakeNetwork]:
    """The fake networks the interpreter made, by endpoint; hosts named 'down*' are unreachable."""
    return {}


@pytest.fixture
def interp(tmp_path: Path, clock: Clock, networks: dict[str, FakeNetwork]) -> Interpreter:
    def factory(host: str, port: int) -> FakeNetwork:
        endpoint = f"{host}:{port}"
        if endpoint not in networks:
            networks[endpoint] = FakeNetwork(endpoint, up=not host.startswith("down"))
        return networks[endpoint]

    return Interpreter(SessionState(cwd=tmp_path), client_factory=factory, sleep=clock.sleep,
                       monotonic=clock.monotonic)


def run(interp: Interpreter, *lines: str) -> list[str]:
    """Run lines one by one; the output lines, stripped of the 4-space indent."""
    out = CollectingOutput()
    for line in lines:
        interp.run_line(line, out)
    return [line[4:] if line.startswith("    ") else line for line in out.lines]
