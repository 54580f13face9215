"""Check SWOP YAML documents against the JSON Schemas shipped in this package.

Every problem found is reported with the file, the 1-based line and column of the offending
YAML node and the path of the field inside the document (``Body.BuildSteps[3]``), so that a
user can jump straight to it. The same reader serves every schema in this directory:
``validate_document(text, source, "task")`` loads ``task.schema.json``, ``"profile"`` loads
``profile.schema.json``.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import relevance
from jsonschema.validators import validator_for

__all__ = [
    "LINE_LIMIT",
    "DefinitionError",
    "MarkedDocument",
    "Position",
    "Problem",
    "check_against",
    "format_path",
    "load_schema",
    "load_yaml_with_marks",
    "parse_task_body",
    "task_body_lines",
    "validate_document",
    "validate_marked",
    "validate_object",
]

LINE_LIMIT = 160
"""Longest task body line (and longest free string) that fits a 256-byte chain slot."""

PathPart = str | int
Path = tuple[Any, ...]

_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SHOWN_CHARS = 40


# -- results ---------------------------------------------------------------------------------------


class Position(NamedTuple):
    """A 1-based line and column in a source text."""

    line: int
    column: int


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where it is (file, line, column, field path) and why."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionError(ValueError):
    """A document is not valid YAML or does not match its schema; ``problems`` lists why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass
