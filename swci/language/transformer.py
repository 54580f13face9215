"""The Lark Transformer that turns a parse tree into a typed command object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer
from lark.tree import Meta

from swci.language.commands import COMMAND_CLASSES, Command

KEYWORD_VALUE_TERMINALS = {"RUN_SWARM", "MAKE_USER_CONTAINER", "MAKE_SWARM_USER_CONTENT",
                           "PULL_IMAGE", "ON", "OFF", "SENTINEL"}


@dataclass(frozen=True)
class Arg:
    """One role argument: its role (the grammar rule), its value and its column."""

    role: str
    value: Any
    column: int


def token_value(token: Token) -> Any:
    """The Python value of an argument token: int, float, unquoted string or keyword."""
    if token.type == "INT":
        return int(token)
    if token.type == "NUMBER":
        return float(token)
    if token.type == "STRING":
        return str(token)[1:-1]
    if token.type == "BODY_LINE":
        return str(token).rstrip()
    if token.type in KEYWORD_VALUE_TERMINALS:
        return token.type
    return str(token)


class CommandBuilder(Transformer):
    """Builds command objects: role rules become Args, command rules become Command instances."""

    def __init__(self, *, line: int = 1, text: str = "") -> None:
        super().__init__(visit_tokens=False)
        self.line = line
        self.text = text

    def start(self, children: list[Any]) -> Command | None:
        return children[0] if children else None

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Any:
        cls = COMMAND_CLASSES.get(data)
        if cls is None:
            token = children[0]
            return Arg(role=str(data), value=token_value(token), column=token.column)
        many = cls.list_fields()
        values: dict[str, list[Any]] = {name: [] for name in many}
        columns: dict[str, int] = {}
        for arg in children:
            if arg is None:
                continue
            columns.setdefault(arg.role, arg.column)
            values.setdefault(arg.role, []).append(arg.value)
        args = {role: found if role in many or len(found) > 1 else found[0]
                for role, found in values.items()}
        column = getattr(meta, "column", 1) if not meta.empty else 1
        return cls.build(args, columns, line=self.line, column=column, text=self.text)
