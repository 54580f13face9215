"""`swci serve` (and `swci` with SWCI_MODE=WEB): the SWCI web API on its port (SWCI_WEB_PORT,
else swarmlearning.defaults.SWCI_WEB_PORT), HTTPS with mutual TLS, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path

from swarmlearning.defaults import (
    READY_LINES,
    SWCI_WEB_PORT,
    WORKSPACE_DIR,
    WORKSPACE_ENV,
    NodeKind,
    workspace_root,
)

log = logging.getLogger("swci.web")
READY_LINE = READY_LINES[NodeKind.SWCI]
DEFAULT_PORT = SWCI_WEB_PORT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `swci serve`."""
    from swarmlearning.identity.options import add_identity_arguments

    parser = argparse.ArgumentParser(
        prog="swci serve",
        description="Serve the SWCI web API: HPE's POST /exec?cmd= and POST /uploadTaskDef, "
                    "over HTTPS with mutual TLS; each client certificate gets its own session.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("SWCI_WEB_PORT") or DEFAULT_PORT),
                        help="port (default SWCI_WEB_PORT or %(default)s)")
    parser.add_argument("--usr-dir", default=None, metavar="DIR",
                        help="the user directory (/platform/swarm/usr in HPE's scripts) and "
                             "every session's starting directory")
    parser.add_argument("--workspace", default=None, metavar="DIR",
                        help="local nodes and the throwaway PKI "
                             f"(default {WORKSPACE_ENV} or ./{WORKSPACE_DIR})")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="per-client uploads (default WORKSPACE/swci-web)")
    add_identity_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    """`swci serve`: serve until SIGTERM or SIGINT; 0 after a clean stop, 1 when the port is
    taken, 2 on a bad option or identity."""
    from swarmlearning.identity.tls import IdentityError, server_context
    from swarmlearning.lifecycle import stop_on_signal
    from swarmlearning.logs import setup_logging
    from swarmlearning.nodes.workspace import Workspace
    from swarmlearning.serve import Listener, PortInUse, peer_certificate, serve_all
    from swci.web.app import build_app
    from swci.web.sessions import Sessions

    args = build_parser().parse_args(argv)
    setup_logging(os.environ.get("SWCI_LOG_LEVEL"))
    workspace = Workspace(workspace_root(args.workspace))
    usr_dir = Path(args.usr_dir).expanduser().resolve() if args.usr_dir else None
    if usr_dir is not None and not usr_dir.is_dir():
        log.error("--usr-dir %s: not a directory", args.usr_dir)
        return 2
    try:
        identity = _identity(args, workspace)
        tls = server_context(identity)
    except (IdentityError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else (
        workspace.root / "swci-web")
    sessions = Sessions(data_dir, usr_dir=usr_dir, workspace=workspace.root)
    app = build_app(sessions, peer_certificate)
    stop = threading.Event()
    try:
        with stop_on_signal(stop):
            serve_all([Listener(app, args.host, args.port, "SWCI web API")], tls,
                      on_ready=lambda: log.info("%s%s", READY_LINE, args.port), stop=stop)
    except PortInUse as exc:
        log.error("%s", exc)
        return 1
    log.info("SWCI web API stopped")
    return 0


def _identity(args: argparse.Namespace, workspace: object):  # noqa: ANN202
    """--cert/--key/--capath (or SWARM_ID_*), else the workspace PKI's swci certificate."""
    from swarmlearning.identity.options import identity_from_arguments

    if args.cert or args.key:
        return identity_from_arguments(args, "serve")
    return workspace.identity("swci")  # type: ignore[attr-defined]
