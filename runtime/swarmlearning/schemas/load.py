"""Reading what a check needs: a YAML text parsed exactly as ``yaml.safe_load`` parses it, with
the position of every node recorded (a YAML error becomes a located Problem), and the JSON
Schemas shipped in this package (``<name>.schema.json``) with their validators, each read
once."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from swarmlearning.schemas.positions import MarkedDocument, Path, Position, offset_position
from swarmlearning.schemas.problems import DefinitionError, Problem

_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_-]*")


# -- YAML with positions ---------------------------------------------------------------------------


def load_yaml_with_marks(text: str, source: str) -> MarkedDocument:
    """Parse ``text`` exactly as ``yaml.safe_load`` would and record the position of every node.

    A YAML error raises ``DefinitionError`` with one problem at the error's line and column.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # the reader rejects unprintable characters up front
        raise DefinitionError([_yaml_problem(exc, text, source)]) from exc
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        marked = MarkedDocument(data, source)
        if node is not None:
            _record(loader, node, (), marked, set())
    except yaml.YAMLError as exc:
        raise DefinitionError([_yaml_problem(exc, text, source)]) from exc
    except RecursionError:
        raise DefinitionError([Problem(source, 1, 1, "", "invalid YAML: the document nests "
                                       "deeper than can be read")]) from None
    except ValueError as exc:  # a scalar the constructor cannot take (an integer too long)
        long = re.search(r"\d{1000,}", text)
        where = offset_position(text, long.start()) if long else Position(1, 1)
        raise DefinitionError([Problem(source, where.line, where.column, "",
                                       f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return marked


def _position(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _record(loader: yaml.SafeLoader, node: yaml.Node, path: Path, marked: MarkedDocument,
            seen: set[int]) -> None:
    """Walk the composed node tree (after construction, so merge keys are already flattened)."""
    marked.values[path] = _position(node.start_mark)
    if id(node) in seen:  # an alias of a node walked before: don't walk it again
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(loader, item, (*path, index), marked, seen)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # complex keys cannot be named in a path
            child = (*path, loader.construct_object(key_node))
            marked.keys[child] = _position(key_node.start_mark)
            _record(loader, value_node, child, marked, seen)


def _yaml_problem(exc: yaml.YAMLError, text: str, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        where = _position(mark)
    elif isinstance(exc, yaml.reader.ReaderError):
        where = offset_position(text, exc.position)
    else:
        where = Position(1, 1)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        detail = f"character U+{code:04X} is not allowed in YAML"
    elif problem and context:
        detail = f"{context}, {problem}"
    else:
        detail = problem or context or str(exc)
    return Problem(source, where.line, where.column, "", f"invalid YAML: {detail}")


# -- schemas ---------------------------------------------------------------------------------------


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``<name>.schema.json`` shipped in this package (a fresh copy)."""
    return copy.deepcopy(_schema(name))


@cache
def _schema(name: str) -> dict[str, Any]:
    if not _SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"not a schema name: {name!r}")
    resource = resources.files(__package__).joinpath(f"{name}.schema.json")
    if not resource.is_file():
        raise ValueError(f"no schema named {name!r}")
    return json.loads(resource.read_text(encoding="utf-8"))


@cache
def named_validator(name: str) -> Any:
    """The validator of the shipped schema ``name``, built once."""
    return make_validator(_schema(name))


def make_validator(schema: Mapping[str, Any]) -> Any:
    """A validator for ``schema``, of the draft it names (2020-12 when it names none), after
    checking that the schema itself is valid."""
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)
