"""swci chain export/import: a sentinel's embedded chain (in its data directory, then closed,
as a stopped sentinel leaves it) with nodes, tasks, a taskrunner and a training contract with
sync rounds, a rejection, progress and a reset, is exported, then replayed on another chain
reached as an external node over JSON-RPC, with a node key of its own. Every listing the SN
gives reads the same on both, history included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from swarmlearning.chain.embedded import EmbeddedChain
from swarmlearning.chain.ledger import Ledger
from swarmlearning.chain.migrate import MigrationError, export_history, import_history, main
from swarmlearning.chain.signer import SignedSender, node_key
from swarmlearning.sn.service import SwarmService
from swarmlearning.sn.view import SwarmView
from tests.test_chain import JsonRoundTripProvider, build_task, fresh_swarm

H = "ab" * 32
NOW = 1_800_000_000.0  # both services read the same clock (SECONDS_SINCE_ALIVE)


def make_history(data_dir: Path) -> None:
    """A sentinel's chain with some of everything, left as a stopped sentinel leaves it."""
    swarm = fresh_swarm(data_dir)
    service = swarm.service
    for index in (1, 2, 3):
        service.register_node(f"sl-{index}", "SL", "127.0.0.1", 40000 + index, f"sl{index}",
                              "sn-uid")
    service.register_task(build_task("build-task"))
    service.create_taskrunner("runner")
    service.create_contract("digits")
    for number in range(3):
        for uid in ("sl-1", "sl-2", "sl-3"):
            service.checkin("digits", uid, number, f"{number:02d}" * 32, 1, 1 | (2 * (number == 2)))
        service.record_merge("digits", number, "sl-1", H, ["sl-1", "sl-2"], number == 2,
                             [{"uid": "sl-3", "reason": "tensor 'w' has NaN values"}])
    service.report_progress("digits", "sl-1", True, 0.25, 0.9, 3, 3)
    service.reset_contract("digits")
    service.checkin("digits", "sl-1", 0, H, 1, 1)
    (data_dir / "contracts.json").write_text(json.dumps(swarm.addresses.to_json()))
    swarm.chain.close()


def readings(service: SwarmService) -> dict[str, Any]:
    """What the SN shows of the swarm (contract addresses and the default contract's time
    aside)."""
    def without_address(row: dict[str, Any]) -> dict[str, Any]:
        # the default contract is made by the deployment itself, so it dates from that
        return {k: v for k, v in row.items() if k != "ADDRESS"
                and not (k == "UPDATED" and row["NAME"] == "defaultbb.cqdb.sml.hpe")}

    return {"nodes": service.list_nodes(), "tasks": service.list_tasks(),
            "body": service.task_body("build-task"),
            "contracts": [without_address(c) for c in service.list_contracts()],
            "status": service.contract_status("digits"),
            "round0": service.sync_round("digits", 0),
            "perfdata": service.perfdata("digits"),
            "runners": service.list_taskrunners()}


def test_the_history_moves_to_a_fresh_network_whole(tmp_path: Path) -> None:
    old_dir = tmp_path / "old-sentinel"
    make_history(old_dir)
    history = export_history(old_dir)
    assert history["calls"] and all(c["kind"] in ("nodes", "tasks", "runners", "trainings")
                                    for c in history["calls"])

    old = EmbeddedChain(old_dir)
    old_w3 = old.web3()
    from swarmlearning.chain.ledger import Addresses

    old_addresses = Addresses.from_json(json.loads((old_dir / "contracts.json").read_text()))
    old_service = SwarmService(*_stack(old_w3, old_addresses, None), clock=lambda: NOW)
    before = readings(old_service)

    network = EmbeddedChain(None)  # the external network, reached over JSON-RPC only
    funder = network.web3()
    w3 = Web3(JsonRoundTripProvider(network))
    new_dir = tmp_path / "new-sentinel"
    account = node_key(new_dir, "pw")
    funder.eth.send_transaction({"from": funder.eth.accounts[0], "to": account.address,
                                 "value": 10**21})
    signer = SignedSender(w3, account, w3.eth.chain_id)
    addresses = import_history(history, w3, signer, new_dir)
    assert json.loads((new_dir / "contracts.json").read_text()) == addresses.to_json()
    after = readings(SwarmService(*_stack(w3, addresses, signer), clock=lambda: NOW))
    assert after == before
    assert before["status"]["RESETS"] == 1 and before["round0"]["checkins"]
    # the generation before the reset is history too: its merges are in the new chain's events
    merged = [e for e in Ledger(w3, addresses, account.address, signer).changes(
        0, w3.eth.block_number) if e[1] == "Merged"]
    assert len(merged) == 3
    old.close()

    with pytest.raises(MigrationError, match="exists: import into a fresh data directory"):
        import_history(history, w3, signer, new_dir)


def _stack(w3: Web3, addresses: Any, signer: Any) -> tuple[Ledger, SwarmView]:
    sender = signer.address if signer is not None else w3.eth.accounts[0]
    ledger = Ledger(w3, addresses, sender, signer)
    view = SwarmView(ledger)
    view.load()
    return ledger, view


def test_export_names_a_directory_without_a_chain(tmp_path: Path, capsys) -> None:
    assert main(["export", "--data-dir", str(tmp_path), "-o", str(tmp_path / "h.json")]) == 1
    assert "holds no embedded chain" in capsys.readouterr().err
    (tmp_path / "h.json").write_text('{"format": "other"}')
    with pytest.raises(MigrationError, match="not a chain history of this version"):
        import_history({"format": "other"}, None, None, tmp_path / "x")  # type: ignore[arg-type]
