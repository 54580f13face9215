"""The SWCI interpreter: runs command objects with HPE's semantics (prompt counter, ERROR lines,
EXIT ON FAILURE, EXIT), one line or a whole parsed script at a time."""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from swci.interpreter.output import Output
from swci.interpreter.state import DEFAULT_API_PORT, Context, SessionState
from swci.language.commands import Command
from swci.language.errors import SwciSyntaxError
from swci.language.parser import ScriptLine, parse_line
from swci.network import NetworkError, SwarmNetworkClient, client_for
from swci.network.tls import identity_key
from swci.registry import spec_for

ClientFactory = Callable[[str, int], SwarmNetworkClient]


class CommandFailed(Exception):
    """A command that could not do its job; printed as 'ERROR : <message>'."""


class Outcome(enum.Enum):
    """What became of one command."""

    OK = "ok"
    FAILED = "failed"
    EXIT = "exit"
    STOP = "stop"  # failed while EXIT ON FAILURE was on


class ExitCode(enum.IntEnum):
    """swci's exit codes."""

    OK = 0
    STOPPED_ON_FAILURE = 1
    SYNTAX_ERROR = 2
    INTERRUPTED = 130


class Interpreter:
    """Runs SWCI commands against a session state."""

    def __init__(self, state: SessionState | None = None, *,
                 client_factory: ClientFactory | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.state = state or SessionState(cwd=Path.cwd())
        self.client_factory = client_factory or self._workspace_client
        self.sleep = sleep
        self.monotonic = monotonic
        self.exit_requested = False
        self._clients: dict[tuple[str, int], tuple[tuple[object, ...], SwarmNetworkClient]] = {}
        self._retired: list[SwarmNetworkClient] = []  # replaced by a new identity
        self._clients_lock = threading.Lock()

    def api_endpoint(self, host: str, port: int | None) -> tuple[str, int]:
        """host and port of an SN API server. A host that names a local node started from this
        workspace (START SN sn1) resolves to its address and API port, as a container name does
        on HPE's Docker networks, so HPE scripts saying `create context c with ip sn1` run."""
        if port is None:
            record = _local_node(self.state.workspace_dir(), host)
            if record is not None:
                return record["host"], int(record["ports"]["api"])
        return host, port or DEFAULT_API_PORT

    def _workspace_client(self, host: str, port: int) -> SwarmNetworkClient:
        """One pooled client per API server, kept for the session: a wait's polls reuse one TLS
        connection. A new identity (START SN made the workspace PKI, the SWARM_ID_* variables
        or the files they name changed) replaces it; the web API's threads share it."""
        workspace = self.state.workspace_dir()
        identity = identity_key(workspace)
        with self._clients_lock:
            kept = self._clients.get((host, port))
            if kept is not None and kept[0] == identity:
                return kept[1]
            client = client_for(host, port, workspace)
            self._clients[(host, port)] = (identity, client)
            if kept is not None:  # a wait may still be polling on it: closed with the session
                self._retired.append(kept[1])
        return client

    def close(self) -> None:
        """Close the session's pooled connections."""
        with self._clients_lock:
            clients = [client for _, client in self._clients.values()] + self._retired
            self._clients, self._retired = {}, []
        for client in clients:
            _close(client)

    # -- running ---------------------------------------------------------------------------------

    def execute(self, command: Command, out: Output) -> Outcome:
        """Run one command; advance the prompt counter; turn failures into ERROR lines."""
        spec = spec_for(command.RULE)
        try:
            spec.handler(self, command, out)
            outcome = Outcome.OK
        except (CommandFailed, NetworkError) as exc:
            out.error(str(exc))
            outcome = Outcome.FAILED
        finally:
            self.state.counter += 1
        if self.exit_requested:
            return Outcome.EXIT
        if outcome is Outcome.FAILED and self.state.exit_on_failure:
            return Outcome.STOP
        return outcome

    def run_line(self, text: str, out: Output, *, source: str = "<input>") -> Outcome:
        """Parse and run one typed line; a syntax error prints an ERROR with its column."""
        try:
            command = parse_line(text, source=source)
        except SwciSyntaxError as exc:
            out.error(f"syntax error at column {exc.column}: {exc.message}")
            return Outcome.STOP if self.state.exit_on_failure else Outcome.FAILED
        if command is None:
            return Outcome.OK
        return self.execute(command, out)

    def run_script(self, lines: Iterable[ScriptLine], out: Output) -> ExitCode | None:
        """Run parsed lines, echoing each after the prompt. Returns the exit code if the session
        ended (EXIT, or a failure under EXIT ON FAILURE), else None."""
        for line in lines:
            out.echo(f"{self.state.prompt}{line.text}".rstrip())
            if line.command is None:
                continue
            code = self.session_end(self.execute(line.command, out), out)
            if code is not None:
                return code
        return None

    def session_end(self, outcome: Outcome, out: Output) -> ExitCode | None:
        """The exit code when an outcome ends the session (saying why on a failure), else None."""
        if outcome is Outcome.EXIT:
            return ExitCode.OK
        if outcome is Outcome.STOP:
            out.echo("EXIT ON FAILURE is on: ending the session after the failed command above.")
            return ExitCode.STOPPED_ON_FAILURE
        return None

    # -- services for handlers -------------------------------------------------------------------

    def current_context(self) -> Context:
        """The active context, or a failure that says how to make one."""
        name = self.state.current
        if name is None or name not in self.state.contexts:
            raise CommandFailed("No context is set. Use CREATE CONTEXT <name> WITH IP <ip> and "
                                "SWITCH CONTEXT <name> first")
        return self.state.contexts[name]

    def context_named(self, name: str | None) -> Context:
        """The named context (or the active one when name is None)."""
        if name is None:
            return self.current_context()
        if name not in self.state.contexts:
            known = ", ".join(sorted(self.state.contexts)) or "none yet"
            raise CommandFailed(f"Context {name!r} does not exist (known contexts: {known})")
        return self.state.contexts[name]

    def network(self, context: Context | None = None) -> SwarmNetworkClient:
        """The client for the active context's (or the given context's) API server."""
        context = context or self.current_context()
        return self.client_factory(context.host, context.port)


def _close(client: SwarmNetworkClient) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        close()


def _local_node(workspace: Path, name: str) -> dict | None:
    """The record of a local SN named `name`, when the workspace has one (plain JSON read)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        return None
    path = workspace / "nodes" / f"{name}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("kind") != "sn" or "api" not in record.get("ports", {}):
        return None
    return record
