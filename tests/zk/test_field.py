"""The BN254 fields: constants against py_ecc and other implementations, inverses, square roots, roots of unity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128 import optimized_curve

from tests.zk.strategies import fq_elements, scalars
from zk.field import (
    CURVE_ORDER,
    FIELD_MODULUS,
    ROOT_OF_UNITY,
    TWO_ADICITY,
    U,
    batch_inverse,
    fq2_inv,
    fq2_mul,
    fq2_pow,
    fq2_sqrt,
    fq2_square,
    fq_sqrt,
    inv,
    root_of_unity,
)
from zk.poseidon import BN254_R


def test_moduli_are_py_ecc_s_and_poseidon_s() -> None:
    assert optimized_curve.field_modulus == FIELD_MODULUS
    assert CURVE_ORDER == optimized_curve.curve_order == BN254_R


def test_moduli_follow_the_bn_parametrisation() -> None:
    assert FIELD_MODULUS - CURVE_ORDER == 6 * U * U
    assert FIELD_MODULUS.bit_length() == CURVE_ORDER.bit_length() == 254


def test_root_of_unity_has_order_exactly_2_to_the_28() -> None:
    assert pow(ROOT_OF_UNITY, 1 << TWO_ADICITY, CURVE_ORDER) == 1
    assert pow(ROOT_OF_UNITY, 1 << (TWO_ADICITY - 1), CURVE_ORDER) == CURVE_ORDER - 1


def test_roots_of_unity_are_the_ones_arkworks_and_gnark_use() -> None:
    # arkworks bn254 Fr::TWO_ADIC_ROOT_OF_UNITY, gnark-crypto fft.NewDomain, and their squares (2^27, 2^26).
    assert root_of_unity(28) == 19103219067921713944291392827692070036145651957329286315305642004821462161904
    assert root_of_unity(27) == 2082940218526944230311718225077035922214683169814847712455127909555749686340
    assert root_of_unity(26) == 7419588552507395652481651088034484897579724952953562618697845598160172257810


@pytest.mark.parametrize("log_n", [0, 1, 2, 13, 27, 28])
def test_root_of_unity_for_a_domain_is_primitive(log_n: int) -> None:
    w = root_of_unity(log_n)
    assert pow(w, 1 << log_n, CURVE_ORDER) == 1
    if log_n:
        assert pow(w, 1 << (log_n - 1), CURVE_ORDER) == CURVE_ORDER - 1


@pytest.mark.parametrize("log_n", [-1, 29])
def test_root_of_unity_refuses_domains_the_field_lacks(log_n: int) -> None:
    with pytest.raises(ValueError, match="roots of unity of order"):
        root_of_unity(log_n)


def test_inverse_of_zero_is_refused() -> None:
    with pytest.raises(ZeroDivisionError):
        inv(0)
    with pytest.raises(ZeroDivisionError):
        inv(CURVE_ORDER)
    with pytest.raises(ZeroDivisionError):
        fq2_inv((0, 0))


@settings(max_examples=50, deadline=None)
@given(st.lists(scalars(), max_size=20))
def test_batch_inverse_equals_one_by_one_and_maps_zero_to_zero(values: list[int]) -> None:
    expected = [pow(v, -1, CURVE_ORDER) if v else 0 for v in values]
    assert batch_inverse(values) == expected


@settings(max_examples=50, deadline=None)
@given(fq_elements())
def test_fq_sqrt_finds_roots_of_squares_and_none_otherwise(a: int) -> None:
    square = a * a % FIELD_MODULUS
    root = fq_sqrt(square)
    assert root is not None
    assert root * root % FIELD_MODULUS == square
    if a:
        # -1 is not a square (q = 3 mod 4), so exactly one of a^2 and -a^2 is.
        assert fq_sqrt(-square % FIELD_MODULUS) is None


@settings(max_examples=50, deadline=None)
@given(fq_elements(), fq_elements())
def test_fq2_sqrt_finds_roots_of_squares(a0: int, a1: int) -> None:
    square = fq2_square((a0, a1))
    root = fq2_sqrt(square)
    assert root is not None
    assert fq2_square(root) == square


@settings(max_examples=30, deadline=None)
@given(fq_elements(), fq_elements())
def test_fq2_sqrt_is_none_exactly_for_non_squares(a0: int, a1: int) -> None:
    # a is a square in F_q2 iff a^((q^2 - 1) / 2) = 1.
    is_square = fq2_pow((a0, a1), (FIELD_MODULUS**2 - 1) // 2) in ((1, 0), (0, 0))
    assert (fq2_sqrt((a0, a1)) is not None) == is_square


@settings(max_examples=30, deadline=None)
@given(fq_elements(), fq_elements())
def test_fq2_inverse(a0: int, a1: int) -> None:
    if a0 or a1:
        assert fq2_mul((a0, a1), fq2_inv((a0, a1))) == (1, 0)
