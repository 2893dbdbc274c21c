"""Multi-scalar multiplication ``sum k_i P_i`` in G1 and G2: Pippenger's bucket method, batch-affine, with the
curves' endomorphisms; and fixed-base batches for a trusted setup.

Specs: N. Pippenger, "On the evaluation of powers and monomials" (SIAM J. Comput. 1980), in the bucket form used by
ZK provers (Bernstein et al., "Faster batch forgery identification", INDOCRYPT 2012, section 4; the "batch affine"
accumulation of gnark and of Aztec's barretenberg); the GLV decomposition (Gallant, Lambert and Vanstone, "Faster
point multiplication on elliptic curves with efficient endomorphisms", CRYPTO 2001, section 4) for G1's
``phi(x, y) = (beta x, y) = [lambda] (x, y)``; for G2 the untwist-Frobenius-twist ``psi``, which is ``[q mod r] =
[6u^2]`` on G2 (Galbraith and Scott, "Exponentiation in pairing-friendly groups using homomorphisms", Pairing
2008).

How an MSM runs:

1. *Split.* Each scalar (reduced mod r) becomes two of about 127 bits: ``k = k1 + k2 lambda`` with a short lattice
   basis in G1, ``k = k0 + k1 6u^2`` by plain division in G2 (6u^2 is about the square root of r). Each point so
   becomes two points with half-length scalars (``phi(P)``, ``psi(P)`` cost a multiplication or two), which halves
   the number of windows.
2. *Buckets.* Scalars are cut into signed c-bit digits (``-2^(c-1) < d <= 2^(c-1)``); a point goes into bucket
   ``|d|`` of its window with the sign of d. Filling the buckets is where the time goes (one addition per point
   per window), so it is done in affine coordinates: the additions of a whole round, across all windows and
   buckets, share one field inversion (Montgomery's trick), and an affine addition then costs 6 multiplications in
   G1 instead of the 11 of a mixed Jacobian one. Buckets are summed as balanced trees, round by round, so that no
   two additions of a round touch the same point; which point pairs with which is worked out on numpy arrays of
   bucket labels (sorted digits), so Python touches a point only to add it.
3. *Reduce.* Each window's ``sum_d d B_d`` is the classic running sum (``R += B_d; T += R`` from the top bucket
   down), also batch-affine: every window's bucket range is cut into segments that run side by side, so one
   inversion serves a step of all of them; segment s then adds ``T_s + offset_s R_s`` (the offsets are multiples
   of a power of two, so that sum is one more running sum and a few doublings).
4. *Combine* the windows by c doublings each (Horner), in Jacobian coordinates.

The window c minimises ``windows * (n + ratio * 2^(c-1))`` for the n split scalars and their largest bit length,
so short scalars (bits and small integers of a witness) cost proportionally fewer windows. Points must be in their
group (the proving key's are, by construction or by the key parser; a point outside G2 would make psi's eigenvalue
wrong and the prover's self-check fails).

G1 and G2 share the skeleton (:func:`_pippenger`, :func:`_reduce_windows`) through a small table of group
operations, called per round or per window; the per-element arithmetic (:func:`_add_pairs_g1`,
:func:`_add_pairs_g2`) stays written out for each field, as in :mod:`zk.curve`: a generic version would pay a
function call per field operation in the innermost loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from zk.curve import (
    G1,
    G1_INFINITY,
    G2_INFINITY,
    G1Affine,
    G1Jacobian,
    G2Affine,
    G2Jacobian,
    g1_add,
    g1_add_mixed,
    g1_batch_to_affine,
    g1_double,
    g1_eq,
    g1_mul_jacobian,
    g1_neg,
    g1_to_affine,
    g1_to_jacobian,
    g2_add,
    g2_add_mixed,
    g2_batch_to_affine,
    g2_double,
    g2_neg,
    g2_psi,
    g2_to_affine,
    g2_to_jacobian,
)
from zk.field import CURVE_ORDER, FIELD_MODULUS, U, fq_sqrt

__all__ = [
    "GLV_BETA",
    "GLV_LAMBDA",
    "PSI_EIGENVALUE",
    "fixed_base_g1",
    "fixed_base_g2",
    "glv_split",
    "msm_g1",
    "msm_g1_jacobian",
    "msm_g2",
    "msm_g2_jacobian",
    "psi_split",
    "window_size",
]

_Q: Final = FIELD_MODULUS
_R: Final = CURVE_ORDER

A = TypeVar("A", G1Affine, G2Affine)
J = TypeVar("J", G1Jacobian, G2Jacobian)


def window_size(n: int, bits: int, bucket_ratio: float = 1.5) -> int:
    """The window c (in bits) that minimises the estimated cost of an MSM of ``n`` scalars of ``bits`` bits."""
    best, best_cost = 1, float("inf")
    for c in range(1, 21):
        windows = -(-(bits + 1) // c)
        cost = windows * (n + bucket_ratio * (1 << (c - 1)))
        if cost < best_cost:
            best, best_cost = c, cost
    return best


# ---------------------------------------------------------------------------------------------------- endomorphisms

GLV_LAMBDA: Final = 36 * U**3 + 18 * U**2 + 6 * U + 1
"""A primitive cube root of unity mod r: ``phi(P) = [GLV_LAMBDA] P`` on G1."""


def _glv_beta() -> int:
    """Of the two primitive cube roots of unity ``(-1 +- sqrt(-3)) / 2`` of F_q, the one for which
    ``phi(G1) = [GLV_LAMBDA] G1``."""
    root = fq_sqrt(-3 % _Q)
    if root is None:
        raise ValueError("-3 is not a square mod q: F_q has no cube roots of unity")
    half = (_Q + 1) // 2
    for beta in ((root - 1) * half % _Q, (-root - 1) * half % _Q):
        if g1_eq(g1_to_jacobian((beta * G1[0] % _Q, G1[1])), g1_mul_jacobian(G1, GLV_LAMBDA)):
            return beta
    raise ValueError("neither cube root of unity of F_q matches GLV lambda on G1")


GLV_BETA: Final = _glv_beta()
"""The cube root of unity of F_q with ``phi(x, y) = (GLV_BETA x, y)`` matching :data:`GLV_LAMBDA`."""
PSI_EIGENVALUE: Final = 6 * U * U
"""``psi(P) = [6u^2] P`` on G2 (6u^2 = q - r)."""


def _short_basis(n: int, lam: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two short vectors ``(a, b)`` with ``a + b lam = 0 mod n``, from the extended Euclidean algorithm on
    ``(n, lam)`` stopped at the square root of n (GLV, section 4)."""
    r0, r1, t0, t1 = n, lam, 0, 1
    while r1 * r1 >= n:
        quotient = r0 // r1
        r0, r1, t0, t1 = r1, r0 - quotient * r1, t1, t0 - quotient * t1
    # r1 is the first remainder below sqrt(n); the next one gives the candidate for the second vector.
    v1 = (r1, -t1)
    quotient = r0 // r1
    r2, t2 = r0 - quotient * r1, t0 - quotient * t1
    v2 = min((r0, -t0), (r2, -t2), key=lambda v: v[0] * v[0] + v[1] * v[1])
    return v1, v2


