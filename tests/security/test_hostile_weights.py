"""A Byzantine peer among three honest ones: real SN and SL processes, the digits program
(PyTorch) on the three honest peers, and a fourth peer that sends scaled, sign-flipped or random
weights at every sync (tests/ml/byzantine_peer.py). With `geomedian` or `coordmedian` the honest
peers end within 2 accuracy points of a clean run of the three alone: the leader leaves the far
outlier out of every merge, and PERFDATA counts it. The test also measures how far `mean`
falls."""

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


swarm = swarm_fixture("hostile")


def train(swarm: Swarm, tmp: Path, method: str, attack: str | None) -> tuple[float, int]:
    """The honest peers' final accuracy (they end with the same model) of one training, and
    how many contributions of the Byzantine peer PERFDATA shows rejected."""
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
    honest = {(tmp / f"sl{index}" / "node-uid").read_text().strip() for index in (1, 2, 3)}
    perf = swarm.get(f"/v1/contracts/{contract}/perfdata")
    assert all(row["REJECTED"] == 0 for row in perf if row["UID"] in honest), perf
    rejected = sum(row["REJECTED"] for row in perf)
    for row in perf:
        if row["REJECTED"]:
            print(f"PERFDATA {method} {attack}: {row}")
    return result(tmp, 1)["accuracy"], rejected


@pytest.fixture(scope="module")
def clean(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The three honest peers alone, with each merge method."""
    root = tmp_path_factory.mktemp("clean")
    runs = {method: train(swarm, root / method, method, None) for method in (*ROBUST, "mean")}
    assert all(rejected == 0 for _, rejected in runs.values()), runs
    return {method: accuracy for method, (accuracy, _) in runs.items()}


@pytest.mark.parametrize("attack", ["scaled", "flipped", "random"])
def test_robust_merges_hold_against_a_byzantine_peer(swarm: Swarm, clean: dict[str, float],
                                                     attack: str, tmp_path: Path) -> None:
    runs = {method: train(swarm, tmp_path / method, method, attack)
            for method in (*ROBUST, "mean")}
    accuracy = {method: value for method, (value, _) in runs.items()}
    print(f"MEASURED {attack} weights from 1 of 4 peers: "
          + ", ".join(f"{method} {accuracy[method]:.3f} (clean {clean[method]:.3f}, "
                      f"{runs[method][1]} rejected)" for method in accuracy))
    for method in ROBUST:  # a robust merge keeps the swarm useful where the mean breaks
        assert accuracy[method] >= accuracy["mean"] + 0.3, (method, accuracy)
        assert accuracy[method] >= clean[method] - 0.02, (method, accuracy, clean)
        # every poisoned contribution is left out and counted (the first may come before the
        # honest peers' first merge, and the last after their final one)
        assert runs[method][1] >= SYNCS - 2, (method, runs)
    assert runs["mean"][1] == 0, runs  # the mean takes everything: that is what it is
