"""Context commands: bookkeeping of the Swarm Networks this shell knows."""

from __future__ import annotations

from swci.interpreter.handlers.format import fields, rows
from swci.interpreter.interpreter import CommandFailed, Interpreter
from swci.interpreter.output import Output
from swci.interpreter.state import DEFAULT_SERVICE_PORT, Context
from swci.language import commands as c
from swci.registry import handles


def split_service(service: str, default_port: int = DEFAULT_SERVICE_PORT) -> tuple[str, int]:
    """fqdn[:port] -> (fqdn, port)."""
    host, sep, port = service.rpartition(":")
    if sep and port.isdigit() and host:
        return host, int(port)
    return service, default_port


def _create(interp: Interpreter, out: Output, context: Context) -> None:
    existing = interp.state.contexts.get(context.name)
    if existing is not None and existing.endpoint != context.endpoint:
        raise CommandFailed(f"Context {context.name!r} already exists and points at "
                            f"{existing.endpoint}; pick another name")
    context.version = dict(interp.network(context).version())
    out.line("API Server is UP!")
    if existing is not None:
        context.env = existing.env
    interp.state.contexts[context.name] = context
    out.line(f"CONTEXT CREATED : {context.name}")


@handles(c.CreateContextIp, "Create a context for the Swarm Network whose API server is at an IP "
                            "address or host name (port 30304 unless given).")
def create_context_ip(interp: Interpreter, cmd: c.CreateContextIp, out: Output) -> None:
    host, port = interp.api_endpoint(cmd.host, cmd.port)
    _create(interp, out, Context(cmd.context_name, host, port))


@handles(c.CreateContextService, "Create a context for a Swarm Network reached through a reverse "
                                 "proxy service name, fqdn[:port] (port 443 unless given).")
def create_context_service(interp: Interpreter, cmd: c.CreateContextService, out: Output) -> None:
    host, port = split_service(cmd.service)
    _create(interp, out, Context(cmd.context_name, host, port, service=cmd.service))


@handles(c.SwitchContext, "Make a context the active one; every other command acts on it.")
def switch_context(interp: Interpreter, cmd: c.SwitchContext, out: Output) -> None:
    interp.context_named(cmd.context_name)
    interp.state.current = cmd.context_name
    out.line(f"DEFAULT CONTEXT SET TO : {cmd.context_name}")


@handles(c.ListContexts, "List the contexts of this session; * marks the active one.")
def list_contexts(interp: Interpreter, cmd: c.ListContexts, out: Output) -> None:
    items = [{"": "*" if name == interp.state.current else "", "CONTEXT": name,
              "API SERVER": ctx.service or ctx.endpoint}
             for name, ctx in sorted(interp.state.contexts.items())]
    out.data("contexts", [{"name": name, "host": ctx.host, "port": ctx.port,
                           "service": ctx.service, "current": name == interp.state.current}
                          for name, ctx in sorted(interp.state.contexts.items())])
    rows(out, items, empty="No contexts yet: CREATE CONTEXT <name> WITH IP <ip>")


@handles(c.GetContextInfo, "Show a context's API server, service, env variables and version "
                           "(the active context unless named).")
def get_context_info(interp: Interpreter, cmd: c.GetContextInfo, out: Output) -> None:
    ctx = interp.context_named(cmd.context_name)
    fields(out, {
        "NAME": ctx.name,
        "API SERVER": ctx.endpoint,
        "SERVICE": ctx.service or "-",
        "DEFAULT": "yes" if ctx.name == interp.state.current else "no",
        "ENV VARIABLES": len(ctx.env),
        "VERSION": ctx.version.get("version", "-"),
    })


@handles(c.GetContextVersion, "Ask a context's API server for its version information.")
def get_context_version(interp: Interpreter, cmd: c.GetContextVersion, out: Output) -> None:
    ctx = interp.context_named(cmd.context_name)
    ctx.version = dict(interp.network(ctx).version())
    fields(out, ctx.version)


@handles(c.ListContextEnv, "List a context's env variables (the active context unless named).")
def list_context_env(interp: Interpreter, cmd: c.ListContextEnv, out: Output) -> None:
    ctx = interp.context_named(cmd.context_name)
    if not ctx.env:
        out.line("(no env variables)")
    for key, value in sorted(ctx.env.items()):
        out.line(f"{key}={value}")


@handles(c.GetContextEnv, "Print one env variable of a context.")
def get_context_env(interp: Interpreter, cmd: c.GetContextEnv, out: Output) -> None:
    ctx = interp.context_named(cmd.context_name)
    if cmd.env_name not in ctx.env:
        raise CommandFailed(f"Env variable {cmd.env_name!r} is not set in context {ctx.name!r}")
    out.line(ctx.env[cmd.env_name])


@handles(c.SetContextEnv, "Set one env variable of a context.")
def set_context_env(interp: Interpreter, cmd: c.SetContextEnv, out: Output) -> None:
    ctx = interp.context_named(cmd.context_name)
    ctx.env[cmd.env_name] = cmd.env_value
    out.line(f"CONTEXT ENV SET : {cmd.env_name}={cmd.env_value}")
