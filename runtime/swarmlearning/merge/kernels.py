"""The arithmetic of the merge methods, one layer at a time, on flat contiguous float arrays.

Two backends: numpy (always there) and torch (used when it can be imported). Torch works on the
numpy memory itself through `torch.from_numpy`, so no tensor is copied in or out.

- `combine` is the weighted sum that both `mean` and every Weiszfeld step of `geomedian` need:
  out = sum_i coef[i] * xs[i], accumulated in place, a cache-sized chunk at a time, with an
  optional sum of squared distances ||xs[i] - out||^2 per peer (added into `d2`).
- `coordmedian_network` is the weighted coordinate-wise median by a sorting network of element-
  wise min/max (Batcher's odd-even merge sort): for a handful of peers it is several times faster
  than sorting along the peer axis. `coordmedian_sort` does the same with `torch.sort`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType

import numpy as np

from swarmlearning.merge.checks import all_finite

# Layers of at least this many elements go to torch when backend="auto".
TORCH_MIN_ELEMENTS = 1 << 16
# Elements per chunk of the weighted sum: the output chunk stays in the CPU cache while every
# peer's slice is added into it, so each input byte is read once and the output written once.
# With distances, each input slice is read a second time right after the sum (from cache).
# Sizes tuned on a 2-core Xeon (2 MiB L2 per core, 260 MiB L3). Torch's chunks are larger:
# every torch op is one OpenMP parallel region, and fewer regions lose less when another
# process holds a core (a thread that waits at the end of a region for a descheduled one).
CHUNK_NUMPY = 1 << 16
CHUNK_NUMPY_DISTANCE = 1 << 15
CHUNK_TORCH = 1 << 22
# Elements per peer in a chunk of the median network; elements of all peers in one torch sort.
NETWORK_CHUNK = 1 << 14
SORT_BLOCK = 1 << 20

_UNSET = object()
_torch: object = _UNSET


def torch_module() -> ModuleType | None:
    """torch, imported on first use, or None when it is not installed."""
    global _torch
    if _torch is _UNSET:
        try:
            import torch
        except ImportError:
            _torch = None
        else:
            _torch = torch
    return _torch  # type: ignore[return-value]


def wants_torch(backend: str, size: int) -> bool:
    """Whether a layer of `size` elements is computed with torch under `backend`."""
    if backend == "numpy":
        return False
    if backend == "torch":
        return True
    return size >= TORCH_MIN_ELEMENTS and torch_module() is not None


def _tensors(arrays: Sequence[np.ndarray]) -> list:
    """torch views of numpy arrays (read-only inputs are fine: they are only read)."""
    torch = torch_module()
    if all(a.flags.writeable for a in arrays):
        return [torch.from_numpy(a) for a in arrays]  # type: ignore[union-attr]
    with warnings.catch_warnings():  # torch warns that it cannot protect read-only memory
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return [torch.from_numpy(a) for a in arrays]  # type: ignore[union-attr]


def combine(xs: Sequence[np.ndarray], coef: Sequence[float], out: np.ndarray,
            d2: np.ndarray | None = None, *, torch: bool = False) -> bool:
    """out = sum_i coef[i] * xs[i], computed in out's dtype; when `d2` is given, also
    d2[i] += ||xs[i] - out||^2 (float64 per peer). Returns False when out holds NaN or Inf."""
    coefs = [float(c) for c in coef]
    if torch:
        total = _combine_torch(xs, coefs, out, d2)
    else:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and Inf are reported below
            total = _combine_numpy(xs, coefs, out, d2)
    # A finite sum means every element is finite; an infinite one may be only an overflow of
    # the sum, so look again element by element.
    return math.isfinite(total) or bool(np.isfinite(out).all())


def _combine_numpy(xs: Sequence[np.ndarray], coefs: list[float], out: np.ndarray,
                   d2: np.ndarray | None) -> float:
    n = out.size
    ct = out.dtype
    chunk = CHUNK_NUMPY if d2 is None else CHUNK_NUMPY_DISTANCE
    scratch = np.empty(min(chunk, n), dtype=ct)
    ones = np.ones(min(chunk, n), dtype=ct)
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        acc = out[start:stop]
        tmp = scratch[:stop - start]
        np.multiply(xs[0][start:stop], coefs[0], out=acc, dtype=ct)
        for x, c in zip(xs[1:], coefs[1:], strict=True):
            np.multiply(x[start:stop], c, out=tmp, dtype=ct)
            acc += tmp
        total += float(np.dot(acc, ones[:stop - start]))  # NaN or Inf in acc shows here
        if d2 is not None:
            for i, x in enumerate(xs):
                np.subtract(x[start:stop], acc, out=tmp, dtype=ct)
                d2[i] += float(np.dot(tmp, tmp))
    return total


def _combine_torch(xs: Sequence[np.ndarray], coefs: list[float], out: np.ndarray,
                   d2: np.ndarray | None) -> float:
    torch = torch_module()
    assert torch is not None
    n = out.size
    result, *inputs = _tensors([out, *xs])
    chunk = CHUNK_TORCH
    scratch = torch.empty(min(chunk, n), dtype=result.dtype) if d2 is not None else None
    sums = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        acc = result[start:stop]
        first = inputs[0][start:stop]
        if first.dtype == acc.dtype:
            torch.mul(first, coefs[0], out=acc)
        else:  # float16 in, float32 out: widen first, then scale in float32
            acc.copy_(first)
            acc.mul_(coefs[0])
        for x, c in zip(inputs[1:], coefs[1:], strict=True):
            acc.add_(x[start:stop], alpha=c)
        sums.append(acc.sum())  # NaN or Inf in acc shows here
        if d2 is not None:
            tmp = scratch[:stop - start]
            for i, x in enumerate(inputs):
                torch.sub(x[start:stop], acc, out=tmp)
                d2[i] += float(torch.dot(tmp, tmp))
    return float(torch.stack(sums).sum(dtype=torch.float64)) if sums else 0.0


def add_distances(xs: Sequence[np.ndarray], center: np.ndarray, d2: np.ndarray) -> None:
    """d2[i] += ||xs[i] - center||^2 (float64 per peer), in chunks of CHUNK_NUMPY elements
    computed in center's dtype."""
    n = center.size
    scratch = np.empty(min(CHUNK_NUMPY, n), dtype=center.dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # an overflow gives Inf, reported later
        for start in range(0, n, CHUNK_NUMPY):
            stop = min(start + CHUNK_NUMPY, n)
            tmp = scratch[:stop - start]
            for i, x in enumerate(xs):
                np.subtract(x[start:stop], center[start:stop], out=tmp, dtype=center.dtype)
                d2[i] += float(np.dot(tmp, tmp))


@lru_cache(maxsize=64)
def batcher_pairs(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs: the network
    for the next power of two, without the comparators that touch a position >= n (those
    positions would hold +inf and never swap)."""
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    return tuple(pairs)


def median_thresholds(weights: np.ndarray) -> tuple[float, float]:
    """(half the total weight, the tolerance within which a cumulative weight counts as
    landing exactly on half: a few rounding errors of a float64 sum of len(weights) terms)."""
    total = math.fsum(float(w) for w in weights)
    return total / 2, 4 * len(weights) * np.finfo(np.float64).eps * total


def coordmedian_network(xs: Sequence[np.ndarray], weights: np.ndarray, out: np.ndarray) -> bool:
    """Weighted coordinate-wise median with numpy (see the package docstring for the rule).
    Every weight must be > 0. Returns False, leaving `out` partly written, when an input holds
    NaN or Inf."""
    peers = len(xs)
    n = out.size
    ct = out.dtype
    pairs = batcher_pairs(peers)
    chunk = NETWORK_CHUNK
    values = np.empty((peers, chunk), dtype=ct)
    flat_values = values.reshape(-1)
    low = np.empty(chunk, dtype=ct)
    swap = np.empty(chunk, dtype=bool)
    equal = bool(np.all(weights == weights[0]))
    if not equal:
        half, tol = median_thresholds(weights)
        top = int(np.argmax(weights))
        if weights[top] > half + tol:
            # one model holds more than half the weight: the cumulative weight crosses half at
            # its value whatever the order, so the median is that model
            if not all(all_finite(x) for x in xs):
                return False
            np.copyto(out, xs[top], casting="same_kind")
            return True
        # The weights travel with the values through the network (as float32 when they are
        # exactly float32 numbers, such as nodeWeightage's integers: half the traffic).
        narrow = bool(np.array_equal(weights.astype(np.float32), weights))
        carried = np.empty((peers, chunk), dtype=np.float32 if narrow else np.float64)
        bits = carried.view(np.uint32 if narrow else np.uint64)
        flip = np.empty(chunk, dtype=bits.dtype)
        cum = np.empty((peers, chunk), dtype=np.float64)
        below = np.empty(chunk, dtype=bool)
        count = np.empty(chunk, dtype=np.intp)
        columns = np.arange(chunk, dtype=np.intp)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        rows = [values[i, :m] for i in range(peers)]
        for row, x in zip(rows, xs, strict=True):
            np.copyto(row, x[start:stop], casting="same_kind")
        if not np.isfinite(values[:, :m]).all():
            return False
        lo = low[:m]
        sw = swap[:m]
        if equal:
            for a, b in pairs:
                np.minimum(rows[a], rows[b], out=lo)
                np.maximum(rows[a], rows[b], out=rows[b])
                rows[a][...] = lo
            acc = out[start:stop]
            if peers % 2:
                acc[...] = rows[peers // 2]
            else:
                np.add(rows[peers // 2 - 1], rows[peers // 2], out=acc)
                acc *= 0.5
            continue
        wrows = [bits[i, :m] for i in range(peers)]
        for i, row in enumerate(carried[:, :m]):
            row.fill(weights[i])
        fl = flip[:m]
        for a, b in pairs:
            np.greater(rows[a], rows[b], out=sw)
            np.minimum(rows[a], rows[b], out=lo)
            np.maximum(rows[a], rows[b], out=rows[b])
            rows[a][...] = lo
            # swap the weights' bit patterns where the values swapped (exact, no rounding)
            np.bitwise_xor(wrows[a], wrows[b], out=fl)
            np.multiply(fl, sw, out=fl)
            wrows[a] ^= fl
            wrows[b] ^= fl
        # cumulative weight in sorted order; the answer is at the first position reaching half
        crows = [cum[i, :m] for i in range(peers)]
        cnt = count[:m]
        cnt.fill(0)
        bl = below[:m]
        for k in range(peers):
            if k:
                np.add(crows[k - 1], carried[k, :m], out=crows[k])
            else:
                crows[0][...] = carried[0, :m]
            if k < peers - 1:  # the last position always reaches half
                np.less(crows[k], half - tol, out=bl)
                cnt += bl
        index = cnt * chunk + columns[:m]
        at = flat_values.take(index)
        reached = cum.reshape(-1).take(index)
        np.minimum(cnt + 1, peers - 1, out=cnt)
        after = flat_values.take(cnt * chunk + columns[:m])
        out[start:stop] = np.where(reached <= half + tol, (at + after) * 0.5, at)
    return True


def coordmedian_sort(xs: Sequence[np.ndarray], weights: np.ndarray, out: np.ndarray) -> bool:
    """The same weighted coordinate-wise median as `coordmedian_network`, with torch.sort."""
    torch = torch_module()
    assert torch is not None
    peers = len(xs)
    n = out.size
    result, *inputs = _tensors([out, *xs])
    half, tol = median_thresholds(weights)
    w = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    chunk = max(4096, SORT_BLOCK // peers)
    block = torch.empty((peers, min(chunk, n)), dtype=result.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        stack = block[:, :stop - start]
        for row, x in zip(stack, inputs, strict=True):
            row.copy_(x[start:stop])
        if not bool(torch.isfinite(stack).all()):
            return False
        values, order = torch.sort(stack, dim=0)
        cum = w[order].cumsum_(0)
        cnt = (cum[:-1] < half - tol).sum(0, keepdim=True)
        at = values.gather(0, cnt)[0]
        reached = cum.gather(0, cnt)[0]
        after = values.gather(0, (cnt + 1).clamp_(max=peers - 1))[0]
        result[start:stop] = torch.where(reached <= half + tol, (at + after) * 0.5, at)
    return True
