"""JSON Schemas for SWOP YAML files (``<name>.schema.json``) and the validator that reads them."""

from swarmlearning.schemas.validate import (
    LINE_LIMIT,
    DefinitionError,
    MarkedDocument,
    Position,
    Problem,
    check_against,
    format_path,
    load_schema,
    load_yaml_with_marks,
    parse_task_body,
    task_body_lines,
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
