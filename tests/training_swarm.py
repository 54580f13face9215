"""A training swarm for the end-to-end tests: two organisations (mutual TLS), a sentinel SN
and a second SN as real processes, and SL daemons with the digits program beside them. Every
process is stopped by its pid; every wait is bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swarmlearning.identity.pki import PkiLayout
from swarmlearning.identity.tls import Identity, client_context
from tests.swarm_processes import ROOT, SL, SN, exchange_cas, make_orgs

DIGITS = ROOT / "examples" / "digits-pyt" / "model" / "digits_pyt.py"
KERAS_DIGITS = ROOT / "examples" / "digits-keras" / "model" / "digits_keras.py"
HOSTILE = Path(__file__).with_name("ml") / "hostile_peer.py"
FAST_ROUNDS = {"SL_WAIT_FOR_FULL_QUORUM_SECONDS": "20", "SL_LEADER_FAILURE_BASE_TIMEOUT": "4"}


@dataclass
class Swarm:
    orgs: dict[str, PkiLayout]
    sns: list[SN]

    def api(self, index: int = 0) -> httpx.Client:
        layout = self.orgs["a"]
        identity = Identity(cert=layout.cert("swci"), key=layout.key("swci"),
                            capath=layout.capath)
        sn = self.sns[index]
        return httpx.Client(base_url=f"https://127.0.0.1:{sn.api_port}",
                            verify=client_context(identity), timeout=30)

    def get(self, path: str) -> object:
        with self.api() as api:
            response = api.get(path)
            response.raise_for_status()
            return response.json()

    def new_contract(self) -> str:
        name = f"digits-{uuid.uuid4().hex[:8]}"
        with self.api() as api:
            api.post("/v1/contracts", json={"name": name}).raise_for_status()
        return name


@contextmanager
def running_swarm(root: Path) -> Iterator[Swarm]:
    """A sentinel SN of organisation a and a second SN of organisation b, both trusting each
    other, for as long as the block runs."""
    orgs = make_orgs(root / "pki", "a", "b")
    exchange_cas(orgs["a"], orgs["b"])
    sentinel = SN("sentinel", orgs["a"], root / "sn1", root / "logs" / "sn1.log").start()
    sns = [sentinel]
    try:
        sentinel.wait_ready()
        second = SN("sn2", orgs["b"], root / "sn2", root / "logs" / "sn2.log",
                    sentinel_port=sentinel.api_port).start()
        sns.append(second)
        second.wait_ready()
        yield Swarm(orgs, sns)
    finally:
        for sn in reversed(sns):
            sn.stop()


def peer(swarm: Swarm, tmp: Path, index: int, contract: str, *, epochs: int = 8,
         min_peers: int = 3, ml: str = "", env: dict[str, str] | None = None,
         ml_env: dict[str, str] | None = None, sn: int | None = None) -> SL:
    """Peer `index` (1-based): an SL with the digits program beside it. Peers 1 and 2 belong to
    organisation a (sentinel SN), peer 3 and up to organisation b (second SN)."""
    sn_index = sn if sn is not None else (0 if index <= 2 else 1)
    org = "a" if sn_index == 0 else "b"
    program = ml or f"{sys.executable} {DIGITS}"
    return SL(f"sl{index}", swarm.orgs[org], swarm.sns[sn_index], tmp / f"sl{index}",
              tmp / "logs" / f"sl{index}.log", ml_cmd=program,
              ml_env={"PEER_INDEX": str(index), "N_PEERS": "3", "EPOCHS": str(epochs),
                      "SYNC_FREQUENCY": "4", "MIN_PEERS": str(min_peers),
                      "TRAINING_CONTRACT": contract, "RESULT_FILE": str(tmp / f"r{index}.json"),
                      **(ml_env or {})},
              env={**FAST_ROUNDS, **(env or {})})


def result(tmp: Path, index: int) -> dict:
    return json.loads((tmp / f"r{index}.json").read_text(encoding="utf-8"))


def stop_all(peers: list[SL]) -> None:
    for sl in peers:
        sl.stop()


def baselines(tmp: Path, epochs: int) -> dict[int, float]:
    """Local-only accuracy of peers 1..3 (SWARM_LOOPBACK=True) and central accuracy (key 0)."""
    runs = {}
    for index in range(4):
        env = {**os.environ, "SWARM_LOOPBACK": "True", "PEER_INDEX": str(index),
               "EPOCHS": str(epochs), "RESULT_FILE": str(tmp / f"base{index}.json")}
        runs[index] = subprocess.Popen([sys.executable, str(DIGITS)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    accuracies = {}
    for index, process in runs.items():
        try:
            assert process.wait(timeout=180) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        accuracies[index] = json.loads((tmp / f"base{index}.json").read_text())["accuracy"]
    return accuracies


def wait_round(swarm: Swarm, contract: str, predicate: object, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = swarm.get(f"/v1/contracts/{contract}/rounds/current")
        if predicate(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"round condition not met in {timeout} s: {status}")


def swarm_fixture(prefix: str):  # noqa: ANN201 - a pytest fixture
    """A module-scoped `swarm` fixture: `swarm = swarm_fixture("faults")` in a test module."""

    @pytest.fixture(scope="module")
    def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
        with running_swarm(tmp_path_factory.mktemp(prefix)) as running:
            yield running

    return swarm


def run_to_end(peers: list[SL], timeout: float = 240) -> None:
    """Start every peer, wait until each exits 0, and stop whatever is left."""
    try:
        for sl in peers:
            sl.start()
        for sl in peers:
            assert sl.wait_exit(timeout=timeout) == 0, sl.log()[-4000:]
    finally:
        stop_all(peers)
