"""Swarm Learning end to end: real SNs (two organisations, mutual TLS), real SL daemons and
real PyTorch training of the digits split on 127.0.0.1. Every process is stopped by its pid."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from tests.swarm_processes import SL, identity_env, output_lines, run_swci
from tests.training_swarm import (
    HOSTILE,
    KERAS_DIGITS,
    Swarm,
    baselines,
    peer,
    result,
    run_to_end,
    stop_all,
    swarm_fixture,
    wait_round,
)

pytest.importorskip("torch")
pytest.importorskip("sklearn")


swarm = swarm_fixture("sl-swarm")


def test_three_peers_learn_together_beyond_what_each_learns_alone(swarm: Swarm,
                                                                  tmp_path: Path) -> None:
    contract = swarm.new_contract()
    epochs = 12
    peers = [peer(swarm, tmp_path, i, contract, epochs=epochs).start() for i in (1, 2, 3)]
    try:
        for sl in peers:
            sl.wait_ready()
        nodes = swarm.get("/v1/nodes")
        sn_uids = {row["UUID"] for row in nodes if row["NodeType"] in ("SENTINEL", "SN")}
        sls = [row for row in nodes if row["NodeType"] == "SL"]
        assert {row["ContainerName"] for row in sls} >= {"sl1", "sl2", "sl3"}
        assert all(row["ParentUUID"] in sn_uids for row in sls)
        base = baselines(tmp_path, epochs)
        for sl in peers:
            assert sl.wait_exit(timeout=240) == 0, sl.log()[-4000:]
    finally:
        stop_all(peers)
    swarm_results = {i: result(tmp_path, i) for i in (1, 2, 3)}
    report = {i: (round(base[i], 3), round(r["accuracy"], 3)) for i, r in swarm_results.items()}
    for index, outcome in swarm_results.items():
        assert outcome["accuracy"] >= 0.93, report
        assert outcome["accuracy"] > base[index], report
        assert outcome["accuracy"] >= base[0] - 0.03, (report, base[0])
    # checkinModelOnTrainEnd=active: every peer ends with the same final model
    assert len({r["weights"] for r in swarm_results.values()}) == 1
    assert "loaded the final swarm model" in peers[0].log()
    status = swarm.get(f"/v1/contracts/{contract}/status")
    assert status["STATE"] == "COMPLETED" and status["ROUND"] > 5, status
    perf = swarm.get(f"/v1/contracts/{contract}/perfdata")
    assert len(perf) == 3
    assert all(row["TOTAL_EPOCHS"] == epochs and row["COMPLETED_EPOCHS"] == epochs
               for row in perf), perf
    assert any(row["ADMIN"] == "Y" for row in perf)
    assert all(row["REJECTED"] == 0 for row in perf), perf
    joined = "\n".join(sl.log() for sl in peers)
    assert "rejected" not in joined
    # the same through the SWCI shell: PERFDATA's table and the contract's round progress
    usr = tmp_path / "usr"
    usr.mkdir()
    (usr / "s.swci").write_text(
        f"EXIT ON FAILURE\ncreate context c with ip 127.0.0.1 {swarm.sns[1].api_port}\n"
        f"switch context c\nPERFDATA {contract}\nGET CONTRACT STATUS {contract}\n")
    shell = run_swci("--usr-dir", str(usr), "--script", "s.swci", cwd=usr,
                     env=identity_env(swarm.orgs["b"]))
    assert shell.returncode == 0, shell.stdout + shell.stderr
    lines = output_lines(shell)
    header = next(line for line in lines if line.startswith("UID"))
    assert header.split()[:6] == ["UID", "ADMIN", "LOSS", "METRIC", "TOTAL_EPOCHS",
                                  "COMPLETED_EPOCHS"]
    assert header.split()[6:] == ["REJECTED", "LAST_REJECTION"]
    assert sum(1 for line in lines
               if line.split()[4:] == [str(epochs), str(epochs), "0", "-"]) == 3
    assert ["STATE", ":", "COMPLETED"] in [line.split() for line in lines], lines
    assert any(line.split()[:2] == ["LAST_LEADER", ":"] for line in lines), lines


def test_leader_failure_is_recovered_and_the_old_leader_rejoins(swarm: Swarm,
                                                                tmp_path: Path) -> None:
    """minPeers=2 of 3. The third peer opens its session, then starts late, so the first two
    wait in round 0 for the full quorum; the leader (first check-in) is killed there. LFDR
    hands the round to the next peer; training goes on with two; the old leader comes back as a
    late joiner, starts from the latest merged model, and all three finish."""
    contract = swarm.new_contract()
    # every session is open (and expected) well before the first check-in; peer 3 trains late
    peers = [peer(swarm, tmp_path, i, contract, epochs=6, min_peers=2,
                  ml_env={"START_DELAY": "14" if i == 3 else "4"}) for i in (1, 2, 3)]
    by_uid: dict[str, SL] = {}
    try:
        for sl in peers:
            sl.start()
        for sl in peers:
            sl.wait_ready()
            uid = (sl.data_dir / "node-uid").read_text().strip()
            by_uid[uid] = sl
        status = wait_round(swarm, contract, lambda s: len(s["checkins"]) >= 2)
        assert status["round"] == 0 and status["merge"] is None, status
        leader = by_uid[status["checkins"][0]["uid"]]
        assert leader is not peers[2]
        leader.kill9()
        survivor = next(sl for sl in peers[:2] if sl is not leader)
        survivor.wait_for("takes over", timeout=60)
        status = wait_round(swarm, contract, lambda s: s["current_round"] >= 3, timeout=120)
        merge = swarm.get(f"/v1/contracts/{contract}/rounds/0")["merge"]
        assert merge is not None and by_uid[merge["leader"]] is survivor
        # the old leader returns (same data directory, same UID) and joins late
        leader.process = None
        leader.start()
        leader.wait_ready()
        leader.wait_for("starting from the latest merged model", timeout=60)
        for sl in peers:
            assert sl.wait_exit(timeout=240) == 0, sl.log()[-4000:]
    finally:
        stop_all(peers)
    for index in (1, 2, 3):
        assert result(tmp_path, index)["accuracy"] > 0.5


def test_with_min_peers_three_a_lost_peer_stops_the_rounds_until_it_returns(
        swarm: Swarm, tmp_path: Path) -> None:
    contract = swarm.new_contract()
    peers = [peer(swarm, tmp_path, i, contract, epochs=6).start() for i in (1, 2, 3)]
    try:
        for sl in peers:
            sl.wait_ready()
        wait_round(swarm, contract, lambda s: s["current_round"] >= 2, timeout=120)
        peers[2].kill9()
        stalled = wait_round(swarm, contract,
                             lambda s: s["merge"] is None and len(s["checkins"]) == 2,
                             timeout=60)
        peers[0].wait_for("waiting for 1 more", timeout=30)
        time.sleep(3)
        again = swarm.get(f"/v1/contracts/{contract}/rounds/current")
        assert again["current_round"] == stalled["current_round"]
        peers[2].process = None
        peers[2].start()
        for sl in peers:
            assert sl.wait_exit(timeout=240) == 0, sl.log()[-4000:]
    finally:
        stop_all(peers)
    assert swarm.get(f"/v1/contracts/{contract}/status")["STATE"] == "COMPLETED"


def test_tampered_contributions_are_rejected_and_training_goes_on(swarm: Swarm,
                                                                   tmp_path: Path) -> None:
    """A hostile peer sends NaN, a wrong shape, Inf, a wrong dtype, a blob over the leaders'
    size limit and a blob that does not match its hash: each is left out, logged by the
    leader, and counted in PERFDATA with its reason; the honest peers train on."""
    contract = swarm.new_contract()
    limit = {"SL_MAX_BLOB_BYTES": str(1 << 20)}  # the digits model is about 70 KB
    honest = [peer(swarm, tmp_path, i, contract, epochs=4, env=limit) for i in (1, 2)]
    hostile = peer(swarm, tmp_path, 3, contract, ml=f"{sys.executable} {HOSTILE}",
                   # the disk store, so that the hostile ML can plant a file that does not
                   # match its name for its SL to serve
                   env={"SL_MAKE_ME_ADMIN": "False", "SL_RAM_INTENSIVE": "False"},
                   ml_env={"BLOB_DIR": str(tmp_path / "sl3" / "blobs"),
                           "OVERSIZE": str(1 << 20)})
    run_to_end([*honest, hostile])
    hostile_uid = (tmp_path / "sl3" / "node-uid").read_text().strip()
    leaders = "\n".join(sl.log() for sl in honest)
    rejected = [line for line in leaders.splitlines()
                if f"rejected the contribution of {hostile_uid}" in line]
    for words in ("NaN", "shape", "Inf", "dtype float64", "byte limit",
                  "does not match its SHA-256"):
        assert any(words in line for line in rejected), (words, rejected)
    assert "hostile peer done" in hostile.log()
    for index in (1, 2):
        assert result(tmp_path, index)["accuracy"] > 0.5
    perf = {row["UID"]: row for row in swarm.get(f"/v1/contracts/{contract}/perfdata")}
    assert perf[hostile_uid]["REJECTED"] == 6, perf
    assert "does not match its SHA-256" in perf[hostile_uid]["LAST_REJECTION"], perf
    assert all(perf[uid]["REJECTED"] == 0 for uid in perf if uid != hostile_uid), perf


def test_keras_peers_swarm_through_model_fit(swarm: Swarm, tmp_path: Path) -> None:
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    contract = swarm.new_contract()
    peers = [peer(swarm, tmp_path, i, contract, epochs=8, ml=f"{sys.executable} {KERAS_DIGITS}",
                  ml_env={"KERAS_BACKEND": "torch"}).start() for i in (1, 2, 3)]
    try:
        for sl in peers:
            assert sl.wait_exit(timeout=240) == 0, sl.log()[-4000:]
    finally:
        stop_all(peers)
    outcomes = [result(tmp_path, i) for i in (1, 2, 3)]
    assert len({o["weights"] for o in outcomes}) == 1
    assert all(o["accuracy"] >= 0.9 for o in outcomes), outcomes
    assert "loaded the final swarm model" in peers[0].log()
