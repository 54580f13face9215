"""`merge`: checks, then one method over the models, one tensor name at a time."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from swarmlearning.defaults import MERGE_METHODS
from swarmlearning.merge import kernels
from swarmlearning.merge.checks import (
    MergeError,
    check_weights,
    kind,
    layer_problems,
    load,
    raise_nonfinite,
    reference_names,
)
from swarmlearning.merge.outliers import DEFAULT_OUTLIER_FACTOR, FLOOR, far_outliers

log = logging.getLogger(__name__)

METHODS = MERGE_METHODS
BACKENDS = ("auto", "numpy", "torch")
# Weiszfeld: stop when the objective changes by less than this fraction, or after MAX_STEPS
# steps; distances are clamped below at EPSILON times the mean distance from the start point.
TOLERANCE = 1e-6
MAX_STEPS = 100
EPSILON = 1e-8


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for float16 and float32 tensors, float64 for float64."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def flat(array: np.ndarray) -> np.ndarray:
    """A contiguous 1-D view of an array (a copy only when it is not contiguous)."""
    return np.ascontiguousarray(array).reshape(-1)


def read_layer(models: Sequence[Mapping[str, Any]], name: str) -> list[np.ndarray]:
    """Tensor `name` of every model, after checking that they agree in shape and dtype."""
    arrays = [load(model, name) for model in models]
    problems = layer_problems(name, dict(enumerate(arrays)))
    if problems:
        peer = min(problems)
        raise MergeError(problems[peer], peer)
    return arrays


def merge(method: str, models: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float],
          *, backend: str = "auto", layerwise: bool | None = None) -> dict[str, np.ndarray]:
    """Merge models (mappings of tensor name to array) into one, weighting model i by
    weights[i]. See the package docstring for the methods, the checks and the options."""
    key, w, names, layerwise = _checked(method, models, weights, backend, layerwise)
    return _run(key, models, names, w, backend, layerwise, distances=False)[0]


def robust_merge(method: str, models: Sequence[Mapping[str, np.ndarray]],
                 weights: Sequence[float], *, outlier_factor: float = DEFAULT_OUTLIER_FACTOR,
                 backend: str = "auto", layerwise: bool | None = None
                 ) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
    """`merge`, and for coordmedian and geomedian, without the far outliers: a model farther
    from the merged model than `outlier_factor` times the median distance is left out and the
    rest merged again (see swarmlearning.merge.outliers). Returns the merged model and
    [(index, reason)] of the models left out, by index. mean, or a factor of 0, leaves no model
    out."""
    key, w, names, layerwise = _checked(method, models, weights, backend, layerwise)
    check = key != "mean" and outlier_factor > 0
    result, d2 = _run(key, models, names, w, backend, layerwise, distances=check)
    active = [i for i in range(len(models)) if w[i] > 0]
    if d2 is None or not check:
        return result, []
    distances = np.sqrt(d2)
    far = far_outliers(distances, outlier_factor, lambda: FLOOR * _norm(result))
    if not far:
        return result, []
    typical = float(np.median(distances))
    dropped = [(active[j], f"its weights are {distances[j]:.3g} from the {key} of the "
                           f"contributions, over {outlier_factor:g} times their median distance "
                           f"({typical:.3g}); left out of the merge") for j in far]
    w = w.copy()
    w[[index for index, _ in dropped]] = 0.0
    result, _ = _run(key, models, names, w, backend, layerwise, distances=False)
    return result, dropped


def _checked(method: str, models: Sequence[Mapping[str, np.ndarray]],
             weights: Sequence[float], backend: str, layerwise: bool | None
             ) -> tuple[str, np.ndarray, list[str], bool]:
    """The method's key, the checked weights, the tensor names and the layerwise choice, after
    every check that needs no tensor."""
    key = method.lower() if isinstance(method, str) else method
    if key not in METHODS:
        raise MergeError(f"unknown merge method {method!r}; use one of {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise MergeError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "torch" and kernels.torch_module() is None:
        raise MergeError("backend 'torch' needs PyTorch, which is not installed")
    if not models:
        raise MergeError("no models to merge")
    w = check_weights(weights, len(models))
    names, problems = reference_names(models, range(len(models)))
    if problems:
        peer = min(problems)
        raise MergeError(problems[peer], peer)
    if layerwise is None:
        layerwise = not all(type(model) is dict for model in models)
    return key, w, names, layerwise


def _run(key: str, models: Sequence[Mapping[str, Any]], names: list[str], w: np.ndarray,
         backend: str, layerwise: bool, *, distances: bool
         ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The merged model, and with `distances` (always for geomedian) each weighted model's
    squared distance from it over all float tensors, in the order of the weighted models."""
    active = [i for i in range(len(models)) if w[i] > 0]
    log.debug("merge %s: %d models (%d weighted), %d tensors, backend %s, layerwise %s",
              key, len(models), len(active), len(names), backend, layerwise)
    if key == "geomedian":
        return _geomedian(models, names, w, active, backend, layerwise)
    d2 = np.zeros(len(active)) if distances else None
    return {name: _merge_layer(key, models, name, w, active, backend, d2)
            for name in names}, d2


