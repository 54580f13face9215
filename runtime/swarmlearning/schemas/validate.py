"""Check SWOP YAML documents against the JSON Schemas shipped in this package.

Every problem found is reported with the file, the 1-based line and column of the offending
YAML node and the path of the field inside the document (``Body.BuildSteps[3]``), so that a
user can jump straight to it. The same checks serve every schema in this directory:
``validate_document(text, source, "task")`` loads ``task.schema.json``, ``"profile"`` loads
``profile.schema.json``. Reading lives in ``load``, the wording in ``messages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmlearning.schemas.load import load_yaml_with_marks, make_validator, named_validator
from swarmlearning.schemas.messages import explain, leaves
from swarmlearning.schemas.positions import MarkedDocument
from swarmlearning.schemas.problems import DefinitionError, Problem

__all__ = [
    "DefinitionError",
    "check_against",
    "validate_document",
    "validate_marked",
    "validate_object",
]


def validate_document(text: str, source: str, schema_name: str = "task") -> dict[str, Any]:
    """Parse YAML ``text`` (read from ``source``) and check it against schema ``schema_name``.

    Returns the parsed document; raises ``DefinitionError`` listing every problem, by line.
    """
    return validate_marked(load_yaml_with_marks(text, source), schema_name)


def validate_marked(marked: MarkedDocument, schema_name: str = "task") -> dict[str, Any]:
    """``validate_document`` for a document already read by ``load_yaml_with_marks``."""
    problems = _problems(marked, named_validator(schema_name))
    if problems:
        raise DefinitionError(problems)
    return marked.data


def validate_object(document: Any, schema_name: str = "task") -> list[str]:
    """Problems of an already parsed document (no text, so no positions), as `path: message`."""
    marked = MarkedDocument(data=document, source="<request>")
    return [f"{problem.path}: {problem.message}" if problem.path else problem.message
            for problem in _problems(marked, named_validator(schema_name))]


def check_against(marked: MarkedDocument, schema: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``marked`` under an arbitrary JSON Schema, sorted by position."""
    return _problems(marked, make_validator(schema))


def _problems(marked: MarkedDocument, validator: Any) -> list[Problem]:
    found: dict[tuple[str, str], Problem] = {}  # one problem per path and message
    try:
        for error in validator.iter_errors(marked.data):
            for leaf in leaves(error):
                for problem in explain(leaf, marked):
                    found.setdefault((problem.path, problem.message), problem)
    except RecursionError:
        return [Problem(marked.source, 1, 1, "", "the document nests deeper than can be checked")]
    # by position; problems at the same place keep the schema's order (e.g. its required list)
    return sorted(found.values(), key=lambda problem: (problem.line, problem.column))
