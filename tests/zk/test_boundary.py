"""The py_ecc boundary: point conversions both ways, and the pairing-product check on bilinearity identities."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from py_ecc.optimized_bn128 import optimized_curve as ref

from tests.zk.strategies import g1_points, g2_points, twist_point
from zk.boundary import (
    g1_from_py,
    g1_to_py,
    g2_from_py,
    g2_to_py,
    miller_loop,
    pairing,
    pairing_product_is_one,
)
from zk.curve import G1, G1_INFINITY, G2, G2_INFINITY, G1Affine, G2Affine, g1_mul, g1_neg, g2_mul, g2_neg
from zk.errors import PointError
from zk.field import CURVE_ORDER

R = CURVE_ORDER


@settings(max_examples=20, deadline=None)
@given(g1_points(), g2_points())
def test_conversions_round_trip(p: G1Affine, q: G2Affine) -> None:
    assert g1_from_py(g1_to_py(p)) == p
    assert g2_from_py(g2_to_py(q)) == q


def test_conversions_map_infinity_to_py_ecc_s_and_back() -> None:
    assert ref.is_inf(g1_to_py(G1_INFINITY))
    assert ref.is_inf(g2_to_py(G2_INFINITY))
    assert g1_from_py(ref.Z1) == G1_INFINITY
    assert g2_from_py(ref.Z2) == G2_INFINITY
    assert g1_from_py(ref.G1) == G1
    assert g2_from_py(ref.G2) == G2


def test_bilinearity_e_aP_bQ_times_e_minus_abP_Q_is_one() -> None:
    rng = random.Random(197)
    a, b = rng.randrange(1, R), rng.randrange(1, R)
    p, q = g1_mul(G1, rng.randrange(1, R)), g2_mul(G2, rng.randrange(1, R))
    left = (g1_mul(p, a), g2_mul(q, b))
    assert pairing_product_is_one([left, (g1_neg(g1_mul(p, a * b)), q)])
    assert not pairing_product_is_one([left, (g1_neg(g1_mul(p, a * b + 1)), q)])


def test_four_pairs_as_a_groth16_verifier_checks_them() -> None:
    # e(A, B) = e(alpha, beta) e(L, gamma) e(C, delta) with A = a G1, B = b G2, and a*b = x*y + l*g + c*d.
    rng = random.Random(16)
    x, y, lg, g, c, d = (rng.randrange(1, R) for _ in range(6))
    a = rng.randrange(1, R)
    b = (x * y + lg * g + c * d) * pow(a, -1, R) % R
    pairs = [
        (g1_neg(g1_mul(G1, a)), g2_mul(G2, b)),
        (g1_mul(G1, x), g2_mul(G2, y)),
        (g1_mul(G1, lg), g2_mul(G2, g)),
        (g1_mul(G1, c), g2_mul(G2, d)),
    ]
    assert pairing_product_is_one(pairs)
    # A prepared Miller value (e(alpha, beta) of a verifying key) stands in for its pair.
    assert pairing_product_is_one([pairs[0], *pairs[2:]], prepared=[miller_loop(*pairs[1])])
    tampered = [(pairs[0][0], g2_neg(pairs[0][1])), *pairs[1:]]
    assert not pairing_product_is_one(tampered)


def test_pairing_is_non_degenerate_and_trivial_at_infinity() -> None:
    one = pairing(G1_INFINITY, G2)
    assert pairing(G1, G2_INFINITY) == one
    assert pairing(G1, G2) != one
    assert pairing_product_is_one([])
    assert pairing_product_is_one([(G1_INFINITY, G2), (G1, G2_INFINITY)])


def test_pairing_refuses_points_outside_the_groups() -> None:
    with pytest.raises(PointError, match="not a G1 point"):
        pairing_product_is_one([((1, 3), G2)])
    with pytest.raises(PointError, match="order-r subgroup"):
        pairing_product_is_one([(G1, twist_point(random.Random(5)))])
