"""robust_merge and far_outliers: far models are left out of coordmedian and geomedian (and
named with a reason), honest spreads are not, a majority always remains, and mean or a factor
of 0 leaves nothing out."""

from __future__ import annotations

import numpy as np
import pytest

from swarmlearning.merge import merge, robust_merge
from swarmlearning.merge.outliers import far_outliers

ROBUST = ("coordmedian", "geomedian")


def honest(rng: np.random.Generator, peers: int, spread: float = 0.01
           ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """A common model and `peers` models near it (as peers trained from one merged model)."""
    centre = {"w": rng.standard_normal((40, 10)).astype(np.float32),
              "b": rng.standard_normal(10).astype(np.float32),
              "steps": np.array([7], np.int64)}
    near = [{name: (value + spread * rng.standard_normal(value.shape).astype(value.dtype)
                    if value.dtype.kind == "f" else value.copy())
             for name, value in centre.items()} for _ in range(peers)]
    return centre, near


ATTACKS = {
    "flipped": lambda model, rng: {k: -v if v.dtype.kind == "f" else v for k, v in model.items()},
    "scaled": lambda model, rng: {k: v * 10 if v.dtype.kind == "f" else v
                                  for k, v in model.items()},
    "random": lambda model, rng: {k: rng.standard_normal(v.shape).astype(v.dtype)
                                  if v.dtype.kind == "f" else v for k, v in model.items()},
}


@pytest.mark.parametrize("method", ROBUST)
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_far_model_is_left_out_and_the_rest_merged_as_if_it_never_came(method: str,
                                                                          attack: str) -> None:
    rng = np.random.default_rng(1)
    _, models = honest(rng, 3)
    bad = ATTACKS[attack](models[0], rng)
    mixed = [models[0], bad, models[1], models[2]]
    result, dropped = robust_merge(method, mixed, [1, 1, 1, 1])
    assert [index for index, _ in dropped] == [1]
    assert f"from the {method} of the contributions" in dropped[0][1]
    alone = merge(method, models, [1, 1, 1])
    for name in alone:
        np.testing.assert_allclose(result[name], alone[name], rtol=1e-5, atol=1e-6)
    if attack == "flipped":  # the plain median keeps the flipped model's pull: what this fixes
        plain = merge(method, mixed, [1, 1, 1, 1])
        assert not np.allclose(plain["w"], alone["w"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ROBUST)
def test_honest_spreads_leave_nothing_out(method: str) -> None:
    rng = np.random.default_rng(2)
    for peers in (3, 4, 5, 8):
        _, models = honest(rng, peers, spread=0.05)
        result, dropped = robust_merge(method, models, [1] * peers)
        assert dropped == []
        plain = merge(method, models, [1] * peers)
        for name in plain:
            np.testing.assert_array_equal(result[name], plain[name])


def test_mean_and_a_factor_of_zero_leave_nothing_out() -> None:
    rng = np.random.default_rng(3)
    _, models = honest(rng, 3)
    models.append(ATTACKS["scaled"](models[0], rng))
    assert robust_merge("mean", models, [1] * 4)[1] == []
    assert robust_merge("geomedian", models, [1] * 4, outlier_factor=0)[1] == []


def test_two_models_leave_nothing_out() -> None:
    rng = np.random.default_rng(4)
    _, models = honest(rng, 1)
    models.append(ATTACKS["flipped"](models[0], rng))
    assert robust_merge("coordmedian", models, [1, 1])[1] == []


def test_a_majority_always_remains() -> None:
    rng = np.random.default_rng(5)
    _, models = honest(rng, 3)
    attackers = [ATTACKS["random"](models[0], rng) for _ in range(2)]
    result, dropped = robust_merge("geomedian", [*models, *attackers], [1] * 5)
    assert sorted(index for index, _ in dropped) == [3, 4]
    # three attackers among five: the median distance is an attacker's, and no more than two
    # could ever be left out
    result, dropped = robust_merge("coordmedian", [models[0], *attackers,
                                                   ATTACKS["scaled"](models[1], rng), models[2]],
                                   [1] * 5)
    assert len(dropped) <= 2


def test_weights_of_zero_take_no_part_and_indices_name_the_inputs() -> None:
    rng = np.random.default_rng(6)
    _, models = honest(rng, 4)
    far = ATTACKS["scaled"](models[3], rng)
    result, dropped = robust_merge("coordmedian", [models[0], models[1], far, models[2],
                                                   models[3]], [1, 0, 1, 1, 1])
    assert [index for index, _ in dropped] == [2]


def test_integer_tensors_come_through_unchanged() -> None:
    rng = np.random.default_rng(7)
    _, models = honest(rng, 3)
    result, dropped = robust_merge("geomedian", [*models, ATTACKS["flipped"](models[0], rng)],
                                   [1] * 4)
    assert result["steps"].tolist() == [7] and result["steps"].dtype == np.int64


def test_far_outliers_rules() -> None:
    never = lambda: 0.0  # noqa: E731
    assert far_outliers(np.array([1.0, 1.1, 50.0]), 4, never) == [2]
    assert far_outliers(np.array([1.0, 1.1, 3.9]), 4, never) == []
    assert far_outliers(np.array([1.0, 50.0]), 4, never) == []
    assert far_outliers(np.array([1.0, 1.0, 1.0, 90.0, 80.0]), 4, never) == [3, 4]
    assert far_outliers(np.array([1.0, 90.0, 80.0, 70.0, 1.0]), 4, never) == []  # median far
    # identical majority: the median distance is zero; a small move is not far
    assert far_outliers(np.array([0.0, 0.0, 1e-6]), 4, lambda: 1e-3) == []
    assert far_outliers(np.array([0.0, 0.0, 5.0]), 4, lambda: 1e-3) == [2]
    assert far_outliers(np.array([1.0, 1.0, 50.0]), 0, never) == []
