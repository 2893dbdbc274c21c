"""The grant state tree: a fixed-depth Poseidon Merkle tree whose leaves are the active grants' commitments.

Spec: ../shared/DESIGN.md section 4 ("Grant state tree") and section 6 (the consent circuit proves that a grant's
commitment is a leaf under a given root). The construction is the incremental Merkle tree of Tornado Cash and
Semaphore, as circomlib's Merkle checkers verify it: binary, depth :data:`DEPTH` (2^20 leaves), a node is
``poseidon([left, right])`` (circomlib Poseidon, :mod:`zk.poseidon`), an empty leaf is 0 and an empty subtree at
level ``l`` is ``Z[l] = poseidon([Z[l-1], Z[l-1]])`` with ``Z[0] = 0`` (:func:`zero_hashes`).

Grants are appended at the next free index; revoking one sets its leaf to 0 and its index is never reused, so the
root after each GRANT / REVOKE event is a function of the public events alone (:func:`replay`): auditors
recompute the ledger's root history from them.

Only nodes on the path of some appended leaf are stored, behind the two-method :class:`NodeStore` (an in-memory
dict here, SQL in ``consent_chain.backends.sql``); any node never written is the empty subtree of its level, so a
million grants take about two million stored nodes, not 2^21. Batch updates (:meth:`GrantTree.extend`,
:meth:`GrantTree.update`, :meth:`GrantTree.revoke_many`) hash each shared ancestor once.

Pure: no I/O beyond the store passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal, Protocol

from zk.poseidon import BN254_R, poseidon

__all__ = [
    "DEPTH",
    "EMPTY_LEAF",
    "Event",
    "GrantTree",
    "MemoryNodeStore",
    "MerklePath",
    "NodeStore",
    "compute_root",
    "hash_children",
    "replay",
    "verify_path",
    "zero_hashes",
]

DEPTH: Final = 20
EMPTY_LEAF: Final = 0
# Deeper trees are not needed (2^20 grants) and would only make paths longer; the bound keeps indices sane.
_MAX_DEPTH: Final = 32

Event = tuple[Literal["grant"], int] | tuple[Literal["revoke"], int]
"""A public ledger event as the tree sees it: ``("grant", commitment)`` or ``("revoke", leaf_index)``."""


def hash_children(left: int, right: int) -> int:
    """An inner node: circomlib ``Poseidon(2)`` of its children."""
    return poseidon((left, right))


@cache
def zero_hashes(depth: int = DEPTH) -> tuple[int, ...]:
    """``Z[0..depth]``: the root of an empty subtree of each height (``Z[0]`` is the empty leaf)."""
    if depth == 0:
        return (EMPTY_LEAF,)
    below = zero_hashes(depth - 1)
    return (*below, hash_children(below[-1], below[-1]))


def _is_field_element(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < BN254_R


@dataclass(frozen=True)
class MerklePath:
    """A leaf's authentication path: its index and its siblings from the leaf level up to below the root.

    ``bits`` are the circuit's path indices, bottom-up: bit ``l`` is 1 when the node at level ``l`` is a right
    child, so that its parent is ``hash_children(sibling, node)``.
    """

    index: int
    siblings: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.siblings, tuple) or not 1 <= len(self.siblings) <= _MAX_DEPTH:
            raise ValueError(f"a Merkle path has a tuple of 1..{_MAX_DEPTH} siblings")
        if not all(_is_field_element(s) for s in self.siblings):
            raise ValueError("Merkle path siblings must be field elements (0 <= x < r)")
        if not isinstance(self.index, int) or not 0 <= self.index < 1 << len(self.siblings):
            raise ValueError(f"a depth-{len(self.siblings)} Merkle path's index must be in 0..2^{len(self.siblings)}-1")

    @property
    def depth(self) -> int:
        return len(self.siblings)

    @property
    def bits(self) -> tuple[int, ...]:
        return tuple((self.index >> level) & 1 for level in range(self.depth))


def compute_root(leaf: int, path: MerklePath) -> int:
    """The root that ``leaf`` at ``path.index`` with ``path.siblings`` hashes up to."""
    node = leaf
    for bit, sibling in zip(path.bits, path.siblings, strict=True):
        node = hash_children(sibling, node) if bit else hash_children(node, sibling)
    return node


def verify_path(leaf: int, path: MerklePath, root: int) -> bool:
    """Whether ``leaf`` sits at ``path.index`` in the tree with ``root``; False for any malformed input."""
    if not (_is_field_element(leaf) and _is_field_element(root) and isinstance(path, MerklePath)):
        return False
    return compute_root(leaf, path) == root


class NodeStore(Protocol):
    """Where a :class:`GrantTree` keeps its nodes: level 0 holds the leaves, level ``depth`` the root.

    ``get`` returns ``None`` for a node never written (the tree reads it as the empty subtree of its level).
    ``put_many`` writes one update's nodes at once (an adapter over a database does it in the caller's
    transaction, so a reader never sees half an update); a value may be an empty-subtree hash, after revocations.
    """

    def get(self, level: int, index: int) -> int | None: ...

    def put_many(self, nodes: Sequence[tuple[int, int, int]]) -> None: ...


class MemoryNodeStore:
    """A :class:`NodeStore` in a dict per level."""

    def __init__(self) -> None:
        self._levels: dict[int, dict[int, int]] = {}

    def get(self, level: int, index: int) -> int | None:
        nodes = self._levels.get(level)
        return None if nodes is None else nodes.get(index)

    def put_many(self, nodes: Sequence[tuple[int, int, int]]) -> None:
        for level, index, value in nodes:
            self._levels.setdefault(level, {})[index] = value

    def __len__(self) -> int:
        return sum(len(nodes) for nodes in self._levels.values())


class GrantTree:
    """The grant state tree over a :class:`NodeStore`; ``size`` is the number of leaves ever appended.

    The store holds the nodes, the caller the size (the ledger counts its GRANT events), so that a tree can be
    reopened over a store: ``GrantTree(store, size=n)``.
    """

    def __init__(self, store: NodeStore | None = None, *, size: int = 0, depth: int = DEPTH) -> None:
        if not isinstance(depth, int) or not 1 <= depth <= _MAX_DEPTH:
            raise ValueError(f"grant tree depth must be 1..{_MAX_DEPTH}, not {depth!r}")
        if not isinstance(size, int) or not 0 <= size <= 1 << depth:
            raise ValueError(f"a depth-{depth} grant tree holds 0..2^{depth} leaves, not {size!r}")
        self._store: NodeStore = MemoryNodeStore() if store is None else store
        self._size = size
        self._depth = depth
        self._zeros = zero_hashes(depth)

    @property
    def size(self) -> int:
        return self._size

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def capacity(self) -> int:
        return 1 << self._depth

    @property
    def root(self) -> int:
        return self._node(self._depth, 0)

    def leaf(self, index: int) -> int:
        """The commitment at ``index``, or 0 once revoked."""
        self._check_index(index)
        return self._node(0, index)

    def append(self, commitment: int) -> int:
        """Add a grant's commitment at the next free index and return that index."""
        return self.extend((commitment,))[0]

    def extend(self, commitments: Iterable[int]) -> range:
        """Append several commitments with one recomputation of their shared ancestors; returns their indices."""
        values = list(commitments)
        for value in values:
            if not _is_field_element(value) or value == EMPTY_LEAF:
                raise ValueError("a grant commitment is a non-zero field element (0 < c < r); 0 marks an empty leaf")
        if self._size + len(values) > self.capacity:
            raise IndexError(f"the grant tree is full: {self.capacity} leaves at depth {self._depth}")
        indices = range(self._size, self._size + len(values))
        self._write(dict(zip(indices, values, strict=True)))
        self._size += len(values)
        return indices

    def set_leaf(self, index: int, value: int) -> None:
        """Overwrite an existing leaf (0 empties it). The ledger only appends and revokes; this is the primitive."""
        self.update({index: value})

    def advance(self, commitments: Sequence[int], revoked: Iterable[int]) -> range:
        """Append ``commitments`` and empty the ``revoked`` leaves (old or just appended) in one pass.

        The ledger syncs the tree this way, a batch of log entries at a time: every shared ancestor is hashed once,
        and the result is the tree a one-by-one replay of the same events gives.
        """
        for value in commitments:
            if not _is_field_element(value) or value == EMPTY_LEAF:
                raise ValueError("a grant commitment is a non-zero field element (0 < c < r); 0 marks an empty leaf")
        if self._size + len(commitments) > self.capacity:
            raise IndexError(f"the grant tree is full: {self.capacity} leaves at depth {self._depth}")
        indices = range(self._size, self._size + len(commitments))
        leaves = dict(zip(indices, commitments, strict=True))
        self._size += len(commitments)
        for index in revoked:
            self._check_index(index)
            leaves[index] = EMPTY_LEAF
        self._write(leaves)
        return indices

    def update(self, leaves: Mapping[int, int]) -> None:
        """Overwrite several existing leaves, hashing each shared ancestor once."""
        for index, value in leaves.items():
            self._check_index(index)
            if not _is_field_element(value):
                raise ValueError("a grant tree leaf is a field element (0 <= x < r)")
        self._write(leaves)

    def revoke(self, index: int) -> None:
        """Empty the leaf of a revoked grant; its index stays used."""
        self.revoke_many((index,))

    def revoke_many(self, indices: Iterable[int]) -> None:
        """Revoke several grants with one recomputation of their shared ancestors."""
        targets = list(indices)
        for index in targets:
            self._check_index(index)
            if self._node(0, index) == EMPTY_LEAF:
                raise ValueError(f"grant tree leaf {index} is already revoked")
        if len(set(targets)) != len(targets):
            raise ValueError("a grant tree leaf is revoked twice in one batch")
        self._write(dict.fromkeys(targets, EMPTY_LEAF))

    def path(self, index: int) -> MerklePath:
        """The authentication path of leaf ``index`` under the current root."""
        self._check_index(index)
        siblings = tuple(self._node(level, (index >> level) ^ 1) for level in range(self._depth))
        return MerklePath(index, siblings)

    def _check_index(self, index: int) -> None:
        if not isinstance(index, int) or not 0 <= index < self._size:
            raise IndexError(f"no grant tree leaf {index!r}: the tree has {self._size} leaves")

    def _node(self, level: int, index: int) -> int:
        value = self._store.get(level, index)
        return self._zeros[level] if value is None else value

    def _write(self, leaves: Mapping[int, int]) -> None:
        """Set leaves, then recompute their ancestors level by level, each once, and store it all in one batch."""
        if not leaves:
            return
        zeros = self._zeros
        pending: dict[tuple[int, int], int] = {(0, index): value for index, value in leaves.items()}
        dirty = set(leaves)
        for level in range(self._depth):
            empty, parents = zeros[level], {index >> 1 for index in dirty}
            for parent in parents:
                left = pending.get((level, 2 * parent))
                left = self._node(level, 2 * parent) if left is None else left
                right = pending.get((level, 2 * parent + 1))
                right = self._node(level, 2 * parent + 1) if right is None else right
                # Revocations empty whole subtrees again; their hash is known without hashing.
                both_empty = left == empty and right == empty
                pending[(level + 1, parent)] = zeros[level + 1] if both_empty else hash_children(left, right)
            dirty = parents
        self._store.put_many([(level, index, value) for (level, index), value in pending.items()])


def replay(events: Iterable[Event], *, depth: int = DEPTH, store: NodeStore | None = None) -> list[int]:
    """The root after each event, rebuilding the tree from the ordered public GRANT / REVOKE events.

    The root before any event is ``zero_hashes(depth)[depth]``. Refuses (ValueError / IndexError, as the tree
    does) a revocation of a leaf that is not active, and an event of another kind.
    """
    tree = GrantTree(store, depth=depth)
    roots = []
    for event in events:
        kind, value = event
        if kind == "grant":
            tree.append(value)
        elif kind == "revoke":
            tree.revoke(value)
        else:
            raise ValueError(f"a grant tree event is ('grant', commitment) or ('revoke', index), not {event!r}")
        roots.append(tree.root)
    return roots
