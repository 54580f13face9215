"""Turning jsonschema's errors into the wording a user reads: a failed oneOf/anyOf is replaced
by the errors of the alternative that came closest, and each remaining error becomes a Problem
at the line and column of its YAML node, in plain English, with values trimmed and a likely
misspelling named (``did you mean 'Body'?``)."""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import relevance

from swarmlearning.schemas.positions import MarkedDocument, Path, format_path
from swarmlearning.schemas.problems import Problem
from swarmlearning.schemas.taskbody import LINE_LIMIT

_SHOWN_CHARS = 40
_SHAPE_KEYWORDS = ("type", "const", "enum")


def leaves(error: ValidationError) -> Iterator[ValidationError]:
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
            yield from leaves(sub)


def explain(error: ValidationError, marked: MarkedDocument) -> Iterator[Problem]:
    """The problems one leaf error stands for, each at its place in ``marked``."""
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
