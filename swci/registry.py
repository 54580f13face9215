"""The one command registry: per command, its grammar rule, syntax line(s), description, handler.

Handlers register themselves with @handles; HELP, completion and docs/swci-reference.md all read
the registry, and the syntax lines come from the grammar (swci.language.syntax).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from swci.language.commands import COMMAND_CLASSES, Command
from swci.language.syntax import command_name, syntax_lines

# A handler takes the interpreter, its command object and the output. The registry names no
# interpreter type: the interpreter imports the registry, never the other way round.
Handler = Callable[..., None]

# A command's area is the module of its class in swci/language/commands/; its handler and help
# live in the module of the same name under swci/interpreter/handlers/, and its grammar rule in
# the section of grammar/swci.lark marked `// area: <name>`.
AREAS = {
    "context": "Contexts", "contract": "Training contracts", "task": "Tasks",
    "taskrunner": "Taskrunners", "session": "Session", "nodes": "Local nodes",
}
HANDLER_MODULES = tuple(f"swci.interpreter.handlers.{area}" for area in AREAS)


@dataclass(frozen=True)
class CommandSpec:
    """Everything the shell knows about one command."""

    rule: str
    command_class: type[Command]
    description: str
    handler: Handler

    @property
    def name(self) -> str:
        """The command's words, e.g. CREATE CONTRACT (from the grammar)."""
        return command_name(self.rule)

    @property
    def syntax(self) -> tuple[str, ...]:
        """The syntax line(s), rendered from the grammar."""
        return syntax_lines(self.rule)

    @property
    def area(self) -> str:
        """The group the command belongs to (the module of its command class)."""
        return self.command_class.__module__.rsplit(".", 1)[-1]


_SPECS: dict[str, CommandSpec] = {}


def handles(command_class: type[Command], description: str) -> Callable[[Handler], Handler]:
    """Register a handler for a command class, with the one-line description HELP shows."""

    def register(handler: Handler) -> Handler:
        if command_class.RULE in _SPECS:
            raise TypeError(f"{command_class.__name__} already has a handler")
        _SPECS[command_class.RULE] = CommandSpec(command_class.RULE, command_class, description,
                                                 handler)
        return handler

    return register


@functools.cache
def _load() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    missing = set(COMMAND_CLASSES) - set(_SPECS)
    if missing:
        raise RuntimeError(f"commands without a handler: {sorted(missing)}")


def all_specs() -> list[CommandSpec]:
    """Every registered command, in grammar order."""
    _load()
    return [_SPECS[rule] for rule in COMMAND_CLASSES]


def spec_for(rule: str) -> CommandSpec:
    """The registry entry of a grammar rule."""
    _load()
    return _SPECS[rule]


def command_names() -> list[str]:
    """The distinct command names, sorted (what HELP lists)."""
    return sorted({spec.name.upper() for spec in all_specs()})


def find(words: list[str]) -> list[CommandSpec]:
    """Commands named exactly by the words, else those whose names start with them."""
    wanted = " ".join(w.upper() for w in words)
    exact = [s for s in all_specs() if s.name.upper() == wanted]
    if exact:
        return exact
    return [s for s in all_specs() if s.name.upper().startswith(wanted + " ")]
