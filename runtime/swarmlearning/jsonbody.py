"""JSON from the network, with its nesting bounded before any parser recursion.

Processes that import py-evm run with a recursion limit of 100,000 (py_ecc raises it for the
EVM), so Python's JSON reader no longer stops a deeply nested document with a RecursionError:
it overflows the C stack and the process dies. Request bodies are therefore scanned for their
nesting depth first, in one pass that stops as soon as the bound is passed.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE, _ESCAPE = ord('"'), ord("\\")


class TooDeep(ValueError):
    """A JSON document nests deeper than allowed; the message says how deep is allowed."""


def nesting_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in `raw`, counting only up to `limit` + 1."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (TooDeep) a document nested deeper than `max_depth`."""
    data = raw.encode() if isinstance(raw, str) else raw
    # a document with fewer brackets than the bound cannot nest past it: most requests stop here
    if data.count(b"[") + data.count(b"{") > max_depth and \
            nesting_depth(data, max_depth) > max_depth:
        raise TooDeep(f"the JSON nests deeper than {max_depth} levels")
    return json.loads(data)
