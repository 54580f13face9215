"""The SN's own Ethereum account, for chains it does not run: a key kept encrypted in its data
directory, and the transactions it signs with it.

    key = node_key(data_dir, passphrase)          # made on first use, then only decrypted
    sender = SignedSender(w3, key, chain_id)
    receipt = sender.send({"to": address, "data": calldata, "gas": 12_000_000})

The keystore is the Web3 Secret Storage format (scrypt, AES-128-CTR) that geth and besu read,
mode 0600, `<data_dir>/node-key.json`. The passphrase comes from SWARM_ETH_KEY_PASSPHRASE or
from a file (`--eth-key-passphrase-file`); a wrong one is named as such.

`send` assigns nonces itself (one writer per key: the SN's write lock), sets EIP-1559 fees where
the chain has a base fee and a legacy gas price elsewhere, and retries a send or a receipt poll
that fails on a broken connection with the same signed bytes, so a retry can never become a
second transaction. A receipt that does not come within `receipt_timeout` seconds raises
ReceiptTimeout naming the transaction hash.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from swarmlearning.chain.rpc_client import RpcUnavailable

KEYSTORE_FILE = "node-key.json"
PASSPHRASE_ENV = "SWARM_ETH_KEY_PASSPHRASE"
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
POLL_SECONDS = 0.05
TIP_WEI = 1_000_000_000  # 1 gwei when the node does not suggest a priority fee


class NodeKeyError(ValueError):
    """The node key cannot be made or opened; the message says which file and why."""


class ReceiptTimeout(TimeoutError):
    """A sent transaction has no receipt within the wait; the message names its hash."""


def passphrase_from(file: Path | None) -> str:
    """The keystore passphrase: the file's first line when a file is given, else
    SWARM_ETH_KEY_PASSPHRASE."""
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise NodeKeyError(f"{file}: cannot read the passphrase file "
                               f"({exc.strerror or exc})") from None
        phrase = text.splitlines()[0] if text else ""
    else:
        phrase = os.environ.get(PASSPHRASE_ENV, "")
    if not phrase:
        where = f"{file} is empty" if file is not None else f"{PASSPHRASE_ENV} is not set"
        raise NodeKeyError(f"the node key needs a passphrase: {where} (set {PASSPHRASE_ENV} "
                           "or give a passphrase file)")
    return phrase


def node_key(data_dir: Path, passphrase: str) -> LocalAccount:
    """The SN's account: decrypted from `<data_dir>/node-key.json`, or made and stored there
    (encrypted with `passphrase`) when the file does not exist."""
    path = Path(data_dir) / KEYSTORE_FILE
    if path.exists():
        try:
            keystore = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NodeKeyError(f"{path}: not a keystore file ({exc})") from None
        try:
            return Account.from_key(Account.decrypt(keystore, passphrase))
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise NodeKeyError(f"{path}: the passphrase does not open this key") from None
            raise NodeKeyError(f"{path}: not a keystore this SN can read ({exc})") from None
    account = Account.create()
    keystore = Account.encrypt(account.key, passphrase)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(keystore, out)
    os.replace(temp, path)
    return account


class SignedSender:
    """Transactions of one account, signed here and sent as raw transactions."""

    def __init__(self, w3: Web3, account: LocalAccount, chain_id: int, *,
                 receipt_timeout: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.chain_id = chain_id
        self.receipt_timeout = receipt_timeout
        self._sleep = sleep
        self._clock = clock
        self._nonce: int | None = None

    def send(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Sign and send one transaction (`to` or none for a deployment, `data`, `gas`), and
        wait for its receipt."""
        if self._nonce is None:
            self._nonce = self._retrying(
                lambda: self.w3.eth.get_transaction_count(self.address, "pending"))
        full = {"chainId": self.chain_id, "nonce": self._nonce, "value": 0, **self._fees(), **tx}
        signed = self.account.sign_transaction(full)
        tx_hash = Web3.to_hex(signed.hash)
        try:
            self._retrying(lambda: self._submit(signed.raw_transaction, tx_hash))
        except Exception:
            # refused, or maybe taken before the connection broke: ask the node next time
            self._nonce = None
            raise
        self._nonce += 1
        return self._receipt(tx_hash)

    def _submit(self, raw: bytes, tx_hash: str) -> None:
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError:
            # a retry of bytes the node already took, its first answer lost: nodes say
            # "already known", or "nonce too low" once it is mined; either way it is there
            if self._known(tx_hash):
                return
            raise

    def _known(self, tx_hash: str) -> bool:
        try:
            self._retrying(lambda: self.w3.eth.get_transaction(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _fees(self) -> dict[str, int]:
        block = self._retrying(lambda: self.w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self._retrying(lambda: self.w3.eth.gas_price)}
        try:
            tip = int(self._retrying(lambda: self.w3.eth.max_priority_fee))
        except (Web3RPCError, ValueError):  # eth_maxPriorityFeePerGas is not offered everywhere
            tip = TIP_WEI
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base) + tip}

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        deadline = self._clock() + self.receipt_timeout
        while True:
            try:
                return dict(self._retrying(lambda: self.w3.eth.get_transaction_receipt(tx_hash)))
            except TransactionNotFound:
                pass
            if self._clock() >= deadline:
                raise ReceiptTimeout(f"transaction {tx_hash} has no receipt after "
                                     f"{self.receipt_timeout:g} s")
            self._sleep(POLL_SECONDS)

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """`call()`, tried again after each broken connection, up to len(RETRY_SECONDS) times."""
        for pause in (*RETRY_SECONDS, None):
            try:
                return call()
            except (RpcUnavailable, ConnectionError, OSError):
                if pause is None:
                    raise
                self._sleep(pause)
        raise AssertionError("unreachable")
