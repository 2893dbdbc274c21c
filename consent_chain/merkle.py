"""RFC 9162 Merkle tree hashing, inclusion and consistency proofs, computed from stored subtree hashes.

Spec: RFC 9162 (Certificate Transparency 2.0) section 2.1, the same tree as RFC 6962 section 2.1, with SHA-256:

- 2.1.1  MTH: the empty tree hashes to SHA-256(""), a leaf to SHA-256(0x00 || d), an interior node to
  SHA-256(0x01 || left || right); D[n] splits at k, the largest power of two smaller than n.
- 2.1.3.1 / 2.1.3.2  the inclusion proof PATH(m, D[n]) and its verification.
- 2.1.4.1 / 2.1.4.2  the consistency proof PROOF(m, D[n]) and its verification.

Names follow the RFC and sigstore-python's ``merkle.py`` (``hash_leaf``, ``hash_children``, ``verify_inclusion``).

Storage model. The log holds millions of entries in SQL, so nothing here needs all the leaves. A tree is read
through ``node(level, index)``: the hash of the *complete* subtree over leaves ``[index * 2**level,
(index + 1) * 2**level)``. In an append-only log such a node never changes once its last leaf is in, so a store
writes each node once (the ones :func:`new_nodes` returns on append) and everything else is assembled from
O(log n) of them: the root of any size, past or present, folds the nodes of that size's binary decomposition (the
"compact range" of transparency-dev/merkle), and a proof element that covers a ragged right edge is folded the
same way. Proof bytes are exactly those of the RFC's recursive definitions; :func:`root_from_leaves` is the
recursive MTH kept as a reference for tests.

Pure: hashlib and the standard library's abstract types only; I/O is the caller's ``node`` callable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from consent_chain.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "InMemoryTree",
    "NodeReader",
    "consistency_proof",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "new_nodes",
    "root",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of the complete subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 section 2.1.1)."""

# The published empty-tree hash (transparency-dev/merkle testonly/constants.go EmptyRootHash).
if EMPTY_ROOT.hex() != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855":
    raise RuntimeError("SHA-256 of the empty string is not the RFC 9162 empty root")


