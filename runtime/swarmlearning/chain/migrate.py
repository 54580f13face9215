"""Moving a swarm's history from the embedded chain to an external Ethereum network.

    swci chain export --data-dir SENTINEL_DATA -o history.json
    swci chain import history.json --eth-rpc URL --data-dir NEW_SENTINEL_DATA

Every change to the swarm's state is a transaction to one of its four contracts, and the
contracts take their timestamps as arguments. So `export` reads, block by block, every
transaction that changed the state (the successful calls to the four contracts, in chain order:
nodes, tasks, taskrunners, training contracts with every sync round, reset, merge, rejection
and progress report), and `import` deploys fresh contracts with the new sentinel's own key and
sends the same calls again, in the same order. The contracts end in the same state, history
included, with the same timestamps. The new sentinel finds them through the contract addresses
that import writes into its data directory, and starts on them with `--eth-rpc`.

Export reads the chain file of a sentinel that is stopped (stop it first: its state is then
final). The document records each call's contract (by kind), its calldata and where it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import Web3RPCError

from swarmlearning.chain.ledger import KINDS, WRITE_GAS, Addresses, deploy

FORMAT = "swci-chain-history/1"
DEPLOYMENT_ONLY = bytes(Web3.keccak(text="set_directory(address,address,address)"))[:4]
ADDRESSES_FILE = "contracts.json"


class MigrationError(RuntimeError):
    """The history cannot be read or replayed; the message says where."""


def export_history(data_dir: Path) -> dict[str, Any]:
    """The successful contract calls of the embedded chain in `data_dir`, in chain order."""
    from swarmlearning.chain.embedded import CHAIN_FILE, EmbeddedChain

    saved = data_dir / ADDRESSES_FILE
    if not (data_dir / CHAIN_FILE).exists() or not saved.exists():
        raise MigrationError(f"{data_dir} holds no embedded chain with the swarm's contracts "
                             f"(no {CHAIN_FILE} or {ADDRESSES_FILE}): give a sentinel's "
                             "--data-dir")
    addresses = Addresses.from_json(json.loads(saved.read_text(encoding="utf-8")))
    kind_of = {getattr(addresses, kind).lower(): kind for kind in KINDS}
    chain = EmbeddedChain(data_dir)
    try:
        w3 = chain.web3()
        calls = []
        for number in range(1, w3.eth.block_number + 1):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                kind = kind_of.get(str(tx.get("to") or "").lower())
                if kind is None:
                    continue
                if w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                    continue  # refused by the contract: it changed nothing
                data = tx["input"] if "input" in tx else tx["data"]  # eth-tester says data
                if bytes(data)[:4] == DEPLOYMENT_ONLY:
                    continue  # part of the deployment, which import does afresh
                calls.append({"kind": kind, "data": Web3.to_hex(data),
                              "block": number})
        head = w3.eth.block_number
    finally:
        chain.close()
    return {"format": FORMAT, "chain_id": addresses.chain_id, "head": head,
            "contracts": addresses.to_json(), "calls": calls}


def import_history(history: dict[str, Any], w3: Web3, signer: Any, data_dir: Path,
                   progress: Any = None) -> Addresses:
    """Deploy fresh contracts with `signer` and replay the history's calls on them; write their
    addresses to `data_dir/contracts.json` for the sentinel that will use them."""
    if not isinstance(history, dict) or history.get("format") != FORMAT:
        raise MigrationError(f"not a chain history of this version (format {FORMAT})")
    saved = data_dir / ADDRESSES_FILE
    if saved.exists():
        raise MigrationError(f"{saved} exists: import into a fresh data directory, so that no "
                             "sentinel's contracts are replaced")
    addresses = deploy(w3, signer.address, signer)
    calls = history.get("calls") or []
    for index, call in enumerate(calls, start=1):
        kind = call.get("kind")
        if kind not in KINDS:
            raise MigrationError(f"call {index}: unknown contract kind {kind!r}")
        receipt = signer.send({"to": getattr(addresses, kind), "data": call["data"],
                               "gas": WRITE_GAS})
        if receipt["status"] != 1:
            raise MigrationError(f"call {index} (block {call.get('block')} of the old chain, "
                                 f"{kind}) was refused on the new network")
        if progress is not None:
            progress(index, len(calls))
    data_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(addresses.to_json(), indent=1) + "\n", encoding="utf-8")
    return addresses


def main(argv: list[str] | None = None) -> int:
    """swci chain export|import."""
    parser = argparse.ArgumentParser(prog="swci chain",
                                     description="Move the embedded chain's history to an "
                                                 "external Ethereum network.")
    sub = parser.add_subparsers(dest="action", required=True)
    out = sub.add_parser("export", help="write the history of a stopped sentinel's chain")
    out.add_argument("--data-dir", required=True, help="the sentinel's --data-dir")
    out.add_argument("-o", "--output", required=True, help="the history file to write")
    into = sub.add_parser("import", help="replay a history on an external network")
    into.add_argument("history", help="the file `swci chain export` wrote")
    into.add_argument("--eth-rpc", required=True, metavar="URL",
                      help="the new network's node (http://, https://, ws:// or wss://)")
    into.add_argument("--data-dir", required=True,
                      help="the new sentinel's --data-dir (fresh; its node key is made there)")
    into.add_argument("--eth-key-passphrase-file", default=None, metavar="FILE",
                      help="the node key's passphrase (default: SWARM_ETH_KEY_PASSPHRASE)")
    args = parser.parse_args(argv)
    try:
        if args.action == "export":
            history = export_history(Path(args.data_dir))
            Path(args.output).write_text(json.dumps(history) + "\n", encoding="utf-8")
            print(f"wrote {args.output}: {len(history['calls'])} calls from "
                  f"{history['head']} blocks of chain {history['chain_id']}")
            return 0
        return _import(args)
    except (MigrationError, OSError, ValueError, RuntimeError, TimeoutError,
            Web3RPCError) as exc:  # RpcUnavailable and ReceiptTimeout are among them
        print(f"swci chain {args.action}: {exc}", file=sys.stderr)
        return 1


def _import(args: argparse.Namespace) -> int:
    from swarmlearning.chain.rpc_client import RpcUnavailable, provider_for
    from swarmlearning.chain.signer import SignedSender, node_key, passphrase_from

    try:
        history = json.loads(Path(args.history).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MigrationError(f"{args.history}: not JSON ({exc})") from None
    data_dir = Path(args.data_dir)
    try:
        w3 = Web3(provider_for(args.eth_rpc))
        account = node_key(data_dir, passphrase_from(
            Path(args.eth_key_passphrase_file) if args.eth_key_passphrase_file else None))
        signer = SignedSender(w3, account, w3.eth.chain_id)
    except RpcUnavailable as exc:
        raise MigrationError(str(exc)) from None
    total = len(history.get("calls") or []) if isinstance(history, dict) else 0
    print(f"replaying {total} calls from {account.address} on chain {signer.chain_id}")

    def report(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"  {done} of {total}", flush=True)

    addresses = import_history(history, w3, signer, data_dir, report)
    print(f"contracts at {addresses.to_json()}; start the sentinel with --data-dir {data_dir} "
          f"--eth-rpc {args.eth_rpc}")
    return 0
