"""Faults during a real training: two organisations' SNs, three SL daemons with the digits
program (PyTorch) beside them, on 127.0.0.1 with mutual TLS. Each test breaks something on
purpose and checks that the swarm recovers, or stops cleanly, and says what it measured on a
`MEASURED` line (docs/reliability.md quotes them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.training_swarm import Swarm, peer, result, stop_all, swarm_fixture, wait_round

pytest.importorskip("torch")
pytest.importorskip("sklearn")


swarm = swarm_fixture("faults")


def children(pid: int) -> set[int]:
    """Every live descendant of a process, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def merges(swarm: Swarm, contract: str, rounds: int) -> list[dict]:
    return [swarm.get(f"/v1/contracts/{contract}/rounds/{number}")["merge"]
            for number in range(rounds)]


def test_the_sentinel_killed_and_restarted_mid_training_loses_nothing(
        swarm: Swarm, tmp_path: Path) -> None:
    """kill -9 of the sentinel SN (it holds the chain) in the middle of the training: the SLs
    of both organisations retry, the sentinel comes back from its data directory, the second SN
    reconnects, and the training finishes with every merge recorded before the kill intact."""
    contract = swarm.new_contract()
    peers = [peer(swarm, tmp_path, index, contract, epochs=30) for index in (1, 2, 3)]
    sentinel = swarm.sns[0]
    try:
        for sl in peers:
            sl.start()
        status = wait_round(swarm, contract, lambda s: s["current_round"] >= 8, timeout=180)
        sentinel.kill9()
        killed_at = time.monotonic()
        time.sleep(3)  # a real outage: every SL and the second SN see the chain gone
        sentinel.start()
        sentinel.wait_ready(occurrence=2)
        back_at = time.monotonic()
        known = status["current_round"]
        before = merges(swarm, contract, known)
        assert all(record is not None for record in before)
        moved = wait_round(swarm, contract, lambda s: s["current_round"] > known + 1,
                           timeout=120)
        recovered = time.monotonic() - back_at
        for sl in peers:
            assert sl.wait_exit(timeout=300) == 0, sl.log()[-4000:]
        final = swarm.get(f"/v1/contracts/{contract}/status")
    finally:
        stop_all(peers)
    assert final["STATE"] == "COMPLETED", final
    assert merges(swarm, contract, known) == before  # nothing recorded before the kill is lost
    accuracies = [result(tmp_path, index)["accuracy"] for index in (1, 2, 3)]
    digests = {result(tmp_path, index)["weights"] for index in (1, 2, 3)}
    assert min(accuracies) > 0.85 and len(digests) == 1, (accuracies, digests)
    print(f"MEASURED sentinel kill -9 at round {known}: down {back_at - killed_at:.1f} s, "
          f"rounds moving again {recovered:.1f} s after its restart (round "
          f"{moved['current_round']}), {final['ROUND']} rounds in all, accuracy "
          f"{min(accuracies):.3f} on every peer")