_GLV_BASIS: Final = _short_basis(_R, GLV_LAMBDA)


def glv_split(k: int) -> tuple[int, int]:
    """``(k1, k2)`` with ``k = k1 + k2 * GLV_LAMBDA (mod r)`` and ``|k1|, |k2| < 2^128`` (signed), for ``0 <= k < r``.

    Babai rounding in the short basis: subtract from ``(k, 0)`` the lattice vector nearest to it.
    """
    (a1, b1), (a2, b2) = _GLV_BASIS
    r = _R
    c1 = (2 * b2 * k + r) // (2 * r)
    c2 = (-2 * b1 * k + r) // (2 * r)
    return k - c1 * a1 - c2 * a2, -c1 * b1 - c2 * b2


def psi_split(k: int) -> tuple[int, int]:
    """``(k0, k1)`` with ``k = k0 + k1 * 6u^2`` exactly, both non-negative and below 2^128, for ``0 <= k < r``."""
    k1, k0 = divmod(k, PSI_EIGENVALUE)
    return k0, k1


# ---------------------------------------------------------------------------------------------------- batch-affine


def _inverses(values: list[int]) -> list[int]:
    """The inverses mod q of non-zero ``values`` with one field inversion (Montgomery's trick)."""
    q = _Q
    acc = 1
    before = [1]  # before[i]: the product of values[:i]
    before += [acc := acc * v % q for v in values]
    inverse = pow(before.pop(), -1, q)  # 1 / (product of values[:i + 1]), walking i down
    out: list[int] = []
    append = out.append
    for v, p in zip(reversed(values), reversed(before), strict=True):
        append(inverse * p % q)
        inverse = inverse * v % q
    out.reverse()
    return out


