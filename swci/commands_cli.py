"""swci's daemon and set-up subcommands: run-sn, run-sl, run-swop, serve, demo, gen-cert,
genesis, node-key, chain, stop-swarm.

They share the console script with the shell: `swci run-sn ...` runs the SN in the foreground,
`swci gen-cert ...` writes a PKI in HPE's layout, `swci stop-swarm ...` stops local nodes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from swarmlearning.defaults import WORKSPACE_DIR, WORKSPACE_ENV, workspace_root


def gen_cert(argv: list[str]) -> int:
    """swci gen-cert --dir DIR --org NAME -i N [--host H ...] [--ip IP ...]."""
    from swarmlearning.identity.pki import COMPONENTS, add_trusted_ca, generate_pki

    parser = argparse.ArgumentParser(
        prog="swci gen-cert",
        description="Write a CA and key/certificate pairs for sn, sl, swci and swop in HPE's "
                    "layout (DIR/cert/ca/capath/ca-N-cert.pem, DIR/cert/<comp>-N-cert.pem ...).")
    parser.add_argument("--dir", required=True, help="where to write (DIR/cert/...)")
    parser.add_argument("--org", default="swarm", help="organisation name in the certificates")
    parser.add_argument("-i", "--index", type=int, default=1, help="host index N (default 1)")
    parser.add_argument("--host", action="append", default=None, metavar="NAME",
                        help="DNS name for the certificates (repeatable; default localhost)")
    parser.add_argument("--ip", action="append", default=None, metavar="IP",
                        help="IP address for the certificates (repeatable; default 127.0.0.1)")
    parser.add_argument("--trust", action="append", default=[], metavar="CA_CERT",
                        help="another organisation's CA certificate to add to the capath")
    args = parser.parse_args(argv)
    try:
        layout = generate_pki(Path(args.dir), args.org, args.index,
                              hosts=args.host or ["localhost"], ips=args.ip or ["127.0.0.1"])
        for ca in args.trust:
            add_trusted_ca(layout.capath, Path(ca))
    except (OSError, ValueError) as exc:
        print(f"swci gen-cert: {exc}", file=sys.stderr)
        return 1
    print(f"CA     : {layout.ca_cert}")
    for comp in COMPONENTS:
        print(f"{comp.upper():<6} : {layout.cert(comp)}")
    print(f"CAPATH : {layout.capath}")
    return 0


def chain(argv: list[str]) -> int:
    """swci chain export|import: move the embedded chain's history to an external network."""
    from swarmlearning.chain.migrate import main

    return main(argv)


def genesis(argv: list[str]) -> int:
    """swci genesis --engine clique|qbft --chain-id N --signer ADDR ... [--alloc ADDR=ETHER]."""
    from swarmlearning.chain.genesis import main

    return main(argv)


def node_key(argv: list[str]) -> int:
    """swci node-key --data-dir DIR [--passphrase-file F]: the SN's account address."""
    from swarmlearning.chain.signer import NodeKeyError, node_key, passphrase_from

    parser = argparse.ArgumentParser(
        prog="swci node-key",
        description="Make (or open) an SN's node key in its data directory, as `swci run-sn "
                    "--eth-rpc` does, and print the account's address, to fund it on the "
                    "network before the SN starts.")
    parser.add_argument("--data-dir", required=True, help="the SN's --data-dir")
    parser.add_argument("--passphrase-file", default=None, metavar="FILE",
                        help="the key's passphrase (default: SWARM_ETH_KEY_PASSPHRASE)")
    args = parser.parse_args(argv)
    try:
        account = node_key(Path(args.data_dir),
                           passphrase_from(Path(args.passphrase_file)
                                           if args.passphrase_file else None))
    except NodeKeyError as exc:
        print(f"swci node-key: {exc}", file=sys.stderr)
        return 1
    print(account.address)
    return 0


def stop_swarm(argv: list[str]) -> int:
    """swci stop-swarm [--all|--sn|--sl|--swop|--swci] [--keep] [--workspace DIR]."""
    from swarmlearning.nodes.workspace import STOP_ORDER, Workspace

    parser = argparse.ArgumentParser(prog="swci stop-swarm",
                                     description="Stop the local nodes of a workspace.")
    for kind in ("all", *STOP_ORDER):
        parser.add_argument(f"--{kind}", action="store_true", help=f"stop {kind} nodes")
    parser.add_argument("--keep", action="store_true",
                        help="keep the node records and logs (data is always kept)")
    parser.add_argument("--workspace", default=None,
                        help=f"the workspace (default {WORKSPACE_ENV} or ./{WORKSPACE_DIR})")
    args = parser.parse_args(argv)
    chosen = tuple(kind for kind in STOP_ORDER if getattr(args, kind))
    kinds = STOP_ORDER if args.all or not chosen else chosen
    workspace = Workspace(workspace_root(args.workspace))
    stopped = workspace.stop_all(kinds, keep=args.keep,
                                 report=lambda r: print(f"{r.kind.upper()} {r.name} stopped "
                                                        f"(pid {r.pid})"))
    if not stopped:
        print(f"No local nodes in {workspace.root}")
    return 0


def run_sn(argv: list[str]) -> int:
    """swci run-sn: a Swarm Network node in the foreground."""
    from swarmlearning.sn.node import main

    return main(argv)


def run_sl(argv: list[str]) -> int:
    """swci run-sl: a Swarm Learning node in the foreground."""
    from swarmlearning.sl.node import main

    return main(argv)


def run_swop(argv: list[str]) -> int:
    """swci run-swop: a Swarm Operator node in the foreground."""
    from swarmlearning.swop.node import main

    return main(argv)


def serve(argv: list[str]) -> int:
    """swci serve: the SWCI web API in the foreground."""
    from swci.web.server import main

    return main(argv)


def demo(argv: list[str]) -> int:
    """swci demo: the quickstart swarm against its baselines."""
    from swci.demo import main

    return main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run-sn": run_sn,
    "run-sl": run_sl,
    "run-swop": run_swop,
    "serve": serve,
    "demo": demo,
    "gen-cert": gen_cert,
    "genesis": genesis,
    "chain": chain,
    "node-key": node_key,
    "stop-swarm": stop_swarm,
}
