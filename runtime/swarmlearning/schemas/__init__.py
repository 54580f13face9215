"""JSON Schemas for SWOP YAML files (``<name>.schema.json``) and the validator that reads them.

The validator is split by job: ``positions`` (where a node is), ``problems`` (what is reported),
``load`` (reading YAML and the schemas), ``messages`` (the wording of schema errors),
``validate`` (the checks) and ``taskbody`` (a task's Body as on-chain lines). This package
re-exports their public names; none of those modules imports it back."""

from swarmlearning.schemas.load import load_schema, load_yaml_with_marks
from swarmlearning.schemas.positions import MarkedDocument, Position, format_path
from swarmlearning.schemas.problems import DefinitionError, Problem
from swarmlearning.schemas.taskbody import LINE_LIMIT, parse_task_body, task_body_lines
from swarmlearning.schemas.validate import (
    check_against,
    validate_document,
    validate_marked,
    validate_object,
)

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
