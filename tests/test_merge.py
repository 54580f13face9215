"""swarmlearning.merge against plain reference implementations written here: np.average for the
mean, a per-coordinate loop with exact fractions for the weighted median, and a textbook
Weiszfeld on flattened float64 vectors for the geometric median. Also the checks (names, shapes,
dtypes, NaN/Inf, weights), screen(), lazy layer-by-layer reading, and numpy vs torch."""

from __future__ import annotations

import importlib.util
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearning.merge import METHODS, MergeError, merge, screen
from swarmlearning.merge.kernels import batcher_pairs

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
SETTINGS = settings(max_examples=40, deadline=None)
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}
FLOATS = [np.float16, np.float32, np.float64]


def models_from(rng: np.random.Generator, peers: int, shapes: dict[str, tuple[int, ...]],
                dtype=np.float32) -> list[dict[str, np.ndarray]]:
    return [{name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}
            for _ in range(peers)]


# ---------------------------------------------------------------------------------------------
# Reference implementations (deliberately plain)

def ref_mean(arrays: list[np.ndarray], weights: list[float]) -> np.ndarray:
    return np.average(np.stack([a.astype(np.float64) for a in arrays]), axis=0, weights=weights)


def ref_weighted_median(values: list[float], weights: list[float]) -> float:
    """Sort, walk the cumulative weight (exact fractions), stop where it reaches half."""
    pairs = sorted((v, Fraction(w)) for v, w in zip(values, weights, strict=True) if w > 0)
    total = sum(w for _, w in pairs)
    cum = Fraction(0)
    for k, (value, weight) in enumerate(pairs):
        cum += weight
        if 2 * cum == total:
            return (value + pairs[k + 1][0]) / 2
        if 2 * cum > total:
            return value
    raise AssertionError("unreachable")


def ref_coordmedian(arrays: list[np.ndarray], weights: list[float]) -> np.ndarray:
    flat = [a.astype(np.float64).ravel() for a in arrays]
    out = [ref_weighted_median([f[j] for f in flat], weights) for j in range(flat[0].size)]
    return np.array(out, dtype=np.float64).reshape(arrays[0].shape)


def ref_objective(points: np.ndarray, w: np.ndarray, z: np.ndarray) -> float:
    return float(sum(wi * np.linalg.norm(p - z) for p, wi in zip(points, w, strict=True)))


def ref_geomedian(points: np.ndarray, weights: list[float], tol: float = 1e-6,
                  steps: int = 100) -> np.ndarray:
    """Weiszfeld on rows of `points` (float64), from the weighted mean, distances clamped at
    1e-8 x the starting objective, stop on a relative objective change below `tol`."""
    keep = [i for i, w in enumerate(weights) if w > 0]
    x = points[keep].astype(np.float64)
    w = np.array([weights[i] for i in keep], dtype=np.float64)
    w /= w.sum()
    z = (w[:, None] * x).sum(axis=0)
    f = ref_objective(x, w, z)
    eps = 1e-8 * f
    for _ in range(steps):
        if f == 0:
            break
        d = np.array([max(np.linalg.norm(p - z), eps) for p in x])
        c = w / d
        z = (c[:, None] * x).sum(axis=0) / c.sum()
        f, previous = ref_objective(x, w, z), f
        if abs(previous - f) < tol * previous:
            break
    return z


def flatten(model: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([model[n].astype(np.float64).ravel() for n in names])


# ---------------------------------------------------------------------------------------------
# mean

@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), peers=st.integers(1, 6),
       weights=st.lists(st.integers(0, 100), min_size=6, max_size=6),
       dtype=st.sampled_from(FLOATS), size=st.integers(0, 40))
def test_mean_matches_np_average(seed, peers, weights, dtype, size):
    weights = weights[:peers]
    if not any(weights):
        weights[0] = 1
    rng = np.random.default_rng(seed)
    models = models_from(rng, peers, {"w": (size,), "b": (3, 2)}, dtype)
    out = merge("mean", models, weights)
    for name in ("w", "b"):
        assert out[name].dtype == dtype and out[name].shape == models[0][name].shape
        expected = ref_mean([m[name] for m in models], weights)
        np.testing.assert_allclose(out[name].astype(np.float64), expected,
                                   rtol=RTOL[dtype], atol=RTOL[dtype])


