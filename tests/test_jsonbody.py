"""Bounded JSON for request bodies: the depth scan counts only structure, never string text."""

from __future__ import annotations

import json

import pytest

from swarmlearning.jsonbody import TooDeep, loads, nesting_depth


@pytest.mark.parametrize(("raw", "depth"), [
    (b"1", 0), (b"[]", 1), (b'{"a": [1, {"b": []}]}', 4),
    (b'["[[[[", "{{{"]', 1),              # brackets inside strings do not count
    (b'["\\"[[[", "\\\\", [[]]]', 3),     # nor after an escaped quote; an escaped backslash
    (b"[[]][[[]]]", 3),                   # ends its escape
])
def test_depth_counts_structure_only(raw: bytes, depth: int) -> None:
    assert nesting_depth(raw) == depth


def test_too_deep_is_refused_before_parsing_and_the_scan_stops_early() -> None:
    assert nesting_depth(b"[" * 10**6, limit=64) == 65
    with pytest.raises(TooDeep, match="deeper than 64 levels"):
        loads(b"[" * 100_000 + b"]" * 100_000)
    document = {"a": [[[[{"b": "[[[["}]]]]}
    assert loads(json.dumps(document)) == document
    assert loads(json.dumps([[[0]]]), max_depth=3) == [[[0]]]
    with pytest.raises(TooDeep):
        loads(json.dumps([[[0]]]), max_depth=2)
    with pytest.raises(ValueError):
        loads(b"[1,")
