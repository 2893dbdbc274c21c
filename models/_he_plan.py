"""Slot plan of the encrypted tree evaluator (:mod:`models.he`): where every value sits in the CKKS slot vector.

Pure numpy; no HE library. :func:`simulate` runs the plan on plaintext slot vectors with the very plaintexts and
rotations the encrypted evaluation uses, so that the plan can be tested apart from the encryption.

Vectors have ``SLOTS = 8192`` complex slots (CKKS with ``N = 2^14``). A query carries ``Q`` patients
(:class:`Packing`: ``Q = 1`` for one patient, :data:`BATCH` ``= 4`` for research cohorts); with ``C = BLOCK * Q``
(``BLOCK = 512``), four layouts follow one another:

1. **Client vectors** (public, depending only on the number of features ``n``): features padded to a period
   ``P = 2^ceil(log2 n)``; Chebyshev pair ``j = 0 .. 31`` is ``T_{j+1}(u) + i T_{j+33}(u)`` of a feature's grid
   coordinate ``u = 2x - 1`` (``T_64`` taken as 0). The ``2Q`` client vectors each hold ``16 / Q`` pairs, one per
   stretch of ``C`` slots; slot ``Q i + q`` of a stretch belongs to patient ``q`` and feature ``i mod P``. A
   missing feature is sent as zeros. Nothing in them depends on the model.
2. **Comparison space** (period ``C``): the server multiplies each client vector by a plaintext of stage-1
   coefficients (:func:`models._he_sign.stage1_chebyshev`; halved, ``a_{j+1} - i a_{j+33}`` for pair ``j``), adds
   the products, then the stretches (rotations by ``C, 2C, .. 4096``), then the complex conjugate (which doubles
   the real part and cancels the imaginary one), and the constants ``a_0``: slot ``Q i + q`` holds stage 1 of the
   comparison the plan put at threshold slot ``i`` (on feature ``i mod P``: the client's layout decides which
   feature a slot can compare), for patient ``q``. A comparison on a feature missing from that patient's used mask
   gets coefficients 0 and constant -1, whatever the client sent. Stages 2..4 of the sign composite run slot-wise
   and leave ``p``, about +1 where the patient goes left and -1 where right. One threshold slot (``SENTINEL``)
   never holds a comparison; it keeps every coefficient plaintext non-zero (SEAL refuses a product with 0).
3. **Path space**: each leaf reachable when padding nodes go left (:mod:`models.trees`) gets a position
   ``p < 2048 / Q``; slot ``Q p + q + 2048 k`` holds, for patient ``q``, the indicator of the edge the leaf's path
   takes at depth ``k``: ``(1 + p) / 2`` going left, ``(1 - p) / 2`` going right, 1 for a padding node or for
   ``k >= depth``, times the leaf weight at depth 0. A sparse gather builds it from comparison space: slot ``T``
   takes ``m_r[T] * p[T + Q r]`` for one ``r < window`` with threshold slot ``(position + r) mod BLOCK`` holding
   the comparison it needs (baby-step giant-step over ``r``: baby rotations by ``Q``, giant ones by ``8Q``), and
   the constant that follows (:func:`path_constant`) adds the ``1/2``s, the fixed indicators, and the public edge
   indicators of nodes on missing features (where ``p`` is about -1 by construction). The placement gives leaves
   positions and comparisons threshold slots so that a small window suffices (a window of ``P`` gives each
   target one slot per feature; a path that compares one feature twice needs ``2P``).
4. **Products and sum**: ``v * rot(v, 2048)`` then ``* rot(., 4096)`` puts the product of the four factors of the
   leaf at ``p`` into slot ``Q p + q`` (the product is cyclic), and 0 where there is no leaf, so the vector repeats
   every 2048 slots; rotations by ``Q, 2Q, .. 1024`` add the 2048 / Q slots of one patient's residue class into
   every slot of that class. Adding the base margin leaves, in every slot ``s``, the margin of patient
   ``s mod Q`` and nothing else.

Rotation steps used: the powers of two from 1 to 4096, and the complex conjugation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from models import _he_sign as sign
from models.features import FeatureSpec
from models.trees import PADDING, Layout

__all__ = [
    "BATCH",
    "BLOCK",
    "CHEBYSHEV_DEGREE",
    "DEPTH_STEP",
    "GIANT",
    "PAIRS",
    "PATH_BLOCKS",
    "SENTINEL",
    "SINGLE",
    "SLOTS",
    "STEPS",
    "Edge",
    "Key",
    "Packing",
    "Plan",
    "PlanError",
    "encode_features",
    "feature_period",
    "path_constant",
    "plan",
    "simulate",
    "stage1_plaintexts",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]

SLOTS = 8192
BLOCK = 512
"""Threshold slots per patient."""
CHEBYSHEV_DEGREE = sign.STAGE1_DEGREE
PAIRS = (CHEBYSHEV_DEGREE + 1) // 2
"""Complex Chebyshev pairs ``T_{j+1} + i T_{j+33}``."""
PATH_BLOCKS = 4
"""Factors per leaf: trees up to depth 4."""
DEPTH_STEP = SLOTS // PATH_BLOCKS
SENTINEL = BLOCK - 1
"""A threshold slot left without a comparison."""
_SENTINEL_COEFFICIENT = 1e-3
"""Its stage-1 coefficient: small, so that whatever the client sends there stays inside the later stages' domain."""
GIANT = 8
"""Baby steps ``0 .. GIANT - 1`` of the gather; giant steps are multiples of ``GIANT``."""
STEPS = tuple(1 << i for i in range(SLOTS.bit_length() - 1))
"""Every rotation step the evaluation uses (besides the conjugation), so the only Galois keys the client makes."""


