"""The fast pairing (zk.pairing) against py_ecc through zk.boundary: F_q12 arithmetic, the final exponentiation,
the pairing itself, and the multi-pairing check a Groth16 verifier makes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zk.strategies import fq_elements, g1_points, g2_points
from zk import boundary
from zk.curve import G1, G1_INFINITY, G2, G2_INFINITY, G1Affine, G2Affine, g1_mul, g1_neg, g2_mul
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.pairing import (
    FQ12_ONE,
    Fq12,
    cyclotomic_square,
    final_exponentiate,
    fq12_conjugate,
    fq12_frobenius,
    fq12_inverse,
    fq12_mul,
    fq12_square,
    miller_loop,
    multi_miller_loop,
    pairing,
    pairing_check,
    prepare_g2,
)

R, Q = CURVE_ORDER, FIELD_MODULUS


def fq12_elements() -> st.SearchStrategy[Fq12]:
    six = st.tuples(*(fq_elements() for _ in range(6)))
    return st.tuples(six, six)


def random_fq12(rng: random.Random) -> Fq12:
    g = tuple(rng.randrange(Q) for _ in range(6))
    h = tuple(rng.randrange(Q) for _ in range(6))
    return (g[0], g[1], g[2], g[3], g[4], g[5]), (h[0], h[1], h[2], h[3], h[4], h[5])


@settings(max_examples=40, deadline=None)
@given(fq12_elements())
def test_conversions_to_py_ecc_round_trip(x: Fq12) -> None:
    assert boundary.fq12_from_py(boundary.fq12_to_py(x)) == x


@settings(max_examples=40, deadline=None)
@given(fq12_elements(), fq12_elements())
def test_multiplication_and_squaring_agree_with_py_ecc(x: Fq12, y: Fq12) -> None:
    px, py = boundary.fq12_to_py(x), boundary.fq12_to_py(y)
    assert boundary.fq12_to_py(fq12_mul(x, y)) == px * py
    assert boundary.fq12_to_py(fq12_square(x)) == px * px


@settings(max_examples=20, deadline=None)
@given(fq12_elements())
def test_inverse_agrees_with_py_ecc(x: Fq12) -> None:
    if x == ((0,) * 6, (0,) * 6):
        return
    assert boundary.fq12_to_py(fq12_inverse(x)) == boundary.FQ12.one() / boundary.fq12_to_py(x)


def test_frobenius_and_conjugate_are_the_powers_q_q2_q3_q6() -> None:
    rng = random.Random(12)
    x = random_fq12(rng)
    px = boundary.fq12_to_py(x)
    assert boundary.fq12_to_py(fq12_frobenius(x, 1)) == px**Q
    assert boundary.fq12_to_py(fq12_frobenius(x, 2)) == px ** (Q**2)
    assert boundary.fq12_to_py(fq12_frobenius(x, 3)) == px ** (Q**3)
    assert boundary.fq12_to_py(fq12_conjugate(x)) == px ** (Q**6)


def test_cyclotomic_squaring_squares_elements_of_the_cyclotomic_subgroup() -> None:
    rng = random.Random(4)
    for _ in range(5):
        f = random_fq12(rng)
        # The easy part of the final exponentiation lands in the cyclotomic subgroup.
        g = fq12_mul(fq12_conjugate(f), fq12_inverse(f))
        g = fq12_mul(fq12_frobenius(g, 2), g)
        assert cyclotomic_square(g) == fq12_square(g)
    # Outside the subgroup it is not a squaring: the precondition matters.
    f = random_fq12(rng)
    assert cyclotomic_square(f) != fq12_square(f)


def test_final_exponentiation_is_exactly_py_ecc_s() -> None:
    rng = random.Random(197)
    for _ in range(2):
        f = random_fq12(rng)
        assert boundary.fq12_to_py(final_exponentiate(f)) == boundary.final_exponentiate(boundary.fq12_to_py(f))


@settings(max_examples=3, deadline=None)
@given(g1_points(), g2_points())
def test_pairing_is_exactly_py_ecc_s(p: G1Affine, q: G2Affine) -> None:
    assert boundary.fq12_to_py(pairing(p, q)) == boundary.pairing(p, q)


def test_pairing_lands_in_gt_and_is_non_degenerate() -> None:
    e = pairing(G1, G2)
    assert e != FQ12_ONE
    assert boundary.fq12_to_py(e) ** R == boundary.FQ12.one()


def test_bilinearity() -> None:
    rng = random.Random(2)
    a, b = rng.randrange(1, R), rng.randrange(1, R)
    assert pairing(g1_mul(G1, a), g2_mul(G2, b)) == pairing(g1_mul(G1, a * b % R), G2)
    assert pairing(g1_mul(G1, a), G2) == pairing(G1, g2_mul(G2, a))


def test_infinity_pairs_to_one() -> None:
    assert pairing(G1_INFINITY, G2) == FQ12_ONE
    assert pairing(G1, G2_INFINITY) == FQ12_ONE
    assert prepare_g2(G2_INFINITY) == ()
    assert multi_miller_loop([]) == FQ12_ONE


def test_multi_miller_loop_is_the_product_of_single_loops() -> None:
    rng = random.Random(3)
    pairs = [(g1_mul(G1, rng.randrange(1, R)), g2_mul(G2, rng.randrange(1, R))) for _ in range(3)]
    product = FQ12_ONE
    for p, q in pairs:
        product = fq12_mul(product, miller_loop(p, q))
    assert multi_miller_loop([(p, prepare_g2(q)) for p, q in pairs]) == product


def test_pairing_check_of_a_groth16_shaped_equation() -> None:
    # e(A, B) e(-L, gamma) e(-C, delta) = e(alpha, beta) when a*b = x*y + l*g + c*d.
    rng = random.Random(16)
    x, y, lg, g, c, d, a = (rng.randrange(1, R) for _ in range(7))
    b = (x * y + lg * g + c * d) * pow(a, -1, R) % R
    alpha_beta = pairing(g1_mul(G1, x), g2_mul(G2, y))
    gamma, delta = prepare_g2(g2_mul(G2, g)), prepare_g2(g2_mul(G2, d))
    pairs = [
        (g1_mul(G1, a), prepare_g2(g2_mul(G2, b))),
        (g1_neg(g1_mul(G1, lg)), gamma),
        (g1_neg(g1_mul(G1, c)), delta),
    ]
    assert pairing_check(pairs, alpha_beta)
    assert not pairing_check(pairs)
    assert not pairing_check([pairs[0], pairs[1], (g1_mul(G1, c), delta)], alpha_beta)
