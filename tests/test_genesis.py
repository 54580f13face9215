"""swci genesis: clique (geth) and QBFT (besu) genesis files for one signer per organisation,
checked by decoding their extraData back, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rlp

from swarmlearning.chain.genesis import GenesisError, genesis, main

A = "0x" + "a1" * 20
B = "0x" + "0b" * 20
SN = "0x" + "5e" * 20


def test_clique_lists_the_signers_sorted_between_vanity_and_seal() -> None:
    doc = genesis("clique", 4242, [A, B], {SN: 10**21})
    extra = bytes.fromhex(doc["extraData"][2:])
    assert extra[:32] == bytes(32) and extra[-65:] == bytes(65)
    body = extra[32:-65]
    assert [body[i:i + 20].hex() for i in range(0, len(body), 20)] == ["0b" * 20, "a1" * 20]
    assert doc["config"]["chainId"] == 4242 and doc["config"]["londonBlock"] == 0
    assert doc["config"]["clique"] == {"period": 2, "epoch": 30000}
    assert doc["alloc"] == {"5e" * 20: {"balance": hex(10**21)}}


def test_qbft_encodes_the_validators_as_besu_reads_them() -> None:
    doc = genesis("qbft", 7, [A, B], {})
    vanity, validators, vote, round_, seals = rlp.decode(bytes.fromhex(doc["extraData"][2:]))
    assert vanity == bytes(32) and vote == [] and round_ == b"" and seals == []
    assert [v.hex() for v in validators] == ["0b" * 20, "a1" * 20]
    assert doc["extraData"].endswith("c080c0")  # no vote, round 0, no seals
    assert doc["config"]["qbft"]["blockperiodseconds"] == 2


@pytest.mark.parametrize("args, words", [
    (("pow", 1, [A], {}), "use one of clique, qbft"),
    (("clique", 1, [], {}), "at least one signer"),
    (("clique", 0, [A], {}), "must be a positive"),
    (("clique", 1, ["0x12"], {}), "signer '0x12' is not an Ethereum address"),
    (("clique", 1, [A, A.upper().replace("0X", "0x")], {}), "listed twice"),
    (("qbft", 1, [A], {"nope": 1}), "allocation 'nope' is not an Ethereum address"),
])
def test_bad_settings_are_named(args, words: str) -> None:
    with pytest.raises(GenesisError, match=words):
        genesis(*args)


def test_the_command_writes_a_file_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    out = tmp_path / "genesis.json"
    assert main(["--engine", "clique", "--chain-id", "99", "--signer", A, "--signer", B,
                 "--alloc", f"{SN}=1000", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["alloc"]["5e" * 20]["balance"] == hex(1000 * 10**18)
    assert main(["--engine", "qbft", "--chain-id", "99", "--signer", A,
                 "--alloc", "nonsense"]) == 2
    assert "expected ADDRESS=ETHER" in capsys.readouterr().err