def hash_leaf(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the leaf hash of entry ``data`` (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the recursive definition of RFC 9162 section 2.1.1, over leaf *hashes*.

    O(n): a reference to cross-check :func:`root` against, not for the log itself.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return hash_children(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


def root(size: int, node: NodeReader) -> bytes:
    """MTH of the first ``size`` leaves, from at most log2(size) + 1 node fetches.

    Works for any size the store has reached, not only the current one: complete nodes never change.
    """
    if size < 0:
        raise ValueError(f"a tree size is not negative: {size}")
    if size == 0:
        return EMPTY_ROOT
    return _range_root(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, leaf-side first, from O(log size) node fetches.

    Walking up from the leaf, each level contributes the subtree beside the current one, if the tree reaches
    it: a left neighbour is always complete; a right neighbour cut short by the end of the tree is the one
    ragged subtree on the path, folded from its own decomposition.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    for level in range((size - 1).bit_length()):
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start >= size:
            continue  # nothing to the right at this level: the RFC's split promotes the node unchanged
        if start + (1 << level) <= size:
            proof.append(node(level, sibling))
        else:
            proof.append(_range_root(start, size, node))
    return proof


def consistency_proof(old_size: int, new_size: int, node: NodeReader) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1, from O(log new_size) node fetches.

    An unrolled SUBPROOF(m, D[n], b): it descends from the root towards the old tree's right edge, recording the
    subtree it steps away from at each split; the RFC appends those after the recursive part, so the list is
    built top-down and returned reversed. Empty when ``old_size`` is 0 or equal to ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    top_down: list[bytes] = []
    m, n, offset = old_size, new_size, 0
    old_root_is_a_node = True  # the RFC's b: whether MTH(D[m]) is known to the verifier as the old root
    while m != n:
        k = _split(n)
        if m <= k:
            # Only the first step left can meet the ragged right edge; below it every subtree is complete.
            top_down.append(_range_root(offset + k, offset + n, node))
            n = k
        else:
            top_down.append(node(k.bit_length() - 1, offset // k))
            offset, m, n = offset + k, m - k, n - k
            old_root_is_a_node = False
    if not old_root_is_a_node:
        top_down.append(_range_root(offset, offset + m, node))
    top_down.reverse()
    return top_down


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with hash ``root``.

    The algorithm of RFC 9162 section 2.1.3.2, step for step. Raises :class:`ProofError` saying why not.
    """

    def fail(reason: str) -> ProofError:
        return ProofError(reason, index=index, size=size)

    if not 0 <= index < size:
        raise fail("leaf index is not in the tree")
    _check_hashes(fail, leaf_hash=leaf_hash, root=root, proof=proof)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise fail("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise fail("inclusion proof is shorter than the path to the root")
    if r != root:
        raise fail("inclusion proof does not lead to the root hash")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` leaves hashing to ``old_root`` is a prefix of the ``new_size`` one.

    The algorithm of RFC 9162 section 2.1.4.2, step for step, after the cases the RFC leaves out (its PROOF is
    defined for 0 < m < n): equal sizes need equal roots and an empty proof; an empty old tree is a prefix of
    every tree. Raises :class:`ProofError` saying why not.
    """

    def fail(reason: str) -> ProofError:
        return ProofError(reason, old_size=old_size, new_size=new_size)

    if not 0 <= old_size <= new_size:
        raise fail("the old tree is larger than the new one")
    _check_hashes(fail, old_root=old_root, new_root=new_root, proof=proof)
    if old_size == new_size:
        if proof:
            raise fail("trees of equal size need an empty consistency proof")
        if old_root != new_root:
            raise fail("trees of equal size have different root hashes")
        return
    if old_size == 0:
        if proof:
            raise fail("an empty old tree needs an empty consistency proof")
        return
    if not proof:
        raise fail("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # step 2: the old tree is one complete subtree of the new one
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise fail("consistency proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise fail("consistency proof is shorter than the trees need")
    if fr != old_root:
        raise fail("consistency proof does not lead to the old root hash")
    if sr != new_root:
        raise fail("consistency proof does not lead to the new root hash")


def new_nodes(index: int, leaf_hash: bytes, node: NodeReader) -> list[tuple[int, int, bytes]]:
    """The complete nodes ``(level, index, hash)`` that appending leaf number ``index`` creates, leaf first.

    Level 0 is ``leaf_hash`` itself; each further level exists when the new leaf completes a subtree, i.e. once
    per trailing 1 bit of ``index``. ``node`` must already hold the nodes of leaves ``0 .. index - 1``; only the
    left neighbours on the way up are read. A store persists exactly these, once, and never rewrites them.
    """
    if index < 0:
        raise ValueError(f"a leaf index is not negative: {index}")
    if len(leaf_hash) != HASH_SIZE:
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
    created = [(0, index, leaf_hash)]
    level, i, h = 0, index, leaf_hash
    while i & 1:
        h = hash_children(node(level, i - 1), h)
        level, i = level + 1, i >> 1
        created.append((level, i, h))
    return created


class InMemoryTree:
    """An append-only tree whose complete nodes live in lists: for tests, benchmarks and small tools.

    ``node`` is a :data:`NodeReader`, so the module's functions run on it unchanged, as on a SQL store.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []
        for data in leaves:
            self.append(data)

    @property
    def size(self) -> int:
        return len(self._levels[0]) if self._levels else 0

    def node(self, level: int, index: int) -> bytes:
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise IndexError(f"no complete node ({level}, {index}) in a tree of size {self.size}")

    def append(self, data: bytes) -> int:
        """Add an entry; returns its leaf index."""
        return self.append_hash(hash_leaf(data))

    def append_hash(self, leaf_hash: bytes) -> int:
        """Add a leaf by its hash (RFC 9162's MTH({d})); returns its leaf index."""
        index = self.size
        for level, _, h in new_nodes(index, leaf_hash, self.node):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(h)  # new_nodes yields index len(level) at each level, in order
        return index

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: now); any past size works."""
        return root(self._at(size), self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._at(size), self.node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self._at(new_size), self.node)

    def _at(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is not reached by a tree of size {self.size}")
        return size


def _split(n: int) -> int:
    """k of RFC 9162 section 2.1.1: the largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_root(start: int, end: int, node: NodeReader) -> bytes:
    """MTH(D[start:end]) for ``start`` a multiple of a power of two at least ``end - start``.

    Such a range is a (possibly ragged) subtree of the log's tree; its complete nodes are the set bits of its
    length, largest first, and the RFC's split-at-the-largest-power-of-two folds them from the right.
    """
    length = end - start
    peaks: list[bytes] = []
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            peaks.append(node(level, start >> level))
            start += 1 << level
    h = peaks.pop()
    while peaks:
        h = hash_children(peaks.pop(), h)
    return h


def _check_hashes(fail: Callable[[str], ProofError], *, proof: Sequence[bytes], **hashes: bytes) -> None:
    # The RFC's arithmetic alone would accept, say, a 0-byte leaf against a 0-byte root in a one-leaf tree.
    for name, value in hashes.items():
        if len(value) != HASH_SIZE:
            raise fail(f"{name.replace('_', ' ')} is {len(value)} bytes, not {HASH_SIZE}")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise fail(f"proof hash {i} is {len(p)} bytes, not {HASH_SIZE}")
