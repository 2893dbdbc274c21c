"""Gadgets: outputs equal the plain computation, witnesses satisfy the constraints, tampering is caught, counts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_chain.state_tree import DEPTH, GrantTree, MerklePath, compute_root, path_children
from tests.zk.strategies import scalars
from zk import gadgets
from zk.errors import ConstraintError
from zk.field import CURVE_ORDER
from zk.poseidon import PARTIAL_ROUNDS, poseidon
from zk.r1cs import ConstraintSystem, LinearCombination

R = CURVE_ORDER


def assert_tampering_is_caught(cs: ConstraintSystem, wires: list[int]) -> None:
    """The built witness satisfies every constraint, and changing any of ``wires`` breaks one."""
    r1cs, witness = cs.r1cs(), cs.witness
    r1cs.check(witness)
    for wire in wires:
        tampered = list(witness)
        tampered[wire] = (tampered[wire] + 1) % R
        with pytest.raises(ConstraintError):
            r1cs.check(tampered)


def wire_of(lc: LinearCombination) -> int:
    (wire,) = lc.terms
    return wire


# ---------------------------------------------------------------------------------------------------- Poseidon


@pytest.mark.parametrize(("inputs", "constraints"), [(1, 213), (2, 240), (3, 261), (4, 297), (5, 321), (16, 609)])
def test_poseidon_equals_the_plain_hash_with_circomlib_s_constraint_counts(inputs: int, constraints: int) -> None:
    # 3 per S-box: 8 full rounds of t, the partial rounds, less the first round's constant capacity word.
    t = inputs + 1
    assert constraints == 3 * (8 * t + PARTIAL_ROUNDS[t - 2] - 1)
    values = [random.Random(inputs).randrange(R) for _ in range(inputs)]
    cs = ConstraintSystem()
    out = gadgets.poseidon(cs, [cs.private(v) for v in values])
    assert out.value == poseidon(values)
    assert cs.num_constraints == constraints
    cs.r1cs().check(cs.witness)


@settings(max_examples=10, deadline=None)
@given(scalars(), scalars(), scalars())
def test_poseidon_of_combinations_equals_the_plain_hash(a: int, b: int, k: int) -> None:
    cs = ConstraintSystem()
    x, y = cs.private(a), cs.private(b)
    out = gadgets.poseidon(cs, [x + k * y, y - 3])
    assert out.value == poseidon([(a + k * b) % R, (b - 3) % R])
    assert cs.num_constraints == 240


def test_poseidon_output_tampering_is_caught() -> None:
    cs = ConstraintSystem()
    digest = cs.public(poseidon([1, 2]))
    cs.assert_equal(gadgets.poseidon(cs, [cs.private(1), cs.private(2)]), digest)
    # The public digest, the inputs, and a sample of the S-box wires.
    assert_tampering_is_caught(cs, [1, 2, 3, 10, 100, cs.num_variables - 1])


def test_a_wrong_digest_is_refused_while_building() -> None:
    cs = ConstraintSystem()
    digest = cs.public(poseidon([1, 2]) + 1)
    out = gadgets.poseidon(cs, [cs.private(1), cs.private(2)])
    with pytest.raises(ConstraintError):
        cs.assert_equal(out, digest)


# ---------------------------------------------------------------------------------------------------- bits


@settings(max_examples=30, deadline=None)
@given(st.integers(1, gadgets.MAX_BITS).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 2**n - 1))))
def test_to_bits_gives_the_little_endian_bits_in_n_plus_1_constraints(case: tuple[int, int]) -> None:
    n, value = case
    cs = ConstraintSystem()
    bits = gadgets.to_bits(cs, cs.private(value), n)
    assert [b.value for b in bits] == [(value >> i) & 1 for i in range(n)]
    assert gadgets.pack_bits(bits).value == value
    assert cs.num_constraints == n + 1
    cs.r1cs().check(cs.witness)


def test_to_bits_refuses_values_that_do_not_fit() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="bits8"):
        gadgets.to_bits(cs, cs.private(256), 8)
    with pytest.raises(ValueError, match=r"1\.\.253 bits"):
        gadgets.to_bits(cs, cs.private(1), 254)


def test_a_non_boolean_bit_is_caught_even_if_the_sum_still_matches() -> None:
    cs = ConstraintSystem()
    x = cs.private(2)
    bits = gadgets.to_bits(cs, x, 2)  # bits 0, 1
    r1cs, witness = cs.r1cs(), cs.witness
    forged = list(witness)
    forged[wire_of(bits[0])], forged[wire_of(bits[1])] = 2, 0  # 2 * 1 + 0 * 2 = 2: recomposition holds
    with pytest.raises(ConstraintError, match="bits2"):
        r1cs.check(forged)


# ---------------------------------------------------------------------------------------------------- comparisons


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_less_than_is_a_less_than_b(a: int, b: int) -> None:
    cs = ConstraintSystem()
    out = gadgets.less_than(cs, cs.private(a), cs.private(b), 16)
    assert out.value == int(a < b)
    assert cs.num_constraints == 18
    cs.r1cs().check(cs.witness)


@pytest.mark.parametrize(("a", "b"), [(0, 1), (5, 2**64 - 1), (2**64 - 2, 2**64 - 1)])
def test_assert_less_than_accepts_a_below_b(a: int, b: int) -> None:
    cs = ConstraintSystem()
    gadgets.assert_less_than(cs, cs.private(a), cs.private(b), 64)
    assert cs.num_constraints == 65
    cs.r1cs().check(cs.witness)


@pytest.mark.parametrize(("a", "b"), [(7, 7), (8, 7), (2**64 - 1, 0)])
def test_assert_less_than_refuses_a_at_or_above_b(a: int, b: int) -> None:
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="assert_less_than64"):
        gadgets.assert_less_than(cs, cs.private(a), cs.private(b), 64)


# ---------------------------------------------------------------------------------------------------- selection


@pytest.mark.parametrize("bit", [0, 1])
def test_select_picks_by_the_bit_in_one_constraint(bit: int) -> None:
    cs = ConstraintSystem()
    out = gadgets.select(cs, cs.private(bit), cs.private(11), cs.private(22))
    assert out.value == (11 if bit else 22)
    assert cs.num_constraints == 1
    assert_tampering_is_caught(cs, [cs.num_variables - 1])


@pytest.mark.parametrize("index", range(8))
def test_mux_picks_the_option_at_the_index(index: int) -> None:
    cs = ConstraintSystem()
    bits = [cs.private((index >> i) & 1) for i in range(3)]
    out = gadgets.mux(cs, bits, [cs.private(100 + i) for i in range(8)])
    assert out.value == 100 + index
    assert cs.num_constraints == 7
    cs.r1cs().check(cs.witness)


def test_mux_refuses_the_wrong_number_of_options() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="among 4 options, not 3"):
        gadgets.mux(cs, [cs.private(0), cs.private(1)], [cs.private(1)] * 3)


# ---------------------------------------------------------------------------------------------------- one of


@pytest.mark.parametrize("where", [0, 1, 3])
def test_one_of_holds_when_x_is_any_option_in_k_minus_1_constraints(where: int) -> None:
    cs = ConstraintSystem()
    values = (11, 22, 33, 44)
    options = [cs.private(v) for v in values]
    gadgets.assert_one_of(cs, cs.private(values[where]), options)
    assert cs.num_constraints == 3
    cs.r1cs().check(cs.witness)


def test_one_of_refuses_a_value_that_is_no_option() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="one_of"):
        gadgets.assert_one_of(cs, cs.private(12), [cs.private(v) for v in (11, 22, 33, 44)])


@settings(max_examples=25, deadline=None)
@given(st.lists(scalars(), min_size=2, max_size=6), scalars())
def test_one_of_holds_exactly_when_x_is_among_the_options(options: list[int], x: int) -> None:
    cs = ConstraintSystem()
    wires = [cs.private(v) for v in options]
    if x in options:
        gadgets.assert_one_of(cs, cs.private(x), wires)
        cs.r1cs().check(cs.witness)
    else:
        with pytest.raises(ConstraintError):
            gadgets.assert_one_of(cs, cs.private(x), wires)


def test_one_of_needs_two_options() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="at least two options"):
        gadgets.assert_one_of(cs, cs.private(1), [cs.private(1)])


# ---------------------------------------------------------------------------------------------------- Merkle


def grant_tree(leaves: int, seed: int) -> GrantTree:
    rng = random.Random(seed)
    tree = GrantTree()
    tree.extend(rng.randrange(1, R) for _ in range(leaves))
    return tree


def children_wires(cs: ConstraintSystem, leaf: int, path: MerklePath) -> list[list[LinearCombination]]:
    return [[cs.private(c) for c in level] for level in path_children(leaf, path)]


def merkle_circuit(leaf: int, path: MerklePath, root: int) -> ConstraintSystem:
    cs = ConstraintSystem()
    root_wire = cs.public(root)
    leaf_wire = cs.private(leaf)
    gadgets.assert_merkle_path(cs, leaf_wire, children_wires(cs, leaf, path), root_wire)
    return cs


@pytest.mark.parametrize("index", [0, 5, 6, 19])
def test_merkle_root_equals_the_grant_tree_s(index: int) -> None:
    tree = grant_tree(20, index)
    path = tree.path(index)
    cs = ConstraintSystem()
    leaf = tree.leaf(index)
    root = gadgets.merkle_root(cs, cs.private(leaf), children_wires(cs, leaf, path))
    assert root.value == tree.root == compute_root(leaf, path)
    assert cs.num_constraints == 300 * DEPTH == 3000
    cs.r1cs().check(cs.witness)


def test_merkle_path_tampering_is_caught() -> None:
    tree = grant_tree(7, 1)
    cs = merkle_circuit(tree.leaf(6), tree.path(6), tree.root)
    assert cs.num_constraints == 3001
    # the root, the leaf; at level 0 each of the four children (the leaf's copy is child 2); the last level's first
    # and last children
    children = 3
    last = children + 4 * (DEPTH - 1)
    assert_tampering_is_caught(cs, [1, 2, children, children + 1, children + 2, children + 3, last, last + 3])


def test_a_leaf_not_in_the_tree_is_refused_while_building() -> None:
    tree = grant_tree(6, 2)
    path = tree.path(1)
    with pytest.raises(ConstraintError, match="merkle/root"):
        merkle_circuit(tree.leaf(1) + 1, path, tree.root)
    for other_place in (0, 2, 3):  # the right leaf and siblings, the leaf put in another child's place
        with pytest.raises(ConstraintError, match="merkle/root"):
            merkle_circuit(tree.leaf(1), MerklePath(other_place, path.siblings), tree.root)
    # After a revocation the grant's leaf is empty: its commitment no longer hashes to the new root.
    commitment = tree.leaf(1)
    tree.revoke(1)
    with pytest.raises(ConstraintError, match="merkle/root"):
        merkle_circuit(commitment, tree.path(1), tree.root)


def test_children_that_do_not_hold_the_node_are_refused_at_their_level() -> None:
    # The real root's children at level 0, but the claimed leaf is none of them: membership fails first.
    tree = grant_tree(4, 5)
    cs = ConstraintSystem()
    level0 = [cs.private(tree.leaf(i)) for i in range(4)]
    with pytest.raises(ConstraintError, match="merkle/level0/one_of"):
        gadgets.merkle_root(cs, cs.private(12345), [level0])


def test_a_path_without_levels_or_with_one_child_is_refused() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="at least one level, each of at least two children"):
        gadgets.merkle_root(cs, cs.private(1), [])
    with pytest.raises(ValueError, match="at least one level, each of at least two children"):
        gadgets.merkle_root(cs, cs.private(1), [[cs.private(1)]])


def test_the_circuit_shape_does_not_depend_on_the_witness() -> None:
    tree = grant_tree(21, 3)
    shapes = [merkle_circuit(tree.leaf(i), tree.path(i), tree.root).r1cs() for i in (0, 7, 20)]
    assert shapes[0] == shapes[1] == shapes[2]


# ---------------------------------------------------------------------------------------------------- subset


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_a_mask_inside_the_scope_passes_in_130_constraints(scope: int, bits: int) -> None:
    mask = scope & bits
    cs = ConstraintSystem()
    gadgets.assert_subset(cs, cs.public(mask), cs.private(scope))
    assert cs.num_constraints == 130
    cs.r1cs().check(cs.witness)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 63))
def test_a_mask_with_a_feature_outside_the_scope_is_refused(scope: int, extra: int) -> None:
    scope &= ~(1 << extra)
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="subset64"):
        gadgets.assert_subset(cs, cs.public(scope | 1 << extra), cs.private(scope))


def test_subset_refuses_masks_wider_than_64_bits_and_catches_tampering() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="subset64"):
        gadgets.assert_subset(cs, cs.public(1 << 64), cs.private(2**65 - 1))
    cs = ConstraintSystem()
    gadgets.assert_subset(cs, cs.public(0b1010), cs.private(0b1110))
    # the mask, the scope, a scope bit and a mask bit
    assert_tampering_is_caught(cs, [1, 2, 3, 3 + 64 + 1])


# ---------------------------------------------------------------------------------------------------- non-zero


@settings(max_examples=25, deadline=None)
@given(scalars().filter(bool))
def test_a_non_zero_value_passes_in_one_constraint(value: int) -> None:
    cs = ConstraintSystem()
    gadgets.assert_nonzero(cs, cs.public(value) * 3)  # a combination, as a Poseidon output is
    assert cs.num_constraints == 1
    # the value and its inverse
    assert_tampering_is_caught(cs, [1, 2])


def test_zero_is_refused_whatever_the_inverse_wire_holds() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ConstraintError, match="nonzero"):
        gadgets.assert_nonzero(cs, cs.public(0))
    r1cs, witness = cs.r1cs(), cs.witness
    for inverse in (0, 1, 2, R - 1):
        witness[2] = inverse
        assert not r1cs.is_satisfied(witness)
