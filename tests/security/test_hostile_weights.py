"""A Byzantine peer among three honest ones: real SN and SL processes, the digits program
(PyTorch) on the three honest peers, and a fourth peer that sends scaled, sign-flipped or random
weights at every sync (tests/ml/byzantine_peer.py). With `geomedian` or `coordmedian` the honest
peers end within 2 accuracy points of a clean run of the three alone; the test also measures how
far `mean` falls."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.training_swarm import Swarm, peer, result, run_to_end, swarm_fixture

pytest.importorskip("torch")
pytest.importorskip("sklearn")

BYZANTINE = Path(__file__).parents[1] / "ml" / "byzantine_peer.py"
EPOCHS = 4
SYNCS = EPOCHS * 4  # the digits program: 16 batches an epoch, a sync every 4
ROBUST = ("geomedian", "coordmedian")
KNOWN_GAP = ("flipped",)  # the 2-point bound does not hold yet for these attacks


swarm = swarm_fixture("hostile")


def train(swarm: Swarm, tmp: Path, method: str, attack: str | None) -> float:
    """The honest peers' final accuracy (they end with the same model) of one training."""
    contract = swarm.new_contract()
    honest_env = {"MERGE_METHOD": method}
    # only peer 1 leads: its initial weights start every run, and with merges in the order of
    # the contributions' hashes, a run is reproducible to the bit, so the comparisons with
    # the clean run measure the attack and nothing else
    peers = [peer(swarm, tmp, index, contract, epochs=EPOCHS,
                  min_peers=3 if attack is None else 4, ml_env=honest_env,
                  env={} if index == 1 else {"SL_MAKE_ME_ADMIN": "False"})
             for index in (1, 2, 3)]
    if attack is not None:
        peers.append(peer(swarm, tmp, 4, contract, min_peers=4,
                          ml=f"{sys.executable} {BYZANTINE}",
                          env={"SL_MAKE_ME_ADMIN": "False"},
                          ml_env={"ATTACK": attack, "SYNCS": str(SYNCS)}))
    run_to_end(peers)
    finals = {result(tmp, index)["weights"] for index in (1, 2, 3)}
    assert len(finals) == 1, "the honest peers must end with the same model"
    return result(tmp, 1)["accuracy"]


@pytest.fixture(scope="module")
def clean(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The three honest peers alone, with each merge method."""
    root = tmp_path_factory.mktemp("clean")
    return {method: train(swarm, root / method, method, None) for method in (*ROBUST, "mean")}


@pytest.mark.parametrize("attack", ["scaled", "flipped", "random"])
def test_robust_merges_hold_against_a_byzantine_peer(swarm: Swarm, clean: dict[str, float],
                                                     attack: str, tmp_path: Path) -> None:
    accuracy = {method: train(swarm, tmp_path / method, method, attack)
                for method in (*ROBUST, "mean")}
    print(f"MEASURED {attack} weights from 1 of 4 peers: "
          + ", ".join(f"{method} {accuracy[method]:.3f} (clean {clean[method]:.3f})"
                      for method in accuracy))
    for method in ROBUST:  # a robust merge keeps the swarm useful where the mean breaks
        assert accuracy[method] >= accuracy["mean"] + 0.3, (method, accuracy)
    within = {method: accuracy[method] >= clean[method] - 0.02 for method in ROBUST}
    if attack in KNOWN_GAP:
        # sign-flipped weights pull every median a little towards zero in every round, and the
        # pulls add up: measured 0.69 to 0.77 against 0.86 clean (docs/reliability.md). When this
        # holds, the gap is closed: drop it from KNOWN_GAP and from the docs.
        assert not all(within.values()), (accuracy, clean)
    else:
        assert all(within.values()), (accuracy, clean)
