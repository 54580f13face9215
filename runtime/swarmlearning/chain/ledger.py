"""Typed access to the swarm's four contracts through web3: deployment, transactions, reads and
the change log the SN cache follows.

Writes send a transaction with a fixed gas allowance (no estimate round trip) and check its
receipt; a reverted transaction is replayed as a call to recover the contract's reason, which
becomes ChainRejected. On the embedded chain the sender is an account the chain holds; on an
external node, a SignedSender signs with the SN's own key (swarmlearning.chain.signer). Reads
are plain calls; the SN caches them (swarmlearning.sn.view).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError

from swarmlearning.chain.signer import SignedSender

CONTRACTS_DIR = Path(__file__).with_name("contracts")
KINDS = ("nodes", "tasks", "runners", "trainings")
CONTRACT_OF_KIND = {"nodes": "NodeRegistry", "tasks": "TaskBoard",
                    "runners": "TaskRunnerBoard", "trainings": "TrainingBoard"}
WRITE_GAS = 12_000_000
DEPLOY_GAS = 29_000_000


class ChainRejected(Exception):
    """A contract refused a write; the message is the contract's reason."""


class OutdatedContracts(Exception):
    """The chain holds contracts of another version of this software; the message says which."""


@cache
def artifact(contract: str) -> dict[str, Any]:
    """The committed ABI and bytecode of one contract."""
    return json.loads((CONTRACTS_DIR / f"{contract}.json").read_text(encoding="utf-8"))


def key_of(name: str) -> bytes:
    """The mapping key of a name on chain: keccak256 of its UTF-8 bytes."""
    return bytes(Web3.keccak(text=name))


@dataclass(frozen=True)
class Addresses:
    """Where the swarm's contracts live on one chain."""

    chain_id: int
    nodes: str
    tasks: str
    runners: str
    trainings: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Addresses:
        try:
            return cls(chain_id=int(data["chain_id"]),
                       **{kind: Web3.to_checksum_address(data[kind]) for kind in KINDS})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a contract address record: {exc}") from None


def deploy(w3: Web3, sender: str, signer: SignedSender | None = None) -> Addresses:
    """Deploy the four contracts (a fresh swarm); the default objects exist afterwards. With a
    signer, its account sends them (an external node)."""
    def one(contract: str, *args: Any) -> str:
        spec = artifact(contract)
        factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        if signer is not None:
            data = factory.constructor(*args).build_transaction(_offline(signer))["data"]
            receipt = signer.send({"data": data, "gas": DEPLOY_GAS})
        else:
            tx = factory.constructor(*args).transact({"from": sender, "gas": DEPLOY_GAS})
            receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=60)
        if receipt["status"] != 1:
            raise RuntimeError(f"deploying {contract} failed")
        return receipt["contractAddress"]

    tasks = one("TaskBoard")
    addresses = Addresses(chain_id=w3.eth.chain_id, nodes=one("NodeRegistry"), tasks=tasks,
                          runners=one("TaskRunnerBoard", tasks), trainings=one("TrainingBoard"))
    # the node registry is the swarm's directory: one address leads to the other three
    call = w3.eth.contract(address=addresses.nodes, abi=artifact("NodeRegistry")["abi"]) \
        .functions.set_directory(addresses.tasks, addresses.runners, addresses.trainings)
    if signer is not None:
        receipt = signer.send({"to": addresses.nodes, "gas": WRITE_GAS,
                               "data": call.build_transaction(_offline(signer))["data"]})
    else:
        receipt = w3.eth.wait_for_transaction_receipt(
            call.transact({"from": sender, "gas": WRITE_GAS}), timeout=60)
    if receipt["status"] != 1:
        raise RuntimeError("recording the contract directory failed")
    return addresses


def find_contracts(w3: Web3, registry: str) -> Addresses:
    """The swarm's contracts on `w3`'s chain, from the node registry's address alone."""
    nodes = w3.eth.contract(address=Web3.to_checksum_address(registry),
                            abi=artifact("NodeRegistry")["abi"])
    if not w3.eth.get_code(nodes.address):
        raise ValueError(f"no contract at {registry} on chain {w3.eth.chain_id}")
    tasks = nodes.functions.tasks_board().call()
    if int(tasks, 16) == 0:
        raise ValueError(f"the node registry at {registry} names no other contracts yet")
    return Addresses(chain_id=w3.eth.chain_id, nodes=nodes.address, tasks=tasks,
                     runners=nodes.functions.runner_board().call(),
                     trainings=nodes.functions.training_board().call())


def check_contracts(w3: Web3, addresses: Addresses, where: str) -> None:
    """OutdatedContracts unless every contract at `addresses` runs the code this version was
    built with (a deployed contract's code is part of its committed deployment bytecode)."""
    stale = [CONTRACT_OF_KIND[kind] for kind in KINDS
             if bytes(w3.eth.get_code(getattr(addresses, kind))).hex() not in
             artifact(CONTRACT_OF_KIND[kind])["bytecode"]]
    if stale:
        raise OutdatedContracts(
            f"{where} holds {', '.join(stale)} as deployed by another version of swci; this "
            "version cannot read or write them. Start the sentinel on a fresh data directory, "
            "or run the version that created them")


