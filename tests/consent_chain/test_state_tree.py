"""The grant state tree: roots computed by hand from Poseidon, paths, revocation, batches, replay of public events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings

from consent_chain.state_tree import (
    ARITY,
    DEPTH,
    Event,
    GrantTree,
    MemoryNodeStore,
    MerklePath,
    compute_root,
    replay,
    verify_path,
    zero_hashes,
)
from tests.consent_chain.state_strategies import grant_events
from zk.poseidon import BN254_R, poseidon

C = [poseidon([i]) for i in range(1, 9)]  # commitments: distinct, non-zero, full-size field elements


def _iterated_zeros(depth: int) -> list[int]:
    zeros = [0]
    for _ in range(depth):
        zeros.append(poseidon([zeros[-1]] * 4))
    return zeros


ZEROS = _iterated_zeros(DEPTH)


def naive_root(leaves: Sequence[int], depth: int = DEPTH) -> int:
    """The root from the leaves by hashing every level four at a time, padding each level with its empty subtree."""
    layer = list(leaves)
    for level in range(depth):
        layer += [ZEROS[level]] * (-len(layer) % 4)
        layer = [poseidon(layer[i : i + 4]) for i in range(0, len(layer), 4)] or [ZEROS[level + 1]]
    return layer[0]


def _up(node: int, from_level: int) -> int:
    """Hash ``node`` (a first child with empty siblings at each level) from ``from_level`` to the root."""
    for level in range(from_level, DEPTH):
        node = poseidon([node, ZEROS[level], ZEROS[level], ZEROS[level]])
    return node


# -- known trees, by hand ------------------------------------------------------------------------------------------


def test_the_tree_holds_2_to_the_20_leaves_in_10_levels_of_4() -> None:
    assert (ARITY, DEPTH, GrantTree().capacity) == (4, 10, 2**20)


def test_the_empty_tree_root_is_the_zero_leaf_hashed_10_times() -> None:
    node = 0
    for _ in range(10):
        node = poseidon([node, node, node, node])
    assert GrantTree().root == node
    assert zero_hashes()[DEPTH] == node
    assert zero_hashes() == tuple(ZEROS)


def test_the_empty_subtrees_are_those_of_circomlibjs() -> None:
    vectors = json.loads((Path(__file__).parents[1] / "vectors" / "poseidon_circomlibjs.json").read_text())
    assert zero_hashes() == tuple(int(z) for z in vectors["zero_hashes_arity_4_depth_10"])


def test_one_leaf_at_index_0() -> None:
    tree = GrantTree()
    assert tree.append(C[0]) == 0
    assert tree.root == _up(C[0], 0)
    assert tree.leaf(0) == C[0]
    assert tree.size == 1


def test_six_leaves_and_the_path_of_the_sixth() -> None:
    tree = GrantTree()
    assert list(tree.extend(C[:6])) == [0, 1, 2, 3, 4, 5]
    first = poseidon(C[:4])
    z0, z1 = ZEROS[0], ZEROS[1]
    assert tree.root == _up(poseidon([first, poseidon([C[4], C[5], z0, z0]), z1, z1]), 2)

    path = tree.path(5)
    assert path.index == 5
    assert path.positions == (1, 1) + (0,) * (DEPTH - 2)
    assert path.siblings[:2] == ((C[4], z0, z0), (first, z1, z1))
    assert path.siblings[2:] == tuple((z, z, z) for z in ZEROS[2:DEPTH])
    assert path.children(0, C[5]) == (C[4], C[5], z0, z0)
    assert verify_path(C[5], path, tree.root)


def test_every_leaf_path_verifies_and_recomputes_the_root() -> None:
    tree = GrantTree()
    tree.extend(C[:5])
    for index in range(5):
        path = tree.path(index)
        assert compute_root(C[index], path) == tree.root
        assert verify_path(C[index], path, tree.root)


def test_a_path_proves_nothing_for_another_leaf_index_sibling_or_root() -> None:
    tree = GrantTree()
    tree.extend(C[:2])
    old_root = tree.root
    tree.append(C[2])
    path = tree.path(1)
    assert verify_path(C[1], path, tree.root)
    assert not verify_path(C[0], path, tree.root)  # another leaf
    assert not verify_path(C[1], path, old_root)  # another root
    assert not verify_path(C[1], MerklePath(0, path.siblings), tree.root)  # another index
    for level, k in ((0, 2), (1, 0)):
        bumped = list(path.siblings[level])
        bumped[k] += 1
        tampered = MerklePath(1, (*path.siblings[:level], tuple(bumped), *path.siblings[level + 1 :]))  # type: ignore[arg-type]
        assert not verify_path(C[1], tampered, tree.root)


def test_a_path_round_trips_through_its_json() -> None:
    tree = GrantTree()
    tree.extend(C[:7])
    path = tree.path(6)
    assert MerklePath.from_json(json.loads(json.dumps(path.to_json()))) == path


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"leafIndex": 0},
        {"leafIndex": "0", "siblings": [["0", "0", "0"]]},
        {"leafIndex": 0, "siblings": ["0", "0", "0"]},
        {"leafIndex": 0, "siblings": [["0", "0"]]},
        {"leafIndex": 0, "siblings": [[0, 0, 0]]},
        {"leafIndex": 0, "siblings": [["0", "-1", "0"]]},
        {"leafIndex": 0, "siblings": [["0", "0", str(BN254_R)]]},
        {"leafIndex": 4, "siblings": [["0", "0", "0"]]},
    ],
)
def test_a_malformed_path_document_is_refused(doc: object) -> None:
    with pytest.raises(ValueError, match="path"):
        MerklePath.from_json(doc)


@pytest.mark.parametrize(
    ("leaf", "root"), [(BN254_R, 0), (-1, 0), (0, BN254_R), (True, 0)], ids=["leaf=r", "leaf<0", "root=r", "bool"]
)
def test_verify_path_answers_false_for_values_outside_the_field(leaf: int, root: int) -> None:
    assert not verify_path(leaf, MerklePath(0, ((0, 0, 0),)), root)


def test_verify_path_answers_false_for_what_is_not_a_path() -> None:
    assert not verify_path(C[0], (0, ((0, 0, 0),) * DEPTH), ZEROS[DEPTH])  # type: ignore[arg-type]


# -- revocation ---------------------------------------------------------------------------------------------------


def test_revoke_empties_the_leaf_and_changes_the_root() -> None:
    tree = GrantTree()
    tree.extend(C[:3])
    before = tree.root
    tree.revoke(1)
    assert tree.leaf(1) == 0
    assert tree.root != before
    assert tree.root == naive_root([C[0], 0, C[2]])
    assert verify_path(0, tree.path(1), tree.root)  # the path now proves the slot empty


def test_a_revoked_index_is_not_reused() -> None:
    tree = GrantTree()
    tree.append(C[0])
    tree.revoke(0)
    assert tree.append(C[1]) == 1
    assert tree.root == naive_root([0, C[1]])


def test_revoking_every_grant_gives_back_the_empty_root() -> None:
    tree = GrantTree()
    tree.extend(C[:5])
    tree.revoke_many([3, 0, 4])
    tree.revoke(1)
    tree.revoke(2)
    assert tree.root == ZEROS[DEPTH]
    assert tree.size == 5


# -- refusals -----------------------------------------------------------------------------------------------------


def _tree(n: int = 3, depth: int = DEPTH) -> GrantTree:
    tree = GrantTree(depth=depth)
    tree.extend(C[:n])
    return tree


@pytest.mark.parametrize(
    ("act", "error", "message"),
    [
        (lambda t: t.append(0), ValueError, "non-zero field element"),
        (lambda t: t.append(BN254_R), ValueError, "non-zero field element"),
        (lambda t: t.append(-5), ValueError, "non-zero field element"),
        (lambda t: t.extend([C[4], 0]), ValueError, "non-zero field element"),
        (lambda t: t.revoke(3), IndexError, "no grant tree leaf 3: the tree has 3 leaves"),
        (lambda t: t.revoke(-1), IndexError, "no grant tree leaf -1"),
        (lambda t: t.revoke_many([0, 0]), ValueError, "revoked twice in one batch"),
        (lambda t: t.path(3), IndexError, "no grant tree leaf 3"),
        (lambda t: t.leaf(7), IndexError, "no grant tree leaf 7"),
        (lambda t: t.set_leaf(3, 1), IndexError, "no grant tree leaf 3"),
        (lambda t: t.update({0: BN254_R}), ValueError, "field element"),
    ],
)
def test_misuse_is_refused_and_leaves_the_tree_unchanged(
    act: Callable[[GrantTree], object], error: type[Exception], message: str
) -> None:
    tree = _tree()
    before = (tree.root, tree.size)
    with pytest.raises(error, match=message):
        act(tree)
    assert (tree.root, tree.size) == before


def test_a_revoked_grant_cannot_be_revoked_again() -> None:
    tree = _tree()
    tree.revoke(1)
    before = tree.root
    with pytest.raises(ValueError, match="leaf 1 is already revoked"):
        tree.revoke(1)
    assert tree.root == before


def test_a_full_tree_refuses_another_grant() -> None:
    tree = _tree(4, depth=1)
    with pytest.raises(IndexError, match="full: 4 leaves at depth 1"):
        tree.append(C[4])
    tree.revoke(0)
    with pytest.raises(IndexError, match="full"):  # revoked indices are not reused
        tree.append(C[4])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth must be 1..16"),
        ({"depth": 17}, "depth must be 1..16"),
        ({"size": 17, "depth": 2}, r"0\.\.4\^2 leaves, not 17"),
    ],
)
def test_a_tree_of_impossible_shape_is_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GrantTree(**kwargs)


@pytest.mark.parametrize(
    ("index", "siblings", "message"),
    [
        (16, ((0, 0, 0), (0, 0, 0)), r"index must be in 0\.\.4\^2-1"),
        (-1, ((0, 0, 0),), "index must be in"),
        (True, ((0, 0, 0),), "index must be in"),
        (0, (), "1..16 levels"),
        (0, [(0, 0, 0)], "1..16 levels"),
        (0, ((0, 0, 0),) * 17, "1..16 levels"),
        (0, ((0, 0),), "tuple of 3 siblings"),
        (0, ([0, 0, 0],), "tuple of 3 siblings"),
        (0, ((0, BN254_R, 0),), "field elements"),
    ],
)
def test_a_malformed_path_cannot_be_built(index: int, siblings: tuple[tuple[int, ...], ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MerklePath(index, siblings)


# -- batches and storage ------------------------------------------------------------------------------------------


def test_batches_give_the_same_tree_as_one_update_at_a_time() -> None:
    one, batch = GrantTree(), GrantTree()
    for c in C:
        one.append(c)
    batch.extend(C)
    assert one.root == batch.root
    for index in (1, 4, 6):
        one.revoke(index)
    batch.revoke_many([6, 1, 4])
    assert one.root == batch.root
    one.set_leaf(0, 5)
    one.set_leaf(7, 6)
    batch.update({7: 6, 0: 5})
    assert one.root == batch.root == naive_root([5, 0, C[2], C[3], 0, C[5], 0, 6])
    assert [one.path(i) for i in range(8)] == [batch.path(i) for i in range(8)]


def test_only_nodes_on_appended_paths_are_stored() -> None:
    store = MemoryNodeStore()
    GrantTree(store).append(C[0])
    assert len(store) == DEPTH + 1
    store = MemoryNodeStore()
    GrantTree(store).extend(C[:5])
    # Per level, the nodes above leaves 0..4: 5, 2, then one for each of the 9 levels up to the root.
    assert len(store) == 5 + 2 + (DEPTH - 1)


class RecordingStore(MemoryNodeStore):
    """A store that counts its writes: an adapter must be able to commit each update as one batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def put_many(self, nodes: Sequence[tuple[int, int, int]]) -> None:
        self.batches.append(len(nodes))
        super().put_many(nodes)


