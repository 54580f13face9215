"""Turning Swarm Network replies into output lines."""

from __future__ import annotations

from typing import Any

from swci.interpreter.output import Output, table


def fields(out: Output, mapping: dict[str, Any]) -> None:
    """KEY : value lines, keys aligned."""
    if not mapping:
        return
    width = max(len(str(key)) for key in mapping)
    for key, value in mapping.items():
        out.line(f"{str(key).ljust(width)} : {value}")


def rows(out: Output, items: list[Any], empty: str = "(none)") -> None:
    """One line per string, or a table for a list of mappings."""
    if not items:
        out.line(empty)
        return
    if all(isinstance(item, dict) for item in items):
        headers = list(items[0])
        for line in table(headers, [[str(item.get(h, "")) for h in headers] for item in items]):
            out.line(line)
        return
    for item in items:
        out.line(str(item))


def data(out: Output, kind: str, value: Any) -> Any:
    """Hand the structured result to the output (the web API returns it as DATA), pass it on."""
    out.data(kind, value)
    return value
