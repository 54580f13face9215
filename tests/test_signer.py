"""The SN's node key and its signed transactions. The keystore tests use real files and real
scrypt; the sender runs against the real embedded chain (py-evm) through web3, with a provider
wrapper that breaks connections on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.providers.base import JSONBaseProvider

from swarmlearning.chain.embedded import EmbeddedChain
from swarmlearning.chain.rpc_client import RpcUnavailable, provider_for
from swarmlearning.chain.signer import (
    KEYSTORE_FILE,
    NodeKeyError,
    ReceiptTimeout,
    SignedSender,
    node_key,
    passphrase_from,
)


def test_a_node_key_is_made_once_encrypted_and_opened_again(tmp_path: Path) -> None:
    made = node_key(tmp_path, "s3cret")
    path = tmp_path / KEYSTORE_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(path.read_text())
    assert stored["crypto"]["kdf"] == "scrypt" and bytes(made.key).hex() not in path.read_text()
    assert node_key(tmp_path, "s3cret").address == made.address
    with pytest.raises(NodeKeyError, match="the passphrase does not open this key"):
        node_key(tmp_path, "wrong")
    path.write_text("{not json")
    with pytest.raises(NodeKeyError, match="not a keystore file"):
        node_key(tmp_path, "s3cret")


def test_the_passphrase_comes_from_a_file_or_the_environment(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.delenv("SWARM_ETH_KEY_PASSPHRASE", raising=False)
    with pytest.raises(NodeKeyError, match="SWARM_ETH_KEY_PASSPHRASE is not set"):
        passphrase_from(None)
    monkeypatch.setenv("SWARM_ETH_KEY_PASSPHRASE", "from-env")
    assert passphrase_from(None) == "from-env"
    file = tmp_path / "phrase"
    file.write_text("from-file\nignored\n")
    assert passphrase_from(file) == "from-file"
    file.write_text("")
    with pytest.raises(NodeKeyError, match="is empty"):
        passphrase_from(file)
    with pytest.raises(NodeKeyError, match="cannot read the passphrase file"):
        passphrase_from(tmp_path / "missing")


class Flaky(JSONBaseProvider):
    """The embedded chain's provider, failing the next `fail` calls of the named methods as a
    broken connection would (after the chain took the request, for sends: `after`)."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self.chain = chain
        self.fail: dict[str, int] = {}
        self.after = False
        self.calls: list[str] = []

    def forward(self, method: Any, params: Any) -> Any:
        """The request as the SN's JSON-RPC port would serve it."""
        return self.chain.handle_rpc(json.loads(self.encode_rpc_request(method, params)))

    def make_request(self, method: Any, params: Any) -> Any:
        self.calls.append(method)
        if self.fail.get(method):
            self.fail[method] -= 1
            if self.after:
                self.forward(method, params)
            raise RpcUnavailable(f"connection to the node broke during {method}")
        return self.forward(method, params)

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Web3, Flaky, SignedSender]:
    embedded = EmbeddedChain(None)
    inner = embedded.web3()
    account = node_key(tmp_path, "pw")
    inner.eth.send_transaction({"from": inner.eth.accounts[0], "to": account.address,
                                "value": 10**21})
    flaky = Flaky(embedded)
    w3 = Web3(flaky)
    naps: list[float] = []
    sender = SignedSender(w3, account, inner.eth.chain_id, sleep=naps.append)
    return w3, flaky, sender


def test_signed_transactions_are_sent_with_their_own_nonces(chain) -> None:
    w3, _, sender = chain
    target = Web3.to_checksum_address("0x" + "11" * 20)
    first = sender.send({"to": target, "gas": 21000, "value": 5})
    second = sender.send({"to": target, "gas": 21000, "value": 7})
    assert first["status"] == second["status"] == 1
    assert w3.eth.get_balance(target) == 12
    assert w3.eth.get_transaction(first["transactionHash"])["nonce"] == 0
    assert w3.eth.get_transaction(second["transactionHash"])["nonce"] == 1


def test_a_broken_connection_is_retried_with_the_same_signed_bytes(chain) -> None:
    w3, flaky, sender = chain
    target = Web3.to_checksum_address("0x" + "22" * 20)
    # the node took the transaction, but its answer was lost: the retry must not pay twice
    flaky.after = True
    flaky.fail = {"eth_sendRawTransaction": 1, "eth_getTransactionReceipt": 2}
    receipt = sender.send({"to": target, "gas": 21000, "value": 9})
    assert receipt["status"] == 1 and w3.eth.get_balance(target) == 9
    assert flaky.calls.count("eth_sendRawTransaction") == 2
    assert w3.eth.get_transaction_count(sender.address) == 1


def test_a_node_that_stays_away_is_an_error_not_a_hang(chain) -> None:
    _, flaky, sender = chain
    flaky.fail = {"eth_sendRawTransaction": 100}
    with pytest.raises(RpcUnavailable):
        sender.send({"to": sender.address, "gas": 21000})
    assert flaky.calls.count("eth_sendRawTransaction") == 7  # once, then 6 retries


def test_a_transaction_without_a_receipt_times_out_with_its_hash(tmp_path: Path) -> None:
    embedded = EmbeddedChain(None)
    inner = embedded.web3()
    account = node_key(tmp_path, "pw")
    inner.eth.send_transaction({"from": inner.eth.accounts[0], "to": account.address,
                                "value": 10**21})

    class NeverMined(Flaky):
        def make_request(self, method: Any, params: Any) -> Any:
            if method == "eth_sendRawTransaction":
                return {"jsonrpc": "2.0", "id": 1, "result": "0x" + "00" * 32}
            if method == "eth_getTransactionReceipt":
                return {"jsonrpc": "2.0", "id": 1, "result": None}
            return self.forward(method, params)

    now = [0.0]
    sender = SignedSender(Web3(NeverMined(embedded)), account, inner.eth.chain_id,
                          receipt_timeout=5, sleep=lambda s: now.__setitem__(0, now[0] + s),
                          clock=lambda: now[0])
    with pytest.raises(ReceiptTimeout, match="has no receipt after 5 s"):
        sender.send({"to": account.address, "gas": 21000})


def test_provider_for_picks_by_scheme() -> None:
    assert type(provider_for("http://127.0.0.1:1")).__name__ == "HttpxJsonRpcProvider"
    assert type(provider_for("wss://node.example:8546")).__name__ == "WebSocketJsonRpcProvider"
    with pytest.raises(ValueError, match="use an http://, https://, ws:// or wss:// URL"):
        provider_for("ipc:///tmp/geth.ipc")