def test_mean_with_float_weights_and_large_layers():
    rng = np.random.default_rng(1)
    models = models_from(rng, 5, {"a": (300, 301), "b": (7,)})
    weights = [0.3, 1.7, 0.0, 2.25, 1e-3]
    for backend in ("numpy", "auto"):
        out = merge("mean", models, weights, backend=backend)
        for name in ("a", "b"):
            np.testing.assert_allclose(out[name], ref_mean([m[name] for m in models], weights),
                                       rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# coordmedian

@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), peers=st.integers(1, 9),
       weights=st.lists(st.integers(0, 5), min_size=9, max_size=9),
       dtype=st.sampled_from(FLOATS))
def test_coordmedian_matches_reference_with_ties(seed, peers, weights, dtype):
    """Values from a small set (many ties) and small integer weights (the cumulative weight
    often lands exactly on half)."""
    weights = weights[:peers]
    if not any(weights):
        weights[-1] = 2
    rng = np.random.default_rng(seed)
    models = [{"t": rng.integers(-2, 3, size=(5, 7)).astype(dtype) / 2} for _ in range(peers)]
    out = merge("coordmedian", models, weights)["t"]
    assert out.dtype == dtype
    expected = ref_coordmedian([m["t"] for m in models], weights)
    np.testing.assert_array_equal(out.astype(np.float64), expected)


def test_coordmedian_random_float_weights():
    rng = np.random.default_rng(2)
    for peers in (2, 3, 5, 8, 13, 33):
        models = models_from(rng, peers, {"t": (40,)})
        weights = list(rng.uniform(0, 3, peers))
        out = merge("coordmedian", models, weights)["t"]
        expected = ref_coordmedian([m["t"] for m in models], weights)
        np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("peers", [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 17])
@pytest.mark.parametrize("weight", [1.0, 0.1, 50.0, 1e-3])
def test_coordmedian_equal_weights_is_np_median(dtype, peers, weight):
    rng = np.random.default_rng(peers)
    models = models_from(rng, peers, {"t": (3, 50)}, dtype)
    models[0]["t"][0, :5] = models[-1]["t"][0, :5]  # some ties
    out = merge("coordmedian", models, [weight] * peers)["t"]
    expected = np.median(np.stack([m["t"] for m in models]), axis=0)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected.astype(dtype))


@pytest.mark.parametrize(("weights", "expected"), [
    ([1, 1, 1, 1], 2.5),    # even count, equal weights: mean of the middle two
    ([3, 1, 2, 2], 2.5),    # cumulative 3, 4 = half of 8 at value 2: mean of 2 and 3
    ([1, 3, 2, 2], 2.5),    # cumulative 1, 4: exactly half at 2
    ([1, 1, 4, 2], 3.0),    # cumulative 1, 2, 6: first reaches half (4) at 3
    ([5, 1, 1, 1], 1.0),    # one heavy value
    ([1, 1, 1, 5], 4.0),
    ([2, 0, 0, 2], 2.5),    # zero weights ignored: mean of 1 and 4
    ([0.1] * 4, 2.5),       # non-dyadic equal weights still land on half
])
def test_coordmedian_exact_half(weights, expected):
    models = [{"t": np.array([v], dtype=np.float32)} for v in (1.0, 2.0, 3.0, 4.0)]
    assert merge("coordmedian", models, weights)["t"][0] == expected
    assert ref_weighted_median([1.0, 2.0, 3.0, 4.0], weights) == expected


def test_coordmedian_tied_values_across_the_half():
    # values 1, 1, 2 with weights 1, 2, 1: sorted weights hit half (2) inside or at the end of
    # the tie group depending on order; the answer is 1 either way
    models = [{"t": np.array([v], dtype=np.float64)} for v in (1.0, 1.0, 2.0)]
    assert merge("coordmedian", models, [1, 2, 1])["t"][0] == 1.0
    # values 1, 2, 2 with weights 2, 1, 1: half (2) reached at the end of value 1 -> 1.5
    models = [{"t": np.array([v], dtype=np.float64)} for v in (1.0, 2.0, 2.0)]
    assert merge("coordmedian", models, [2, 1, 1])["t"][0] == 1.5


@pytest.mark.parametrize("n", range(1, 21))
def test_sorting_network_sorts_every_zero_one_input(n):
    # 0-1 principle: a comparator network sorts everything if it sorts all 0/1 inputs
    pairs = batcher_pairs(n)
    assert all(0 <= a < b < n for a, b in pairs)
    cols = np.arange(2**n, dtype=np.int64)
    bits = ((cols[None, :] >> np.arange(n)[:, None]) & 1).astype(np.int8)
    for a, b in pairs:
        lo = np.minimum(bits[a], bits[b])
        bits[b] = np.maximum(bits[a], bits[b])
        bits[a] = lo
    assert (np.diff(bits, axis=0) >= 0).all()


