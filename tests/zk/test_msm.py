"""Pippenger MSM against the naive sum of scalar multiplications, edge cases included."""

from __future__ import annotations

import gc
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
    g2_psi,
    g2_to_affine,
    g2_to_jacobian,
)
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.gmp import gmp, gmp_inverse
from zk.msm import (
    _CHUNK,
    GLV_BETA,
    GLV_LAMBDA,
    PSI_EIGENVALUE,
    _add_pairs_g1,
    _add_pairs_g2,
    _g1_normal,
    _g2_gmp,
    _g2_normal,
    fixed_base_g1,
    fixed_base_g2,
    glv_split,
    msm_bases_g1,
    msm_bases_g2,
    msm_g1,
    msm_g1_jacobian,
    msm_g2,
    msm_jacobian,
    psi_split,
    window_size,
)

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


@settings(max_examples=200, deadline=None)
@given(scalars())
def test_glv_split_gives_two_short_scalars_that_recombine(k: int) -> None:
    k1, k2 = glv_split(k)
    assert (k1 + k2 * GLV_LAMBDA - k) % R == 0
    assert abs(k1).bit_length() <= 128
    assert abs(k2).bit_length() <= 128


@settings(max_examples=200, deadline=None)
@given(scalars())
def test_psi_split_gives_two_short_scalars_that_recombine(k: int) -> None:
    k0, k1 = psi_split(k)
    assert k0 + k1 * PSI_EIGENVALUE == k
    assert 0 <= k0 < 2**128
    assert 0 <= k1 < 2**128


@settings(max_examples=10, deadline=None)
@given(scalars())
def test_the_endomorphisms_act_as_their_eigenvalues(k: int) -> None:
    p = g1_mul(G1, k)
    phi = (GLV_BETA * p[0] % FIELD_MODULUS, p[1]) if p != G1_INFINITY else p
    assert phi == g1_mul(p, GLV_LAMBDA)
    q = g2_mul(G2, k)
    assert g2_psi(q) == g2_mul(q, PSI_EIGENVALUE)


def test_many_copies_of_one_point_meet_doublings_in_buckets_and_reduction() -> None:
    # Equal points in one bucket double; equal running sums and totals double in the reduction.
    rng = random.Random(7)
    p = g1_mul(G1, 11)
    ks = [rng.choice([1, 2, 3, R - 1, R - 2, 2**127, 5 * 2**128]) for _ in range(400)]
    assert msm_g1([p] * len(ks), ks) == g1_mul(p, sum(ks) % R)
    q = g2_mul(G2, 11)
    assert msm_g2([q] * 120, ks[:120]) == g2_mul(q, sum(ks[:120]) % R)


def test_fixed_base_batches_equal_single_multiplications() -> None:
    rng = random.Random(8)
    ks = [0, 1, 2, R - 1, R, R + 7, -1, *(rng.randrange(R) for _ in range(40))]
    p, q = g1_mul(G1, 99), g2_mul(G2, 99)
    assert fixed_base_g1(p, ks) == [g1_mul(p, k % R) for k in ks]
    assert fixed_base_g2(q, ks) == [g2_mul(q, k % R) for k in ks]
    assert fixed_base_g1(G1_INFINITY, [1, 2]) == [G1_INFINITY, G1_INFINITY]
    assert fixed_base_g2(G2_INFINITY, [3]) == [G2_INFINITY]


def test_results_are_plain_ints_although_the_arithmetic_runs_on_gmp_integers() -> None:
    # zk.gmp's rule: GMP integers inside the hot loops, ints for every caller (isinstance, bytes, JSON).
    rng = random.Random(9)
    ks = [rng.randrange(R) for _ in range(30)]
    p1 = msm_g1(g1_bases(30, 9), ks)
    p2 = msm_g2([g2_mul(G2, k + 1) for k in range(30)], ks)
    jac = msm_g1_jacobian(g1_bases(30, 9), ks)
    assert all(type(v) is int for v in (*p1, *p2[0], *p2[1], *jac))
    assert all(type(v) is int for point in fixed_base_g1(G1, ks[:5]) for v in point)


