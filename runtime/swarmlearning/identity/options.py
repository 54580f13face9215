"""The identity options every daemon takes (--cert, --key, --capath, --cacert, or the
SWARM_ID_* variables), and the Identity they name."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from swarmlearning.identity.tls import Identity


def add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert", default=os.environ.get("SWARM_ID_CERT"),
                        help="this node's certificate (or SWARM_ID_CERT)")
    parser.add_argument("--key", default=os.environ.get("SWARM_ID_KEY"),
                        help="its private key (or SWARM_ID_KEY)")
    parser.add_argument("--capath", default=os.environ.get("SWARM_ID_CAPATH"),
                        help="directory of trusted CA certificates (or SWARM_ID_CAPATH)")
    parser.add_argument("--cacert", default=os.environ.get("SWARM_ID_CACERT"),
                        help="one more trusted CA certificate (or SWARM_ID_CACERT)")


def identity_from_arguments(args: argparse.Namespace, command: str) -> Identity:
    """The Identity of parsed options; ValueError naming what is missing."""
    if not (args.cert and args.key and (args.capath or args.cacert)):
        raise ValueError(f"{command}: mutual TLS needs --cert, --key and --capath (or the "
                         "SWARM_ID_* variables); `swci gen-cert` makes a set")
    return Identity(cert=Path(args.cert), key=Path(args.key),
                    capath=Path(args.capath) if args.capath else None,
                    cacert=Path(args.cacert) if args.cacert else None)
