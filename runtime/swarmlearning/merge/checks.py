"""Checks on the models and weights handed to a merge, and `screen`, which sorts models into
usable and rejected ones.

Every check reads a model's tensors one name at a time, so a lazy Mapping (one that loads a
tensor from a file in `__getitem__`) never has more than one layer of each model in memory.
Nothing here does I/O of its own."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

# Float dtypes that are merged; integer and bool tensors are copied from one model.
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
# Elements per slice when testing an array for NaN or Inf (bounds the temporary mask).
FINITE_SLICE = 1 << 20


class MergeError(ValueError):
    """Models or weights that cannot be merged. `peer` is the index of the model (or weight) at
    fault, or None when the fault is not one model's."""

    def __init__(self, message: str, peer: int | None = None) -> None:
        super().__init__(message if peer is None else f"peer {peer}: {message}")
        self.peer = peer
        self.reason = message


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes a tuple: (10, 4), (3,), ()."""
    return str(tuple(int(n) for n in shape))


def kind(dtype: np.dtype) -> str:
    """'float' for dtypes that are merged, 'copy' for integer and bool (taken from one model),
    'bad' for everything else (complex, strings, objects, extended precision)."""
    if dtype in FLOAT_DTYPES:
        return "float"
    if dtype.kind in "iub":
        return "copy"
    return "bad"


def native(array: np.ndarray) -> np.ndarray:
    """The array in native byte order (no copy when it already is)."""
    if array.dtype.isnative:
        return array
    return array.astype(array.dtype.newbyteorder("="))


def load(model: Mapping[str, Any], name: str) -> np.ndarray:
    """One tensor of one model as a native-order ndarray (a view where possible)."""
    return native(np.asarray(model[name]))


def check_weights(weights: Sequence[float], count: int) -> np.ndarray:
    """The weights as float64, after checking that there is one per model, each finite and
    >= 0, and not all zero."""
    if len(weights) != count:
        raise MergeError(f"{len(weights)} weights for {count} models")
    values = np.empty(count, dtype=np.float64)
    for i, weight in enumerate(weights):
        try:
            value = float(weight)
        except (TypeError, ValueError):
            raise MergeError(f"weight {weight!r} is not a number", i) from None
        if not math.isfinite(value) or value < 0:
            raise MergeError(f"weight {weight!r} must be finite and >= 0", i)
        values[i] = value
    if count and not values.any():
        raise MergeError("all weights are zero")
    return values


def majority(signatures: Sequence[Hashable]) -> Hashable:
    """The signature most peers share; on a tie, the one of the lowest-numbered peer."""
    counts = Counter(signatures)
    best = max(counts.values())
    return next(sig for sig in signatures if counts[sig] == best)


def name_problem(names: frozenset[str], reference: frozenset[str]) -> str | None:
    """Why a model's tensor names differ from the reference names, or None if they do not."""
    missing = sorted(reference - names, key=str)
    if missing:
        return f"tensor '{missing[0]}' is missing (the others have it)"
    extra = sorted(names - reference, key=str)
    if extra:
        return f"tensor '{extra[0]}' is not in the other models"
    return None


def reference_names(models: Sequence[Mapping[str, Any]], peers: Sequence[int]
                    ) -> tuple[list[str], dict[int, str]]:
    """The majority tensor names of `peers` (in the key order of the first peer that has
    them), and {peer: reason} for the peers whose names differ."""
    keys: dict[int, list[str]] = {}
    problems: dict[int, str] = {}
    for i in peers:
        model = models[i]
        if not isinstance(model, Mapping):
            problems[i] = f"is a {type(model).__name__}, not a mapping of names to tensors"
            continue
        keys[i] = list(model.keys())
        if not keys[i]:
            problems[i] = "has no tensors"
            del keys[i]
    if not keys:
        return [], problems
    sets = {i: frozenset(names) for i, names in keys.items()}
    reference = majority(list(sets.values()))
    order: list[str] = []
    for i, names in keys.items():
        problem = name_problem(sets[i], reference)  # type: ignore[arg-type]
        if problem is not None:
            problems[i] = problem
        elif not order:
            order = names
    return order, problems


def layer_problems(name: str, arrays: Mapping[int, np.ndarray]) -> dict[int, str]:
    """{peer: reason} for the peers whose tensor `name` differs in shape or dtype from the
    majority of `arrays`, or whose dtype cannot be merged."""
    signatures = {i: (tuple(a.shape), a.dtype) for i, a in arrays.items()}
    shape, dtype = majority(list(signatures.values()))  # type: ignore[misc]
    problems: dict[int, str] = {}
    for i, (own_shape, own_dtype) in signatures.items():
        if own_shape != shape:
            problems[i] = (f"tensor '{name}' has shape {shape_text(own_shape)}; "
                           f"the others have {shape_text(shape)}")
        elif own_dtype != dtype:
            problems[i] = f"tensor '{name}' has dtype {own_dtype}; the others have {dtype}"
        elif kind(own_dtype) == "bad":
            problems[i] = f"tensor '{name}' has dtype {own_dtype}, which cannot be merged"
    return problems


def all_finite(array: np.ndarray) -> bool:
    """True when a float array holds no NaN or Inf (tested slice by slice)."""
    flat = array.reshape(-1)
    for start in range(0, flat.size, FINITE_SLICE):
        if not np.isfinite(flat[start:start + FINITE_SLICE]).all():
            return False
    return True


def nonfinite_problem(name: str, array: np.ndarray) -> str | None:
    """Why a float tensor is unusable (NaN or Inf values), or None if it is usable."""
    if all_finite(array):
        return None
    what = "NaN" if np.isnan(array).any() else "Inf"
    return f"tensor '{name}' has {what} values"


def raise_nonfinite(name: str, arrays: Sequence[tuple[int, np.ndarray]]) -> None:
    """Raise MergeError for the first of (peer, array) with NaN or Inf; return if none has."""
    for i, array in arrays:
        problem = nonfinite_problem(name, array)
        if problem is not None:
            raise MergeError(problem, i)


def screen(models: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[tuple[int, str]]]:
    """Sort models into usable and rejected ones.

    Returns (indices of the good models, [(index, reason)] of the rejected ones, by index).
    A model is rejected when its tensor names differ from the names most models have, when a
    tensor's shape or dtype differs from what most of the remaining models have, when a tensor
    has a dtype that cannot be merged, or when a float tensor holds NaN or Inf. Tensors are read
    one name at a time across the models."""
    good = list(range(len(models)))
    names, problems = reference_names(models, good)
    rejected = dict(problems)
    good = [i for i in good if i not in rejected]
    for name in names:
        if not good:
            break
        arrays = {i: load(models[i], name) for i in good}
        problems = layer_problems(name, arrays)
        for i, array in arrays.items():
            if i not in problems and kind(array.dtype) == "float":
                problem = nonfinite_problem(name, array)
                if problem is not None:
                    problems[i] = problem
        del arrays
        rejected.update(problems)
        good = [i for i in good if i not in problems]
    return good, sorted(rejected.items())