def test_each_update_is_one_write_of_the_changed_nodes() -> None:
    store = RecordingStore()
    tree = GrantTree(store)
    tree.append(C[0])
    tree.extend(C[1:6])
    tree.revoke_many([0, 5])
    assert store.batches == [DEPTH + 1, 5 + 2 + (DEPTH - 1), 2 + 2 + (DEPTH - 1)]


def test_a_tree_reopened_over_its_store_is_the_same_tree() -> None:
    store = MemoryNodeStore()
    tree = GrantTree(store)
    tree.extend(C[:5])
    tree.revoke(2)
    again = GrantTree(store, size=tree.size)
    assert again.root == tree.root
    assert again.path(3) == tree.path(3)
    assert again.append(C[5]) == 5
    assert again.root == naive_root([*C[:2], 0, *C[3:6]])


# -- replay of public events ----------------------------------------------------------------------------------------


def test_replay_returns_the_root_after_each_event() -> None:
    events: list[Event] = [("grant", C[0]), ("grant", C[1]), ("revoke", 0), ("grant", C[2])]
    assert replay(events) == [
        naive_root([C[0]]),
        naive_root([C[0], C[1]]),
        naive_root([0, C[1]]),
        naive_root([0, C[1], C[2]]),
    ]
    assert replay([]) == []