def _add_pairs_g1(left: list[G1Affine], right: list[G1Affine]) -> list[G1Affine]:
    """``left[i] + right[i]`` for every i, none of the inputs at infinity, with one inversion for all.

    Equal x: the same point doubles (slope ``3x^2 / 2y``), opposite points sum to infinity.
    """
    q = _Q
    dx = [b[0] - a[0] for a, b in zip(left, right, strict=True)]
    doubles: list[int] = []
    cancels: list[int] = []
    if 0 in dx:
        for i, d in enumerate(dx):
            if not d:
                y = left[i][1]
                if right[i][1] == y:
                    doubles.append(i)
                    dx[i] = 2 * y
                else:
                    cancels.append(i)
                    dx[i] = 1
    inverses = _inverses(dx)
    sums = [
        (x3, (lam * (x1 - x3) - y1) % q)
        for (x1, y1), (x2, y2), inv in zip(left, right, inverses, strict=True)
        for lam in ((y2 - y1) * inv % q,)
        for x3 in ((lam * lam - x1 - x2) % q,)
    ]
    for i in doubles:
        x1, y1 = left[i]
        lam = 3 * x1 * x1 * inverses[i] % q
        x3 = (lam * lam - 2 * x1) % q
        sums[i] = (x3, (lam * (x1 - x3) - y1) % q)
    for i in cancels:
        sums[i] = G1_INFINITY
    return sums


def _add_pairs_g2(left: list[G2Affine], right: list[G2Affine]) -> list[G2Affine]:
    """:func:`_add_pairs_g1` in G2: F_q2 slopes ``num * conj(den) / N(den)``, one F_q inversion of all norms."""
    q = _Q
    num = [(b0 - a0, b1 - a1) for ((_, (a0, a1)), (_, (b0, b1))) in zip(left, right, strict=True)]
    den = [(b0 - a0, b1 - a1) for (((a0, a1), _), ((b0, b1), _)) in zip(left, right, strict=True)]
    cancels: list[int] = []
    if (0, 0) in den:
        for i, d in enumerate(den):
            if d == (0, 0):
                (x0, x1), (y0, y1) = left[i]
                if num[i] == (0, 0) and (y0 or y1):
                    num[i] = (3 * (x0 + x1) * (x0 - x1) % q, 6 * x0 * x1 % q)
                    den[i] = (2 * y0, 2 * y1)
                else:
                    cancels.append(i)
                    num[i], den[i] = (0, 0), (1, 0)
    inverses = _inverses([(d0 * d0 + d1 * d1) % q for d0, d1 in den])
    sums: list[G2Affine] = [
        ((x3_0, x3_1), ((l0 * t0 - l1 * t1 - y1_0) % q, (l0 * t1 + l1 * t0 - y1_1) % q))
        for ((x1_0, x1_1), (y1_0, y1_1)), ((x2_0, x2_1), _), (s0, s1), (d0, d1), n_inv in zip(
            left, right, num, den, inverses, strict=True
        )
        for l0 in ((s0 * d0 + s1 * d1) * n_inv % q,)
        for l1 in ((s1 * d0 - s0 * d1) * n_inv % q,)
        for x3_0 in (((l0 + l1) * (l0 - l1) - x1_0 - x2_0) % q,)
        for x3_1 in ((2 * l0 * l1 - x1_1 - x2_1) % q,)
        for t0 in (x1_0 - x3_0,)
        for t1 in (x1_1 - x3_1,)
    ]
    for i in cancels:
        sums[i] = G2_INFINITY
    return sums


@dataclass(frozen=True)
class _Group(Generic[A, J]):
    """The operations the Pippenger skeleton needs from a group (called per round or per window, not per element)."""

    infinity: A
    jacobian_infinity: J
    add_pairs: Callable[[list[A], list[A]], list[A]]
    neg: Callable[[A], A]
    add: Callable[[J, J], J]
    add_mixed: Callable[[J, A], J]
    double: Callable[[J], J]
    to_jacobian: Callable[[A], J]
    batch_to_affine: Callable[[Sequence[J]], list[A]]
    bucket_ratio: float
    """The cost of a window's reduction per bucket, in bucket additions (fitted to measurements)."""


