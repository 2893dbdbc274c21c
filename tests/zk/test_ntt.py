"""NTTs over F_r against naive polynomial evaluation, on the domain and on snarkjs's odd coset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zk.strategies import scalars
from zk.field import CURVE_ORDER, root_of_unity
from zk.ntt import coset_ntt, domain_size_for, intt, ntt, odd_coset_evaluations

R = CURVE_ORDER


def evaluate(coefficients: list[int], x: int) -> int:
    """Horner's rule: the reference every transform is checked against."""
    acc = 0
    for c in reversed(coefficients):
        acc = (acc * x + c) % R
    return acc


def polynomials(max_log: int = 6) -> st.SearchStrategy[list[int]]:
    """Coefficient vectors of power-of-two length 1 .. 2^max_log, edge values included."""
    return st.integers(0, max_log).flatmap(lambda k: st.lists(scalars(), min_size=1 << k, max_size=1 << k))


@settings(max_examples=60, deadline=None)
@given(polynomials())
def test_ntt_evaluates_at_the_powers_of_snarkjs_root_of_unity(coefficients: list[int]) -> None:
    n = len(coefficients)
    omega = root_of_unity(n.bit_length() - 1)
    assert ntt(coefficients) == [evaluate(coefficients, pow(omega, i, R)) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(polynomials())
def test_intt_inverts_ntt_both_ways(values: list[int]) -> None:
    assert intt(ntt(values)) == values
    assert ntt(intt(values)) == values


@settings(max_examples=40, deadline=None)
@given(polynomials(), scalars())
def test_coset_ntt_evaluates_at_shifted_points(coefficients: list[int], shift: int) -> None:
    n = len(coefficients)
    omega = root_of_unity(n.bit_length() - 1)
    expected = [evaluate(coefficients, shift * pow(omega, i, R) % R) for i in range(n)]
    assert coset_ntt(coefficients, shift) == expected


@settings(max_examples=40, deadline=None)
@given(polynomials())
def test_odd_coset_evaluations_are_the_odd_points_of_the_double_domain(coefficients: list[int]) -> None:
    # snarkjs: ifft, multiply coefficient j by w[power + 1]^j, fft: the polynomial at omega_2n^(2i + 1).
    n = len(coefficients)
    omega_2n = root_of_unity(n.bit_length())
    on_domain = ntt(coefficients)
    expected = [evaluate(coefficients, pow(omega_2n, 2 * i + 1, R)) for i in range(n)]
    assert odd_coset_evaluations(on_domain) == expected


def test_an_8192_point_transform_round_trips() -> None:
    values = [(i * 7919 + 3) ** 5 % R for i in range(8192)]
    assert intt(ntt(values)) == values


@pytest.mark.parametrize(("rows", "size"), [(0, 2), (1, 2), (2, 4), (3, 4), (4, 8), (5367, 8192), (8191, 8192)])
def test_domain_size_is_snarkjs_s_smallest_power_of_two_above_the_rows(rows: int, size: int) -> None:
    assert domain_size_for(rows) == size


def test_refuses_sizes_that_are_not_powers_of_two() -> None:
    with pytest.raises(ValueError, match="power-of-two size, not 6"):
        ntt([1] * 6)
    with pytest.raises(ValueError, match="power-of-two size, not 0"):
        intt([])


def test_transforms_return_plain_ints() -> None:
    # The arithmetic runs on GMP integers (zk.gmp); what callers get back must be int (isinstance, bytes, JSON).
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    for out in (ntt(values), intt(values), coset_ntt(values, 7), odd_coset_evaluations(values)):
        assert len(out) == len(values)
        assert all(type(v) is int for v in out)