def test_a_non_leader_killed_while_the_quorum_holds_does_not_stop_the_training(
        swarm: Swarm, tmp_path: Path) -> None:
    """minPeers 2 of 3: kill -9 of peer 3 (it may not lead) mid-training. Peers 1 and 2 go on
    without it: the round under way waits for it at most SL_WAIT_FOR_FULL_QUORUM_SECONDS, the
    rounds after it leave it out once its SN no longer counts it alive, and both finish with
    the same model."""
    contract = swarm.new_contract()
    # every session is open (and its peer expected) before the first check-in
    peers = [peer(swarm, tmp_path, index, contract, epochs=8, min_peers=2,
                  env={"SL_MAKE_ME_ADMIN": "False"} if index == 3 else {},
                  ml_env={"START_DELAY": "6"}) for index in (1, 2, 3)]
    try:
        for sl in peers:
            sl.start()
        peers[2].wait_ready()
        lost = (peers[2].data_dir / "node-uid").read_text().strip()
        status = wait_round(swarm, contract, lambda s: s["current_round"] >= 3 and any(
            c["uid"] == lost for c in s["checkins"]), timeout=180)
        peers[2].kill9()
        killed_at, known = time.monotonic(), status["current_round"]
        # the round under way may close with the lost peer's check-in; the one after it is
        # the first that must do without it
        wait_round(swarm, contract, lambda s: s["current_round"] > known + 1, timeout=120)
        next_round = time.monotonic() - killed_at
        for sl in peers[:2]:
            assert sl.wait_exit(timeout=300) == 0, sl.log()[-4000:]
        final = swarm.get(f"/v1/contracts/{contract}/status")
    finally:
        stop_all(peers)
    assert final["STATE"] == "COMPLETED", final
    records = merges(swarm, contract, final["ROUND"])
    without = [number for number, record in enumerate(records)
               if number > known and lost not in record["participants"]]
    assert without and without[-1] == final["ROUND"] - 1, records
    accuracies = [result(tmp_path, index)["accuracy"] for index in (1, 2)]
    assert len({result(tmp_path, index)["weights"] for index in (1, 2)}) == 1
    assert min(accuracies) > 0.75, accuracies
    print(f"MEASURED non-leader kill -9 at round {known} (minPeers 2 of 3): the first round "
          f"without it closed {next_round:.1f} s after the kill, {len(without)} of the "
          f"{final['ROUND'] - known - 1} rounds after it without the lost peer, "
          f"{final['ROUND']} rounds in all, accuracy {min(accuracies):.3f} on both survivors")


def test_sigterm_to_every_node_mid_training_stops_all_and_leaves_no_process(
        swarm: Swarm, tmp_path: Path) -> None:
    """SIGTERM to both SNs and every SL at once, mid-training: each exits 0 within its grace
    period, says so in its log, and no ML program or other child is left behind."""
    contract = swarm.new_contract()
    peers = [peer(swarm, tmp_path, index, contract, epochs=200) for index in (1, 2, 3)]
    try:
        for sl in peers:
            sl.start()
        wait_round(swarm, contract, lambda s: s["current_round"] >= 3, timeout=180)
        nodes = [*peers, *swarm.sns]
        descendants = {node.name: children(node.process.pid) for node in nodes}
        assert all(descendants[sl.name] for sl in peers), descendants  # the ML programs
        started = time.monotonic()
        for node in nodes:
            os.kill(node.process.pid, signal.SIGTERM)
        took: dict[str, float] = {}
        while len(took) < len(nodes) and time.monotonic() - started < 30:
            for node in nodes:
                if node.name not in took and node.process.poll() is not None:
                    took[node.name] = time.monotonic() - started
            time.sleep(0.05)
        codes = {node.name: node.process.poll() for node in nodes}
    finally:
        stop_all(peers)
        for sn in swarm.sns:  # leave the module's SNs running for any later test
            if sn.process.poll() is not None:
                sn.start()
        for sn in swarm.sns:
            sn.wait_ready(occurrence=sn.log().count("Starting SWARM-API-SERVER"))
    assert codes == {node.name: 0 for node in nodes}, codes
    for node in nodes:
        log = node.log()
        assert "Traceback" not in log, log[-4000:]
    assert [sl.log().rstrip().splitlines()[-1] for sl in peers] and all(
        "SL stopped" in sl.log() for sl in peers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            alive(pid) for pids in descendants.values() for pid in pids):
        time.sleep(0.1)
    left = {name: [pid for pid in pids if alive(pid)] for name, pids in descendants.items()}
    assert not any(left.values()), left
    print(f"MEASURED SIGTERM to 2 SNs and 3 SLs (with 3 ML programs) mid-training: all exited "
          f"0, no process left; seconds to exit: "
          f"{', '.join(f'{name} {seconds:.1f}' for name, seconds in took.items())}")