_G1_GROUP: Final = _Group[G1Affine, G1Jacobian](
    G1_INFINITY,
    (1, 1, 0),
    _add_pairs_g1,
    g1_neg,
    g1_add,
    g1_add_mixed,
    g1_double,
    g1_to_jacobian,
    g1_batch_to_affine,
    0.8,
)
_G2_GROUP: Final = _Group[G2Affine, G2Jacobian](
    G2_INFINITY,
    ((1, 0), (1, 0), (0, 0)),
    _add_pairs_g2,
    g2_neg,
    g2_add,
    g2_add_mixed,
    g2_double,
    g2_to_jacobian,
    g2_batch_to_affine,
    0.8,
)


def _sum_groups(group: _Group[A, J], groups: list[list[A]]) -> None:
    """Replace each list of affine points (none at infinity) by ``[its sum]``, or ``[]`` when that is infinity.

    Round by round the points of every list are added in pairs, all the round's additions in one batch.
    """
    infinity = group.infinity
    pending = [g for g in groups if len(g) > 1]
    while pending:
        left: list[A] = []
        right: list[A] = []
        for g in pending:
            even = len(g) & ~1
            left += g[0:even:2]
            right += g[1:even:2]
        sums = group.add_pairs(left, right)
        cancelled = infinity in sums  # P + (-P): rare, but then the point at infinity must leave its list
        offset = 0
        for g in pending:
            m = len(g)
            half = m >> 1
            new = sums[offset : offset + half]
            if m & 1:
                new.append(g[-1])
            if cancelled:
                new = [p for p in new if p != infinity]
            g[:] = new
            offset += half
        pending = [g for g in pending if len(g) > 1]


def _sum_buckets(group: _Group[A, J], points: list[A], labels: npt.NDArray[np.int64]) -> dict[int, A]:
    """The sum of the points with each label (the points not at infinity, ``labels`` sorted), for the labels whose
    sum is not infinity.

    Round by round, the points of each label are added in pairs, all of a round's additions in one batch; the
    bookkeeping (which point pairs with which) is done on the label array, not point by point in Python.
    """
    infinity = group.infinity
    while len(labels) > 1:
        first = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
        run = np.diff(np.append(first, len(labels)))
        if run.max() == 1:
            break
        position = np.arange(len(labels)) - np.repeat(first, run)
        pairs = (position & 1 == 0) & (position + 1 < np.repeat(run, run))
        left = np.flatnonzero(pairs)
        alone = np.flatnonzero((position & 1 == 0) & ~pairs)
        sums = group.add_pairs([points[i] for i in left.tolist()], [points[i] for i in (left + 1).tolist()])
        merged = sums + [points[i] for i in alone.tolist()]
        merged_labels = np.concatenate((labels[left], labels[alone]))
        if infinity in sums:  # P + (-P): rare, but then the point at infinity must leave its label
            keep = [i for i, p in enumerate(merged) if p != infinity]
            merged = [merged[i] for i in keep]
            merged_labels = merged_labels[keep]
        order = np.argsort(merged_labels, kind="stable")
        points = [merged[i] for i in order.tolist()]
        labels = merged_labels[order]
    return dict(zip(labels.tolist(), points, strict=True))


# ---------------------------------------------------------------------------------------------------- Pippenger


