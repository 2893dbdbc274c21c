"""The grant state tree: a fixed-depth Poseidon Merkle tree whose leaves are the active grants' commitments.

Spec: ../shared/DESIGN.md section 4 ("Grant state tree") and section 6 (the consent circuit proves that a grant's
commitment is a leaf under a given root). The construction is the incremental Merkle tree of Tornado Cash and
Semaphore with **four children per node**, as MACI builds its quinary trees: depth :data:`DEPTH` = 10 of arity
:data:`ARITY` = 4, so 4^10 = 2^20 leaves, the capacity DESIGN.md's depth-20 binary tree has. A node is
``poseidon([c0, c1, c2, c3])`` of its children in order (circomlib Poseidon of width 5, :mod:`zk.poseidon`), an
empty leaf is 0 and an empty subtree at level ``l`` is ``Z[l] = poseidon([Z[l-1]] * 4)`` with ``Z[0] = 0``
(:func:`zero_hashes`).

Why four children: the consent circuit spends most of its constraints on this path. Poseidon's cost grows slowly
with its width (the Poseidon paper, Grassi et al., USENIX Security 2021, recommends arities 4 and 8 for Merkle trees
in circuits for this reason): a level of width 5 is 297 constraints, two binary levels of width 3 are 480. The
4-ary path puts the circuit under 4,096 constraints, which halves the prover's FFT domain (:mod:`zk.consent_circuit`).

Grants are appended at the next free index; revoking one sets its leaf to 0 and its index is never reused, so the
root after each GRANT / REVOKE event is a function of the public events alone (:func:`replay`): auditors
recompute the ledger's root history from them.

Only nodes on the path of some appended leaf are stored, behind the two-method :class:`NodeStore` (an in-memory
dict here, SQL in ``consent_chain.backends.sql``); any node never written is the empty subtree of its level, so a
million grants take about 1.33 million stored nodes, not the full tree's. Batch updates (:meth:`GrantTree.extend`,
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
    "ARITY",
    "DEPTH",
    "EMPTY_LEAF",
    "Event",
    "GrantTree",
    "MemoryNodeStore",
    "MerklePath",
    "NodeStore",
    "compute_root",
    "hash_children",
    "path_children",
    "replay",
    "verify_path",
    "zero_hashes",
]

ARITY: Final = 4
"""Children per node."""
DEPTH: Final = 10
"""Levels from the leaves to the root: ``ARITY ** DEPTH`` = 2^20 leaves."""
EMPTY_LEAF: Final = 0
_SHIFT: Final = 2  # log2(ARITY): a node's index at the next level up is index >> _SHIFT
# Deeper trees are not needed (2^20 grants) and would only make paths longer; the bound keeps indices sane (4^16 =
# 2^32).
_MAX_DEPTH: Final = 16

if 1 << _SHIFT != ARITY:
    raise ValueError("the grant tree's arity must be 2 ** _SHIFT")

Event = tuple[Literal["grant"], int] | tuple[Literal["revoke"], int]
"""A public ledger event as the tree sees it: ``("grant", commitment)`` or ``("revoke", leaf_index)``."""

Siblings = tuple[int, int, int]
"""A node's ``ARITY - 1`` siblings at one level, in order, the node's own place left out."""


def hash_children(children: Sequence[int]) -> int:
    """An inner node: circomlib ``Poseidon(4)`` of its four children, left to right."""
    if len(children) != ARITY:
        raise ValueError(f"a grant tree node has {ARITY} children, not {len(children)}")
    return poseidon(tuple(children))


@cache
def zero_hashes(depth: int = DEPTH) -> tuple[int, ...]:
    """``Z[0..depth]``: the root of an empty subtree of each height (``Z[0]`` is the empty leaf)."""
    if depth == 0:
        return (EMPTY_LEAF,)
    below = zero_hashes(depth - 1)
    return (*below, hash_children((below[-1],) * ARITY))


def _is_field_element(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < BN254_R


@dataclass(frozen=True)
class MerklePath:
    """A leaf's authentication path: its index and, for each level from the leaves up to below the root, the three
    siblings of the path's node there, in order.

    ``positions`` are the index's base-4 digits, bottom-up: the node at level ``l`` is child ``positions[l]`` of its
    parent, whose children are ``siblings[l]`` with the node put in at that place (:meth:`children`).
    """

    index: int
    siblings: tuple[Siblings, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.siblings, tuple) or not 1 <= len(self.siblings) <= _MAX_DEPTH:
            raise ValueError(f"a Merkle path has a tuple of 1..{_MAX_DEPTH} levels of siblings")
        for level in self.siblings:
            if not isinstance(level, tuple) or len(level) != ARITY - 1:
                raise ValueError(f"each level of a Merkle path is a tuple of {ARITY - 1} siblings")
            if not all(_is_field_element(s) for s in level):
                raise ValueError("Merkle path siblings must be field elements (0 <= x < r)")
        depth = len(self.siblings)
        if not isinstance(self.index, int) or isinstance(self.index, bool) or not 0 <= self.index < ARITY**depth:
            raise ValueError(f"a depth-{depth} Merkle path's index must be in 0..{ARITY}^{depth}-1")

    @property
    def depth(self) -> int:
        return len(self.siblings)

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple((self.index >> (_SHIFT * level)) & (ARITY - 1) for level in range(self.depth))

    def children(self, level: int, node: int) -> tuple[int, ...]:
        """The children of the parent of ``node`` at ``level``: its siblings there, with ``node`` in its place."""
        position, siblings = self.positions[level], self.siblings[level]
        return (*siblings[:position], node, *siblings[position:])

    def to_json(self) -> dict[str, object]:
        """``{"leafIndex": n, "siblings": [["s0", "s1", "s2"], ...]}``, decimal strings bottom-up (the ledger API)."""
        return {"leafIndex": self.index, "siblings": [[str(s) for s in level] for level in self.siblings]}

    @classmethod
    def from_json(cls, doc: object) -> MerklePath:
        """The path of :meth:`to_json`; ValueError for anything else."""
        try:
            index, levels = doc["leafIndex"], doc["siblings"]  # type: ignore[index]
            if not isinstance(index, int) or not isinstance(levels, list):
                raise TypeError
            siblings = tuple(_parse_level(level) for level in levels)
        except (KeyError, TypeError) as exc:
            raise ValueError(
                'a grant tree path is {"leafIndex": int, "siblings": [[3 decimal strings] per level]}'
            ) from exc
        return cls(index, siblings)  # type: ignore[arg-type]


def _parse_level(level: object) -> tuple[int, ...]:
    if not isinstance(level, list) or not all(isinstance(s, str) and s.isascii() and s.isdigit() for s in level):
        raise TypeError
    return tuple(int(s) for s in level)


def path_children(leaf: int, path: MerklePath) -> tuple[tuple[int, ...], ...]:
    """The children of each node on the way from ``leaf`` to the root, bottom-up: level ``l``'s holds the path's node
    at level ``l`` in its place. The consent circuit's Merkle witness (:func:`zk.gadgets.merkle_root`).
    """
    levels = []
    node = leaf
    for level in range(path.depth):
        children = path.children(level, node)
        levels.append(children)
        node = hash_children(children)
    return tuple(levels)


def compute_root(leaf: int, path: MerklePath) -> int:
    """The root that ``leaf`` at ``path.index`` with ``path.siblings`` hashes up to."""
    return hash_children(path_children(leaf, path)[-1])


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
        if not isinstance(size, int) or not 0 <= size <= ARITY**depth:
            raise ValueError(f"a depth-{depth} grant tree holds 0..{ARITY}^{depth} leaves, not {size!r}")
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
        return 1 << (_SHIFT * self._depth)

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
        levels = []
        for level in range(self._depth):
            node = index >> (_SHIFT * level)
            first = node & ~(ARITY - 1)
            levels.append(tuple(self._node(level, first + k) for k in range(ARITY) if first + k != node))
        return MerklePath(index, tuple(levels))  # type: ignore[arg-type]

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
            empty, parents = zeros[level], {index >> _SHIFT for index in dirty}
            for parent in parents:
                children = []
                for index in range(parent << _SHIFT, (parent + 1) << _SHIFT):
                    child = pending.get((level, index))
                    children.append(self._node(level, index) if child is None else child)
                # Revocations empty whole subtrees again; their hash is known without hashing.
                all_empty = all(child == empty for child in children)
                pending[(level + 1, parent)] = zeros[level + 1] if all_empty else hash_children(children)
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
