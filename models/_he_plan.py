"""Slot plan of the encrypted tree evaluator (:mod:`models.he`): where every value sits in the CKKS slot vector.

Pure numpy; no HE library. :func:`simulate` runs the plan on plaintext slot vectors with the same operations the
encrypted evaluation performs (rotations, slot-wise products, the sign stages), so that the plan can be tested
apart from the encryption.

The vector has ``SLOTS = 8192`` slots (CKKS with ``N = 2^14``). Four layouts follow one another:

1. **Client vector** (public, depends only on the number of features ``n``): features padded to a period
   ``P = 2^ceil(log2 n)``; block ``j = 0 .. 14`` of ``BLOCK = 512`` slots holds ``T_{j+1}(2 x_{i mod P} - 1)`` at
   slot ``i`` of the block (Chebyshev polynomials of the unit coordinate, feature order, repeated ``BLOCK / P``
   times); block 15 is empty. Nothing in it depends on the model.
2. **Comparison space** (period ``BLOCK``): the server multiplies by a plaintext of stage-1 coefficients and adds
   the blocks together (rotations by 512, 1024, 2048, 4096), so that slot ``i`` holds ``p_1(s (t - x_f))`` for the
   comparison ``x_f < t`` the plan assigned to threshold slot ``i mod BLOCK`` (its feature is always
   ``i mod P``: the client's replication decides which feature a slot can compare). Stages 2..4 of the sign
   composite (:mod:`models._he_sign`) run slot-wise; the last one outputs the go-left indicator
   ``b = (1 + p(y)) / 2``, or 0 for a comparison on a feature missing from the used mask (public: the last
   stage's coefficients are zero there). One threshold slot (``SENTINEL``) never holds a comparison.
3. **Path space**: each leaf reachable when padding nodes go left (:mod:`models.trees`) gets a position
   ``p < 2048``; slot ``p + 2048 k`` holds the indicator of the edge its path takes at depth ``k`` (``b`` going
   left, ``1 - b`` going right, 1 for a padding node or for ``k >= depth``), the slots of depth 0 multiplied by the
   leaf weight. Where a node's feature is missing, the edge indicator is public (1 where the path follows the
   node's default direction, else 0) and comes from the constant that follows the gather (:func:`path_constant`).
   A sparse gather builds path space from comparison space: slot ``T`` takes slot ``T + r``
   for one ``r < window`` with ``(T + r) mod P`` the feature it needs (baby-step giant-step over ``r``). The
   placement below gives leaves positions and comparisons threshold slots so that a small window suffices (a
   window of ``P`` gives each target exactly one slot per feature; a path that compares one feature twice needs
   ``2P``).
4. **Products and sum**: ``v * rot(v, 2048)`` then ``* rot(., 4096)`` puts the product of the four factors of
   the leaf at ``p`` into the four slots ``p + 2048 k`` (the product is cyclic), and 0 where there is no leaf, so
   the vector repeats every 2048 slots; rotations by ``1, 8, 64`` (7 each) and ``512`` (3) add 2048 consecutive
   slots into every slot, which counts every leaf once wherever the window starts. Adding the base margin leaves
   the margin in every slot and nothing else.

Rotation steps used: 1, 8 (gather, sum), 64 (sum), 512 (sum, blocks), 1024 (blocks), 2048, 4096 (blocks,
products).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev

from models import _he_sign as sign
from models.features import FeatureSpec
from models.trees import PADDING, Layout

__all__ = [
    "BLOCK",
    "BLOCKS",
    "BLOCK_STEPS",
    "DEPTH_STEP",
    "GIANT_STEP",
    "PATH_BLOCKS",
    "POSITIONS",
    "SENTINEL",
    "SLOTS",
    "STEPS",
    "SUM_STEPS",
    "Key",
    "Plan",
    "PlanError",
    "Target",
    "encode_features",
    "feature_period",
    "last_stage",
    "path_constant",
    "plan",
    "simulate",
]

FloatArray = npt.NDArray[np.float64]

SLOTS = 8192
CHEBYSHEV_DEGREE = sign.DEGREES[0]
BLOCKS = CHEBYSHEV_DEGREE + 1
BLOCK = SLOTS // BLOCKS
BLOCK_STEPS = tuple(BLOCK << i for i in range(BLOCKS.bit_length() - 1))
"""Rotations that add the Chebyshev blocks together."""
PATH_BLOCKS = 4
"""Factors per leaf: trees up to depth 4."""
DEPTH_STEP = SLOTS // PATH_BLOCKS
POSITIONS = DEPTH_STEP
SENTINEL = BLOCK - 1
"""A threshold slot left without a comparison (see :func:`last_stage`)."""
GIANT_STEP = 8
"""Baby steps are rotations by 1 (chained), giant steps rotations by 8."""
SUM_STEPS = ((1, 8), (8, 8), (64, 8), (512, 4))
"""(step, width): sums of ``width`` slots ``step`` apart, one after another, add up 2048 consecutive slots with few
distinct keys (``width - 1`` rotations each)."""
STEPS = (1, 8, 64, 512, 1024, 2048, 4096)
"""Every rotation step the evaluation uses, so the only Galois keys the client makes."""

if (
    BLOCKS & (BLOCKS - 1)
    or math.prod(w for _, w in SUM_STEPS) != DEPTH_STEP
    or DEPTH_STEP % BLOCK
    or not {*BLOCK_STEPS, DEPTH_STEP, 2 * DEPTH_STEP, 1, GIANT_STEP} <= {*STEPS}
    or not {s for s, _ in SUM_STEPS} <= {*STEPS}
):
    raise AssertionError("slot plan constants are inconsistent")


class PlanError(ValueError):
    """A model that does not fit the slot plan (too deep, too many thresholds, a grid too fine)."""


@dataclass(frozen=True)
class Key:
    """A comparison ``x_feature < threshold`` in unit coordinates."""

    feature: int
    threshold: float


@dataclass(frozen=True)
class Target:
    """A path slot fed by a comparison: ``factor * b`` going left, ``factor * (1 - b)`` going right."""

    slot: int
    feature: int
    right: bool
    default_left: bool
    factor: float


@dataclass(frozen=True)
class Plan:
    """Where one model's comparisons and leaves sit, and the plaintexts that put them there."""

    n_features: int
    period: int
    """Features repeat every ``period`` slots of the client's vector."""
    window: int
    """Gather rotations are ``0 .. window - 1``."""
    keys: tuple[Key | None, ...]
    """The comparison in each of the ``BLOCK`` threshold slots."""
    alpha: FloatArray = field(repr=False)
    """Stage-1 Chebyshev coefficients ``a_1 .. a_15``, block ``j`` for ``T_{j+1}`` (the client's layout)."""
    alpha0: FloatArray = field(repr=False)
    """Stage-1 constant ``a_0`` per slot of comparison space."""
    gather: dict[int, FloatArray] = field(repr=False)
    """Rotation ``r`` to mask: path slot ``T`` receives ``mask[T] * b[T + r]``."""
    constant: FloatArray = field(repr=False)
    """Added to path space after the gather (padding nodes, depths past the tree's, right edges' 1)."""
    targets: tuple[Target, ...] = field(repr=False)
    """Path slots fed by comparisons, for :func:`path_constant`."""
    base_margin: float
    leaves: int
    comparisons: int

    @property
    def baby(self) -> int:
        return min(GIANT_STEP, self.window)

    @property
    def giant(self) -> int:
        return self.window // self.baby


