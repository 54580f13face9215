"""docs/swci-reference.md is generated from the registry; it must not be stale."""

from __future__ import annotations

from pathlib import Path

from swci.reference import render_markdown
from swci.registry import all_specs

DOC = Path(__file__).resolve().parent.parent / "docs" / "swci-reference.md"


def test_reference_is_current():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/swci-reference.md is stale: run `make docs`")


def test_reference_holds_every_syntax_line():
    text = render_markdown()
    for spec in all_specs():
        for line in spec.syntax:
            assert line in text