class Ledger:
    """The swarm's contracts on one chain, written from one sender account."""

    def __init__(self, w3: Web3, addresses: Addresses, sender: str,
                 signer: SignedSender | None = None) -> None:
        self.w3 = w3
        self.addresses = addresses
        self.sender = signer.address if signer is not None else sender
        self.signer = signer
        self.contracts = {kind: w3.eth.contract(address=getattr(addresses, kind),
                                                abi=artifact(CONTRACT_OF_KIND[kind])["abi"])
                          for kind in KINDS}
        self._kind_of_address = {getattr(addresses, kind).lower(): kind for kind in KINDS}
        self._topics = {kind: _event_topics(artifact(CONTRACT_OF_KIND[kind])["abi"])
                        for kind in KINDS}
        self._write_lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------------

    def transact(self, kind: str, function: str, *args: Any) -> dict[str, Any]:
        """Send one transaction and wait for its receipt; a revert raises ChainRejected."""
        call = getattr(self.contracts[kind].functions, function)(*args)
        with self._write_lock:
            if self.signer is not None:
                data = call.build_transaction(_offline(self.signer))["data"]
                receipt = self.signer.send({"to": self.contracts[kind].address, "data": data,
                                            "gas": WRITE_GAS})
            else:
                tx = call.transact({"from": self.sender, "gas": WRITE_GAS,
                                    "chainId": self.addresses.chain_id})
                receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=120,
                                                                   poll_latency=0.05)
        if receipt["status"] == 1:
            return dict(receipt)
        try:
            call.call({"from": self.sender})
        except ContractLogicError as exc:
            raise ChainRejected(_reason(exc)) from None
        raise ChainRejected(f"{function} was reverted by the chain (out of gas or state changed)")

    # -- reading -----------------------------------------------------------------------------------

    def read(self, kind: str, function: str, *args: Any) -> Any:
        return getattr(self.contracts[kind].functions, function)(*args).call(
            {"from": self.sender})

    def keys(self, kind: str) -> list[bytes]:
        count_fn = {"nodes": "node_count", "tasks": "task_count", "runners": "runner_count",
                    "trainings": "contract_count"}[kind]
        return [bytes(self.read(kind, "key_at", i)) for i in range(self.read(kind, count_fn))]

    def block_number(self) -> int:
        return self.w3.eth.block_number

    @property
    def reorgs_possible(self) -> bool:
        """True on an external network, where blocks not yet final can be replaced; the
        embedded chain has one miner and never reorganises."""
        return self.signer is not None

    def block_hash(self, number: int) -> bytes | None:
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:  # the chain got shorter; a broken connection is raised
            return None

    def changes(self, from_block: int, to_block: int) -> list[tuple[str, str, dict[str, Any]]]:
        """The contract events in a block range as (kind, event name, arguments), in order."""
        raw = self.w3.eth.get_logs({"fromBlock": from_block, "toBlock": to_block,
                                    "address": [getattr(self.addresses, k) for k in KINDS]})
        result = []
        for entry in raw:
            kind = self._kind_of_address.get(str(entry["address"]).lower())
            if kind is None:
                continue
            decoded = self._decode(kind, entry)
            if decoded is not None:
                result.append((kind, decoded[0], decoded[1]))
        return result

    def _decode(self, kind: str, entry: Any) -> tuple[str, dict[str, Any]] | None:
        """(event name, arguments); an event this ABI does not know (a contract deployed by an
        older version) that names an object in its first indexed topic is ("Unknown", {key})."""
        topics = entry["topics"]
        name = self._topics[kind].get(bytes(topics[0])) if topics else None
        if name is None:
            return ("Unknown", {"key": bytes(topics[1])}) if len(topics) > 1 else None
        args = getattr(self.contracts[kind].events, name)().process_log(entry)["args"]
        # not dict(args): an event argument named `keys` (NodesAlive) shadows the method
        return name, {arg: args[arg] for arg in args}


def _offline(signer: SignedSender) -> dict[str, Any]:
    """Transaction fields that let web3 encode a call without asking the node anything (the
    signer sets the real nonce and fees)."""
    return {"from": signer.address, "gas": WRITE_GAS, "nonce": 0, "chainId": signer.chain_id,
            "maxFeePerGas": 1, "maxPriorityFeePerGas": 0}


def _event_topics(abi: list[dict[str, Any]]) -> dict[bytes, str]:
    """Event signature hash (topic 0) to event name."""
    topics = {}
    for item in abi:
        if item.get("type") == "event":
            signature = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
            topics[bytes(Web3.keccak(text=signature))] = item["name"]
    return topics


def _abi_type(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _reason(exc: ContractLogicError) -> str:
    message = str(exc.args[0] if exc.args else exc)
    return message.removeprefix("execution reverted").lstrip(": ") or "the contract refused"
