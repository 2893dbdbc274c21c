"""Pippenger MSM against the naive sum of scalar multiplications, edge cases included."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zk.strategies import scalars, short_scalars
from zk.curve import (
    G1,
    G1_INFINITY,
    G2,
    G2_INFINITY,
    G1Affine,
    G2Affine,
    g1_add,
    g1_add_mixed,
    g1_batch_to_affine,
    g1_mul,
    g1_mul_jacobian,
    g1_neg,
    g1_to_affine,
    g1_to_jacobian,
    g2_add,
    g2_mul,
    g2_mul_jacobian,
    g2_neg,
    g2_to_affine,
)
from zk.field import CURVE_ORDER
from zk.msm import msm_g1, msm_g2, window_size

R = CURVE_ORDER


def naive_g1(points: list[G1Affine], scalars: list[int]) -> G1Affine:
    acc = g1_to_jacobian(G1_INFINITY)
    for p, k in zip(points, scalars, strict=True):
        acc = g1_add(acc, g1_mul_jacobian(p, k))
    return g1_to_affine(acc)


def naive_g2(points: list[G2Affine], scalars: list[int]) -> G2Affine:
    acc = ((1, 0), (1, 0), (0, 0))
    for p, k in zip(points, scalars, strict=True):
        acc = g2_add(acc, g2_mul_jacobian(p, k))
    return g2_to_affine(acc)


def g1_bases(n: int, seed: int) -> list[G1Affine]:
    """n distinct points, cheaply: a walk with random steps."""
    rng = random.Random(seed)
    steps = [g1_mul(G1, rng.randrange(1, R)) for _ in range(4)]
    acc, out = g1_to_jacobian(steps[0]), []
    for i in range(n):
        acc = g1_add_mixed(acc, steps[i % 4])
        out.append(acc)
    return g1_batch_to_affine(out)


@st.composite
def g1_instances(draw: st.DrawFn) -> tuple[list[G1Affine], list[int]]:
    n = draw(st.integers(0, 24))
    points = g1_bases(n, draw(st.integers(0, 2**32)))
    # Repeated and negated points: the bucket sums meet doublings and cancellations.
    if n and draw(st.booleans()):
        points += [points[0], g1_neg(points[-1]), G1_INFINITY]
    ks = draw(st.lists(st.one_of(scalars(), short_scalars(8)), min_size=len(points), max_size=len(points)))
    return points, ks


@settings(max_examples=40, deadline=None)
@given(g1_instances())
def test_g1_msm_equals_the_naive_sum(instance: tuple[list[G1Affine], list[int]]) -> None:
    points, ks = instance
    assert msm_g1(points, ks) == naive_g1(points, ks)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), scalars()), max_size=8))
def test_g2_msm_equals_the_naive_sum(terms: list[tuple[int, int]]) -> None:
    points = [g2_mul(G2, m) for m, _ in terms]
    ks = [k for _, k in terms]
    if points:
        points += [points[0], g2_neg(points[0]), G2_INFINITY]
        ks += [ks[0], 7, 5]
    assert msm_g2(points, ks) == naive_g2(points, ks)


def test_g1_msm_of_a_few_hundred_full_scalars() -> None:
    # Big enough for wide windows and several rounds of bucket additions.
    rng = random.Random(12)
    points = g1_bases(300, 12)
    ks = [rng.randrange(R) for _ in points]
    assert msm_g1(points, ks) == naive_g1(points, ks)


def test_g2_msm_of_a_hundred_full_scalars() -> None:
    rng = random.Random(13)
    points = [g2_mul(G2, rng.randrange(1, R)) for _ in range(20)] * 5
    ks = [rng.randrange(R) for _ in points]
    assert msm_g2(points, ks) == naive_g2(points, ks)


def test_scalars_are_taken_mod_r_and_sums_can_cancel() -> None:
    p = g1_mul(G1, 5)
    assert msm_g1([p, p], [R + 3, R - 3]) == G1_INFINITY
    assert msm_g1([p, g1_neg(p)], [9, 9]) == G1_INFINITY
    assert msm_g1([p] * 4, [1, 1, 1, 1]) == g1_mul(p, 4)
    assert msm_g1([], []) == G1_INFINITY
    assert msm_g2([G2, G2], [R - 1, 1]) == G2_INFINITY
    q = g2_mul(G2, 5)
    assert msm_g2([q] * 4, [1, 1, 1, 1]) == g2_mul(q, 4)
    assert msm_g2([q, g2_neg(q), q], [9, 9, 2]) == g2_mul(q, 2)


def test_msm_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="as many scalars as points"):
        msm_g1([G1, G1], [1])
    with pytest.raises(ValueError, match="as many scalars as points"):
        msm_g2([G2], [])


def test_window_grows_with_the_number_of_points_and_shrinks_with_short_scalars() -> None:
    widths = [window_size(1 << k, 254) for k in range(0, 17, 2)]
    assert widths == sorted(widths)
    assert widths[0] <= 4 < widths[-1]
    assert window_size(4096, 1) <= window_size(4096, 254)


@pytest.mark.slow
def test_g1_msm_of_4096_points() -> None:
    rng = random.Random(4096)
    points = g1_bases(4096, 4096)
    ks = [rng.randrange(R) for _ in points]
    assert msm_g1(points, ks) == naive_g1(points, ks)
