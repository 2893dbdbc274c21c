"""Hypothesis strategies shared by the zk property tests: field elements, scalars and group points."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from zk.curve import B2, G1, G2, G1Affine, G2Affine, g1_mul, g2_mul
from zk.field import CURVE_ORDER, FIELD_MODULUS, fq2_add, fq2_mul, fq2_sqrt, fq2_square

# The values where carries and reductions change shape are drawn on purpose, next to uniform ones.
_EDGES_R = [0, 1, 2, CURVE_ORDER - 2, CURVE_ORDER - 1, (CURVE_ORDER - 1) // 2, 2**128, 2**253]


def scalars() -> st.SearchStrategy[int]:
    """Elements of F_r (group scalars), edges included."""
    return st.one_of(st.integers(0, CURVE_ORDER - 1), st.sampled_from(_EDGES_R))


def nonzero_scalars() -> st.SearchStrategy[int]:
    return scalars().filter(bool)


def fq_elements() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, FIELD_MODULUS - 1), st.sampled_from([0, 1, FIELD_MODULUS - 1]))


def short_scalars(bits: int) -> st.SearchStrategy[int]:
    """Small scalars like most of a witness's values (bits, counters)."""
    return st.integers(0, (1 << bits) - 1)


def g1_points() -> st.SearchStrategy[G1Affine]:
    """Points of G1 (the point at infinity included, as the multiple 0)."""
    return scalars().map(lambda k: g1_mul(G1, k))


def g2_points() -> st.SearchStrategy[G2Affine]:
    return scalars().map(lambda k: g2_mul(G2, k))


def twist_point(rng: random.Random) -> G2Affine:
    """A point of the twist E'(F_q2) found from a random x: almost surely outside G2 (the cofactor is 2q - r)."""
    while True:
        x = (rng.randrange(FIELD_MODULUS), rng.randrange(FIELD_MODULUS))
        y = fq2_sqrt(fq2_add(fq2_mul(fq2_square(x), x), B2))
        if y is not None:
            return x, y
