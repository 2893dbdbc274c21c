"""Our Poseidon and grant state tree against circomlibjs (pinned in tests/interop/package-lock.json).

One node process answers everything: Poseidon on random inputs of every width 1..16 (with 0, r - 1 and large
values), the unoptimized constants of every width, the empty subtrees of the grant tree (arity 4, depth 10) and the
roots of small grant trees built by a naive tree in JavaScript.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from consent_chain.state_tree import ARITY, DEPTH, GrantTree, verify_path, zero_hashes
from tests.interop import circomlibjs
from zk.poseidon import BN254_R, PARTIAL_ROUNDS, params, poseidon

pytestmark = pytest.mark.integration

WIDTHS = range(1, len(PARTIAL_ROUNDS) + 1)


def _element(rng: random.Random) -> int:
    """A field element from the corners and the bulk: 0, 1, near r, near 2^253, 64-bit, uniform."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice([0, 1, BN254_R - 1])
    if kind == 1:
        return BN254_R - 1 - rng.randrange(2**32)
    if kind == 2:
        return 2**253 + rng.randrange(2**64)
    if kind == 3:
        return rng.randrange(2**64)
    return rng.randrange(BN254_R)


def _hash_inputs() -> list[list[int]]:
    rng = random.Random(20240607)
    cases = []
    for width in WIDTHS:
        cases += [[0] * width, [BN254_R - 1] * width, list(range(1, width + 1))]
        cases += [[_element(rng) for _ in range(width)] for _ in range(8)]
    return cases


def _trees() -> list[list[int]]:
    """Leaf lists from index 0; a 0 leaf is a revoked grant."""
    c = [poseidon([i]) for i in range(1, 8)]
    many = [poseidon([i, i]) for i in range(1, 22)]  # 21 leaves: two full groups of 4 at level 1, then a part
    return [[], [c[0]], c[:3], [c[0], 0, c[2]], [*c, BN254_R - 1], [0, 0, 0, c[3]], many, [*many[:16], 0, c[6]]]


@dataclass(frozen=True)
class Exchange:
    hashes: list[list[int]]
    trees: list[list[int]]
    answer: dict[str, Any]


@pytest.fixture(scope="module")
def circom() -> Exchange:
    if (why := circomlibjs.node_missing()) is not None:
        pytest.skip(why)
    hashes, trees = _hash_inputs(), _trees()
    request = {
        "hashes": [[str(x) for x in case] for case in hashes],
        "arity": ARITY,
        "depth": DEPTH,
        "trees": [[str(x) for x in leaves] for leaves in trees],
        "constants": True,
    }
    return Exchange(hashes, trees, circomlibjs.run(request))


def test_the_pinned_version_answers(circom: Exchange) -> None:
    assert circom.answer["version"] == "0.1.7"


@pytest.mark.parametrize("width", WIDTHS)
def test_poseidon_equals_circomlibjs_for_every_width(circom: Exchange, width: int) -> None:
    pairs = [(x, int(h)) for x, h in zip(circom.hashes, circom.answer["hashes"], strict=True) if len(x) == width]
    assert len(pairs) == 11
    for inputs, expected in pairs:
        assert poseidon(inputs) == expected, inputs


@pytest.mark.parametrize("t", [w + 1 for w in WIDTHS])
def test_derived_constants_are_circomlibjs_constants(circom: Exchange, t: int) -> None:
    theirs = circom.answer["constants"][t - 2]
    ours = params(t)
    assert ours.round_constants == tuple(int(c) for c in theirs["C"])
    assert ours.mds == tuple(tuple(int(m) for m in row) for row in theirs["M"])


def test_empty_subtrees_equal_circomlibjs(circom: Exchange) -> None:
    assert zero_hashes(DEPTH) == tuple(int(z) for z in circom.answer["zeros"])


def test_grant_tree_roots_equal_a_naive_circomlibjs_tree(circom: Exchange) -> None:
    for leaves, expected in zip(circom.trees, circom.answer["roots"], strict=True):
        tree = GrantTree()
        tree.extend(leaf or 1 for leaf in leaves)  # a revoked grant was first granted
        tree.revoke_many(i for i, leaf in enumerate(leaves) if leaf == 0)
        assert tree.root == int(expected), leaves
        for index, leaf in enumerate(leaves):
            assert verify_path(leaf, tree.path(index), int(expected))