def _norm(model: Mapping[str, np.ndarray]) -> float:
    """The length of a model's float tensors taken together."""
    total = 0.0
    for array in model.values():
        if kind(array.dtype) == "float":
            values = flat(array).astype(np.float64, copy=False)
            total += float(np.dot(values, values))
    return math.sqrt(total)


def _top(w: np.ndarray) -> int:
    """The model with the highest weight (the first of equals)."""
    return int(np.argmax(w))


def _float_inputs(name: str, arrays: list[np.ndarray], active: list[int]) -> list[np.ndarray]:
    """Flat views of the weighted models' tensor, after checking the others for NaN and Inf
    (the weighted ones are checked through the result)."""
    chosen = set(active)
    raise_nonfinite(name, [(i, a) for i, a in enumerate(arrays) if i not in chosen])
    return [flat(arrays[i]) for i in active]


def _fail(name: str, active: list[int], xs: Sequence[np.ndarray], dtype: np.dtype) -> None:
    """Raise for a result with NaN or Inf: the input at fault, or an overflow."""
    raise_nonfinite(name, list(zip(active, xs, strict=True)))
    raise MergeError(f"tensor '{name}': the merged values overflow {dtype}")


def _finish(out: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return (out if out.dtype == dtype else out.astype(dtype)).reshape(shape)


def _merge_layer(method: str, models: Sequence[Mapping[str, Any]], name: str, w: np.ndarray,
                 active: list[int], backend: str, d2: np.ndarray | None) -> np.ndarray:
    arrays = read_layer(models, name)
    shape, dtype = arrays[0].shape, arrays[0].dtype
    if kind(dtype) == "copy":
        return np.array(arrays[_top(w)], copy=True)
    xs = _float_inputs(name, arrays, active)
    del arrays
    ct = compute_dtype(dtype)
    out = np.empty(math.prod(shape), dtype=ct)
    torch = kernels.wants_torch(backend, out.size)
    if method == "mean":
        coef = w[active] / w[active].sum()
        ok = kernels.combine(xs, coef, out, torch=torch)
    elif backend == "torch":
        ok = kernels.coordmedian_sort(xs, w[active], out)
    else:
        ok = kernels.coordmedian_network(xs, w[active], out)
    if not ok:
        _fail(name, active, xs, ct)
    if d2 is not None:
        kernels.add_distances(xs, out, d2)
    return _finish(out, shape, dtype)


def _geomedian(models: Sequence[Mapping[str, Any]], names: list[str], w: np.ndarray,
               active: list[int], backend: str, layerwise: bool
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Weighted geometric median by smoothed Weiszfeld over all float tensors together, and
    the weighted models' squared distances from it."""
    weight = w[active] / w[active].sum()
    result: dict[str, np.ndarray] = {}
    layers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    cache: dict[str, list[np.ndarray]] = {}
    d2 = np.zeros(len(active))
    # Pass 0: check every layer, copy the integer ones, start from the weighted mean and take
    # each model's distance to it.
    for name in names:
        arrays = read_layer(models, name)
        shape, dtype = arrays[0].shape, arrays[0].dtype
        if kind(dtype) == "copy":
            result[name] = np.array(arrays[_top(w)], copy=True)
            del arrays
            continue
        xs = _float_inputs(name, arrays, active)
        del arrays
        ct = compute_dtype(dtype)
        out = np.empty(math.prod(shape), dtype=ct)
        if not kernels.combine(xs, weight, out, d2, torch=kernels.wants_torch(backend, out.size)):
            _fail(name, active, xs, ct)
        result[name] = out
        layers[name] = (shape, dtype)
        if not layerwise:
            cache[name] = xs
        del xs
    objective = _objective(weight, d2)
    epsilon = EPSILON * objective
    steps = 0
    while objective > 0 and steps < MAX_STEPS:
        coef = weight / np.maximum(np.sqrt(d2), epsilon)
        coef /= coef.sum()
        d2 = np.zeros(len(active))
        for name, (shape, dtype) in layers.items():
            xs = cache[name] if not layerwise else _reread(models, name, active, shape, dtype)
            out = result[name]
            kernels.combine(xs, coef, out, d2, torch=kernels.wants_torch(backend, out.size))
            del xs
        steps += 1
        previous, objective = objective, _objective(weight, d2)
        if abs(previous - objective) < TOLERANCE * previous:
            break
    log.debug("geomedian: %d Weiszfeld steps, objective %.6g", steps, objective)
    del cache
    for name, (shape, dtype) in layers.items():
        result[name] = _finish(result[name], shape, dtype)
    return {name: result[name] for name in names}, d2


def _objective(weight: np.ndarray, d2: np.ndarray) -> float:
    """sum_i weight_i * ||x_i - z||, from the squared distances."""
    value = float(np.dot(weight, np.sqrt(d2)))
    if not math.isfinite(value):
        raise MergeError("geomedian: the distances between models overflow")
    return value


def _reread(models: Sequence[Mapping[str, Any]], name: str, active: list[int],
            shape: tuple[int, ...], dtype: np.dtype) -> list[np.ndarray]:
    """Tensor `name` of the weighted models again (layerwise geomedian), checked to be the same
    shape and dtype as on the first read."""
    xs = []
    for i in active:
        array = load(models[i], name)
        if array.shape != shape or array.dtype != dtype:
            raise MergeError(f"tensor '{name}' changed between reads", i)
        xs.append(flat(array))
    return xs
