"""The SN's configuration: one explicit object, built from `swci run-sn` options (HPE's names)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from swarmlearning.defaults import SN_API_PORT, SN_P2P_PORT
from swarmlearning.identity.options import add_identity_arguments, identity_from_arguments
from swarmlearning.identity.tls import Identity

DEFAULT_API_PORT = SN_API_PORT
DEFAULT_P2P_PORT = SN_P2P_PORT


@dataclass(frozen=True)
class SNConfig:
    """Everything an SN needs to start."""

    identity: Identity
    data_dir: Path
    host_ip: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    p2p_port: int = DEFAULT_P2P_PORT
    sentinel: bool = False
    sentinel_ip: str | None = None
    sentinel_api_port: int = DEFAULT_API_PORT
    eth_rpc: str | None = None
    registry: str | None = None
    eth_key_passphrase_file: Path | None = None
    name: str = "sn"
    sentinel_wait_seconds: float = 1800.0
    heartbeat_seconds: float = 10.0

    @property
    def node_type(self) -> str:
        return "SENTINEL" if self.sentinel else "SN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-sn options."""
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--sentinel", action="store_true",
                      help="this SN starts the chain and deploys the contracts")
    role.add_argument("--sentinel-ip", metavar="IP", help="address of the sentinel SN")
    role.add_argument("--registry", metavar="ADDRESS",
                      help="with --eth-rpc: the swarm's node registry contract on that "
                           "network, where this SN finds the other contracts without asking "
                           "the sentinel")
    parser.add_argument("--sentinel-api-port", type=int, default=DEFAULT_API_PORT, metavar="P",
                        help="the sentinel's API port (default %(default)s)")
    parser.add_argument("--host-ip", default="127.0.0.1", metavar="IP",
                        help="this SN's address; it listens there (default %(default)s)")
    parser.add_argument("--sn-api-port", type=int, default=DEFAULT_API_PORT, metavar="P",
                        help="REST API port (default %(default)s)")
    parser.add_argument("--sn-p2p-port", type=int, default=DEFAULT_P2P_PORT, metavar="P",
                        help="chain port: the sentinel serves Ethereum JSON-RPC here "
                             "(default %(default)s)")
    add_identity_arguments(parser)
    parser.add_argument("--data-dir", default="./sn-data", metavar="DIR",
                        help="where the chain and the node's state persist (default %(default)s)")
    parser.add_argument("--eth-rpc", metavar="URL",
                        help="use this Ethereum JSON-RPC node (http://, https://, ws:// or "
                             "wss://) instead of the embedded chain; the SN signs with its own "
                             "key, kept encrypted in DATA_DIR/node-key.json")
    parser.add_argument("--eth-key-passphrase-file", metavar="FILE", default=None,
                        help="the node key's passphrase (first line); default: the "
                             "SWARM_ETH_KEY_PASSPHRASE variable")
    parser.add_argument("--name", default=None, help="node name shown by LIST NODES")
    parser.add_argument("--sentinel-wait", type=float, default=1800.0, metavar="SECONDS",
                        help="how long a non-sentinel SN waits for its sentinel "
                             "(default %(default)s)")
    parser.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                        help="interval of the batched liveness transaction (default "
                             "%(default)s)")


def from_arguments(args: argparse.Namespace) -> SNConfig:
    """An SNConfig from parsed run-sn options; a missing identity is a clear error."""
    try:
        identity = identity_from_arguments(args, "run-sn")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if args.registry and not args.eth_rpc:
        raise SystemExit("run-sn: --registry needs --eth-rpc (the network the registry is on)")
    return SNConfig(identity=identity, data_dir=Path(args.data_dir).resolve(),
                    host_ip=args.host_ip, api_port=args.sn_api_port, p2p_port=args.sn_p2p_port,
                    sentinel=args.sentinel, sentinel_ip=args.sentinel_ip,
                    sentinel_api_port=args.sentinel_api_port, eth_rpc=args.eth_rpc,
                    registry=args.registry,
                    eth_key_passphrase_file=(Path(args.eth_key_passphrase_file)
                                             if args.eth_key_passphrase_file else None),
                    name=args.name or ("sentinel" if args.sentinel else "sn"),
                    sentinel_wait_seconds=args.sentinel_wait, heartbeat_seconds=args.heartbeat)