def _pippenger(group: _Group[A, J], points: Sequence[A], scalars: Sequence[int]) -> J:
    """``sum k P`` over ``points`` (not at infinity) and positive ``scalars``."""
    if not points:
        return group.jacobian_infinity
    n = len(points)
    top = max(scalars)
    c = window_size(n, top.bit_length(), group.bucket_ratio)
    half = 1 << (c - 1)
    mask = (1 << c) - 1
    # Signed digits without carries: the base-2^c digits u_j of k + K, with K = sum_j half 2^(jc), give k's digits
    # u_j - half in [-half, half). Digit e goes to bucket |e| - 1 of its window, with the point negated if e < 0.
    windows = -(-top.bit_length() // c)
    while (top + sum(half << (j * c) for j in range(windows))) >> (windows * c):
        windows += 1
    recode = sum(half << (j * c) for j in range(windows))
    shifted = [k + recode for k in scalars]
    digits = np.empty((windows, n), dtype=np.int64)
    for j in range(windows):
        shift = j * c
        digits[j] = [(k >> shift) & mask for k in shifted]
    digits -= half
    window, point = np.nonzero(digits)
    signed = digits[window, point]
    # Bucket (window j, |e| - 1) is label j * half + |e| - 1; the point is table entry i, or n + i for -P_i.
    labels = window * half + np.abs(signed) - 1
    order = np.argsort(labels, kind="stable")
    table = [*points, *(group.neg(p) for p in points)]
    sources = (point + n * (signed < 0))[order]
    sums = _sum_buckets(group, [table[i] for i in sources.tolist()], labels[order])
    buckets = [group.infinity] * (windows * half)
    for label, p in sums.items():
        buckets[label] = p
    window_sums = _reduce_windows(group, buckets, windows, half)
    result = group.jacobian_infinity
    double, add = group.double, group.add
    for j in range(windows - 1, -1, -1):
        for _ in range(c):
            result = double(result)
        result = add(result, window_sums[j])
    return result


_LANES: Final = 128
"""How many running sums :func:`_reduce_windows` advances together (one inversion per step for all of them)."""


def _reduce_windows(group: _Group[A, J], buckets: list[A], windows: int, half: int) -> list[J]:
    """``sum_d d * B_(j,d)`` for each window j, from the bucket sums (infinity when empty) (module doc, step 3)."""
    infinity = group.infinity
    segments = 1
    while segments * 2 <= half and windows * segments * 2 <= _LANES:
        segments *= 2
    length = half // segments
    # Lane (j, s) covers buckets j*half + s*length .. + length - 1; it keeps a running sum R and a total T.
    bases = [j * half + s * length for j in range(windows) for s in range(segments)]
    running = [infinity] * len(bases)
    total = [infinity] * len(bases)
    for t in range(length - 1, -1, -1):
        _accumulate(group, running, [buckets[base + t] for base in bases])  # R += B
        _accumulate(group, total, running)  # T += R
    # Window j: sum_s (T_s + s * length * R_s); sum_s s R_s is a running sum over the segments.
    add_mixed, add, double = group.add_mixed, group.add, group.double
    out: list[J] = []
    for j in range(windows):
        lanes_j = range(j * segments, (j + 1) * segments)
        acc = group.jacobian_infinity
        for lane in lanes_j:
            acc = add_mixed(acc, total[lane])
        run = weighted = group.jacobian_infinity
        for lane in reversed(lanes_j[1:]):
            run = add_mixed(run, running[lane])
            weighted = add(weighted, run)
        for _ in range(length.bit_length() - 1):
            weighted = double(weighted)
        out.append(add(acc, weighted))
    return out


def _accumulate(group: _Group[A, J], targets: list[A], points: Sequence[A]) -> None:
    """``targets[i] += points[i]`` for every i, the additions that need arithmetic in one batch."""
    infinity = group.infinity
    left: list[A] = []
    right: list[A] = []
    where: list[int] = []
    for i, point in enumerate(points):
        if point == infinity:
            continue
        current = targets[i]
        if current == infinity:
            targets[i] = point
        else:
            left.append(current)
            right.append(point)
            where.append(i)
    if where:
        for i, s in zip(where, group.add_pairs(left, right), strict=True):
            targets[i] = s


def _check_lengths(points: Sequence[object], scalars: Sequence[int]) -> None:
    if len(points) != len(scalars):
        raise ValueError(f"an MSM needs as many scalars as points, not {len(scalars)} for {len(points)}")


def msm_g1_jacobian(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Jacobian:
    """``sum scalars[i] * points[i]`` in G1, in Jacobian form."""
    _check_lengths(points, scalars)
    q, r, beta = _Q, _R, GLV_BETA
    bases: list[G1Affine] = []
    ks: list[int] = []
    for p, k in zip(points, scalars, strict=True):
        k %= r
        if not k or p == G1_INFINITY:
            continue
        k1, k2 = glv_split(k)
        x, y = p
        if k1:
            bases.append(p if k1 > 0 else (x, q - y))
            ks.append(abs(k1))
        if k2:
            bases.append((beta * x % q, y if k2 > 0 else q - y))
            ks.append(abs(k2))
    return _pippenger(_G1_GROUP, bases, ks)


def msm_g1(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    """``sum scalars[i] * points[i]`` in G1 (affine; ValueError if the lengths differ)."""
    return g1_to_affine(msm_g1_jacobian(points, scalars))


def msm_g2_jacobian(points: Sequence[G2Affine], scalars: Sequence[int]) -> G2Jacobian:
    """``sum scalars[i] * points[i]`` in G2, in Jacobian form (points must be in G2: see the module doc)."""
    _check_lengths(points, scalars)
    r = _R
    bases: list[G2Affine] = []
    ks: list[int] = []
    for p, k in zip(points, scalars, strict=True):
        k %= r
        if not k or p == G2_INFINITY:
            continue
        k0, k1 = psi_split(k)
        if k0:
            bases.append(p)
            ks.append(k0)
        if k1:
            bases.append(g2_psi(p))
            ks.append(k1)
    return _pippenger(_G2_GROUP, bases, ks)


def msm_g2(points: Sequence[G2Affine], scalars: Sequence[int]) -> G2Affine:
    """``sum scalars[i] * points[i]`` in G2 (affine; ValueError if the lengths differ)."""
    return g2_to_affine(msm_g2_jacobian(points, scalars))


# ---------------------------------------------------------------------------------------------------- fixed base

# Building a fixed-base table costs one Jacobian addition per entry, about two batch-affine additions.
_TABLE_RATIO: Final = 2.0


def _signed_digits(k: int, c: int) -> list[int]:
    """``k`` in base 2^c with digits in ``(-2^(c-1), 2^(c-1)]``, least significant first."""
    full, half = 1 << c, 1 << (c - 1)
    mask = full - 1
    digits = []
    while k:
        d = k & mask
        if d > half:
            d -= full
        digits.append(d)
        k = (k - d) >> c
    return digits


def _fixed_base(group: _Group[A, J], base: A, scalars: Sequence[int]) -> list[A]:
    r = _R
    ks = [k % r for k in scalars]
    if base == group.infinity or not any(ks):
        return [group.infinity] * len(ks)
    c = window_size(len(ks), r.bit_length(), _TABLE_RATIO)
    half = 1 << (c - 1)
    windows = -(-(r.bit_length() + 1) // c)
    table: list[list[A]] = []
    start = group.to_jacobian(base)
    for _ in range(windows):
        row = [start]
        for _ in range(half - 1):
            row.append(group.add(row[-1], start))
        affine = group.batch_to_affine(row)
        table.append(affine)
        start = group.to_jacobian(affine[0])
        for _ in range(c):
            start = group.double(start)
    groups: list[list[A]] = []
    for k in ks:
        parts = []
        for j, d in enumerate(_signed_digits(k, c)):
            if d > 0:
                parts.append(table[j][d - 1])
            elif d < 0:
                parts.append(group.neg(table[j][-d - 1]))
        groups.append(parts)
    _sum_groups(group, groups)
    return [g[0] if g else group.infinity for g in groups]


def fixed_base_g1(base: G1Affine, scalars: Sequence[int]) -> list[G1Affine]:
    """``[k] base`` for every k of ``scalars`` (reduced mod r), sharing one table of multiples of ``base``.

    The table holds ``d * 2^(cj) * base`` for each c-bit window j and signed digit ``1 <= d <= 2^(c-1)``; each
    product is then the sum of one table entry per non-zero digit, and all those sums are done together in
    batch-affine form. A trusted setup turns thousands of field elements into points this way.
    """
    return _fixed_base(_G1_GROUP, base, scalars)


def fixed_base_g2(base: G2Affine, scalars: Sequence[int]) -> list[G2Affine]:
    """:func:`fixed_base_g1` in G2."""
    return _fixed_base(_G2_GROUP, base, scalars)


def _check_constants() -> None:
    (a1, b1), (a2, b2) = _GLV_BASIS
    if (a1 + b1 * GLV_LAMBDA) % _R or (a2 + b2 * GLV_LAMBDA) % _R or a1 * b2 - a2 * b1 != _R:
        # glv_split's rounding divides by r: the basis must have determinant +r.
        raise ValueError("the GLV basis is not a basis of the lattice {(a, b): a + b lambda = 0 mod r}")
    if max(abs(v) for v in (a1, b1, a2, b2)).bit_length() > 128:
        raise ValueError("the GLV basis is not short")
    if (GLV_LAMBDA * GLV_LAMBDA + GLV_LAMBDA + 1) % _R or pow(GLV_BETA, 3, _Q) != 1 or GLV_BETA == 1:
        raise ValueError("GLV lambda or beta is not a primitive cube root of unity")
    if (PSI_EIGENVALUE - FIELD_MODULUS) % _R:
        raise ValueError("psi's eigenvalue on G2 is not q mod r")


_check_constants()
