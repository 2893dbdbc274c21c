"""G1 and G2 arithmetic on raw integers against py_ecc's optimized_bn128, encodings, and the subgroup checks."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128 import optimized_curve as ref

from tests.zk.strategies import g1_points, g2_points, nonzero_scalars, scalars, twist_point
from zk.boundary import g1_from_py, g1_to_py, g2_from_py, g2_to_py
from zk.curve import (
    G1,
    G1_INFINITY,
    G2,
    G2_INFINITY,
    G2Affine,
    g1_add,
    g1_add_mixed,
    g1_batch_to_affine,
    g1_double,
    g1_eq,
    g1_from_bytes,
    g1_from_ints,
    g1_in_subgroup,
    g1_is_on_curve,
    g1_mul,
    g1_mul_jacobian,
    g1_neg,
    g1_to_affine,
    g1_to_bytes,
    g1_to_jacobian,
    g2_add,
    g2_add_mixed,
    g2_batch_to_affine,
    g2_double,
    g2_eq,
    g2_from_bytes,
    g2_from_ints,
    g2_in_subgroup,
    g2_is_on_curve,
    g2_mul,
    g2_mul_jacobian,
    g2_neg,
    g2_psi,
    g2_to_affine,
    g2_to_bytes,
    g2_to_jacobian,
    wnaf,
)
from zk.errors import PointError
from zk.field import CURVE_ORDER, FIELD_MODULUS

Q, R = FIELD_MODULUS, CURVE_ORDER
TWIST_COFACTOR = 2 * Q - R  # #E'(F_q2) = r * (2q - r)


# ---------------------------------------------------------------------------------------------------- scalars


@given(st.integers(0, 2**300), st.integers(2, 8))
def test_wnaf_digits_recompose_and_are_sparse_odd_and_bounded(k: int, width: int) -> None:
    digits = wnaf(k, width)
    assert sum(d << i for i, d in enumerate(digits)) == k
    nonzero = [i for i, d in enumerate(digits) if d]
    assert all(digits[i] % 2 and abs(digits[i]) < 1 << (width - 1) for i in nonzero)
    assert all(b - a >= width for a, b in itertools.pairwise(nonzero))


# ---------------------------------------------------------------------------------------------------- G1


@settings(max_examples=25, deadline=None)
@given(scalars())
def test_g1_mul_equals_py_ecc(k: int) -> None:
    assert g1_mul(G1, k) == g1_from_py(ref.multiply(ref.G1, k))


@settings(max_examples=25, deadline=None)
@given(g1_points(), g1_points())
def test_g1_add_double_and_mixed_add_equal_py_ecc(p: tuple[int, int], q: tuple[int, int]) -> None:
    expected = g1_from_py(ref.add(g1_to_py(p), g1_to_py(q)))
    # A Jacobian form with Z != 1, to exercise the general formulas.
    pj, qj = g1_double(g1_to_jacobian(p)), g1_double(g1_to_jacobian(q))
    assert g1_to_affine(g1_add(g1_to_jacobian(p), g1_to_jacobian(q))) == expected
    assert g1_to_affine(g1_add_mixed(g1_to_jacobian(p), q)) == expected
    assert g1_to_affine(g1_add(pj, qj)) == g1_from_py(ref.double(ref.add(g1_to_py(p), g1_to_py(q))))
    assert g1_to_affine(g1_add_mixed(pj, q)) == g1_from_py(ref.add(ref.double(g1_to_py(p)), g1_to_py(q)))
    assert g1_to_affine(g1_double(g1_to_jacobian(p))) == g1_from_py(ref.double(g1_to_py(p)))


@settings(max_examples=10, deadline=None)
@given(g1_points())
def test_g1_special_cases_p_plus_p_p_minus_p_and_infinity(p: tuple[int, int]) -> None:
    pj = g1_double(g1_to_jacobian(p))  # 2p, with Z != 1
    two_p = g1_to_affine(pj)
    assert g1_eq(g1_add(pj, pj), g1_double(pj))
    assert g1_eq(g1_add_mixed(pj, two_p), g1_double(pj))
    assert g1_to_affine(g1_add_mixed(pj, g1_neg(two_p))) == G1_INFINITY
    assert g1_to_affine(g1_add(pj, g1_to_jacobian(g1_neg(two_p)))) == G1_INFINITY
    assert g1_to_affine(g1_add_mixed(g1_to_jacobian(G1_INFINITY), p)) == p
    assert g1_to_affine(g1_add_mixed(pj, G1_INFINITY)) == two_p


def test_g1_mul_edge_scalars() -> None:
    assert g1_mul(G1, 0) == G1_INFINITY
    assert g1_mul(G1, 1) == G1
    assert g1_mul(G1, R) == G1_INFINITY
    assert g1_mul(G1, R + 5) == g1_mul(G1, 5)
    assert g1_mul(G1, -5) == g1_neg(g1_mul(G1, 5))
    assert g1_mul(G1_INFINITY, 12345) == G1_INFINITY


def test_g1_batch_to_affine_handles_infinity_among_points() -> None:
    points = [g1_mul_jacobian(G1, k) for k in (3, 0, 7, R, 11)]
    assert g1_batch_to_affine(points) == [g1_to_affine(p) for p in points]
    assert g1_batch_to_affine([]) == []


@settings(max_examples=25, deadline=None)
@given(g1_points())
def test_g1_bytes_round_trip(p: tuple[int, int]) -> None:
    data = g1_to_bytes(p)
    assert len(data) == 64
    assert g1_from_bytes(data) == p
    assert g1_from_ints(*p) == p


def test_g1_encoding_is_eip196s() -> None:
    assert g1_to_bytes(G1) == (1).to_bytes(32, "big") + (2).to_bytes(32, "big")
    assert g1_to_bytes(G1_INFINITY) == bytes(64)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(63), "64 bytes"),
        (Q.to_bytes(32, "big") + (2).to_bytes(32, "big"), "out of range"),
        ((1).to_bytes(32, "big") + (3).to_bytes(32, "big"), "not on the G1 curve"),
    ],
    ids=["short", "x=q", "off-curve"],
)
def test_g1_from_bytes_refuses_what_is_not_a_point(data: bytes, message: str) -> None:
    with pytest.raises(PointError, match=message):
        g1_from_bytes(data)


def test_g1_every_point_of_the_curve_is_in_the_group() -> None:
    assert g1_in_subgroup(G1)
    assert g1_in_subgroup(G1_INFINITY)
    assert not g1_is_on_curve((1, 3))
    assert not g1_is_on_curve((Q + 1, 2))


# ---------------------------------------------------------------------------------------------------- G2


@settings(max_examples=10, deadline=None)
@given(scalars())
def test_g2_mul_equals_py_ecc(k: int) -> None:
    assert g2_mul(G2, k) == g2_from_py(ref.multiply(ref.G2, k))


@settings(max_examples=10, deadline=None)
@given(g2_points(), g2_points())
def test_g2_add_double_and_mixed_add_equal_py_ecc(p: G2Affine, q: G2Affine) -> None:
    expected = g2_from_py(ref.add(g2_to_py(p), g2_to_py(q)))
    pj = g2_double(g2_to_jacobian(p))
    assert g2_to_affine(g2_add(g2_to_jacobian(p), g2_to_jacobian(q))) == expected
    assert g2_to_affine(g2_add_mixed(g2_to_jacobian(p), q)) == expected
    assert g2_to_affine(g2_add(pj, g2_double(g2_to_jacobian(q)))) == g2_from_py(
        ref.double(ref.add(g2_to_py(p), g2_to_py(q)))
    )
    assert g2_to_affine(g2_add_mixed(pj, q)) == g2_from_py(ref.add(ref.double(g2_to_py(p)), g2_to_py(q)))


@settings(max_examples=5, deadline=None)
@given(g2_points())
def test_g2_special_cases_p_plus_p_p_minus_p_and_infinity(p: G2Affine) -> None:
    pj = g2_double(g2_to_jacobian(p))
    two_p = g2_to_affine(pj)
    assert g2_eq(g2_add(pj, pj), g2_double(pj))
    assert g2_eq(g2_add_mixed(pj, two_p), g2_double(pj))
    assert g2_to_affine(g2_add_mixed(pj, g2_neg(two_p))) == G2_INFINITY
    assert g2_to_affine(g2_add(pj, g2_to_jacobian(g2_neg(two_p)))) == G2_INFINITY
    assert g2_to_affine(g2_add_mixed(g2_to_jacobian(G2_INFINITY), p)) == p


def test_g2_mul_edge_scalars() -> None:
    assert g2_mul(G2, 0) == G2_INFINITY
    assert g2_mul(G2, 1) == G2
    assert g2_mul(G2, R) == G2_INFINITY
    assert g2_mul(G2, -3) == g2_neg(g2_mul(G2, 3))
    points = [g2_mul_jacobian(G2, k) for k in (3, 0, 5)]
    assert g2_batch_to_affine(points) == [g2_to_affine(p) for p in points]


@settings(max_examples=5, deadline=None)
@given(nonzero_scalars())
def test_psi_is_multiplication_by_q_on_g2(k: int) -> None:
    p = g2_mul(G2, k)
    assert g2_psi(p) == g2_mul(p, Q % R)


def test_subgroup_check_agrees_with_multiplication_by_r() -> None:
    rng = random.Random(196)
    for _ in range(4):
        outside = twist_point(rng)
        assert g2_is_on_curve(outside)
        assert g2_mul(outside, R) != G2_INFINITY
        assert not g2_in_subgroup(outside)
        inside = g2_mul(outside, TWIST_COFACTOR)
        assert g2_mul(inside, R) == G2_INFINITY
        assert g2_in_subgroup(inside)
    assert g2_in_subgroup(G2)
    assert g2_in_subgroup(G2_INFINITY)


@settings(max_examples=10, deadline=None)
@given(g2_points())
def test_g2_bytes_round_trip(p: G2Affine) -> None:
    data = g2_to_bytes(p)
    assert len(data) == 128
    assert g2_from_bytes(data) == p
    assert g2_from_ints(*p) == p


def test_g2_encoding_is_eip197s_imaginary_part_first() -> None:
    (x0, x1), (y0, y1) = G2
    assert g2_to_bytes(G2) == b"".join(c.to_bytes(32, "big") for c in (x1, x0, y1, y0))
    assert g2_to_bytes(G2_INFINITY) == bytes(128)


def test_g2_from_bytes_refuses_what_is_not_a_g2_point() -> None:
    (x0, x1), (y0, y1) = G2
    with pytest.raises(PointError, match="128 bytes"):
        g2_from_bytes(bytes(127))
    with pytest.raises(PointError, match="out of range"):
        g2_from_ints((x0 + Q, x1), (y0, y1))
    with pytest.raises(PointError, match="not on the G2 twist"):
        g2_from_ints((x0, x1), (y1, y0))  # the coordinates' parts swapped: the classic encoding mistake
    outside = twist_point(random.Random(197))
    with pytest.raises(PointError, match="not in its order-r subgroup"):
        g2_from_bytes(g2_to_bytes(outside))
