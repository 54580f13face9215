"""Session commands: LIST NODES, waits, sleep, the working directory, failure policy, EXIT
and HELP."""

from __future__ import annotations

import datetime as dt
import difflib
import stat

from swci.interpreter.handlers.context import split_service
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output
from swci.language import commands as c
from swci.network import NetworkError
from swci.registry import all_specs, command_names, find, handles

WAIT_INTERVAL_SECONDS = 5.0
WAIT_DEFAULT_RETRIES = 360
NODE_COLUMNS = ("NodeType", "HostIP", "Port", "ContainerName", "UUID", "ParentUUID", "i-am-alive")


@handles(c.ListNodes, "List the nodes registered in the Swarm Network (SN, SL, SWOP) with their "
                      "parent SN and last sign of life.")
def list_nodes(interp: Interpreter, cmd: c.ListNodes, out: Output) -> None:
    nodes = interp.network().list_nodes()
    out.data("nodes", nodes)
    out.line(", ".join(NODE_COLUMNS))
    for node in nodes:
        out.line(", ".join(str(node.get(column, "")) for column in NODE_COLUMNS))


def wait_for_api_server(interp: Interpreter, out: Output, host: str, port: int,
                        retries: int) -> None:
    """Poll an API server until it answers, WAIT_INTERVAL_SECONDS apart, at most retries times."""
    client = interp.client_factory(host, port)
    reason = ""
    for attempt in range(1, retries + 1):
        try:
            client.version()
        except NetworkError as exc:
            reason = str(exc)
            out.status(f"Waiting for API-Server at {host}:{port}: attempt {attempt} of {retries}")
            if attempt < retries:
                interp.sleep(WAIT_INTERVAL_SECONDS)
            continue
        out.line("API Server is UP!")
        return
    raise CommandFailed(f"API-Server at {host}:{port} is not up after {retries} attempt"
                        f"{'s' if retries > 1 else ''}. Last error: {reason}")


@handles(c.WaitForIp, "Wait until the API server at an IP or host answers (5 s apart; 360 tries "
                      "unless given).")
def wait_for_ip(interp: Interpreter, cmd: c.WaitForIp, out: Output) -> None:
    host, port = interp.api_endpoint(cmd.host, cmd.port)
    wait_for_api_server(interp, out, host, port, cmd.retries or WAIT_DEFAULT_RETRIES)


@handles(c.WaitForService, "Wait until the API server behind a service name, fqdn[:port], "
                           "answers.")
def wait_for_service(interp: Interpreter, cmd: c.WaitForService, out: Output) -> None:
    host, port = split_service(cmd.service)
    wait_for_api_server(interp, out, host, port, cmd.retries or WAIT_DEFAULT_RETRIES)


@handles(c.Sleep, "Pause for a number of seconds (Ctrl-C ends the pause).")
def sleep(interp: Interpreter, cmd: c.Sleep, out: Output) -> None:
    out.status(f"Sleeping {cmd.seconds:g} s")
    interp.sleep(cmd.seconds)


@handles(c.Cd, "Change the shell's working directory (- goes back; none goes to --usr-dir or "
               "home).")
def cd(interp: Interpreter, cmd: c.Cd, out: Output) -> None:
    state = interp.state
    if cmd.dir_path is None:
        target = state.usr_dir or state.resolve("~")
    elif cmd.dir_path == "-":
        target = state.previous_cwd or state.cwd
    else:
        target = state.resolve(cmd.dir_path)
    if not target.is_dir():
        what = "is not a directory" if target.exists() else "does not exist"
        raise CommandFailed(f"Cannot change directory: {target} {what}")
    state.previous_cwd, state.cwd = state.cwd, target
    out.line(f"Current Directory : {target}")


@handles(c.Ls, "List the working directory, or the given paths (-a shows hidden files, -l "
               "sizes and times).")
def ls(interp: Interpreter, cmd: c.Ls, out: Output) -> None:
    options = "".join(arg[1:] for arg in cmd.ls_arg if arg.startswith("-"))
    unknown = set(options) - set("al")
    if unknown:
        raise CommandFailed(f"ls: unknown option -{''.join(sorted(unknown))} (known: -a, -l)")
    paths = [arg for arg in cmd.ls_arg if not arg.startswith("-")] or ["."]
    for index, raw in enumerate(paths):
        target = interp.state.resolve(raw)
        if not target.exists():
            raise CommandFailed(f"ls: {raw}: no such file or directory")
        if len(paths) > 1:
            if index:
                out.line()
            out.line(f"{raw}:")
        entries = sorted(target.iterdir(), key=lambda p: p.name) if target.is_dir() else [target]
        for entry in entries:
            if entry.name.startswith(".") and "a" not in options and target.is_dir():
                continue
            name = entry.name + ("/" if entry.is_dir() else "")
            if "l" in options:
                info = entry.lstat()
                kind = "d" if stat.S_ISDIR(info.st_mode) else "-"
                stamp = dt.datetime.fromtimestamp(info.st_mtime).strftime("%Y-%m-%d %H:%M")
                out.line(f"{kind} {info.st_size:>10}  {stamp}  {name}")
            else:
                out.line(name)


@handles(c.Pwd, "Print the shell's working directory.")
def pwd(interp: Interpreter, cmd: c.Pwd, out: Output) -> None:
    out.line(str(interp.state.cwd))


@handles(c.ExitOnFailure, "EXIT ON FAILURE (or ... ON) makes the next failing command end the "
                          "session; ... OFF, the default, goes on after failures.")
def exit_on_failure(interp: Interpreter, cmd: c.ExitOnFailure, out: Output) -> None:
    interp.state.exit_on_failure = cmd.enabled
    out.line(f"EXIT ON FAILURE IS TURNED {'ON' if cmd.enabled else 'OFF'}")


@handles(c.Exit, "End the session.")
def exit_(interp: Interpreter, cmd: c.Exit, out: Output) -> None:
    interp.exit_requested = True


@handles(c.Help, "List every command, or print the syntax and meaning of the named command.")
def help_(interp: Interpreter, cmd: c.Help, out: Output) -> None:
    if not cmd.help_topic:
        specs = {}
        for spec in all_specs():
            specs.setdefault(spec.name.upper(), spec)
        width = max(len(name) for name in specs)
        out.line("Commands (HELP <command> prints its syntax; keywords are case-insensitive):")
        for name in command_names():
            out.line(f"  {name.ljust(width)}  {specs[name].description}")
        return
    matches = find(cmd.help_topic)
    if not matches:
        asked = " ".join(cmd.help_topic).upper()
        close = difflib.get_close_matches(asked, command_names(), n=3, cutoff=0.5)
        guesses = ", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else "".join(close)
        hint = f"; did you mean {guesses}?" if close else "; HELP lists every command"
        raise CommandFailed(f"No command is called {asked!r}{hint}")
    for spec in matches:
        for line in spec.syntax:
            out.line(line)
        out.line(f"    {spec.description}")
