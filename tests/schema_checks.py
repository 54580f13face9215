"""Checks every shipped JSON Schema must pass."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from swarmlearning.schemas import load_schema


def check_described_schema(name: str, skip_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The schema `name` is valid Draft 2020-12 and every property and $defs entry has a
    description (keys in `skip_keys` are not descended into); returns the schema."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for kind in ("properties", "$defs"):
                for key, sub in node.get(kind, {}).items():
                    assert "description" in sub, f"{where}.{kind}.{key} has no description"
            for key, sub in node.items():
                if key not in skip_keys:
                    walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, name)
    return schema
