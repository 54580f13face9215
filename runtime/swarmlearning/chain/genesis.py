"""Genesis files for a proof-of-authority Ethereum network of several organisations: one
signer (validator) address per organisation, and ether for the accounts that send transactions
(each SN's node account).

- clique, for geth: `config.clique` and the signers in `extraData` (32 zero bytes, the
  addresses sorted, 65 zero bytes for the seal);
- qbft, for besu: `config.qbft` and `extraData` as the RLP list
  [32 zero bytes, [validators], [], round 0, []].

Every fork up to london starts at block 0, matching the EVM version the contracts are built for.

    swci genesis --engine clique --chain-id 4242 --signer 0xA.. --signer 0xB.. \\
        --alloc 0xSN1..=1000 --alloc 0xSN2..=1000 -o genesis.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import rlp
from web3 import Web3

ENGINES = ("clique", "qbft")
FORKS = ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
         "constantinopleBlock", "petersburgBlock", "istanbulBlock", "berlinBlock", "londonBlock")
WEI_PER_ETHER = 10**18
DEFAULT_GAS_LIMIT = 60_000_000  # a deployment of the swarm's contracts takes about 5 million


class GenesisError(ValueError):
    """A bad signer, allocation or setting; the message names it."""


def _address(text: str, what: str) -> str:
    try:
        return Web3.to_checksum_address(text)
    except (ValueError, TypeError):
        raise GenesisError(f"{what} {text!r} is not an Ethereum address (0x and 40 hex "
                           "digits)") from None


def clique_extra_data(signers: list[str]) -> str:
    """geth's clique extraData: vanity, the signers in ascending order, an empty seal."""
    body = b"".join(bytes.fromhex(a[2:]) for a in sorted(s.lower() for s in signers))
    return "0x" + (bytes(32) + body + bytes(65)).hex()


def qbft_extra_data(validators: list[str]) -> str:
    """besu's QBFT extraData: RLP of [vanity, validators, no vote, round 0, no seals]."""
    addresses = [bytes.fromhex(a[2:]) for a in sorted(v.lower() for v in validators)]
    return "0x" + rlp.encode([bytes(32), addresses, [], b"", []]).hex()


def genesis(engine: str, chain_id: int, signers: list[str], alloc: dict[str, int], *,
            period: int = 2, gas_limit: int = DEFAULT_GAS_LIMIT) -> dict[str, Any]:
    """The genesis document for `engine` (clique or qbft); `alloc` maps addresses to wei."""
    if engine not in ENGINES:
        raise GenesisError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")
    if not signers:
        raise GenesisError("give at least one signer (one per organisation)")
    if chain_id <= 0:
        raise GenesisError(f"chain id {chain_id}: must be a positive whole number")
    if period < 1:
        raise GenesisError(f"block period {period}: must be at least 1 second")
    checked = [_address(s, "signer") for s in signers]
    if len({s.lower() for s in checked}) != len(checked):
        raise GenesisError("a signer is listed twice")
    config: dict[str, Any] = {"chainId": chain_id, **{fork: 0 for fork in FORKS}}
    if engine == "clique":
        config["clique"] = {"period": period, "epoch": 30000}
        extra, difficulty = clique_extra_data(checked), "0x1"
    else:
        config["qbft"] = {"blockperiodseconds": period, "epochlength": 30000,
                          "requesttimeoutseconds": max(4, 2 * period)}
        extra, difficulty = qbft_extra_data(checked), "0x1"
    funds = {}
    for address, wei in alloc.items():
        if wei < 0:
            raise GenesisError(f"allocation of {address}: must not be negative")
        funds[_address(address, "allocation").lower()[2:]] = {"balance": hex(wei)}
    return {"config": config, "nonce": "0x0", "timestamp": "0x0", "extraData": extra,
            "gasLimit": hex(gas_limit), "difficulty": difficulty,
            "mixHash": "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
            if engine == "qbft" else "0x" + "00" * 32,
            "coinbase": "0x" + "00" * 20, "alloc": funds}


def _allocation(item: str) -> tuple[str, int]:
    address, sep, amount = item.partition("=")
    if not sep:
        raise GenesisError(f"--alloc {item!r}: expected ADDRESS=ETHER")
    try:
        ether = float(amount)
    except ValueError:
        raise GenesisError(f"--alloc {item!r}: {amount!r} is not a number of ether") from None
    return address, int(ether * WEI_PER_ETHER)


def main(argv: list[str] | None = None) -> int:
    """swci genesis: write a proof-of-authority genesis file."""
    parser = argparse.ArgumentParser(
        prog="swci genesis",
        description="Write the genesis file of a proof-of-authority network: clique (geth) or "
                    "QBFT (besu), one signer per organisation.")
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--signer", action="append", default=[], metavar="ADDRESS",
                        help="an organisation's signer (validator) address (repeatable)")
    parser.add_argument("--alloc", action="append", default=[], metavar="ADDRESS=ETHER",
                        help="ether for an account, such as an SN's node account (repeatable)")
    parser.add_argument("--period", type=int, default=2, help="seconds per block (default 2)")
    parser.add_argument("--gas-limit", type=int, default=DEFAULT_GAS_LIMIT)
    parser.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        document = genesis(args.engine, args.chain_id, args.signer,
                           dict(_allocation(item) for item in args.alloc), period=args.period,
                           gas_limit=args.gas_limit)
    except GenesisError as exc:
        print(f"swci genesis: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(document, indent=1) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({args.engine}, chain {args.chain_id}, "
              f"{len(args.signer)} signer(s))")
    return 0
