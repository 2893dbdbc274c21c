"""Tree ensembles as plain data: XGBoost boosters read from their JSON model, a plaintext reference evaluator,
and the complete-tree layout that an encrypted evaluator works on.

Source: XGBoost's JSON model format ("Introduction to Model IO" in the XGBoost docs; ``doc/model.schema`` in
dmlc/xgboost), as written by ``Booster.save_raw("json")``. A tree is a set of parallel arrays indexed by node id,
node 0 the root: ``left_children`` / ``right_children`` (-1 on a leaf), ``split_indices`` (feature),
``split_conditions`` (the threshold on an internal node, the **leaf value** on a leaf), ``default_left`` and
``split_type`` (0 numeric, 1 categorical). Semantics follow XGBoost's ``RegTree::GetNext``: a numeric split sends
a row left when ``fvalue < split_condition``, both as float32, and a missing value (NaN) the way
``default_left`` says. The output margin is the base margin plus the sum of one leaf per tree. Since XGBoost 2
the learner stores ``base_score`` (estimated from the labels when not given) in ``learner_model_param``,
written as ``"[p]"``; for logistic objectives it is a probability and the base margin is ``logit(p)``
(``ObjFunction::ProbToMargin``).

What this module gives:

- :class:`Ensemble` / :class:`Tree` and :func:`margins`, the reference evaluator, equal to
  ``booster.predict(DMatrix(X, missing=nan), output_margin=True)`` (tests hold it to 1e-5, NaNs included);
- :func:`snap_thresholds`, which rewrites a booster's thresholds (used by training to put them between grid
  points, see :mod:`models.features`);
- :class:`Layout` (:func:`layout`): every tree padded to one depth *D* as a :class:`CompleteTree`, internal nodes
  in heap order (node *i* has children *2i+1* left and *2i+2* right) and *2^D* leaves left to right. A leaf
  above depth *D* becomes a subtree of :data:`PADDING` nodes whose leaves all carry its value, so every path has
  *D* decisions and a leaf's weight is the product of the decisions on its path;
- :meth:`Layout.resolve`: the decisions that are public given the used-feature mask (a node on a missing
  feature goes where ``default_left`` says; a padding node goes left) and :func:`path_margins`, the plaintext
  twin of the encrypted evaluation: leaf indicators as products of 0/1 decisions.

Pure: numpy and the standard library; no xgboost import.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import EnsembleError

__all__ = [
    "LOGISTIC_OBJECTIVES",
    "PADDING",
    "CompleteTree",
    "Ensemble",
    "Layout",
    "Node",
    "Tree",
    "layout",
    "margins",
    "path_margins",
    "sigmoid",
    "snap_thresholds",
]

PADDING = -1
"""The feature of a padding node: its decision does not matter (both subtrees carry the same leaf values)."""
LOGISTIC_OBJECTIVES = frozenset({"binary:logistic", "reg:logistic"})

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Tree:
    """One regression tree as parallel arrays indexed by node id (node 0 is the root)."""

    feature: tuple[int, ...]
    """Split feature of an internal node; -1 on a leaf."""
    threshold: tuple[float, ...]
    """Go left when ``x < threshold`` (compared as float32); NaN on a leaf."""
    left: tuple[int, ...]
    right: tuple[int, ...]
    default_left: tuple[bool, ...]
    """Where a missing value goes."""
    value: tuple[float, ...]
    """Leaf value; 0.0 on an internal node."""

    def __post_init__(self) -> None:
        n = len(self.feature)
        if n == 0 or any(len(a) != n for a in (self.threshold, self.left, self.right, self.default_left, self.value)):
            raise EnsembleError("a tree's node arrays must be non-empty and of one length")
        seen = set()
        stack = [0]
        while stack:
            i = stack.pop()
            if i in seen or not 0 <= i < n:
                raise EnsembleError("a tree's children must form a tree rooted at node 0")
            seen.add(i)
            if self.left[i] >= 0:
                if self.feature[i] < 0 or self.right[i] < 0:
                    raise EnsembleError(f"internal node {i} lacks a feature or a right child")
                stack += [self.left[i], self.right[i]]

    def is_leaf(self, i: int) -> bool:
        return self.left[i] < 0

    @cached_property
    def depth(self) -> int:
        """The number of decisions on the longest root-to-leaf path."""

        def walk(i: int) -> int:
            return 0 if self.is_leaf(i) else 1 + max(walk(self.left[i]), walk(self.right[i]))

        return walk(0)


@dataclass(frozen=True)
class Ensemble:
    """A boosted ensemble: margin = base_margin + sum over trees of the leaf a row reaches."""

    trees: tuple[Tree, ...]
    base_margin: float
    n_features: int
    objective: str

    def __post_init__(self) -> None:
        for tree in self.trees:
            if any(f >= self.n_features for f in tree.feature):
                raise EnsembleError(f"a split uses a feature beyond the model's {self.n_features}")

    @property
    def depth(self) -> int:
        return max((t.depth for t in self.trees), default=0)

    @classmethod
    def from_xgboost_json(cls, model: bytes | str | Mapping[str, Any]) -> Ensemble:
        """Read a booster's JSON model (``save_raw("json")``); refuses what the evaluators do not handle."""
        data = json.loads(model) if isinstance(model, bytes | str) else model
        try:
            learner = data["learner"]
            booster = learner["gradient_booster"]
            params = learner["learner_model_param"]
            objective = str(learner["objective"]["name"])
            if booster["name"] != "gbtree":
                raise EnsembleError(f"only gbtree boosters are supported, not {booster['name']!r}")
            if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")) > 1:
                raise EnsembleError("only single-output models are supported")
            if int(booster["model"]["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
                raise EnsembleError("random-forest style boosters (num_parallel_tree > 1) are not supported")
            base_score = _base_score(params["base_score"])
            trees = tuple(_tree(t) for t in booster["model"]["trees"])
            n_features = int(params["num_feature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EnsembleError(f"not an XGBoost JSON model: {exc!r}") from exc
        if objective in LOGISTIC_OBJECTIVES:
            if not 0.0 < base_score < 1.0:
                raise EnsembleError(f"base_score {base_score} is not a probability")
            base_margin = math.log(base_score / (1.0 - base_score))
        else:
            raise EnsembleError(f"objective {objective!r} is not supported (only logistic objectives)")
        return cls(trees, base_margin, n_features, objective)


def _base_score(raw: object) -> float:
    text = str(raw).strip()
    if text.startswith("["):
        values = [v for v in text.strip("[]").split(",") if v.strip()]
        if len(values) != 1:
            raise EnsembleError("a vector base_score (multi-output model) is not supported")
        text = values[0]
    return float(text)


def _tree(data: Mapping[str, Any]) -> Tree:
    left = [int(v) for v in data["left_children"]]
    right = [int(v) for v in data["right_children"]]
    cond = [float(v) for v in data["split_conditions"]]
    index = [int(v) for v in data["split_indices"]]
    dleft = [bool(int(v)) for v in data["default_left"]]
    split_type = [int(v) for v in data.get("split_type", [0] * len(left))]
    if int(data.get("tree_param", {}).get("size_leaf_vector", "1")) > 1:
        raise EnsembleError("vector leaves are not supported")
    leaf = [lc < 0 for lc in left]
    if any(t != 0 and not is_leaf for t, is_leaf in zip(split_type, leaf, strict=True)):
        raise EnsembleError("categorical splits are not supported")
    return Tree(
        feature=tuple(-1 if is_leaf else f for f, is_leaf in zip(index, leaf, strict=True)),
        threshold=tuple(math.nan if is_leaf else c for c, is_leaf in zip(cond, leaf, strict=True)),
        left=tuple(left),
        right=tuple(right),
        default_left=tuple(dleft),
        value=tuple(c if is_leaf else 0.0 for c, is_leaf in zip(cond, leaf, strict=True)),
    )


def snap_thresholds(model: Mapping[str, Any], snap: Sequence[Callable[[float], float]]) -> dict[str, Any]:
    """A copy of a booster's JSON model with each numeric threshold on feature *f* replaced by ``snap[f](t)``."""
    out: dict[str, Any] = copy.deepcopy(dict(model))
    for tree in out["learner"]["gradient_booster"]["model"]["trees"]:
        conditions = tree["split_conditions"]
        for i, (lc, f) in enumerate(zip(tree["left_children"], tree["split_indices"], strict=True)):
            if int(lc) >= 0:
                conditions[i] = snap[int(f)](float(conditions[i]))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reference evaluator


@dataclass(frozen=True)
class _Arrays:
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float32]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    default_left: npt.NDArray[np.bool_]
    value: FloatArray


@cache
def _arrays(tree: Tree) -> _Arrays:
    return _Arrays(
        np.array(tree.feature, dtype=np.int64),
        np.array(tree.threshold, dtype=np.float32),
        np.array(tree.left, dtype=np.int64),
        np.array(tree.right, dtype=np.int64),
        np.array(tree.default_left, dtype=np.bool_),
        np.array(tree.value, dtype=np.float64),
    )


def _rows(x: npt.ArrayLike, n_features: int) -> FloatArray:
    arr = np.array(x, dtype=np.float64, ndmin=2)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise EnsembleError(f"the model takes rows of {n_features} features, not shape {arr.shape}")
    return arr


def margins(ensemble: Ensemble, x: npt.ArrayLike) -> FloatArray:
    """Output margins of rows ``x`` (NaN = missing), as XGBoost's ``predict(..., output_margin=True)``."""
    rows = _rows(x, ensemble.n_features)
    x32 = rows.astype(np.float32)
    n = rows.shape[0]
    idx = np.arange(n)
    out = np.full(n, ensemble.base_margin, dtype=np.float64)
    for tree in ensemble.trees:
        a = _arrays(tree)
        node = np.zeros(n, dtype=np.int64)
        for _ in range(tree.depth):
            f = a.feature[node]
            v = x32[idx, np.maximum(f, 0)]
            go_left = np.where(np.isnan(v), a.default_left[node], v < a.threshold[node])
            node = np.where(f >= 0, np.where(go_left, a.left[node], a.right[node]), node)
        out += a.value[node]
    return out


def sigmoid(margin: npt.ArrayLike) -> FloatArray:
    """The probability for a logistic margin."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64))), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Complete-tree layout for encrypted evaluation


@dataclass(frozen=True)
class Node:
    """An internal node of a complete tree: go left when ``x[feature] < threshold``."""

    feature: int
    """The feature compared, or :data:`PADDING`."""
    threshold: float
    default_left: bool


@dataclass(frozen=True)
class CompleteTree:
    """A tree padded to ``depth``: ``2**depth - 1`` nodes in heap order and ``2**depth`` leaves, left to right."""

    depth: int
    nodes: tuple[Node, ...]
    leaves: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.nodes) != 2**self.depth - 1 or len(self.leaves) != 2**self.depth:
            raise EnsembleError("a complete tree of depth d has 2^d - 1 nodes and 2^d leaves")

    def resolve(self, used_mask: int) -> tuple[bool | None, ...]:
        """Per node, the public decision (True = left) or None when it must be compared on the data.

        A node on a feature outside ``used_mask`` (missing) goes where ``default_left`` says; a padding node goes
        left (both of its subtrees carry the same leaves).
        """
        return tuple(
            True if n.feature == PADDING else (None if used_mask >> n.feature & 1 else n.default_left)
            for n in self.nodes
        )


def complete(tree: Tree, depth: int | None = None) -> CompleteTree:
    """``tree`` padded to ``depth`` (default: its own depth)."""
    d = tree.depth if depth is None else depth
    if d < tree.depth:
        raise EnsembleError(f"cannot pad a tree of depth {tree.depth} to depth {d}")
    nodes: list[Node | None] = [None] * (2**d - 1)
    leaves: list[float] = [0.0] * (2**d)

    def fill(src: int, heap: int, level: int) -> None:
        if level == d:
            leaves[heap - (2**d - 1)] = tree.value[src]
            return
        if tree.is_leaf(src):
            nodes[heap] = Node(PADDING, math.nan, True)
            fill(src, 2 * heap + 1, level + 1)
            fill(src, 2 * heap + 2, level + 1)
            return
        nodes[heap] = Node(tree.feature[src], tree.threshold[src], tree.default_left[src])
        fill(tree.left[src], 2 * heap + 1, level + 1)
        fill(tree.right[src], 2 * heap + 2, level + 1)

    fill(0, 0, 0)
    return CompleteTree(d, tuple(n for n in nodes if n is not None), tuple(leaves))


@dataclass(frozen=True)
class Layout:
    """An ensemble as complete trees of one depth, the shape an encrypted evaluator packs into slots."""

    trees: tuple[CompleteTree, ...]
    base_margin: float
    n_features: int
    depth: int

    def resolve(self, used_mask: int) -> tuple[tuple[bool | None, ...], ...]:
        """:meth:`CompleteTree.resolve` for every tree."""
        if not 0 <= used_mask < 1 << self.n_features:
            raise EnsembleError(f"used mask {used_mask:#x} does not fit the model's {self.n_features} features")
        return tuple(t.resolve(used_mask) for t in self.trees)

    def comparisons(self, used_mask: int) -> int:
        """How many node comparisons remain to be done on the data under ``used_mask``."""
        return sum(d is None for tree in self.resolve(used_mask) for d in tree)


def layout(ensemble: Ensemble, depth: int | None = None) -> Layout:
    """Every tree of ``ensemble`` padded to ``depth`` (default: the deepest tree's depth)."""
    d = ensemble.depth if depth is None else depth
    return Layout(tuple(complete(t, d) for t in ensemble.trees), ensemble.base_margin, ensemble.n_features, d)


def path_margins(lay: Layout, x: npt.ArrayLike) -> FloatArray:
    """Margins computed as an encrypted evaluator does: public decisions from each row's used mask, 0/1
    comparisons for the rest, leaf weights as products of decisions along each path. Equals :func:`margins`."""
    rows = _rows(x, lay.n_features)
    present = ~np.isnan(rows)
    masks = (present.astype(np.int64) << np.arange(lay.n_features, dtype=np.int64)).sum(axis=1)
    out = np.full(rows.shape[0], lay.base_margin, dtype=np.float64)
    x32 = rows.astype(np.float32)
    for mask in np.unique(masks):
        group = np.flatnonzero(masks == mask)
        gx = x32[group]
        for tree, decisions in zip(lay.trees, lay.resolve(int(mask)), strict=True):
            weight = np.ones((len(group), 1))
            for level in range(tree.depth):
                first = 2**level - 1
                bits = np.empty((len(group), 2**level))
                for j in range(2**level):
                    node, public = tree.nodes[first + j], decisions[first + j]
                    if public is None:
                        bits[:, j] = gx[:, node.feature] < np.float32(node.threshold)
                    else:
                        bits[:, j] = float(public)
                # Children of node j sit at 2j (left) and 2j + 1 (right) on the next level.
                weight = np.stack([weight * bits, weight * (1.0 - bits)], axis=2).reshape(len(group), -1)
            out[group] += weight @ np.array(tree.leaves)
    return out
