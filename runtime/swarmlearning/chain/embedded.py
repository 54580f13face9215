"""The embedded chain: py-evm through eth-tester, persisted in the SN's data directory.

The sentinel SN owns it. Its own web3 talks to it in process (`EmbeddedChain.provider`); other SNs
reach it as standard Ethereum JSON-RPC on the sentinel's p2p port (`EmbeddedChain.handle_rpc`).
One lock serialises every request, and the store commits before each answer, so a `kill -9` loses
no acknowledged transaction.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound
from eth_abi import encode
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm import main as pyevm
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.middleware import request_formatters, result_formatters

from swarmlearning.chain.storage import SqliteKeyValueStore
from swarmlearning.chain.wire import to_wire

log = logging.getLogger("swarm.chain")

CHAIN_FILE = "chain.sqlite"
# eth-tester insists on a sender; a JSON-RPC node takes its first account when none is given.
_NEEDS_SENDER = frozenset({"eth_call", "eth_estimateGas", "eth_createAccessList"})


class PersistentBackend(PyEVMBackend):
    """eth-tester's py-evm backend with its database in a SQLite file (memory when no path)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self.store: SqliteKeyValueStore | None = None
        self.resumed_at: int | None = None
        super().__init__()

    def reset_to_genesis(self, genesis_params: Any = None, genesis_state: Any = None,
                         num_accounts: Any = None, vm_configuration: Any = None,
                         mnemonic: Any = None, hd_path: Any = None) -> None:
        keys, scratch = pyevm.setup_tester_chain(genesis_params, genesis_state, num_accounts,
                                                 vm_configuration, mnemonic, hd_path)
        self.account_keys = keys
        if self._path is None:
            self.chain = scratch
            return
        chain_class = type(scratch)
        self.store = SqliteKeyValueStore(self._path)
        base_db = AtomicDB(self.store)
        try:
            head = ChainDB(base_db).get_canonical_head()
        except CanonicalHeadNotFound:
            params = genesis_params or pyevm.get_default_genesis_params()
            state = genesis_state or pyevm.generate_genesis_state_for_keys(keys)
            self.chain = chain_class.from_genesis(base_db, params, state)
        else:
            self.chain = chain_class(base_db)
            self.resumed_at = head.block_number
        self.store.commit()


class _LockedProvider(EthereumTesterProvider):
    """The in-process provider; every request holds the chain lock and commits before returning."""

    def __init__(self, tester: EthereumTester, lock: threading.RLock,
                 store: SqliteKeyValueStore | None) -> None:
        super().__init__(tester)
        self._lock = lock
        self._store = store

    def make_request(self, method: Any, params: Any) -> Any:
        with self._lock:
            try:
                return super().make_request(method, params)
            except TransactionFailed as exc:
                # eth-tester raises on a revert; answer as a JSON-RPC node does, so that web3
                # raises ContractLogicError here as it does for every other SN
                return _reverted(repr(self._current_request_id), str(exc.args[0] if exc.args
                                                                      else exc))
            finally:
                if self._store is not None:
                    self._store.commit()


class EmbeddedChain:
    """A py-evm chain in this process; `data_dir=None` keeps it in memory."""

    def __init__(self, data_dir: Path | None) -> None:
        path = data_dir / CHAIN_FILE if data_dir is not None else None
        self.backend = PersistentBackend(path)
        self.tester = EthereumTester(self.backend, auto_mine_transactions=True)
        self._lock = threading.RLock()
        self.provider = _LockedProvider(self.tester, self._lock, self.backend.store)
        self.resumed = self.backend.resumed_at is not None
        if self.resumed:
            log.info("Embedded chain resumed from %s at block %s", path, self.backend.resumed_at)

    def web3(self) -> Web3:
        return Web3(self.provider)

    def handle_rpc(self, payload: Any) -> Any:
        """Answer one JSON-RPC request object or a batch, in wire format."""
        if isinstance(payload, list):
            if not payload:
                return _error(None, -32600, "invalid request: empty batch")
            return [self._one(item) for item in payload]
        return self._one(payload)

    def _one(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "invalid request: expected an object with a method")
        request_id = request.get("id")
        method = request["method"]
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error(request_id, -32602, "invalid params: expected an array")
        if method in _NEEDS_SENDER and params and isinstance(params[0], dict):
            params = [{"from": self._default_sender(), **params[0]}, *params[1:]]
        try:
            formatter = request_formatters.get(method)
            if formatter is not None:
                params = formatter(params)
            response = self.provider.make_request(method, params)
        except TransactionFailed as exc:
            return _reverted(request_id, str(exc.args[0] if exc.args else exc))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON-RPC error
            return _error(request_id, -32000, f"{type(exc).__name__}: {exc}")
        if "error" in response:
            return {"jsonrpc": "2.0", "id": request_id, "error": response["error"]}
        result = response.get("result")
        formatter = result_formatters.get(method)
        if formatter is not None:
            result = formatter(result)
        return {"jsonrpc": "2.0", "id": request_id, "result": to_wire(result)}

    def _default_sender(self) -> str:
        return self.tester.get_accounts()[0]

    def close(self) -> None:
        with self._lock:
            if self.backend.store is not None:
                self.backend.store.close()


def _reverted(request_id: Any, message: str) -> dict[str, Any]:
    """A revert as geth reports it: code 3 and the ABI-encoded Error(string) as data."""
    reason = message.removeprefix("execution reverted").lstrip(": ")
    data = "0x08c379a0" + encode(["string"], [reason]).hex() if reason else "0x"
    return {"jsonrpc": "2.0", "id": request_id,
            "error": {"code": 3, "message": message, "data": data}}


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
