"""Hypothesis strategies shared by the consent ledger's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

MAX_LEAVES = 300

# Sizes where RFC 9162's split changes shape (powers of two and their neighbours) get drawn on purpose.
_EDGE_SIZES = sorted({s for p in range(9) for s in (2**p - 1, 2**p, 2**p + 1) if 1 <= s <= MAX_LEAVES})


def entries(seed: bytes, size: int) -> list[bytes]:
    """The log entries of a test log: distinct, and different for every seed."""
    return [seed + i.to_bytes(2, "big") for i in range(size)]


def tree_sizes(min_size: int = 1, max_size: int = MAX_LEAVES) -> st.SearchStrategy[int]:
    edges = [s for s in _EDGE_SIZES if min_size <= s <= max_size]
    return st.one_of(st.integers(min_size, max_size), st.sampled_from(edges))


@st.composite
def logs(draw: st.DrawFn, min_size: int = 1, max_size: int = MAX_LEAVES) -> list[bytes]:
    """The entries of a log of ``min_size`` to ``max_size`` leaves."""
    return entries(draw(st.binary(max_size=8)), draw(tree_sizes(min_size, max_size)))


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """A log and the index of one of its leaves."""
    log = draw(logs())
    return log, draw(st.integers(0, len(log) - 1))


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """A log and an earlier size of it, 1 up to its whole size."""
    log = draw(logs())
    return log, draw(st.one_of(st.integers(1, len(log)), st.sampled_from([s for s in _EDGE_SIZES if s <= len(log)])))


@st.composite
def bit_flips(draw: st.DrawFn, hashes: int) -> tuple[int, int, int]:
    """Where to flip one bit in a list of ``hashes`` 32-byte hashes: (which hash, which byte, which bit)."""
    return draw(st.integers(0, hashes - 1)), draw(st.integers(0, 31)), draw(st.integers(0, 7))