class PlanError(ValueError):
    """A model that does not fit the slot plan (too deep, too many thresholds, a grid too fine)."""


@dataclass(frozen=True)
class Packing:
    """How many patients one query carries, and what follows from it."""

    patients: int

    def __post_init__(self) -> None:
        if self.patients not in (1, 2, 4):  # the comparison period must divide DEPTH_STEP
            raise PlanError(f"a query carries 1, 2 or 4 patients, not {self.patients}")

    @property
    def period(self) -> int:
        """Comparison space repeats every ``period`` slots."""
        return BLOCK * self.patients

    @property
    def stretches(self) -> int:
        """Chebyshev pairs per client vector."""
        return SLOTS // self.period

    @property
    def ciphertexts(self) -> int:
        return PAIRS // self.stretches

    @property
    def positions(self) -> int:
        """Leaf positions per patient."""
        return DEPTH_STEP // self.patients

    @property
    def block_steps(self) -> tuple[int, ...]:
        """Rotations that add the stretches of the client vectors together."""
        return tuple(s for s in STEPS if s >= self.period)

    @property
    def sum_steps(self) -> tuple[int, ...]:
        """Rotations that add one patient's leaf positions."""
        return tuple(s for s in STEPS if self.patients <= s < DEPTH_STEP)

    def slot(self, position: int, patient: int, depth: int) -> int:
        return self.patients * position + patient + DEPTH_STEP * depth


SINGLE = Packing(1)
BATCH = Packing(4)


class Key(NamedTuple):
    """A comparison: feature ``feature`` goes left at grid points ``0 .. below - 1`` (``x < threshold``)."""

    feature: int
    below: int


@dataclass(frozen=True)
class Edge:
    """A path slot fed by a comparison: ``factor * (1 ± p) / 2``."""

    position: int
    depth: int
    rotation: int
    feature: int
    right: bool
    default_left: bool
    factor: float