def test_prepared_bases_serve_many_msms() -> None:
    rng = random.Random(10)
    points = [*g1_bases(40, 10), G1_INFINITY]
    bases = msm_bases_g1(points)
    assert len(bases) == len(points)
    for _ in range(3):
        ks = [rng.randrange(R) for _ in points]
        assert g1_to_affine(msm_jacobian(bases, ks)) == naive_g1(points, ks)
    q_points = [g2_mul(G2, k) for k in (3, 5, 7)]
    q_bases = msm_bases_g2(q_points)
    assert g2_to_affine(msm_jacobian(q_bases, [1, 2, R - 1])) == naive_g2(q_points, [1, 2, R - 1])
    with pytest.raises(ValueError, match="as many scalars as points"):
        msm_jacobian(bases, [1])


@pytest.mark.parametrize("group", ["g1", "g2"])
def test_batch_additions_across_chunks_with_doublings_and_cancellations(group: str) -> None:
    # More pairs than one chunk (one inversion per chunk), with P + P and P + (-P) pairs in two of the chunks.
    rng = random.Random(11)
    if group == "g1":
        pts = [(gmp(x), gmp(y)) for x, y in g1_bases(300, 11)]
        neg, add, infinity, add_pairs, normal = g1_neg, g1_affine_add, G1_INFINITY, _add_pairs_g1, _g1_normal
    else:
        pts = [_g2_gmp(g2_mul(G2, k)) for k in range(1, 41)]
        neg, add, infinity, add_pairs, normal = g2_neg, g2_affine_add, G2_INFINITY, _add_pairs_g2, _g2_normal
    left = [rng.choice(pts) for _ in range(_CHUNK + 500)]
    right = [rng.choice(pts) for _ in left]
    for i in (3, _CHUNK + 7):
        right[i] = left[i]
    for i in (5, _CHUNK + 9):
        right[i] = neg(left[i])
    sums = add_pairs(left, right)
    assert sums[5] == sums[_CHUNK + 9] == infinity
    assert [normal(s) for s in sums] == [add(a, b) for a, b in zip(left, right, strict=True)]
    # Sums come back with y unreduced; as inputs of the next round they still add, double and cancel correctly,
    # whichever representative of y each side carries.
    finite = [s for s in sums if s != infinity]
    again_left, again_right = finite, finite[::-1]
    for i in (1, _CHUNK - 3):
        again_right[i] = again_left[i]
    assert normal(again_left[2]) != again_left[2]  # y as the additions left it, not reduced
    again_right[2] = normal(again_left[2])  # the same point, y reduced on one side only
    again_right[4] = neg(normal(again_left[4]))
    again = add_pairs(again_left, again_right)
    assert again[4] == infinity
    assert [normal(s) for s in again] == [
        add(normal(a), normal(b)) for a, b in zip(again_left, again_right, strict=True)
    ]


def g1_affine_add(a: G1Affine, b: G1Affine) -> G1Affine:
    return g1_to_affine(g1_add(g1_to_jacobian(a), g1_to_jacobian(b)))


def g2_affine_add(a: G2Affine, b: G2Affine) -> G2Affine:
    return g2_to_affine(g2_add(g2_to_jacobian(a), g2_to_jacobian(b)))


def test_gmp_inverse_refuses_zero() -> None:
    assert gmp_inverse(3, 7) == 5
    with pytest.raises(ZeroDivisionError, match="not invertible"):
        gmp_inverse(14, 7)


def test_an_msm_pauses_the_cycle_collector_and_restores_its_state() -> None:
    p = g1_mul(G1, 3)
    assert gc.isenabled()
    assert msm_g1([p, p], [1, 2]) == g1_mul(p, 3)
    assert gc.isenabled()
    gc.disable()
    try:
        assert msm_g1([p], [5]) == g1_mul(p, 5)
        assert not gc.isenabled()
    finally:
        gc.enable()
