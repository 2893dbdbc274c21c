"""The RFC 9162 Merkle log: transparency-dev/merkle's known answers, then properties against the RFC's recursion."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent_chain.errors import ProofError
from consent_chain.merkle import (
    EMPTY_ROOT,
    InMemoryTree,
    NodeReader,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    new_nodes,
    root,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tests.consent_chain.strategies import MAX_LEAVES, bit_flips, consistency_cases, entries, inclusion_cases
from tests.vectors import load

V = load("transparency_dev_merkle.json")
LEAVES = [bytes.fromhex(x) for x in V["leaf_inputs"]]
ROOTS = [bytes.fromhex(x) for x in V["root_hashes"]]
SOME_HASH = bytes.fromhex(V["some_hash"])
Probes = dict[str, tuple[Any, ...]]  # description -> arguments of a verify_ call
# The Go tests' symbolic values (see the vector file's notes).
SYMBOLS = {"some_hash": SOME_HASH, "empty_root": ROOTS[0], "empty": b""}


def hx(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


@pytest.fixture(scope="module")
def tree() -> InMemoryTree:
    return InMemoryTree(LEAVES)


def rejects(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


# --- Known answers: transparency-dev/merkle ---------------------------------------------------------------------


def test_every_complete_node_is_the_published_node_hash(tree: InMemoryTree) -> None:
    # testonly/constants.go NodeHashes: level 0 is the leaf hashes.
    for level, hashes in enumerate(V["node_hashes"]):
        for index, expected in enumerate(hashes):
            assert tree.node(level, index).hex() == expected
    assert [hash_leaf(d) for d in LEAVES] == hx(V["node_hashes"][0])


def test_nodes_created_on_append_are_the_published_ones() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    for i, data in enumerate(LEAVES):
        created = new_nodes(i, hash_leaf(data), lambda level, index: stored[level, index])
        # One node per completed subtree: the leaf, then one per trailing 1 bit of i.
        assert [(level, index) for level, index, _ in created] == [
            (level, i >> level) for level in range((i ^ (i + 1)).bit_length())
        ]
        stored.update({(level, index): h for level, index, h in created})
    assert stored == {
        (lv, i): bytes.fromhex(h) for lv, hashes in enumerate(V["node_hashes"]) for i, h in enumerate(hashes)
    }


def test_root_at_every_size_is_the_published_root(tree: InMemoryTree) -> None:
    # testonly/constants.go RootHashes, sizes 0..8, all from the one 8-leaf store.
    assert ROOTS[0] == EMPTY_ROOT
    for size, expected in enumerate(ROOTS):
        assert tree.root(size) == expected
        assert root_from_leaves([hash_leaf(d) for d in LEAVES[:size]]) == expected


INCLUSION_VECTORS = [
    pytest.param(v["leaf"] - 1, v["size"], v["proof"], id=f"verify_test:{v['leaf'] - 1}:{v['size']}")
    for v in V["verify_test_inclusion_proofs"]
] + [
    pytest.param(v["index"], v["size"], v["proof"], id=f"reference_test:{v['index']}:{v['size']}")
    for v in V["reference_test_inclusion_proofs"]
]
CONSISTENCY_VECTORS = [
    pytest.param(v["size1"], v["size2"], v["proof"], id=f"{source}:{v['size1']}:{v['size2']}")
    for source in ("verify_test", "reference_test")
    for v in V[f"{source}_consistency_proofs"]
]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_inclusion_proof_is_the_published_one_and_verifies(
    tree: InMemoryTree, index: int, size: int, expected: list[str]
) -> None:
    proof = tree.inclusion_proof(index, size)
    assert proof == hx(expected)
    verify_inclusion(hash_leaf(LEAVES[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY_VECTORS)
def test_consistency_proof_is_the_published_one_and_verifies(
    tree: InMemoryTree, old: int, new: int, expected: list[str]
) -> None:
    proof = tree.consistency_proof(old, new)
    assert proof == hx(expected)
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize(("path", "probe"), V["probes"]["inclusion"].items())
def test_published_inclusion_probe(path: str, probe: dict[str, Any]) -> None:
    args = (b64([probe["leafHash"]])[0], probe["leafIdx"], probe["treeSize"], b64(probe["proof"]))
    assert rejects(verify_inclusion, *args, base64.b64decode(probe["root"])) == probe["wantErr"], probe["desc"]


@pytest.mark.parametrize(("path", "probe"), V["probes"]["consistency"].items())
def test_published_consistency_probe(path: str, probe: dict[str, Any]) -> None:
    roots = b64([probe["root1"], probe["root2"]])
    args = (probe["size1"], probe["size2"], *roots, b64(probe["proof"]))
    assert rejects(verify_consistency, *args) == probe["wantErr"], probe["desc"]


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> Probes:
    """proof/verify_test.go corruptInclusionProof: each probe must be refused."""
    probes: Probes = {
        "leafIndex - 1": (leaf, index - 1, size, proof, root),
        "leafIndex + 1": (leaf, index + 1, size, proof, root),
        "leafIndex ^ 2": (leaf, index ^ 2, size, proof, root),
        "treeSize * 2": (leaf, index, size * 2, proof, root),
        "treeSize / 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", index, size, proof, root),
        "empty root": (leaf, index, size, proof, ROOTS[0]),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
    }
    for i in range(len(proof)):
        flipped = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        probes[f"modified proof[{i}] bit 3"] = (leaf, index, size, [*proof[:i], flipped, *proof[i + 1 :]], root)
    if proof:
        probes["removed component"] = (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        probes["inserted component"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    return probes


def _corrupt_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]) -> Probes:
    """proof/verify_test.go corruptConsistencyProof: each probe must be refused."""
    probes: Probes = {
        "size1 - 1": (old - 1, new, r1, r2, proof),
        "size1 + 1": (old + 1, new, r1, r2, proof),
        "size1 ^ 2": (old ^ 2, new, r1, r2, proof),
        "size2 * 2": (old, new * 2, r1, r2, proof),
        "size2 / 2": (old, new // 2, r1, r2, proof),
        "wrong root1": (old, new, b"WrongRoot", r2, proof),
        "wrong root2": (old, new, r1, b"WrongRoot", proof),
        "swapped roots": (old, new, r2, r1, proof),
        "empty proof": (old, new, r1, r2, []),
        "trailing garbage": (old, new, r1, r2, [*proof, b""]),
        "trailing root1": (old, new, r1, r2, [*proof, r1]),
        "trailing root2": (old, new, r1, r2, [*proof, r2]),
        "preceding garbage": (old, new, r1, r2, [b"", *proof]),
        "preceding root1": (old, new, r1, r2, [r1, *proof]),
        "preceding root2": (old, new, r1, r2, [r2, *proof]),
        "preceding proof[0]": (old, new, r1, r2, [proof[0], *proof]),
        "truncated proof": (old, new, r1, r2, proof[:-1]),
    }
    for i in range(len(proof)):
        flipped = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        probes[f"modified proof[{i}] bit 4"] = (old, new, r1, r2, [*proof[:i], flipped, *proof[i + 1 :]])
    return probes


@pytest.mark.parametrize(
    ("leaf", "size", "proof"), [(v["leaf"], v["size"], v["proof"]) for v in V["verify_test_inclusion_proofs"]]
)
def test_go_corruptions_of_published_inclusion_proofs_are_refused(leaf: int, size: int, proof: list[str]) -> None:
    index = leaf - 1
    probes = _corrupt_inclusion(index, size, hx(proof), ROOTS[size], hash_leaf(LEAVES[index]))
    assert [desc for desc, args in probes.items() if not rejects(verify_inclusion, *args)] == []


@pytest.mark.parametrize(
    ("old", "new", "proof"),
    [(v["size1"], v["size2"], v["proof"]) for v in V["verify_test_consistency_proofs"] if v["proof"]],
)
def test_go_corruptions_of_published_consistency_proofs_are_refused(old: int, new: int, proof: list[str]) -> None:
    probes = _corrupt_consistency(old, new, ROOTS[old], ROOTS[new], hx(proof))
    assert [desc for desc, args in probes.items() if not rejects(verify_consistency, *args)] == []


def test_go_single_entry_cases() -> None:
    # TestVerifyInclusionSingleEntry: a one-leaf tree's root is its leaf hash, and hashes are 32 bytes.
    cases = V["verify_inclusion_single_entry"]
    symbols = {"leaf_hash": hash_leaf(bytes.fromhex(cases["leaf_data"])), "empty": b""}
    for case in cases["cases"]:
        leaf, root_hash = symbols[case["leaf"]], symbols[case["root"]]
        assert rejects(verify_inclusion, leaf, 0, 1, [], root_hash) == case["want_err"], case


def test_go_inclusion_probes_with_impossible_sizes() -> None:
    cases = V["verify_inclusion_bad_sizes"]
    for probe in cases["probes"]:
        for case in cases["cases"]:
            leaf, root_hash = SYMBOLS[case["leaf"]], SYMBOLS[case["root"]]
            assert rejects(verify_inclusion, leaf, probe["index"], probe["size"], [], root_hash), (probe, case)


def test_go_consistency_edge_cases() -> None:
    # TestVerifyConsistency. Its "don't care" roots are 12-byte placeholders, which pchr refuses (below); they
    # are widened to 32 bytes here, keeping which of them are equal, which is all those cases are about.
    symbols = {
        **SYMBOLS,
        "dont_care_1": hashlib.sha256(b"don't care 1").digest(),
        "dont_care_2": hashlib.sha256(b"don't care 2").digest(),
    }
    for case in V["verify_consistency_edge_cases"]:
        args = (case["size1"], case["size2"], symbols[case["root1"]], symbols[case["root2"]])
        proof = [symbols[p] for p in case["proof"]]
        assert rejects(verify_consistency, *args, proof) == case["want_err"], case


def test_hashes_that_are_not_32_bytes_are_refused_even_where_the_sizes_decide() -> None:
    with pytest.raises(ProofError, match="old root is 12 bytes, not 32"):
        verify_consistency(0, 0, b"don't care 1", b"don't care 1", [])
    with pytest.raises(ProofError, match="leaf hash is 0 bytes, not 32"):
        verify_inclusion(b"", 0, 1, [], b"")
    with pytest.raises(ProofError, match="proof hash 1 is 0 bytes"):
        verify_inclusion(hash_leaf(LEAVES[0]), 0, 8, [ROOTS[1], b"", ROOTS[2]], ROOTS[8])


# --- Behaviour ------------------------------------------------------------------------------------------------


def test_proof_error_says_what_failed_and_keeps_the_sizes(tree: InMemoryTree) -> None:
    proof = tree.inclusion_proof(2, 5)
    with pytest.raises(ProofError) as caught:
        verify_inclusion(hash_leaf(LEAVES[2]), 2, 5, proof, ROOTS[6])
    assert str(caught.value) == "inclusion proof does not lead to the root hash (index 2, size 5)"
    assert (caught.value.index, caught.value.size, caught.value.old_size) == (2, 5, None)
    with pytest.raises(ProofError) as caught:
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], proof)
    assert (caught.value.old_size, caught.value.new_size, caught.value.index) == (6, 8, None)
    assert str(caught.value).endswith("(old size 6, new size 8)")


def test_roots_and_nodes_of_every_past_size_come_from_the_grown_store() -> None:
    log = entries(b"past", MAX_LEAVES)
    leaf_hashes = [hash_leaf(e) for e in log]
    grown = InMemoryTree(log)
    for size in range(MAX_LEAVES + 1):
        assert grown.root(size) == root_from_leaves(leaf_hashes[:size])
    for level in range(MAX_LEAVES.bit_length()):
        for index in range(MAX_LEAVES >> level):
            span = leaf_hashes[index << level : (index + 1) << level]
            assert grown.node(level, index) == root_from_leaves(span)


def test_the_store_refuses_what_it_does_not_hold(tree: InMemoryTree) -> None:
    with pytest.raises(ValueError, match="size 9 is not reached by a tree of size 8"):
        tree.root(9)
    with pytest.raises(ValueError, match="leaf index 8 is not in a tree of size 8"):
        tree.inclusion_proof(8)
    with pytest.raises(ValueError, match="no consistency proof from size 5 to size 3"):
        tree.consistency_proof(5, 3)
    with pytest.raises(IndexError, match=r"no complete node \(1, 4\)"):
        tree.node(1, 4)
    with pytest.raises(IndexError):
        tree.node(0, -1)
    with pytest.raises(ValueError, match="not negative"):
        root(-1, tree.node)
    with pytest.raises(ValueError, match="a leaf hash is 32 bytes"):
        tree.append_hash(b"short")


def _uniform_tree(leaf: bytes) -> NodeReader:
    """A consistent store of any size in O(1): with every leaf equal, a node's hash depends on its level only."""
    perfect = [hash_leaf(leaf)]
    for _ in range(64):
        perfect.append(hash_children(perfect[-1], perfect[-1]))
    return lambda level, index: perfect[level]


