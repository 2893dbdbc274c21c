"""Gadgets: the pieces of the consent circuit, each adding constraints and computing its outputs.

Specs: the circomlib circuits these mirror and whose constraint counts they match or beat — ``poseidon.circom``
(Poseidon, parameters from :func:`zk.poseidon.params`), ``bitify.circom`` (``Num2Bits``), ``comparators.circom``
(``LessThan``), ``mux1.circom`` / ``switcher.circom`` (selection). The Merkle proof is for a tree of arity 4, as
MACI's incremental trees have arity 5, with a membership product in place of a position selector
(:func:`merkle_root`); the hashing of the grant tree is :mod:`consent_chain.state_tree`'s (a node is the Poseidon of
its children in order).

Every gadget takes a :class:`~zk.r1cs.ConstraintSystem` and :class:`~zk.r1cs.LinearCombination` inputs and returns
combinations whose values are the plain computation's. Preconditions on inputs (booleanity, ranges) are stated per
gadget; a gadget that relies on one says so, and the circuit must establish it (with :func:`to_bits` or
``cs.assert_boolean``).

Constraint counts (``tests/zk/test_gadgets.py`` pins them): Poseidon of t = 3 (two inputs) 240 and of t = 6 (five
inputs) 321, as circomlib, and of t = 5 (four inputs) 297; ``to_bits(n)`` n + 1; ``less_than(n)`` n + 2;
``assert_less_than(n)`` n + 1; ``select`` 1; ``mux`` over k options k - 1; ``assert_one_of`` over k options k - 1;
a Merkle root of the grant tree (depth 10, arity 4) 3000 (300 per level); ``assert_subset`` over 64 bits 130;
``assert_nonzero`` 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import mul
from typing import Final

from zk.field import CURVE_ORDER
from zk.poseidon import BN254_R, params
from zk.r1cs import ConstraintSystem, LinearCombination, linear_sum

__all__ = [
    "MAX_BITS",
    "assert_less_than",
    "assert_merkle_path",
    "assert_nonzero",
    "assert_one_of",
    "assert_subset",
    "less_than",
    "merkle_root",
    "mux",
    "pack_bits",
    "poseidon",
    "select",
    "to_bits",
]

if BN254_R != CURVE_ORDER:
    raise ValueError("zk.poseidon's field is not the BN254 scalar field of zk.field")

MAX_BITS: Final = 253
"""The widest decomposition with a unique answer: 2^253 < r < 2^254, so a 253-bit sum cannot wrap around r."""

_FULL_ROUNDS: Final = 8
_R: Final = CURVE_ORDER


def _pow5(cs: ConstraintSystem, x: LinearCombination) -> LinearCombination:
    """The S-box ``x^5`` in three constraints (``x^2``, ``x^4``, ``x^4 * x``); free for a constant."""
    x2 = cs.mul(x, x)
    x4 = cs.mul(x2, x2)
    return cs.mul(x4, x)


def poseidon(cs: ConstraintSystem, inputs: Sequence[LinearCombination]) -> LinearCombination:
    """circomlib ``Poseidon(len(inputs))``: equals :func:`zk.poseidon.poseidon` of the input values.

    The permutation in the paper's form (add round constants, S-boxes, MDS), state ``[0, *inputs]``; linear layers
    only reshape combinations, so the constraints are the S-boxes': 3 per S-box, none for a constant word (the
    capacity word in the first round).

    Between S-boxes the state words are kept as dense coefficient vectors over a local basis (the constant 1, the
    inputs, then each S-box output), and a word becomes a :class:`~zk.r1cs.LinearCombination` only where it enters
    an S-box: the MDS layers then cost list arithmetic instead of dictionary merges.
    """
    p = params(len(inputs) + 1)
    t, mds, constants = p.t, p.mds, p.round_constants
    r = _R
    half = _FULL_ROUNDS // 2
    basis: list[LinearCombination] = [cs.one, *inputs]
    # state[i][k]: the coefficient of basis[k] in word i.
    state = [[0] * len(basis) for _ in range(t)]
    for i in range(1, t):
        state[i][i] = 1
    with cs.scope(f"poseidon{t}"):
        for rnd in range(_FULL_ROUNDS + p.partial_rounds):
            for i in range(t):
                state[i][0] = (state[i][0] + constants[rnd * t + i]) % r
            full = rnd < half or rnd >= half + p.partial_rounds
            for i in range(t) if full else (0,):
                word = state[i]
                out = _pow5(cs, linear_sum((k, basis[b]) for b, k in enumerate(word) if k))
                if out.is_constant:
                    state[i] = [out.value] + [0] * (len(word) - 1)
                    continue
                basis.append(out)
                for w in state:
                    w.append(0)
                state[i] = [0] * len(basis)
                state[i][-1] = 1
            if full:
                # Every word is now a new S-box output (or a constant): drop the basis entries no word uses.
                used = [b for b in range(len(basis)) if b == 0 or any(w[b] for w in state)]
                basis = [basis[b] for b in used]
                state = [[w[b] for b in used] for w in state]
            columns = list(zip(*state, strict=True))
            state = [[sum(map(mul, row, column)) % r for column in columns] for row in mds]
    return linear_sum((k, basis[b]) for b, k in enumerate(state[0]) if k)


def pack_bits(bits: Sequence[LinearCombination]) -> LinearCombination:
    """``sum bits[i] * 2^i`` (little-endian), no constraint."""
    return linear_sum((1 << i, b) for i, b in enumerate(bits))


def to_bits(cs: ConstraintSystem, x: LinearCombination, n: int) -> list[LinearCombination]:
    """circomlib ``Num2Bits(n)``: the n bits of x, least significant first, each constrained boolean, and their
    recomposition constrained equal to x, which so is range-checked to ``0 .. 2^n - 1``. n + 1 constraints.

    A value of 2^n or more fails the recomposition (ConstraintError as it is built).
    """
    if not 1 <= n <= MAX_BITS:
        raise ValueError(f"a bit decomposition has 1..{MAX_BITS} bits (unique below r), not {n}")
    with cs.scope(f"bits{n}"):
        bits = [cs.private((x.value >> i) & 1) for i in range(n)]
        for b in bits:
            cs.assert_boolean(b)
        cs.assert_equal(pack_bits(bits), x)
    return bits


def less_than(cs: ConstraintSystem, a: LinearCombination, b: LinearCombination, n: int) -> LinearCombination:
    """circomlib ``LessThan(n)``: 1 if ``a < b`` else 0, for a and b known to be below 2^n. n + 2 constraints.

    Bit n of ``a + 2^n - b`` (n + 1 bits) is 1 exactly when ``a >= b``. The result is meaningless unless the
    circuit range-checks a and b to n bits.
    """
    if not 1 <= n < MAX_BITS:
        raise ValueError(f"less_than compares 1..{MAX_BITS - 1}-bit numbers, not {n}-bit")
    with cs.scope(f"less_than{n}"):
        bits = to_bits(cs, a + (1 << n) - b, n + 1)
    return 1 - bits[n]


def assert_less_than(cs: ConstraintSystem, a: LinearCombination, b: LinearCombination, n: int) -> None:
    """``a < b`` for a and b known to be below 2^n: ``b - a - 1`` fits in n bits. n + 1 constraints.

    If a >= b then ``b - a - 1`` wraps to at least ``r - 2^n``, which has no n-bit decomposition.
    """
    if not 1 <= n <= MAX_BITS:
        raise ValueError(f"assert_less_than compares 1..{MAX_BITS}-bit numbers, not {n}-bit")
    with cs.scope(f"assert_less_than{n}"):
        to_bits(cs, b - a - 1, n)


def select(
    cs: ConstraintSystem, bit: LinearCombination, if_one: LinearCombination, if_zero: LinearCombination
) -> LinearCombination:
    """circomlib ``Mux1``: ``if_one`` when bit = 1, ``if_zero`` when bit = 0, as ``if_zero + bit * (if_one -
    if_zero)``. One constraint; bit must be constrained boolean by the circuit.
    """
    with cs.scope("select"):
        return if_zero + cs.mul(bit, if_one - if_zero)


def mux(
    cs: ConstraintSystem, bits: Sequence[LinearCombination], options: Sequence[LinearCombination]
) -> LinearCombination:
    """``options[index]`` where ``index = sum bits[i] 2^i`` (little-endian, each bit constrained boolean by the
    circuit); ``len(options)`` must be ``2^len(bits)``. A tree of :func:`select`: ``len(options) - 1`` constraints.
    """
    if len(options) != 1 << len(bits):
        raise ValueError(f"a mux over {len(bits)} bits chooses among {1 << len(bits)} options, not {len(options)}")
    layer = list(options)
    for bit in bits:
        layer = [select(cs, bit, layer[i + 1], layer[i]) for i in range(0, len(layer), 2)]
    return layer[0]


def assert_one_of(cs: ConstraintSystem, x: LinearCombination, options: Sequence[LinearCombination]) -> None:
    """``x`` equals at least one of ``options``: ``prod (option_i - x) = 0``, which holds in a field exactly when a
    factor is 0. ``len(options) - 1`` constraints (a running product; the last factor enters the final constraint).
    """
    if len(options) < 2:
        raise ValueError("assert_one_of needs at least two options (with one, use assert_equal)")
    with cs.scope("one_of"):
        product = options[0] - x
        for option in options[1:-1]:
            product = cs.mul(product, option - x)
        cs.enforce(product, options[-1] - x, cs.constant(0))


def merkle_root(
    cs: ConstraintSystem, leaf: LinearCombination, children: Sequence[Sequence[LinearCombination]]
) -> LinearCombination:
    """The root that ``leaf`` hashes up to along a path of the grant tree (see :mod:`consent_chain.state_tree`).

    ``children[l]`` are the children, in order, of the parent of the path's node at level ``l`` (private wires:
    :func:`consent_chain.state_tree.path_children`). Per level, the node must be one of them (:func:`assert_one_of`,
    arity - 1 constraints) and the parent is their Poseidon (297 at arity 4): 300 per level. Which child the node is
    stays private, as the position bits of a binary path do; soundness is the same: the depth is fixed and a root
    opens, by Poseidon's collision resistance, to one set of children per level, so the leaf is a leaf of the tree.
    """
    if not children or any(len(level) < 2 for level in children):
        raise ValueError("a Merkle path has at least one level, each of at least two children")
    node = leaf
    for level, siblings_and_node in enumerate(children):
        with cs.scope(f"merkle/level{level}"):
            assert_one_of(cs, node, siblings_and_node)
            node = poseidon(cs, siblings_and_node)
    return node


def assert_merkle_path(
    cs: ConstraintSystem,
    leaf: LinearCombination,
    children: Sequence[Sequence[LinearCombination]],
    root: LinearCombination,
) -> None:
    """``leaf`` is in the tree with ``root`` along the path of ``children``: :func:`merkle_root` + 1."""
    computed = merkle_root(cs, leaf, children)
    with cs.scope("merkle/root"):
        cs.assert_equal(computed, root)


def assert_subset(cs: ConstraintSystem, mask: LinearCombination, scope: LinearCombination, n: int = 64) -> None:
    """Every bit set in ``mask`` is set in ``scope`` (``mask & ~scope == 0``), both n-bit numbers. 2n + 2
    constraints, which also range-check mask and scope to n bits.

    The scope is decomposed into constrained bits; each mask bit m_i needs only ``m_i * (m_i - s_i) = 0``, which
    with s_i boolean forces m_i = 0 when s_i = 0 and m_i in {0, 1} when s_i = 1: booleanity and inclusion in one.
    """
    if not 1 <= n <= MAX_BITS:
        raise ValueError(f"assert_subset compares 1..{MAX_BITS}-bit masks, not {n}-bit")
    with cs.scope(f"subset{n}"):
        scope_bits = to_bits(cs, scope, n)
        mask_bits = [cs.private((mask.value >> i) & 1) for i in range(n)]
        zero = cs.constant(0)
        for m, s in zip(mask_bits, scope_bits, strict=True):
            cs.enforce(m, m - s, zero)
        cs.assert_equal(pack_bits(mask_bits), mask)


def assert_nonzero(cs: ConstraintSystem, x: LinearCombination) -> None:
    """``x != 0``, as circomlib's ``IsZero`` does it without the output: a private ``x^-1`` and ``x * x^-1 = 1``,
    which no value of the inverse wire satisfies when x = 0. One constraint.
    """
    with cs.scope("nonzero"):
        inverse = cs.private(pow(x.value, -1, _R) if x.value else 0)
        cs.enforce(x, inverse, cs.one)
