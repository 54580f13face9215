"""Model weights on the wire and on disk: safetensors bytes, addressed by their SHA-256.

Nothing here unpickles: safetensors holds only a JSON header and raw tensor bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

Weights = dict[str, np.ndarray]


class WeightsError(ValueError):
    """Bytes that are not a usable safetensors model."""


def digest(data: bytes) -> str:
    """The content address of a blob: lower-case hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def to_bytes(weights: Mapping[str, np.ndarray]) -> bytes:
    """Serialize named arrays as safetensors (contiguous copies where needed)."""
    from safetensors.numpy import save

    if not weights:
        raise WeightsError("a model needs at least one tensor")
    return save({name: np.ascontiguousarray(array) for name, array in weights.items()})


def from_bytes(data: bytes) -> Weights:
    """Parse safetensors bytes; a malformed blob raises WeightsError, never anything else."""
    from safetensors.numpy import load

    try:
        weights = load(bytes(data))
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds on bad input
        raise WeightsError(f"not a safetensors blob: {exc}") from None
    if not weights:
        raise WeightsError("the blob holds no tensors")
    return weights