class MarkedDocument:
    """Parsed YAML plus where each of its nodes starts in the text.

    ``values`` maps a path (a tuple of mapping keys and sequence indexes, ``()`` for the whole
    document) to the position of the value found there; ``keys`` maps the path of a mapping entry
    to the position of its key.
    """

    data: Any
    source: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Sequence[Any], *, key: bool = False) -> Position:
        """Where ``path`` is in the text: its key when ``key`` is set and it has one, else its
        value; a path that has no recorded node falls back to its nearest recorded ancestor."""
        wanted = tuple(path)
        if key and wanted in self.keys:
            return self.keys[wanted]
        while wanted not in self.values and wanted:
            wanted = wanted[:-1]
        return self.values.get(wanted, Position(1, 1))


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
        where = _offset_position(text, long.start()) if long else Position(1, 1)
        raise DefinitionError([Problem(source, where.line, where.column, "",
                                       f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return marked


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return Position(before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


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
        where = _offset_position(text, exc.position)
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
def _named_validator(name: str) -> Any:
    return _validator(_schema(name))


def _validator(schema: Mapping[str, Any]) -> Any:
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


# -- validation ------------------------------------------------------------------------------------


def validate_document(text: str, source: str, schema_name: str = "task") -> dict[str, Any]:
    """Parse YAML ``text`` (read from ``source``) and check it against schema ``schema_name``.

    Returns the parsed document; raises ``DefinitionError`` listing every problem, by line.
    """
    return validate_marked(load_yaml_with_marks(text, source), schema_name)


def validate_marked(marked: MarkedDocument, schema_name: str = "task") -> dict[str, Any]:
    """``validate_document`` for a document already read by ``load_yaml_with_marks``."""
    problems = _problems(marked, _named_validator(schema_name))
    if problems:
        raise DefinitionError(problems)
    return marked.data


def validate_object(document: Any, schema_name: str = "task") -> list[str]:
    """Problems of an already parsed document (no text, so no positions), as `path: message`."""
    marked = MarkedDocument(data=document, source="<request>")
    return [f"{problem.path}: {problem.message}" if problem.path else problem.message
            for problem in _problems(marked, _named_validator(schema_name))]


def check_against(marked: MarkedDocument, schema: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``marked`` under an arbitrary JSON Schema, sorted by position."""
    return _problems(marked, _validator(schema))


def _problems(marked: MarkedDocument, validator: Any) -> list[Problem]:
    found: dict[tuple[str, str], Problem] = {}  # one problem per path and message
    try:
        for error in validator.iter_errors(marked.data):
            for leaf in _leaves(error):
                for problem in _explain(leaf, marked):
                    found.setdefault((problem.path, problem.message), problem)
    except RecursionError:
        return [Problem(marked.source, 1, 1, "", "the document nests deeper than can be checked")]
    # by position; problems at the same place keep the schema's order (e.g. its required list)
    return sorted(found.values(), key=lambda problem: (problem.line, problem.column))


_SHAPE_KEYWORDS = ("type", "const", "enum")


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """Replace a failed oneOf/anyOf by the errors of the alternative that came closest.

    When no alternative even has the value's shape (each fails on type, const or enum at the
    value itself), the oneOf/anyOf error stays and its message lists what each one wanted.
    Otherwise the closest alternative is the one holding the most relevant error by jsonschema's
    measure (deepest first, then one whose type fits): the alternative whose shape fit the value
    and that failed only inside it. All of that alternative's errors are reported.
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    if all(not sub.relative_path and sub.validator in _SHAPE_KEYWORDS for sub in error.context):
        yield error
        return
    closest = min(error.context, key=relevance)
    branch = closest.relative_schema_path[0]
    for sub in error.context:
        if sub.relative_schema_path[0] == branch:
            yield from _leaves(sub)


def _explain(error: ValidationError, marked: MarkedDocument) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    kind = error.validator
    if "propertyNames" in error.absolute_schema_path:
        # the failing value is a key of the mapping at `path`
        child = (*path, error.instance)
        yield _at(marked, child, True, f"invalid key: {_message(error, child)}")
    elif kind == "required":
        for name in _missing(error):
            yield _at(marked, (*path, name), False, "required key is missing",
                      anchor=path)
    elif kind == "additionalProperties" and error.validator_value is False:
        allowed = list(error.schema.get("properties", {}))
        for name in _extras(error.instance, error.schema):
            yield _at(marked, (*path, name), True, _unknown_key(name, allowed))
    else:
        yield _at(marked, path, False, _message(error, path))


def _at(marked: MarkedDocument, path: Path, key: bool, message: str,
        anchor: Path | None = None) -> Problem:
    where = marked.position(path if anchor is None else anchor, key=key)
    return Problem(marked.source, where.line, where.column, format_path(path), message)


def _missing(error: ValidationError) -> list[Any]:
    instance = error.instance
    return [name for name in error.validator_value
            if name not in instance and error.message == f"{name!r} is a required property"]


def _extras(instance: Mapping[Any, Any], schema: Mapping[str, Any]) -> list[Any]:
    known = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [key for key in instance
            if key not in known
            and not (isinstance(key, str) and any(p.search(key) for p in patterns))]


def _unknown_key(name: Any, allowed: Sequence[str]) -> str:
    message = f"unknown key {_show(name)}"
    close = _close(name, allowed)
    if close:
        return f"{message}; did you mean {close!r}?"
    return f"{message}; allowed here: {', '.join(allowed)}" if allowed else message


def _close(value: Any, choices: Iterable[Any]) -> Any:
    """The choice that ``value`` most likely misspells, ignoring case, or None."""
    if not isinstance(value, str):
        return None
    by_folded = {str(choice).casefold(): choice for choice in choices}
    hits = difflib.get_close_matches(value.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[hits[0]] if hits else None


def _message(error: ValidationError, path: Path) -> str:
    """Plain-English reason for one leaf error (values trimmed, never whole-body dumps)."""
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind == "type":
        return _type_message(limit, value, path)
    if kind == "enum":
        message = f"{_show(value)} is not one of {', '.join(_show_choice(c) for c in limit)}"
        close = _close(value, limit)
        return f"{message}; did you mean {close}?" if close is not None else message
    if kind == "const":
        return f"must be {_show_choice(limit)}, not {_show(value)}"
    if kind == "maxLength":
        return f"{_show(value)} is longer than {limit} characters ({len(value)})"
    if kind == "minLength":
        if not value:
            return f"must not be empty (at least {_count(limit, 'character')})"
        return f"{_show(value)} is shorter than {_count(limit, 'character')}"
    if kind == "maxItems":
        return f"has {_count(len(value), 'item')}, more than the {limit} allowed"
    if kind == "minItems":
        return f"has {_count(len(value), 'item')}, fewer than the {limit} required"
    if kind == "maxProperties":
        return f"has {_count(len(value), 'key')}, more than the {limit} allowed"
    if kind == "minProperties":
        return f"has {_count(len(value), 'key')}, fewer than the {limit} required"
    if kind == "uniqueItems":
        return "contains the same item more than once"
    if kind == "pattern":
        return f"{_show(value)} does not match the pattern {limit!r}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "less than", "maximum": "more than",
                 "exclusiveMinimum": "at most", "exclusiveMaximum": "at least"}
        return f"{_show(value)} is {words[kind]} the limit of {limit}"
    if kind in ("oneOf", "anyOf") and error.context:
        wanted = _either(list(dict.fromkeys(_wanted(sub) for sub in error.context)))
        return f"expected {wanted}, got {_describe(value)}"
    if kind in ("oneOf", "anyOf"):
        return f"{_show(value)} matches more than one of the allowed forms"
    return _trim(error.message, 2 * LINE_LIMIT)


def _wanted(error: ValidationError) -> str:
    """What one alternative of a oneOf/anyOf wanted, when it failed on the value's shape."""
    limit = error.validator_value
    if error.validator == "type":
        names = [limit] if isinstance(limit, str) else list(limit)
        return _either([_TYPE_NAMES.get(name, name) for name in names])
    if error.validator == "const":
        return _show_choice(limit)
    return f"one of {', '.join(_show_choice(choice) for choice in limit)}"


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _type_message(expected: Any, value: Any, path: Path) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = _either([_TYPE_NAMES.get(name, name) for name in names])
    got = _describe(value)
    if not path:
        return f"the document must be {wanted}, not {got}"
    message = f"expected {wanted}, got {got}"
    if "string" in names and isinstance(value, (bool, int, float, datetime.date)):
        message += "; quote it in the YAML to keep it as text"
    elif "string" in names and isinstance(value, Mapping) and len(value) == 1:
        message += " (an unquoted ': ' starts a mapping; quote the whole value)"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, datetime.date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    if isinstance(value, Mapping):
        keys = ", ".join(_trim(str(key), 20) for key in list(value)[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"a mapping with keys {keys}{more}" if value else "an empty mapping"
    if isinstance(value, list):
        return f"a list of {_count(len(value), 'item')}" if value else "an empty list"
    return f"a {type(value).__name__}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _either(choices: list[str]) -> str:
    if len(choices) <= 2:
        return " or ".join(choices)
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def _trim(text: str, limit: int = _SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short rendering of a value for a message: long strings and containers are cut."""
    if isinstance(value, str):
        return repr(_trim(value))
    if isinstance(value, (Mapping, list)):
        return _describe(value)
    return _trim(repr(value))


def _show_choice(value: Any) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else repr(value)


def format_path(path: Sequence[Any]) -> str:
    """Render a path as ``Body.BuildSteps[3]``; ``""`` is the whole document."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


# -- task bodies on chain --------------------------------------------------------------------------


def task_body_lines(document: Mapping[str, Any], *, source: str = "<task body>",
                    marks: MarkedDocument | None = None) -> list[str]:
    """The task's Body as the lines stored on chain (``GET TASK BODY`` prints them numbered).

    Line 0 is ``---``; the rest is a YAML dump of Body that keeps key order. A line longer than
    ``LINE_LIMIT`` raises ``DefinitionError`` naming the field it comes from; with ``marks`` (the
    ``MarkedDocument`` the task was read from) the problem points into that file, otherwise at
    the rendered line (1-based, counting ``---`` as line 1).
    """
    if not isinstance(document, Mapping) or "Body" not in document:
        raise DefinitionError([Problem(source, 1, 1, "Body", "required key is missing")])
    dumped = yaml.safe_dump(document["Body"], sort_keys=False, default_flow_style=False,
                            width=10_000)
    lines = ["---", *dumped.removesuffix("\n").split("\n")]
    too_long = [index for index, line in enumerate(lines) if len(line) > LINE_LIMIT]
    if too_long:
        raise DefinitionError(_long_line_problems(lines, too_long, source, marks))
    return lines


def _long_line_problems(lines: list[str], too_long: list[int], source: str,
                        marks: MarkedDocument | None) -> list[Problem]:
    rendered = load_yaml_with_marks("\n".join(lines), source)
    starts = sorted(rendered.values.items(), key=lambda item: (item[1], len(item[0])))
    problems = []
    for index in too_long:
        # the field is the last node that starts on or before this line
        path: Path = ()
        for candidate, where in starts:
            if where.line > index + 1:
                break
            path = candidate
        full = ("Body", *path)
        message = (f"becomes task body line {index} of {len(lines[index])} characters; "
                   f"a body line may have at most {LINE_LIMIT}")
        if marks is not None:
            where = marks.position(full)
            problems.append(Problem(marks.source, where.line, where.column,
                                    format_path(full), message))
        else:
            problems.append(Problem(source, index + 1, LINE_LIMIT + 1, format_path(full),
                                    message))
    return problems


def parse_task_body(lines: Sequence[str]) -> Any:
    """The Body back from its on-chain lines (the inverse of ``task_body_lines``)."""
    return yaml.safe_load("\n".join(lines))