@dataclass(frozen=True)
class Plan:
    """Where one model's comparisons and leaves sit, for a packing."""

    packing: Packing
    n_features: int
    period: int
    """Features repeat every ``period`` slots of a client vector (within one patient's residue class)."""
    window: int
    """Gather rotations are ``0 .. window - 1`` (times the packing's patients)."""
    keys: tuple[Key | None, ...]
    """The comparison in each of the ``BLOCK`` threshold slots."""
    coefficients: FloatArray = field(repr=False)
    """Stage-1 Chebyshev coefficients ``a_0 .. a_63`` per threshold slot, shape ``(BLOCK, 64)``."""
    edges: tuple[Edge, ...] = field(repr=False)
    fixed: tuple[tuple[int, int, float], ...] = field(repr=False)
    """(position, depth, value) of path slots not fed by a comparison: padding nodes, depths past the tree's."""
    base_margin: float
    leaves: int
    comparisons: int

    @property
    def baby(self) -> int:
        return min(GIANT, self.window)

    @property
    def giant(self) -> int:
        return -(-self.window // self.baby)

    @cached_property
    def gather(self) -> dict[int, FloatArray]:
        """Rotation ``r`` to mask: path slot ``T`` receives ``mask[T] * p[T + Q r]`` (all patients alike)."""
        out: dict[int, FloatArray] = {}
        q = self.packing
        for e in self.edges:
            mask = out.setdefault(e.rotation, np.zeros(SLOTS))
            for patient in range(q.patients):
                mask[q.slot(e.position, patient, e.depth)] = (-0.5 if e.right else 0.5) * e.factor
        return dict(sorted(out.items()))

    @cached_property
    def gather_rows(self) -> tuple[tuple[tuple[int, FloatArray], ...], ...]:
        """The gather for baby-step giant-step: per giant step ``g``, (baby step ``b``, mask of ``r = g B + b``
        moved by ``g B Q`` slots, since the giant rotation comes after the product)."""
        q = self.packing
        rows = []
        for g in range(self.giant):
            row = []
            for b in range(self.baby):
                mask = self.gather.get(g * self.baby + b)
                if mask is not None:
                    row.append((b, np.roll(mask, g * self.baby * q.patients)))
            rows.append(tuple(row))
        return tuple(rows)


def feature_period(n_features: int) -> int:
    """The power of two the client's vectors repeat the features at."""
    if not 1 <= n_features <= BLOCK // 2:
        raise PlanError(f"{n_features} features do not fit {BLOCK // 2} slots")
    return 1 << (n_features - 1).bit_length()


def _chebyshev_values(unit: FloatArray, period: int) -> FloatArray:
    """``T_0 .. T_64`` of ``2x - 1`` for rows of unit coordinates padded to ``period``; 0 where missing or padding.
    Shape ``(65, rows, period)``."""
    rows, n = unit.shape
    u = np.zeros((rows, period))
    present = np.zeros((rows, period), dtype=bool)
    present[:, :n] = ~np.isnan(unit)
    u[:, :n] = np.where(present[:, :n], 2.0 * np.nan_to_num(unit) - 1.0, 0.0)
    out = np.empty((CHEBYSHEV_DEGREE + 2, rows, period))
    out[0] = 1.0
    out[1] = u
    for j in range(2, CHEBYSHEV_DEGREE + 2):
        out[j] = 2.0 * u * out[j - 1] - out[j - 2]
    out[CHEBYSHEV_DEGREE + 1] = 0.0  # T_64 is not sent
    return np.where(present[None], out, 0.0)


def encode_features(unit: npt.ArrayLike, n_features: int, packing: Packing = SINGLE) -> list[ComplexArray]:
    """The client's slot vectors for up to ``packing.patients`` rows of unit coordinates (NaN = missing).

    Absent patients (fewer rows) are sent as all-missing.
    """
    x = np.asarray(unit, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != n_features or not 1 <= x.shape[0] <= packing.patients:
        raise PlanError(f"expected 1 to {packing.patients} rows of {n_features} unit coordinates, not shape {x.shape}")
    present = ~np.isnan(x)
    if np.any((x[present] < 0.0) | (x[present] > 1.0)):
        raise PlanError("unit coordinates lie in [0, 1]")
    period = feature_period(n_features)
    rows = np.full((packing.patients, n_features), np.nan)
    rows[: x.shape[0]] = x
    t = _chebyshev_values(rows, period)  # (65, Q, P)
    vectors = []
    for c in range(packing.ciphertexts):
        out = np.empty(SLOTS, dtype=np.complex128)
        for k in range(packing.stretches):
            j = c * packing.stretches + k
            pair = t[j + 1] + 1j * t[j + 1 + PAIRS]  # (Q, P)
            stretch = np.tile(pair.T, (BLOCK // period, 1))  # (BLOCK, Q): threshold slot i, patient q
            out[k * packing.period : (k + 1) * packing.period] = stretch.reshape(-1)
        vectors.append(out)
    return vectors


@dataclass(frozen=True)
class _Leaf:
    weight: float
    path: tuple[tuple[Key, bool, bool] | None, ...]
    """Per depth: (comparison, goes right, default left) or None for a padding node (public, left)."""


def _grid32(spec: FeatureSpec, feature: int) -> npt.NDArray[np.float32]:
    """A feature's grid points as XGBoost sees them (float32)."""
    q = spec.features[feature].quantizer
    return np.array([q.value(k) for k in range(q.levels)], dtype=np.float32)


def _leaves(lay: Layout, spec: FeatureSpec) -> list[_Leaf]:
    out: list[_Leaf] = []
    d = lay.depth
    grids = [_grid32(spec, f) for f in range(spec.n_features)]
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
                # Grid points that go left, counted in float32 as XGBoost compares.
                key = Key(node.feature, int(np.count_nonzero(grids[node.feature] < np.float32(node.threshold))))
                path.append((key, right, node.default_left))
            else:
                out.append(_Leaf(tree.leaves[leaf], tuple(path)))
    return out


def plan(lay: Layout, spec: FeatureSpec, packing: Packing = SINGLE) -> Plan:
    """Place a layout's comparisons and leaves in slots; :class:`PlanError` when the model does not fit."""
    if lay.n_features != spec.n_features:
        raise PlanError(f"layout has {lay.n_features} features, spec {spec.n_features}")
    if lay.depth > PATH_BLOCKS:
        raise PlanError(f"trees of depth {lay.depth} exceed the {PATH_BLOCKS} factors a path may have")
    leaves = _leaves(lay, spec)
    if len(leaves) > packing.positions:
        raise PlanError(f"{len(leaves)} reachable leaves exceed the {packing.positions} leaf positions")
    period = feature_period(spec.n_features)
    coefficients: dict[Key, FloatArray] = {}
    for leaf in leaves:
        for step in leaf.path:
            if step is not None and step[0] not in coefficients:
                key = step[0]
                try:
                    coefficients[key] = sign.stage1_chebyshev(spec.features[key.feature].quantizer.levels, key.below)[0]
                except sign.Stage1Error as exc:
                    raise PlanError(f"feature {key.feature} ({spec.features[key.feature].key}): {exc}") from exc
    if not coefficients:
        raise PlanError("the model makes no comparison; there is nothing to evaluate under encryption")
    window = period
    while True:
        placed = _place(leaves, period, window, packing.positions)
        if placed is not None:
            break
        window *= 2
        if window > BLOCK:
            raise PlanError("the model's comparisons do not fit the threshold slots")
    keys, positions, rotations = placed
    table = np.zeros((BLOCK, CHEBYSHEV_DEGREE + 1))
    for i, slot_key in enumerate(keys):
        if slot_key is not None:
            table[i] = coefficients[slot_key]
    table.setflags(write=False)
    edges: list[Edge] = []
    fixed: list[tuple[int, int, float]] = []
    for pos, leaf in zip(positions, leaves, strict=True):
        for depth in range(PATH_BLOCKS):
            factor = leaf.weight if depth == 0 else 1.0
            step = leaf.path[depth] if depth < len(leaf.path) else None
            if step is None:
                fixed.append((pos, depth, factor))
                continue
            key, right, default_left = step
            edges.append(Edge(pos, depth, rotations[(pos, depth)], key.feature, right, default_left, factor))
    return Plan(
        packing=packing,
        n_features=spec.n_features,
        period=period,
        window=window,
        keys=tuple(keys),
        coefficients=table,
        edges=tuple(edges),
        fixed=tuple(fixed),
        base_margin=lay.base_margin,
        leaves=len(leaves),
        comparisons=sum(k is not None for k in keys),
    )


def _place(
    leaves: Sequence[_Leaf], period: int, window: int, capacity: int
) -> tuple[list[Key | None], list[int], dict[tuple[int, int], int]] | None:
    """Greedy best fit: each leaf goes where its comparisons reuse the most threshold slots already assigned.

    Positions ``p`` and ``p + BLOCK`` see the same threshold slots, so residues modulo ``BLOCK`` are scored;
    positions fill from 0 upwards.
    """
    keys: list[Key | None] = [None] * BLOCK
    used = [0] * BLOCK
    per_residue = -(-capacity // BLOCK)
    positions: list[int] = []
    rotations: dict[tuple[int, int], int] = {}
    for leaf in leaves:
        best: tuple[int, int, dict[int, Key]] | None = None
        for residue in range(min(BLOCK, capacity)):
            if used[residue] >= per_residue or residue + BLOCK * used[residue] >= capacity:
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
        pos = residue + BLOCK * used[residue]
        used[residue] += 1
        for k, step in enumerate(leaf.path):
            if step is not None:
                rotations[(pos, k)] = _rotation(pos, step[0], keys, period, window)
        positions.append(pos)
    return keys, positions, rotations


def _candidates(position: int, key: Key, period: int, window: int) -> range:
    first = (key.feature - position) % period
    return range(first, window, period)


def _fit(leaf: _Leaf, pos: int, keys: list[Key | None], period: int, window: int) -> dict[int, Key] | None:
    trial: dict[int, Key] = {}
    for step in leaf.path:
        if step is None:
            continue
        key = step[0]
        free: int | None = None
        found = False
        for r in _candidates(pos, key, period, window):
            slot = (pos + r) % BLOCK
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


def _rotation(pos: int, key: Key, keys: list[Key | None], period: int, window: int) -> int:
    for r in _candidates(pos, key, period, window):
        if keys[(pos + r) % BLOCK] == key:
            return r
    raise AssertionError("a placed comparison lost its threshold slot")


def _check_masks(p: Plan, masks: Sequence[int]) -> None:
    if not 1 <= len(masks) <= p.packing.patients:
        raise PlanError(f"a query of this packing carries 1 to {p.packing.patients} used masks, not {len(masks)}")
    for mask in masks:
        if not 0 <= mask < 1 << p.n_features:
            raise PlanError(f"used mask {mask:#x} does not fit the model's {p.n_features} features")


def stage1_plaintexts(p: Plan, masks: Sequence[int]) -> tuple[list[ComplexArray], FloatArray]:
    """Stage-1 coefficient vectors (one per client vector) and constants, for the patients' used masks (patients
    past ``len(masks)`` are absent: all features missing)."""
    _check_masks(p, masks)
    q = p.packing
    present = np.zeros((BLOCK, q.patients), dtype=bool)
    for patient, mask in enumerate(masks):
        present[:, patient] = [k is not None and bool(mask >> k.feature & 1) for k in p.keys]
    keyed = np.array([k is not None for k in p.keys])
    coef = p.coefficients[:, :, None] * present[:, None, :]  # (BLOCK, 64, Q)
    for c in range(q.ciphertexts):  # a non-zero coefficient in every client vector's plaintext
        coef[SENTINEL, 1 + c * q.stretches, :] = 2 * _SENTINEL_COEFFICIENT
    constant = np.where(present, coef[:, 0, :], np.where(keyed[:, None], -1.0, 0.0))  # (BLOCK, Q)
    vectors = []
    for c in range(q.ciphertexts):
        out = np.empty(SLOTS, dtype=np.complex128)
        for k in range(q.stretches):
            j = c * q.stretches + k
            imag = coef[:, j + 1 + PAIRS, :] if j + 1 + PAIRS <= CHEBYSHEV_DEGREE else 0.0
            out[k * q.period : (k + 1) * q.period] = (0.5 * (coef[:, j + 1, :] - 1j * imag)).reshape(-1)
        vectors.append(out)
    return vectors, np.tile(constant.reshape(-1), q.stretches)


def path_constant(p: Plan, masks: Sequence[int]) -> FloatArray:
    """What the gather adds to path space for the patients' used masks: the fixed indicators, the ``factor / 2``
    of every gathered edge, and for a node on a missing feature (where ``p`` is about -1, so the edge holds about
    0 going left and ``factor`` going right) the difference to the public edge indicator."""
    _check_masks(p, masks)
    q = p.packing
    out = np.zeros(SLOTS)
    for patient in range(q.patients):
        mask = masks[patient] if patient < len(masks) else 0
        for pos, depth, value in p.fixed:
            out[q.slot(pos, patient, depth)] = value
        for e in p.edges:
            value = 0.5 * e.factor
            if not mask >> e.feature & 1 and e.default_left:
                value += -e.factor if e.right else e.factor
            out[q.slot(e.position, patient, e.depth)] = value
    return out


def _rot(v: npt.NDArray[np.complex128] | FloatArray, r: int) -> npt.NDArray[np.complex128]:
    """Slot ``i`` of the result is slot ``i + r`` of ``v`` (SEAL's ``rotate_vector`` by ``r``)."""
    return np.asarray(np.roll(v, -r), dtype=np.complex128)


def simulate(p: Plan, unit: npt.ArrayLike, masks: Sequence[int]) -> FloatArray:
    """The margins the encrypted evaluation computes, one per patient, evaluated on plaintext slots with the same
    plaintexts and rotations (no encryption noise)."""
    q = p.packing
    rows = np.asarray(unit, dtype=np.float64).reshape(-1, p.n_features)
    vectors = encode_features(rows, p.n_features, q)
    betas, constant = stage1_plaintexts(p, masks)
    z = sum((b * v for b, v in zip(betas, vectors, strict=True)), np.zeros(SLOTS, dtype=np.complex128))
    for step in q.block_steps:
        z = z + _rot(z, step)
    real = (z + np.conj(z)).real + constant
    out = sign.evaluate(real)
    babies = [out.astype(np.complex128)]
    for _ in range(1, p.baby):
        babies.append(_rot(babies[-1], q.patients))
    acc = np.zeros(SLOTS, dtype=np.complex128)
    for row in reversed(p.gather_rows):
        acc = _rot(acc, p.baby * q.patients)
        for b, mask in row:
            acc = acc + mask * babies[b]
    v = acc.real + path_constant(p, masks)
    w = v * _rot(v, DEPTH_STEP).real
    u = w * _rot(w, 2 * DEPTH_STEP).real
    for step in q.sum_steps:
        u = u + _rot(u, step).real
    return np.asarray(u[: len(masks)] + p.base_margin, dtype=np.float64)
