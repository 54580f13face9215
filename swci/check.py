"""swci --check: validate SWCI scripts and task/profile YAML files without running anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from swci.language.parser import ScriptSyntaxErrors, parse_script

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Problem:
    """One problem in a checked file, at 1-based line and column."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, int | None, str]:
    """(line, column, problem) of a YAML error, 1-based; line and column None when unknown."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return None, None, problem
    return mark.line + 1, mark.column + 1, problem


PROFILE_KEYS = ("groupname", "nodes", "taskrunner")
"""Top-level keys that mark a YAML document (without a TaskType) as a SWOP profile."""


def yaml_kind(document: object) -> str | None:
    """The schema a parsed YAML document is checked against: "task" for a task definition (it
    has a TaskType), "profile" for a SWOP profile (groupname, nodes or taskrunner at top level),
    None for anything else."""
    if not isinstance(document, dict):
        return None
    if "TaskType" in document:
        return "task"
    if any(key in document for key in PROFILE_KEYS):
        return "profile"
    return None


def check_yaml(path: str, text: str) -> list[Problem]:
    """YAML syntax problems, then schema problems of a task definition (checked against HPE's
    task schema, and each body line against the on-chain limit) or of a SWOP profile (checked
    against HPE's profile schema); each problem names its field path and its line. Other YAML
    documents are only checked for syntax."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        line, column, problem = yaml_problem(exc)
        return [Problem(path, line or 1, column or 1, f"invalid YAML: {problem}")]
    kind = yaml_kind(documents[0]) if len(documents) == 1 else None
    if kind is None:
        return []
    from swarmlearning.schemas import DefinitionError, task_body_lines, validate_document

    try:
        document = validate_document(text, path, kind)
        if kind == "task":
            task_body_lines(document, source=path)
    except DefinitionError as exc:
        return [Problem(path, p.line, p.column, f"{p.path}: {p.message}" if p.path
                        else p.message) for p in exc.problems]
    return []


def check_script(path: str, text: str) -> list[Problem]:
    """Every syntax problem of an SWCI script."""
    try:
        parse_script(text, source=path)
    except ScriptSyntaxErrors as exc:
        return [Problem(path, p.line, p.column, p.message) for p in exc.problems]
    return []


def check_file(path: str) -> list[Problem]:
    """Check one file by its kind: YAML by suffix, anything else as an SWCI script."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return [Problem(path, 1, 1, f"cannot read file: {reason}")]
    if path.lower().endswith(YAML_SUFFIXES):
        return check_yaml(path, text)
    return check_script(path, text)
