"""The swci command: interactive shell, init scripts, batch scripts, piped input, --check."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swarmlearning.defaults import WORKSPACE_DIR, WORKSPACE_ENV
from swci import __version__
from swci.check import check_file
from swci.interpreter import ExitCode, Interpreter, SessionState
from swci.runner import run_text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of swci."""
    parser = argparse.ArgumentParser(
        prog="swci",
        description="SWCI, the Swarm Learning command interface. Without options: an "
                    "interactive shell (or batch mode when commands are piped in). "
                    "Subcommands: demo, run-sn, run-sl, run-swop, serve, gen-cert, genesis, "
                    "node-key, chain, stop-swarm "
                    "(each has --help). SWCI_MODE=WEB means serve.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--init-script", "--init-script-name", metavar="FILE",
                      default=os.environ.get("SWCI_STARTUP_SCRIPT"),
                      help="run FILE, then stay interactive unless it ends in EXIT")
    mode.add_argument("--script", metavar="FILE", help="run FILE in batch mode and exit")
    mode.add_argument("--check", metavar="FILE", nargs="+",
                      help="validate SWCI scripts and task/profile YAML files; run nothing")
    parser.add_argument("--usr-dir", metavar="DIR",
                        help="the user directory: the working directory to start in, where "
                             "--init-script is looked up, and what /platform/swarm/usr maps to")
    parser.add_argument("--workspace", metavar="DIR",
                        help="where START SN keeps local nodes, logs and the throwaway PKI "
                             f"(default: {WORKSPACE_ENV} or ./{WORKSPACE_DIR})")
    parser.add_argument("--version", action="version", version=f"swci {__version__}")
    return parser


def _session(usr_dir: str | None) -> SessionState:
    if usr_dir:
        path = Path(usr_dir).expanduser().resolve()
        if not path.is_dir():
            raise SystemExit(f"swci: --usr-dir {usr_dir}: not a directory")
        return SessionState(cwd=path, usr_dir=path)
    return SessionState(cwd=Path.cwd())


def _read_script(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"swci: cannot read {path}: {reason}", file=sys.stderr)
        raise SystemExit(ExitCode.SYNTAX_ERROR) from None


def _interactive_or_batch(interp: Interpreter) -> int:
    if sys.stdin.isatty():
        from swci.shell.app import run_shell

        return run_shell(interp)
    code = run_text(interp, sys.stdin.read(), "<stdin>")
    return int(code or ExitCode.OK)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the swci console script."""
    from swci.commands_cli import SUBCOMMANDS

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if os.environ.get("SWCI_MODE", "").strip().upper() == "WEB":
        return SUBCOMMANDS["serve"](argv)
    args = build_parser().parse_args(argv)
    if args.check:
        problems = [problem for path in args.check for problem in check_file(path)]
        for problem in problems:
            print(problem)
        bad = {p.path for p in problems}
        for path in args.check:
            if path not in bad:
                print(f"{path}: OK")
        return ExitCode.SYNTAX_ERROR if problems else ExitCode.OK
    interp = Interpreter(_session(args.usr_dir))
    if args.workspace:
        interp.state.workspace = Path(args.workspace).expanduser().resolve()
    try:
        if args.script:
            path = Path(args.script)
            return int(run_text(interp, _read_script(path), str(path)) or ExitCode.OK)
        if args.init_script:
            path = Path(args.init_script)
            if not path.is_absolute() and interp.state.usr_dir is not None \
                    and not path.exists():
                path = interp.state.usr_dir / path
            code = run_text(interp, _read_script(path), str(path))
            if code is not None:
                return int(code)
        return _interactive_or_batch(interp)
    except KeyboardInterrupt:
        print("\nswci: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    finally:
        interp.close()