@pytest.mark.parametrize(
    ("events", "error", "message"),
    [
        ([("grant", C[0]), ("revoke", 1)], IndexError, "no grant tree leaf 1"),
        ([("grant", C[0]), ("revoke", 0), ("revoke", 0)], ValueError, "already revoked"),
        ([("grant", 0)], ValueError, "non-zero field element"),
        ([("erase", 0)], ValueError, r"\('grant', commitment\) or \('revoke', index\), not \('erase', 0\)"),
    ],
)
def test_replay_refuses_events_no_valid_ledger_holds(events: list[Event], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        replay(events)


# -- properties -----------------------------------------------------------------------------------------------------

SMALL = 3  # 64 leaves: room for every drawn sequence, and a few hashes per update


@settings(max_examples=25, deadline=None)
@given(events=grant_events(max_events=16, capacity=ARITY**SMALL))
def test_replay_is_deterministic_and_equals_recomputing_every_root(events: list[Event]) -> None:
    roots = replay(events, depth=SMALL)
    assert replay(events, depth=SMALL) == roots
    leaves: list[int] = []
    expected = []
    for kind, value in events:
        if kind == "grant":
            leaves.append(value)
        else:
            leaves[value] = 0
        expected.append(naive_root(leaves, SMALL))
    assert roots == expected


@settings(max_examples=25, deadline=None)
@given(events=grant_events(max_events=20, capacity=ARITY**SMALL))
def test_active_paths_verify_and_revoked_paths_stop_verifying(events: list[Event]) -> None:
    tree = GrantTree(depth=SMALL)
    commitments: dict[int, int] = {}
    revoked: list[tuple[int, MerklePath, int]] = []  # (commitment, its path before, the root after revocation)
    for kind, value in events:
        if kind == "grant":
            commitments[tree.append(value)] = value
        else:
            path = tree.path(value)
            assert verify_path(commitments[value], path, tree.root)
            tree.revoke(value)
            revoked.append((commitments.pop(value), path, tree.root))
    for index, commitment in commitments.items():
        assert verify_path(commitment, tree.path(index), tree.root)
    for commitment, old_path, root_after in revoked:
        assert not verify_path(commitment, old_path, root_after)
        assert not verify_path(commitment, old_path, tree.root)
        assert verify_path(0, tree.path(old_path.index), tree.root)


@settings(max_examples=25, deadline=None)
@given(events=grant_events(max_events=20, capacity=ARITY**SMALL))
def test_one_batch_of_all_events_ends_at_the_replayed_root(events: list[Event]) -> None:
    roots = replay(events, depth=SMALL)
    grants = [value for kind, value in events if kind == "grant"]
    revocations = [value for kind, value in events if kind == "revoke"]
    tree = GrantTree(depth=SMALL)
    tree.extend(grants)
    tree.revoke_many(revocations)
    assert tree.root == (roots[-1] if roots else ZEROS[SMALL])


@settings(max_examples=10, deadline=None)
@given(events=grant_events(max_events=6))
def test_at_full_depth_replay_equals_recomputing_every_root(events: list[Event]) -> None:
    leaves: list[int] = []
    expected = []
    for kind, value in events:
        if kind == "grant":
            leaves.append(value)
        else:
            leaves[value] = 0
        expected.append(naive_root(leaves))
    assert replay(events) == expected