@pytest.mark.parametrize("size", [2**20, 10**6, 2**40 - 1, 2**40 + 12345, 2**63 + 1])
def test_proofs_need_a_logarithmic_number_of_node_fetches_and_verify_at_any_size(size: int) -> None:
    fetches: list[tuple[int, int]] = []
    store = _uniform_tree(b"entry")

    def node(level: int, index: int) -> bytes:
        fetches.append((level, index))
        assert (index + 1) << level <= size, "only complete nodes are ever read"
        return store(level, index)

    depth = (size - 1).bit_length()
    new_root = root(size, node)
    assert len(fetches) <= depth + 1
    for index in (0, size // 3, size - 2, size - 1):
        fetches.clear()
        proof = inclusion_proof(index, size, node)
        assert len(fetches) <= 2 * depth
        verify_inclusion(hash_leaf(b"entry"), index, size, proof, new_root)
    for old in (1, size // 2 + 1, size - 1):
        fetches.clear()
        proof = consistency_proof(old, size, node)
        assert len(fetches) <= 2 * depth
        verify_consistency(old, size, root(old, store), new_root, proof)


# --- Properties against the RFC's own recursion ---------------------------------------------------------------


def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 section 2.1.3.1, over leaf hashes."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), root_from_leaves(d[k:])]
    return [*rfc_path(m - k, d[k:]), root_from_leaves(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 section 2.1.4.1, over leaf hashes."""
    if m == len(d):
        return [] if b else [root_from_leaves(d)]
    k = _k(len(d))
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), root_from_leaves(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), root_from_leaves(d[:k])]


def _flip(hashes: list[bytes], where: tuple[int, int, int]) -> list[bytes]:
    which, byte, bit = where
    h = bytearray(hashes[which])
    h[byte] ^= 1 << bit
    return [*hashes[:which], bytes(h), *hashes[which + 1 :]]


@given(inclusion_cases())
def test_inclusion_proof_is_the_rfc_path_and_verifies(case: tuple[list[bytes], int]) -> None:
    log, index = case
    tree = InMemoryTree(log)
    proof = tree.inclusion_proof(index)
    assert proof == rfc_path(index, [hash_leaf(e) for e in log])
    verify_inclusion(hash_leaf(log[index]), index, len(log), proof, tree.root())


@given(inclusion_cases(), st.data())
def test_inclusion_proof_with_any_bit_flipped_is_refused(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    log, index = case
    tree = InMemoryTree(log)
    proof, leaf, root_hash = tree.inclusion_proof(index), hash_leaf(log[index]), tree.root()
    # One list: the proof, then the leaf hash, then the root; a flip anywhere must be caught.
    everything = [*proof, leaf, root_hash]
    flipped = _flip(everything, data.draw(bit_flips(len(everything))))
    with pytest.raises(ProofError):
        verify_inclusion(flipped[-2], index, len(log), flipped[:-2], flipped[-1])


@given(inclusion_cases(), st.data())
def test_inclusion_proof_is_bound_to_its_index_and_its_tree(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    log, index = case
    tree = InMemoryTree(log)
    proof, leaf = tree.inclusion_proof(index), hash_leaf(log[index])
    for other_index in data.draw(st.lists(st.integers(0, len(log) - 1), min_size=1, max_size=3)):
        if other_index != index:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, other_index, len(log), proof, tree.root())
    # Against another tree of this log, given by its size *and* its root, as a checkpoint pairs them. (The same
    # root with another size can pass where both sizes give the path one shape: the root is what binds the tree.)
    for other_size in data.draw(st.lists(st.integers(index + 1, len(log)), min_size=1, max_size=3)):
        if other_size != len(log):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, other_size, proof, tree.root(other_size))


@given(consistency_cases())
def test_consistency_proof_is_the_rfc_proof_and_verifies(case: tuple[list[bytes], int]) -> None:
    log, old = case
    tree = InMemoryTree(log)
    proof = tree.consistency_proof(old)
    assert proof == (rfc_subproof(old, [hash_leaf(e) for e in log], True) if old < len(log) else [])
    verify_consistency(old, len(log), tree.root(old), tree.root(), proof)


@given(consistency_cases(), st.data())
def test_consistency_proof_with_any_bit_flipped_is_refused(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    log, old = case
    tree = InMemoryTree(log)
    everything = [*tree.consistency_proof(old), tree.root(old), tree.root()]
    flipped = _flip(everything, data.draw(bit_flips(len(everything))))
    with pytest.raises(ProofError):
        verify_consistency(old, len(log), flipped[-2], flipped[-1], flipped[:-2])


@given(consistency_cases(), st.data())
def test_consistency_proof_is_bound_to_the_old_tree(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    log, old = case
    tree = InMemoryTree(log)
    proof = tree.consistency_proof(old)
    for other in data.draw(st.lists(st.integers(1, len(log)), min_size=1, max_size=3)):
        for claimed_root in (tree.root(old), tree.root(other)):
            if other != old:
                with pytest.raises(ProofError):
                    verify_consistency(other, len(log), claimed_root, tree.root(), proof)


def test_a_rewritten_entry_breaks_consistency_with_every_earlier_checkpoint() -> None:
    log = entries(b"history", 40)
    honest = InMemoryTree(log)
    rewritten = InMemoryTree([*log[:17], b"forged", *log[18:]])
    for old in range(18, 40):
        with pytest.raises(ProofError):
            verify_consistency(old, 40, honest.root(old), rewritten.root(), rewritten.consistency_proof(old))
    for old in range(1, 18):
        verify_consistency(old, 40, honest.root(old), rewritten.root(), rewritten.consistency_proof(old))