# ---------------------------------------------------------------------------------------------
# geomedian

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("peers", [1, 2, 3, 5, 8])
def test_geomedian_matches_weiszfeld_reference(dtype, peers):
    rng = np.random.default_rng(10 + peers)
    shapes = {"a": (6, 5), "b": (11,), "c": ()}
    models = models_from(rng, peers, shapes, dtype)
    weights = list(rng.integers(1, 100, peers))
    out = merge("geomedian", models, weights)
    names = list(shapes)
    points = np.stack([flatten(m, names) for m in models])
    expected = ref_geomedian(points, weights)
    got = flatten(out, names)
    w = np.array(weights, dtype=np.float64) / sum(weights)
    if dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    else:
        spread = np.linalg.norm(points - points.mean(axis=0), axis=1).max()
        assert np.linalg.norm(got - expected) <= 1e-3 * spread
        assert ref_objective(points, w, got) <= ref_objective(points, w, expected) * (1 + 1e-5)
    for name in names:
        assert out[name].dtype == dtype and out[name].shape == shapes[name]


def test_geomedian_is_near_the_true_minimum():
    rng = np.random.default_rng(20)
    models = models_from(rng, 7, {"a": (30,), "b": (4, 4)}, np.float64)
    weights = [3, 1, 4, 1, 5, 9, 2]
    points = np.stack([flatten(m, ["a", "b"]) for m in models])
    w = np.array(weights, dtype=np.float64) / sum(weights)
    best = ref_geomedian(points, weights, tol=1e-15, steps=20000)
    got = flatten(merge("geomedian", models, weights), ["a", "b"])
    assert ref_objective(points, w, got) <= ref_objective(points, w, best) * (1 + 1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_geomedian_resists_two_adversaries_of_five(seed):
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(200)
    honest = [centre + 0.1 * rng.standard_normal(200) for _ in range(3)]
    attack = [centre + 50.0 + rng.standard_normal(200) for _ in range(2)]
    models = [{"x": p.astype(np.float32)} for p in honest + attack]
    weights = [1, 1, 1, 1, 1]
    got = merge("geomedian", models, weights)["x"].astype(np.float64)
    mean = merge("mean", models, weights)["x"].astype(np.float64)
    radius = max(np.linalg.norm(p - centre) for p in honest)
    assert np.linalg.norm(got - centre) < np.linalg.norm(mean - centre)
    assert np.linalg.norm(got - centre) <= radius
    # the coordinate-wise median resists them too: every coordinate within the honest range
    med = merge("coordmedian", models, weights)["x"]
    stack = np.stack([p.astype(np.float32) for p in honest])
    assert (stack.min(axis=0) <= med).all() and (med <= stack.max(axis=0)).all()


# ---------------------------------------------------------------------------------------------
# weights, dtypes, methods

@pytest.mark.parametrize("method", METHODS)
def test_zero_weight_models_are_ignored(method):
    rng = np.random.default_rng(3)
    models = models_from(rng, 5, {"a": (4, 3), "b": (9,)})
    models[2] = {k: v * 1000 for k, v in models[2].items()}
    with_zero = merge(method, models, [1, 2, 0, 3, 1])
    without = merge(method, models[:2] + models[3:], [1, 2, 3, 1])
    for name in ("a", "b"):
        np.testing.assert_array_equal(with_zero[name], without[name])


@pytest.mark.parametrize("method", METHODS)
def test_zero_weight_models_are_still_checked(method):
    rng = np.random.default_rng(4)
    models = models_from(rng, 3, {"a": (4,)})
    models[1]["a"][2] = np.nan
    with pytest.raises(MergeError) as err:
        merge(method, models, [1, 0, 1])
    assert err.value.peer == 1
    models[1]["a"] = np.zeros(5, np.float32)
    with pytest.raises(MergeError) as err:
        merge(method, models, [1, 0, 1])
    assert err.value.peer == 1


@pytest.mark.parametrize(("weights", "peer", "text"), [
    ([0, 0, 0], None, "all weights are zero"),
    ([1, -1, 1], 1, "must be finite and >= 0"),
    ([1, 1, float("nan")], 2, "must be finite and >= 0"),
    ([float("inf"), 1, 1], 0, "must be finite and >= 0"),
    ([1, "x", 1], 1, "is not a number"),
    ([1, 1], None, "2 weights for 3 models"),
])
def test_bad_weights(weights, peer, text):
    models = models_from(np.random.default_rng(5), 3, {"a": (2,)})
    with pytest.raises(MergeError, match=text) as err:
        merge("mean", models, weights)
    assert err.value.peer == peer


def test_method_names():
    models = models_from(np.random.default_rng(6), 3, {"a": (5,)})
    for name in ("MEAN", "Mean", "CoordMedian", "GEOMEDIAN"):
        merge(name, models, [1, 1, 1])
    with pytest.raises(MergeError, match="mean, coordmedian, geomedian") as err:
        merge("median", models, [1, 1, 1])
    assert err.value.peer is None
    with pytest.raises(MergeError, match="backend"):
        merge("mean", models, [1, 1, 1], backend="cuda")
    with pytest.raises(MergeError, match="no models"):
        merge("mean", [], [])


@pytest.mark.parametrize("method", METHODS)
def test_integer_and_bool_tensors_come_from_the_heaviest_model(method):
    models = [{"w": np.full(3, float(i), np.float32), "steps": np.array([10 * i], np.int64),
               "mask": np.array([i % 2 == 0, True]), "u8": np.full((2, 2), i, np.uint8)}
              for i in range(4)]
    out = merge(method, models, [1, 5, 2, 5])  # 1 and 3 tie: the first of them wins
    assert out["steps"].dtype == np.int64 and out["steps"][0] == 10
    assert out["mask"].dtype == np.bool_ and out["mask"].tolist() == [False, True]
    assert out["u8"].dtype == np.uint8 and (out["u8"] == 1).all()
    assert out["steps"] is not models[1]["steps"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_output_dtype_and_shape(method, dtype):
    shapes = {"a": (2, 3, 4), "b": (), "c": (0,), "d": (1,)}
    models = models_from(np.random.default_rng(7), 4, shapes, dtype)
    out = merge(method, models, [1, 2, 3, 4])
    assert list(out) == list(shapes)
    for name, shape in shapes.items():
        assert out[name].shape == shape and out[name].dtype == dtype


def test_float16_computed_in_float32():
    # 2048 + 1 is not a float16 number; a float16 sum would lose the 1s
    models = [{"h": np.full(4, v, np.float16)} for v in (2048.0, 1.0, 1.0, 2048.0)]
    out = merge("mean", models, [1, 1, 1, 1])["h"]
    assert out.dtype == np.float16 and out[0] == np.float16(1024.5)


def test_unusual_layouts():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((3, 20, 30))
    models = [{"f": np.asfortranarray(base[i]), "s": base[i][::2, ::3],
               "be": base[i].astype(">f4")} for i in range(3)]
    out = merge("mean", models, [1, 1, 2])
    np.testing.assert_allclose(out["f"], np.average(base, axis=0, weights=[1, 1, 2]))
    np.testing.assert_allclose(out["s"], np.average(base, axis=0, weights=[1, 1, 2])[::2, ::3])
    assert out["be"].dtype == np.float32
    np.testing.assert_allclose(out["be"], np.average(base, axis=0, weights=[1, 1, 2]),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# checks and screen

@pytest.mark.parametrize("odd", [0, 1, 2])
def test_shape_mismatch_blames_the_odd_one_out(odd):
    models = [{"fc.weight": np.zeros((10, 4), np.float32), "fc.bias": np.zeros(4, np.float32)}
              for _ in range(3)]
    models[odd]["fc.weight"] = np.zeros((10, 5), np.float32)
    for method in METHODS:
        with pytest.raises(MergeError) as err:
            merge(method, models, [1, 1, 1])
        assert err.value.peer == odd
        assert str(err.value) == (f"peer {odd}: tensor 'fc.weight' has shape (10, 5); "
                                  "the others have (10, 4)")


def test_dtype_and_name_mismatches():
    good = {"a": np.zeros(3, np.float32), "b": np.zeros(2, np.float32)}
    models = [dict(good) for _ in range(4)]
    models[2] = {"a": np.zeros(3, np.float64), "b": np.zeros(2, np.float32)}
    with pytest.raises(MergeError, match="peer 2: tensor 'a' has dtype float64; the others "
                                         "have float32"):
        merge("mean", models, [1] * 4)
    models[2] = {"a": np.zeros(3, np.float32)}
    with pytest.raises(MergeError, match="peer 2: tensor 'b' is missing") as err:
        merge("mean", models, [1] * 4)
    assert err.value.peer == 2
    models[2] = dict(good, extra=np.zeros(1, np.float32))
    with pytest.raises(MergeError, match="peer 2: tensor 'extra' is not in the other models"):
        merge("mean", models, [1] * 4)
    models[2] = [np.zeros(3)]
    with pytest.raises(MergeError, match="peer 2: is a list"):
        merge("mean", models, [1] * 4)


def test_unsupported_dtype():
    models = [{"c": np.zeros(3, np.complex64)} for _ in range(2)]
    with pytest.raises(MergeError, match="complex64, which cannot be merged"):
        merge("mean", models, [1, 1])
    assert screen(models) == ([], [(0, "tensor 'c' has dtype complex64, which cannot be merged"),
                                   (1, "tensor 'c' has dtype complex64, which cannot be merged")])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("size", [7, 70000])
def test_non_finite_values_are_refused(method, bad, size):
    models = models_from(np.random.default_rng(9), 4, {"a": (3,), "b": (size,)})
    models[3]["b"][size // 2] = bad
    with pytest.raises(MergeError) as err:
        merge(method, models, [1, 2, 3, 4])
    assert err.value.peer == 3
    what = "NaN" if np.isnan(bad) else "Inf"
    assert str(err.value) == f"peer 3: tensor 'b' has {what} values"


def test_screen_sorts_good_from_bad():
    rng = np.random.default_rng(11)
    models = models_from(rng, 7, {"a": (4, 2), "b": (3,), "n": ()})
    models[1]["a"] = np.zeros((2, 4), np.float32)                    # shape
    models[2]["b"] = models[2]["b"].astype(np.float16)                # dtype
    models[3] = {k: v for k, v in models[3].items() if k != "n"}      # missing name
    models[4]["b"][0] = np.nan                                        # NaN
    models[5]["n"] = np.array(np.inf, np.float32)                     # Inf
    good, rejected = screen(models)
    assert good == [0, 6]
    assert rejected == [
        (1, "tensor 'a' has shape (2, 4); the others have (4, 2)"),
        (2, "tensor 'b' has dtype float16; the others have float32"),
        (3, "tensor 'n' is missing (the others have it)"),
        (4, "tensor 'b' has NaN values"),
        (5, "tensor 'n' has Inf values"),
    ]
    out = merge("mean", [models[i] for i in good], [1, 1])
    np.testing.assert_allclose(out["a"], (models[0]["a"] + models[6]["a"]) / 2)
    assert screen([]) == ([], [])
    assert screen(models[:1]) == ([0], [])


def test_screen_majority_and_ties():
    a = {"t": np.zeros(2, np.float32)}
    b = {"t": np.zeros(3, np.float32)}
    assert screen([a, b, b]) == ([1, 2], [(0, "tensor 't' has shape (2,); the others have (3,)")])
    # two against two: the lowest-numbered peer's side is the reference
    assert screen([b, a, a, b])[0] == [0, 3]


# ---------------------------------------------------------------------------------------------
# lazy models, layer by layer

class Tracker:
    """Counts loads, and the arrays handed out that are still alive."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.loads: Counter[str] = Counter()

    def loaded(self, name: str, array: np.ndarray) -> None:
        self.live += 1
        self.peak = max(self.peak, self.live)
        self.loads[name] += 1
        weakref.finalize(array, self.freed)

    def freed(self) -> None:
        self.live -= 1


class LazyModel(Mapping):
    """A model whose every __getitem__ 'loads' a fresh copy of one tensor."""

    def __init__(self, tensors: dict[str, np.ndarray], tracker: Tracker) -> None:
        self._tensors = tensors
        self._tracker = tracker

    def __getitem__(self, name: str) -> np.ndarray:
        array = self._tensors[name].copy()
        self._tracker.loaded(name, array)
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_geomedian_layerwise_equals_cached(dtype):
    rng = np.random.default_rng(12)
    shapes = {f"l{i}": (50, 20) for i in range(6)} | {"n": (2,)}
    plain = models_from(rng, 5, shapes, dtype)
    plain[4] = {k: v + 5 for k, v in plain[4].items()}  # one far peer: several Weiszfeld steps
    plain[3]["n"] = np.array([3, 4])
    for m in plain[:3] + plain[4:]:
        m["n"] = np.array([1, 2])
    weights = [1, 2, 3, 5, 4]  # peer 3 is the heaviest: its integer tensor wins
    results = {}
    for layerwise in (True, False):
        tracker = Tracker()
        lazy = [LazyModel(m, tracker) for m in plain]
        results[layerwise] = merge("geomedian", lazy, weights, layerwise=layerwise,
                                   backend="numpy")
        assert tracker.live == 0
        if layerwise:
            assert tracker.peak <= len(plain)  # one layer of each model at most
            assert tracker.loads["l0"] > 2 * len(plain)  # re-read on every Weiszfeld step
            assert tracker.loads["n"] == len(plain)
        else:
            assert tracker.peak >= 6 * len(plain)  # everything cached (the RAM-heavy mode)
            assert tracker.loads["l0"] == len(plain)
    for name in shapes:
        np.testing.assert_array_equal(results[True][name], results[False][name])
    assert results[True]["n"].tolist() == [3, 4]
    tracker = Tracker()  # lazy models default to layerwise
    merge("geomedian", [LazyModel(m, tracker) for m in plain], weights, backend="numpy")
    assert tracker.peak <= len(plain)
    default = merge("geomedian", plain, weights, backend="numpy")
    for name in shapes:
        np.testing.assert_array_equal(default[name], results[False][name])


@pytest.mark.parametrize("method", ["mean", "coordmedian"])
def test_mean_and_median_read_each_layer_once(method):
    rng = np.random.default_rng(13)
    shapes = {f"l{i}": (30, 30) for i in range(5)}
    plain = models_from(rng, 4, shapes)
    tracker = Tracker()
    out = merge(method, [LazyModel(m, tracker) for m in plain], [1, 0, 2, 3])
    assert tracker.peak <= 4 and tracker.live == 0
    assert all(tracker.loads[name] == 4 for name in shapes)
    expected = merge(method, plain, [1, 0, 2, 3])
    for name in shapes:
        np.testing.assert_array_equal(out[name], expected[name])


# ---------------------------------------------------------------------------------------------
# backends

@needs_torch
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("peers", [1, 2, 5])
def test_numpy_and_torch_agree(dtype, peers):
    rng = np.random.default_rng(14 + peers)
    shapes = {"big": (1 << 16,), "small": (33,)}  # "big" goes to torch under auto
    models = models_from(rng, peers, shapes, dtype)
    weights = list(rng.integers(1, 10, peers))
    points = np.stack([flatten(m, list(shapes)) for m in models])
    w = np.array(weights, dtype=np.float64) / sum(weights)
    for method in METHODS:
        np_out = merge(method, models, weights, backend="numpy")
        for backend in ("torch", "auto"):
            out = merge(method, models, weights, backend=backend)
            for name in shapes:
                assert out[name].dtype == dtype
            if method == "coordmedian":
                for name in shapes:
                    np.testing.assert_array_equal(out[name], np_out[name])
            elif method == "mean" or dtype == np.float64:
                for name in shapes:
                    np.testing.assert_allclose(out[name].astype(np.float64),
                                               np_out[name].astype(np.float64),
                                               rtol=10 * RTOL[dtype], atol=10 * RTOL[dtype])
            else:
                # float32 rounding may end Weiszfeld a step earlier or later: compare how good
                # the two answers are, and how far apart they are against the models' spread
                got, ref = flatten(out, list(shapes)), flatten(np_out, list(shapes))
                spread = np.linalg.norm(points - points.mean(axis=0), axis=1).max()
                assert np.linalg.norm(got - ref) <= 1e-2 * spread
                np.testing.assert_allclose(ref_objective(points, w, got),
                                           ref_objective(points, w, ref), rtol=1e-5)


@needs_torch
def test_torch_sees_non_finite_values():
    models = models_from(np.random.default_rng(15), 3, {"a": (1 << 17,)})
    models[1]["a"][-1] = np.inf
    for method in METHODS:
        with pytest.raises(MergeError, match="peer 1: tensor 'a' has Inf values"):
            merge(method, models, [1, 1, 1], backend="torch")


@needs_torch
def test_torch_accepts_read_only_arrays():
    models = models_from(np.random.default_rng(16), 3, {"a": (1 << 16,)})
    for m in models:
        m["a"].flags.writeable = False
    out = merge("mean", models, [1, 1, 1], backend="torch")
    np.testing.assert_allclose(out["a"], ref_mean([m["a"] for m in models], [1, 1, 1]),
                               rtol=1e-6, atol=1e-6)
