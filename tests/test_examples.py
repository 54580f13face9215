"""The Keras and loopback examples run as their READMEs say (the PyTorch one is the demo, in
test_demo.py; breast-cancer has its own test)."""

from __future__ import annotations

from pathlib import Path

from tests.example_runs import run_example, with_free_ports
from tests.swarm_processes import ROOT

EXAMPLES = ROOT / "examples"


def test_ports_are_replaced_and_organisations_kept() -> None:
    script = "START SN sn1 SENTINEL\nSTART SN sn2 API PORT 31304 P2P PORT 31303 ORG org2\n"
    first, second = with_free_ports(script).splitlines()
    assert first.startswith("START SN sn1 SENTINEL API PORT ") and "P2P PORT" in first
    assert second.startswith("START SN sn2 API PORT ") and second.endswith(" ORG org2")
    assert "31304" not in second and "31303" not in second


def test_digits_keras_trains_three_keras_peers_together(tmp_path: Path) -> None:
    run = run_example(Path("scripts/init/digits-keras.swci"), tmp_path,
                      EXAMPLES / "digits-keras" / "private")
    assert run.result.returncode == 0, run.result.stdout[-5000:]
    results = run.results(EXAMPLES / "digits-keras" / "private")
    assert sorted(results) == ["peer1", "peer2", "peer3"]
    assert all(r["accuracy"] >= 0.9 for r in results.values()), results
    assert "STATE : COMPLETE" in run.result.stdout
    assert run.leftovers() == []


def test_loopback_trains_each_peer_alone(tmp_path: Path) -> None:
    run = run_example(Path("scripts/init/loopback.swci"), tmp_path,
                      EXAMPLES / "loopback" / "private")
    assert run.result.returncode == 0, run.result.stdout[-5000:]
    results = run.results(EXAMPLES / "loopback" / "private")
    assert sorted(results) == ["peer1", "peer2", "peer3"]
    # alone, each peer knows mostly its own digits: far from the swarm's 0.95
    assert all(0.3 < r["accuracy"] < 0.8 for r in results.values()), results
    assert len({r["weights"] for r in results.values()}) == 3
    assert run.leftovers() == []
