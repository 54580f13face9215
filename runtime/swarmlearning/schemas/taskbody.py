"""A task's Body as the chain stores it and back: ``task_body_lines`` dumps Body to YAML lines
that each fit a chain slot (a line too long is a Problem that names the field it comes from),
and ``parse_task_body`` reads those lines back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from swarmlearning.schemas.load import load_yaml_with_marks
from swarmlearning.schemas.positions import MarkedDocument, Path, format_path
from swarmlearning.schemas.problems import DefinitionError, Problem

LINE_LIMIT = 160
"""Longest task body line (and longest free string) that fits a 256-byte chain slot."""


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
