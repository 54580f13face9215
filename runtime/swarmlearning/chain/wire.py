"""Ethereum JSON-RPC wire encoding of eth-tester results: integers as hex quantities."""

from __future__ import annotations

from typing import Any

# Fixed-size byte fields that eth-tester may hand back as integers.
_FIXED_BYTES = {"logsBloom": 256}


def to_wire(value: Any, key: str | None = None) -> Any:
    """Integers become 0x quantities and bytes 0x data, recursively; bools and strings stay."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if key in _FIXED_BYTES:
            return "0x" + value.to_bytes(_FIXED_BYTES[key], "big").hex()
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {k: to_wire(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value