def feature_period(n_features: int) -> int:
    """The power of two the client's vector repeats the features at."""
    if not 1 <= n_features <= BLOCK:
        raise PlanError(f"{n_features} features do not fit a block of {BLOCK} slots")
    return 1 << (n_features - 1).bit_length()


def encode_features(unit: npt.ArrayLike, n_features: int) -> FloatArray:
    """The client's slot vector for one row of unit coordinates (NaN = missing, sent as 0)."""
    x = np.asarray(unit, dtype=np.float64)
    if x.shape != (n_features,):
        raise PlanError(f"expected {n_features} unit coordinates, not shape {x.shape}")
    present = ~np.isnan(x)
    if np.any((x[present] < 0.0) | (x[present] > 1.0)):
        raise PlanError("unit coordinates lie in [0, 1]")
    period = feature_period(n_features)
    u = np.zeros(period)
    u[:n_features] = np.where(present, 2.0 * np.nan_to_num(x) - 1.0, -1.0)
    used = np.zeros(period, dtype=bool)
    used[:n_features] = True
    out = np.zeros(SLOTS)
    for j in range(1, CHEBYSHEV_DEGREE + 1):
        unit_j = np.zeros(j + 1)
        unit_j[j] = 1.0
        values = np.where(used, chebyshev.chebval(u, unit_j), 0.0)
        out[(j - 1) * BLOCK : j * BLOCK] = np.tile(values, BLOCK // period)
    return out


@dataclass(frozen=True)
class _Leaf:
    weight: float
    path: tuple[tuple[Key, bool, bool] | None, ...]
    """Per depth: (comparison, goes right, default left) or None for a padding node (public, left)."""


def _leaves(lay: Layout, spec: FeatureSpec) -> list[_Leaf]:
    out: list[_Leaf] = []
    d = lay.depth
    for tree in lay.trees:
        for leaf in range(2**d):
            path: list[tuple[Key, bool, bool] | None] = []
            for k in range(d):
                node = tree.nodes[(2**k - 1) + (leaf >> (d - k))]
                right = bool((leaf >> (d - 1 - k)) & 1)
                if node.feature == PADDING:
                    if right:
                        break  # both subtrees of a padding node are equal; the evaluator takes the left one
                    path.append(None)
                    continue
                q = spec.features[node.feature].quantizer
                path.append((Key(node.feature, q.threshold_unit(node.threshold)), right, node.default_left))
            else:
                out.append(_Leaf(tree.leaves[leaf], tuple(path)))
    return out


def _scale(key: Key, levels: int) -> float:
    """The factor that maps ``t - x`` for ``x`` in [0, 1] into [-1, 1]; checks the scaled margin."""
    t = key.threshold
    s = 1.0 / max(abs(t), abs(1.0 - t))
    margin = s * float(np.min(np.abs(np.arange(levels) / (levels - 1) - t)))
    if margin < sign.EPSILON:
        raise PlanError(
            f"a comparison on feature {key.feature} has a margin of {margin:.5f} in unit coordinates, below the "
            f"{sign.EPSILON:.5f} the sign approximation resolves (grid too fine or threshold not at a midpoint)"
        )
    return s


def plan(lay: Layout, spec: FeatureSpec) -> Plan:
    """Place a layout's comparisons and leaves in slots; :class:`PlanError` when the model does not fit."""
    if lay.n_features != spec.n_features:
        raise PlanError(f"layout has {lay.n_features} features, spec {spec.n_features}")
    if lay.depth > PATH_BLOCKS:
        raise PlanError(f"trees of depth {lay.depth} exceed the {PATH_BLOCKS} factors a path may have")
    leaves = _leaves(lay, spec)
    if len(leaves) > POSITIONS:
        raise PlanError(f"{len(leaves)} reachable leaves exceed the {POSITIONS} leaf positions")
    period = feature_period(spec.n_features)
    window = period
    while True:
        placed = _place(leaves, period, window)
        if placed is not None:
            break
        window *= 2
        if window > BLOCK:
            raise PlanError("the model's comparisons do not fit the threshold slots")
    keys, sources = placed
    if all(k is None for k in keys):
        raise PlanError("the model makes no comparison; there is nothing to evaluate under encryption")
    alpha = np.zeros(SLOTS)
    alpha0 = np.zeros(BLOCK)
    for i, key in enumerate(keys):
        if key is None:
            continue
        scale = _scale(key, spec.features[key.feature].quantizer.levels)
        a = sign.stage1_chebyshev(-scale, key.threshold)  # p_1(s (t - x)): positive when x goes left
        alpha0[i] = a[0]
        for j in range(1, CHEBYSHEV_DEGREE + 1):
            alpha[(j - 1) * BLOCK + i] = a[j]
    gather: dict[int, FloatArray] = {}
    constant = np.zeros(SLOTS)
    targets: list[Target] = []
    for pos, leaf in zip(sources.positions, leaves, strict=True):
        for depth in range(PATH_BLOCKS):
            target = pos + depth * DEPTH_STEP
            factor = leaf.weight if depth == 0 else 1.0
            step = leaf.path[depth] if depth < len(leaf.path) else None
            if step is None:
                constant[target] = factor
                continue
            key, right, default_left = step
            r = sources.rotation[(target, depth)]
            mask = gather.setdefault(r, np.zeros(SLOTS))
            mask[target] = -factor if right else factor
            targets.append(Target(target, key.feature, right, default_left, factor))
    return Plan(
        n_features=spec.n_features,
        period=period,
        window=window,
        keys=tuple(keys),
        alpha=alpha,
        alpha0=np.tile(alpha0, BLOCKS),
        gather=dict(sorted(gather.items())),
        constant=constant,
        targets=tuple(targets),
        base_margin=lay.base_margin,
        leaves=len(leaves),
        comparisons=sum(k is not None for k in keys),
    )


@dataclass
class _Sources:
    positions: list[int]
    rotation: dict[tuple[int, int], int]


def _place(leaves: Sequence[_Leaf], period: int, window: int) -> tuple[list[Key | None], _Sources] | None:
    """Greedy best fit: each leaf goes where its comparisons reuse the most threshold slots already assigned.

    Positions ``p`` and ``p + BLOCK`` see the same threshold slots, so residues modulo ``BLOCK`` are scored.
    """
    keys: list[Key | None] = [None] * BLOCK
    free = [POSITIONS // BLOCK] * BLOCK
    sources = _Sources([], {})
    for leaf in leaves:
        best: tuple[int, int, dict[int, Key]] | None = None
        for residue in range(BLOCK):
            if not free[residue]:
                continue
            trial = _fit(leaf, residue, keys, period, window)
            if trial is not None and (best is None or len(trial) < best[0]):
                best = (len(trial), residue, trial)
                if not trial:
                    break
        if best is None:
            return None
        _, residue, trial = best
        for slot, key in trial.items():
            keys[slot] = key
        free[residue] -= 1
        pos = residue + BLOCK * free[residue]
        for k, step in enumerate(leaf.path):
            if step is not None:
                target = pos + k * DEPTH_STEP
                sources.rotation[(target, k)] = _rotation(target, step[0], keys, period, window)
        sources.positions.append(pos)
    return keys, sources


def _candidates(target: int, key: Key, period: int, window: int) -> range:
    first = (key.feature - target) % period
    return range(first, window, period)


def _fit(leaf: _Leaf, pos: int, keys: list[Key | None], period: int, window: int) -> dict[int, Key] | None:
    trial: dict[int, Key] = {}
    for k, step in enumerate(leaf.path):
        if step is None:
            continue
        key = step[0]
        target = pos + k * DEPTH_STEP
        free: int | None = None
        found = False
        for r in _candidates(target, key, period, window):
            slot = (target + r) % BLOCK
            if slot == SENTINEL:
                continue
            current = trial.get(slot, keys[slot])
            if current == key:
                found = True
                break
            if current is None and free is None:
                free = slot
        if not found:
            if free is None:
                return None
            trial[free] = key
    return trial


def _rotation(target: int, key: Key, keys: list[Key | None], period: int, window: int) -> int:
    for r in _candidates(target, key, period, window):
        if keys[(target + r) % BLOCK] == key:
            return r
    raise AssertionError("a placed comparison lost its threshold slot")


def last_stage(p: Plan, used_mask: int) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Per-slot coefficients of the last sign stage (odd powers) and its constant, for one used mask.

    Comparisons on present features give ``b = (1 + p_4(z)) / 2``; on missing ones 0 (see :func:`path_constant`).
    """
    if not 0 <= used_mask < 1 << p.n_features:
        raise PlanError(f"used mask {used_mask:#x} does not fit the model's {p.n_features} features")
    coef = sign.STAGES[-1]
    active = np.zeros(BLOCK)
    active[SENTINEL] = 0.5  # never gathered; keeps every coefficient plaintext non-zero (SEAL refuses 0 * ct)
    const = np.zeros(BLOCK)
    for i, k in enumerate(p.keys):
        if k is None:
            continue
        if used_mask >> k.feature & 1:
            active[i] = 0.5
            const[i] = 0.5
    tiled = np.tile(active, BLOCKS)
    return tuple(c * tiled for c in coef), np.tile(const, BLOCKS)


def path_constant(p: Plan, used_mask: int) -> FloatArray:
    """What the gather adds to path space for one used mask: ``factor`` for a right edge on a present feature
    (``factor * (1 - b)``), and the public edge indicator for a node on a missing feature (there ``b`` is 0)."""
    out = p.constant.copy()
    for t in p.targets:
        if used_mask >> t.feature & 1:
            out[t.slot] += t.factor if t.right else 0.0
        else:
            out[t.slot] += t.factor if t.right != t.default_left else 0.0
    return out


def _rot(v: FloatArray, r: int) -> FloatArray:
    """Slot ``i`` of the result is slot ``i + r`` of ``v`` (SEAL's ``rotate_vector`` by ``r``)."""
    return np.roll(v, -r)


def simulate(p: Plan, unit: npt.ArrayLike, used_mask: int) -> float:
    """The margin the encrypted evaluation computes, evaluated on plaintext slots (no encryption noise)."""
    v = encode_features(unit, p.n_features)
    w = p.alpha * v
    for step in BLOCK_STEPS:
        w = w + _rot(w, step)
    z = w + p.alpha0
    for coef in sign.STAGES[1:-1]:
        z = sum((c * z ** (2 * i + 1) for i, c in enumerate(coef)), np.zeros(SLOTS))
    odd, const = last_stage(p, used_mask)
    b = const + sum(c * z ** (2 * i + 1) for i, c in enumerate(odd))
    g = path_constant(p, used_mask)
    for r, mask in p.gather.items():
        g = g + mask * _rot(b, r)
    g = g * _rot(g, DEPTH_STEP)
    g = g * _rot(g, 2 * DEPTH_STEP)
    for step, width in SUM_STEPS:
        shifted = g
        for _ in range(width - 1):
            shifted = _rot(shifted, step)
            g = g + shifted
    return float(g[0] + p.base_margin)
