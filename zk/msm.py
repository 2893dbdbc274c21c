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

0. *Bases.* The points, with their endomorphism images (step 1) and the negations of both, are made ready once
   (:class:`MsmBases`): a proving key keeps its queries' bases (:attr:`zk.keys.ProvingKey.msm_bases`). Their
   coordinates are GMP integers (:mod:`zk.gmp`), like every intermediate value; results come back as ints.
1. *Split.* Each scalar (reduced mod r) becomes two of about 127 bits: ``k = k1 + k2 lambda`` with a short lattice
   basis in G1, ``k = k0 + k1 6u^2`` by plain division in G2 (6u^2 is about the square root of r). Each point so
   becomes two points with half-length scalars (``phi(P)``, ``psi(P)``), which halves the number of windows.
2. *Buckets.* Scalars are cut into signed c-bit digits (``-2^(c-1) < d <= 2^(c-1)``); a point goes into bucket
   ``|d|`` of its window with the sign of d. Filling the buckets is where the time goes (one addition per point
   per window), so it is done in affine coordinates: the additions of a round, across all windows and buckets,
   share one field inversion per chunk of about a thousand (Montgomery's trick), and an affine addition then costs
   6 multiplications in G1 instead of the 11 of a mixed Jacobian one. Buckets are summed as balanced trees, round
   by round, so that no two additions of a round touch the same point; which point pairs with which is worked out
   on numpy arrays of bucket labels (sorted digits), so Python touches a point only to add it.
3. *Reduce.* Each window's ``sum_d d B_d`` is the classic running sum (``T += R; R += B_d`` from the top bucket
   down, then ``T + R``), also batch-affine: every window's bucket range is cut into segments that run side by
   side, so one inversion serves a step of all of them; segment s then adds ``T_s + offset_s R_s`` (the offsets
   are multiples of a power of two, so that sum is one more running sum and a few doublings).
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

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
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
from zk.gmp import gmp, gmp_inverse

__all__ = [
    "GLV_BETA",
    "GLV_LAMBDA",
    "PSI_EIGENVALUE",
    "MsmBases",
    "fixed_base_g1",
    "fixed_base_g2",
    "glv_split",
    "msm_bases_g1",
    "msm_bases_g2",
    "msm_g1",
    "msm_g1_jacobian",
    "msm_g2",
    "msm_g2_jacobian",
    "msm_jacobian",
    "psi_split",
    "window_size",
]

_Q: Final = gmp(FIELD_MODULUS)
"""q as a GMP integer: coordinates enter the MSMs as GMP integers and leave as ints (:mod:`zk.gmp`)."""
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
    q = FIELD_MODULUS
    root = fq_sqrt(-3 % q)
    if root is None:
        raise ValueError("-3 is not a square mod q: F_q has no cube roots of unity")
    half = (q + 1) // 2
    for beta in ((root - 1) * half % q, (-root - 1) * half % q):
        if g1_eq(g1_to_jacobian((beta * G1[0] % q, G1[1])), g1_mul_jacobian(G1, GLV_LAMBDA)):
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

_CHUNK: Final = 1024
"""How many additions share one inversion. A round of bucket sums can hold tens of thousands; taking them a chunk at a
time keeps the chunk's points and prefix products in the CPU cache between the forward and backward pass (a fifth
faster than one pass over the whole round), and a chunk's inversion costs about one addition."""


def _add_pairs(add_chunk: Callable[[list[A], list[A]], list[A]], left: list[A], right: list[A]) -> list[A]:
    """``left[i] + right[i]`` for every i, a chunk at a time."""
    if len(left) <= _CHUNK:
        return add_chunk(left, right)
    out: list[A] = []
    for start in range(0, len(left), _CHUNK):
        out += add_chunk(left[start : start + _CHUNK], right[start : start + _CHUNK])
    return out


def _add_pairs_g1(left: list[G1Affine], right: list[G1Affine]) -> list[G1Affine]:
    """``left[i] + right[i]`` for every i, none of the inputs at infinity (GMP coordinates)."""
    return _add_pairs(_add_chunk_g1, left, right)


def _add_chunk_g1(left: list[G1Affine], right: list[G1Affine]) -> list[G1Affine]:
    """:func:`_add_pairs_g1` with one inversion for all (Montgomery's trick, fused with the additions).

    Forward, the prefix products of the ``x2 - x1``; backward, each pair's ``1 / (x2 - x1)`` (the inverse of the
    running product times the product before it) goes straight into the slope ``lambda = (y2 - y1) / (x2 - x1)``
    and the sum ``x3 = lambda^2 - x1 - x2``, ``y3 = lambda (x1 - x3) - y1``: 6 multiplications and 4 reductions per
    addition. y3 is left unreduced (an integer of about 2 log q bits, possibly negative, congruent to y3 mod q): it
    only ever enters ``y2 - y1`` of a later slope, which is reduced anyway; reducing it would cost a fifth reduction
    (an MSM runs about 5% more instructions with it, counted with callgrind). :func:`_g1_normal` reduces y where a
    point leaves the batch additions. A zero product means a pair shares its x (P + P or P + (-P)):
    :func:`_add_with_equal_x`.
    """
    q = _Q
    acc = 1
    before = [1]  # before[i]: the product of the x2 - x1 of pairs 0 .. i - 1
    before += [acc := acc * (b[0] - a[0]) % q for a, b in zip(left, right, strict=True)]
    if not acc:
        return _add_with_equal_x(_add_chunk_g1, _g1_normal, _g1_affine_double, G1_INFINITY, left, right)
    inverse = gmp_inverse(before.pop(), q)  # 1 / (product of pairs 0 .. i), walking i down
    sums: list[G1Affine] = []
    append = sums.append
    for (x1, y1), (x2, y2), product in zip(reversed(left), reversed(right), reversed(before), strict=True):
        lam = (y2 - y1) * inverse * product % q
        inverse = inverse * (x2 - x1) % q
        x3 = (lam * lam - x1 - x2) % q
        append((x3, lam * (x1 - x3) - y1))
    sums.reverse()
    return sums


def _add_pairs_g2(left: list[G2Affine], right: list[G2Affine]) -> list[G2Affine]:
    """:func:`_add_pairs_g1` in G2."""
    return _add_pairs(_add_chunk_g2, left, right)


def _add_chunk_g2(left: list[G2Affine], right: list[G2Affine]) -> list[G2Affine]:
    """:func:`_add_chunk_g1` in G2: the F_q2 slope is ``(y2 - y1) conj(d) / N(d)`` with ``d = x2 - x1`` and the norm
    ``N(d) = d0^2 + d1^2`` in F_q, so the batch inverts the norms (zero only for d = 0: -1 is not a square mod q).
    As there, y3 is left unreduced."""
    q = _Q
    norms = [
        (d0 := b0 - a0) * d0 + (d1 := b1 - a1) * d1 for ((a0, a1), _), ((b0, b1), _) in zip(left, right, strict=True)
    ]
    acc = 1
    before = [1]
    before += [acc := acc * norm % q for norm in norms]
    if not acc:
        return _add_with_equal_x(_add_chunk_g2, _g2_normal, _g2_affine_double, G2_INFINITY, left, right)
    inverse = gmp_inverse(before.pop(), q)
    sums: list[G2Affine] = []
    append = sums.append
    for ((x1_0, x1_1), (y1_0, y1_1)), ((x2_0, x2_1), (y2_0, y2_1)), product, norm in zip(
        reversed(left), reversed(right), reversed(before), reversed(norms), strict=True
    ):
        d0, d1 = x2_0 - x1_0, x2_1 - x1_1
        s0, s1 = y2_0 - y1_0, y2_1 - y1_1
        norm_inverse = inverse * product % q
        inverse = inverse * norm % q
        l0 = (s0 * d0 + s1 * d1) * norm_inverse % q
        l1 = (s1 * d0 - s0 * d1) * norm_inverse % q
        x3_0 = ((l0 + l1) * (l0 - l1) - x1_0 - x2_0) % q
        x3_1 = (2 * l0 * l1 - x1_1 - x2_1) % q
        t0, t1 = x1_0 - x3_0, x1_1 - x3_1
        append(((x3_0, x3_1), (l0 * t0 - l1 * t1 - y1_0, l0 * t1 + l1 * t0 - y1_1)))
    sums.reverse()
    return sums


def _add_with_equal_x(
    add_chunk: Callable[[list[A], list[A]], list[A]],
    normal: Callable[[A], A],
    double: Callable[[A], A],
    infinity: A,
    left: list[A],
    right: list[A],
) -> list[A]:
    """Pairwise sums when some pairs share their x: those are ``P + P`` (doubled one by one) or ``P + (-P)``
    (infinity); the other pairs go through ``add_chunk`` as usual. Rare: buckets meet equal points only when the
    same point, or its negation, is in a bucket twice."""
    sums = [infinity] * len(left)
    shared = [a[0] == b[0] for a, b in zip(left, right, strict=True)]
    rest = [i for i, s in enumerate(shared) if not s]
    if rest:
        for i, s in zip(rest, add_chunk([left[i] for i in rest], [right[i] for i in rest]), strict=True):
            sums[i] = s
    for i, equal_x in enumerate(shared):
        if equal_x and (p := normal(left[i])) == normal(right[i]):
            sums[i] = double(p)
    return sums


def _g1_affine_double(p: G1Affine) -> G1Affine:
    return _g1_gmp(g1_to_affine(g1_double(g1_to_jacobian(p))))


def _g2_affine_double(p: G2Affine) -> G2Affine:
    return _g2_gmp(g2_to_affine(g2_double(g2_to_jacobian(p))))


def _g1_gmp(p: G1Affine) -> G1Affine:
    return gmp(p[0]), gmp(p[1])


def _g1_normal(p: G1Affine) -> G1Affine:
    """The point with y reduced mod q (batch additions leave it unreduced: :func:`_add_chunk_g1`)."""
    return p[0], p[1] % _Q


def _g2_normal(p: G2Affine) -> G2Affine:
    """:func:`_g1_normal` in G2."""
    x, (y0, y1) = p
    return x, (y0 % _Q, y1 % _Q)


_BETA_GMP: Final = gmp(GLV_BETA)


def _g1_phi(p: G1Affine) -> G1Affine:
    return _BETA_GMP * p[0] % _Q, p[1]


def _g2_psi(p: G2Affine) -> G2Affine:
    return _g2_gmp(g2_psi(p))


def _g1_int(p: G1Affine) -> G1Affine:
    return int(p[0]), int(p[1] % _Q)


def _g1_jacobian_int(p: G1Jacobian) -> G1Jacobian:
    return int(p[0]), int(p[1]), int(p[2])


def _g2_gmp(p: G2Affine) -> G2Affine:
    (x0, x1), (y0, y1) = p
    return (gmp(x0), gmp(x1)), (gmp(y0), gmp(y1))


def _g2_int(p: G2Affine) -> G2Affine:
    (x0, x1), (y0, y1) = p
    return (int(x0), int(x1)), (int(y0 % _Q), int(y1 % _Q))


def _g2_jacobian_int(p: G2Jacobian) -> G2Jacobian:
    (x0, x1), (y0, y1), (z0, z1) = p
    return (int(x0), int(x1)), (int(y0), int(y1)), (int(z0), int(z1))


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
    to_gmp: Callable[[A], A]
    """The point with GMP coordinates, for the hot loops."""
    endomorphism: Callable[[A], A]
    """phi (G1) or psi (G2) of a point with GMP coordinates."""
    split: Callable[[int], tuple[int, int]]
    """A scalar ``0 < k < r`` as ``(k1, k2)`` with ``k P = k1 P + k2 endomorphism(P)``, each below 2^128 in size."""
    normal: Callable[[A], A]
    """The point with its y reduced mod q (batch additions leave y unreduced)."""
    affine_to_int: Callable[[A], A]
    jacobian_to_int: Callable[[J], J]
    """The point with plain ``int`` coordinates again (and reduced), for the caller."""
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
    _g1_gmp,
    _g1_phi,
    glv_split,
    _g1_normal,
    _g1_int,
    _g1_jacobian_int,
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
    _g2_gmp,
    _g2_psi,
    psi_split,
    _g2_normal,
    _g2_int,
    _g2_jacobian_int,
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


def _sum_buckets(
    group: _Group[A, J], table: Sequence[A], sources: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]
) -> dict[int, A]:
    """The sum of the points ``table[sources[i]]`` with each label (``labels`` sorted, the points not at infinity),
    for the labels whose sum is not infinity.

    Round by round, the points of each label are added in pairs, all of a round's additions in one batch. A label
    with an odd number of points sets its last one aside for the round; the others then pair up as neighbours
    (``points[0::2] + points[1::2]``) and their sums come out still sorted by label, so a round moves each point
    once in Python and the bookkeeping is on numpy label arrays. The points set aside (at most one per label and
    round) are summed the same way at the end.
    """
    infinity = group.infinity
    aside: list[A] = []
    aside_labels = [np.empty(0, dtype=np.int64)]
    points: list[A] = []
    first_round = True
    while len(labels):
        starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
        run = np.diff(np.append(starts, len(labels)))
        odd_last = (starts + run - 1)[run & 1 == 1]
        keep = np.ones(len(labels), dtype=bool)
        keep[odd_last] = False
        if first_round:
            aside += _gather(table, sources[odd_last])
            kept = _gather(table, sources[keep])
            first_round = False
        else:
            aside += _gather(points, odd_last)
            kept = _gather(points, np.flatnonzero(keep))
        aside_labels.append(labels[odd_last])
        if not kept:
            break
        points = group.add_pairs(kept[0::2], kept[1::2])
        labels = labels[keep][0::2]
        if infinity in points:  # P + (-P): rare, but then the point at infinity must leave its label
            finite = [i for i, p in enumerate(points) if p != infinity]
            points = [points[i] for i in finite]
            labels = labels[finite]
    waiting = np.concatenate(aside_labels)
    order = np.argsort(waiting, kind="stable")
    waiting = waiting[order]
    if not (waiting[1:] == waiting[:-1]).any():
        return dict(zip(waiting.tolist(), _gather(aside, order), strict=True))
    return _sum_buckets(group, aside, order, waiting)


def _gather(items: Sequence[A], indices: npt.NDArray[np.int64]) -> list[A]:
    """``[items[i] for i in indices]``, the loop in C (``operator.itemgetter``): a round of bucket sums moves every
    point through here."""
    if len(indices) > 1:
        return list(itemgetter(*indices.tolist())(items))
    return [items[i] for i in indices.tolist()]


# ---------------------------------------------------------------------------------------------------- Pippenger


def _pippenger(
    group: _Group[A, J], table: list[A], bases: Sequence[int], scalars: Sequence[int], negated: Sequence[bool]
) -> J:
    """``sum (-1)^negated[i] scalars[i] table[bases[i]]`` for positive ``scalars``, where ``table`` holds m points
    (GMP coordinates, none at infinity among those used) followed by their m negations; ``int`` coordinates out."""
    if not scalars:
        return group.jacobian_infinity
    n = len(scalars)
    m = len(table) // 2
    top = max(scalars)
    c = window_size(n, top.bit_length(), group.bucket_ratio)
    half = 1 << (c - 1)
    # Signed digits without carries: the base-2^c digits u_j of k + K, with K = sum_j half 2^(jc), give k's digits
    # u_j - half in [-half, half). Digit e goes to bucket |e| - 1 of its window, with the point negated if e < 0.
    windows = -(-top.bit_length() // c)
    while (top + sum(half << (j * c) for j in range(windows))) >> (windows * c):
        windows += 1
    recode = sum(half << (j * c) for j in range(windows))
    digits = _digits([k + recode for k in scalars], c, windows) - half
    window, term = np.nonzero(digits)
    signed = digits[window, term]
    # Bucket (window j, |e| - 1) is label j * half + |e| - 1; the point is table entry b, or m + b for -P_b.
    labels = window * half + np.abs(signed) - 1
    order = np.argsort(labels, kind="stable")
    flip = (signed < 0) ^ np.asarray(negated, dtype=bool)[term]
    sources = (np.asarray(bases, dtype=np.int64)[term] + m * flip)[order]
    sums = _sum_buckets(group, table, sources, labels[order])
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
    return group.jacobian_to_int(result)


def _digits(values: Sequence[int], c: int, windows: int) -> npt.NDArray[np.int64]:
    """``digits[j, i]``: bits ``j*c .. j*c + c - 1`` of ``values[i]`` (non-negative, below ``2^(windows*c)``).

    The values go to numpy as little-endian 64-bit words, and each window is two shifts and a mask over all of them.
    """
    words = (windows * c + 63) // 64 + 1
    raw = np.frombuffer(b"".join(v.to_bytes(8 * words, "little") for v in values), dtype="<u8")
    raw = raw.reshape(len(values), words)
    mask = np.uint64((1 << c) - 1)
    digits = np.empty((windows, len(values)), dtype=np.int64)
    for j in range(windows):
        word, shift = divmod(j * c, 64)
        d = raw[:, word] >> np.uint64(shift)
        if shift + c > 64:
            d |= raw[:, word + 1] << np.uint64(64 - shift)
        digits[j] = d & mask
    return digits


_LANES: Final = 128
"""How many running sums :func:`_reduce_windows` advances together (one inversion per step for all of them)."""


def _reduce_windows(group: _Group[A, J], buckets: list[A], windows: int, half: int) -> list[J]:
    """``sum_d d * B_(j,d)`` for each window j, from the bucket sums (infinity when empty) (module doc, step 3)."""
    infinity = group.infinity
    segments = 1
    while segments * 2 <= half and windows * segments * 2 <= _LANES:
        segments *= 2
    length = half // segments
    # Lane (j, s) covers buckets j*half + s*length .. + length - 1; it keeps a running sum R and a total T. Each step
    # does T += R and R += B from the old R, all lanes' additions in one batch; then T = sum_t t B_t over the lane's
    # buckets t = 0 .. length - 1, and T + R = sum_t (t + 1) B_t.
    bases = [j * half + s * length for j in range(windows) for s in range(segments)]
    lanes = len(bases)
    running = [infinity] * lanes
    total = [infinity] * lanes
    for t in range(length - 1, -1, -1):
        targets = running + total
        _accumulate(group, targets, [buckets[base + t] for base in bases] + running)
        running, total = targets[:lanes], targets[lanes:]
    _accumulate(group, total, running)
    normal = group.normal
    running = [normal(p) for p in running]
    total = [normal(p) for p in total]
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


def _accumulate(group: _Group[A, J], targets: list[A], points: list[A]) -> None:
    """``targets[i] += points[i]`` for every i, the additions that need arithmetic in one batch."""
    infinity = group.infinity
    if infinity not in targets and infinity not in points:  # every step but the first few of a reduction
        targets[:] = group.add_pairs(targets, points)
        return
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


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause CPython's cycle collector for the block. An MSM allocates millions of tuples of integers, which form no
    reference cycles, and the collector would walk its young generations over them again and again (about a twentieth
    of a proof's time). Reference counting still frees everything; the collector's previous state comes back after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_lengths(points: Sequence[object], scalars: Sequence[int]) -> None:
    if len(points) != len(scalars):
        raise ValueError(f"an MSM needs as many scalars as points, not {len(scalars)} for {len(points)}")


@dataclass(frozen=True, eq=False)
class MsmBases(Generic[A, J]):
    """Points made ready for MSMs over them, once for many (a proving key's queries): each point and its
    endomorphism image with GMP coordinates, and the negations of both. :func:`msm_jacobian` then only splits and
    buckets the scalars. ``msm_bases_g1(points)`` costs about what ten thousand point additions do, for 10,000 points.
    """

    group: _Group[A, J]
    table: list[A]
    """``P_0, E(P_0), P_1, E(P_1), ...`` (E: phi or psi; infinity where P_i is), then the negations of all."""
    present: list[bool]
    """Whether ``P_i`` is a point other than infinity."""

    def __len__(self) -> int:
        return len(self.present)


def _bases(group: _Group[A, J], points: Sequence[A]) -> MsmBases[A, J]:
    infinity, to_gmp, endomorphism, neg = group.infinity, group.to_gmp, group.endomorphism, group.neg
    present = [p != infinity for p in points]
    table: list[A] = []
    for p, here in zip(points, present, strict=True):
        if here:
            p = to_gmp(p)
            table += (p, endomorphism(p))
        else:
            table += (infinity, infinity)
    table += [neg(p) if p != infinity else p for p in table]
    return MsmBases(group, table, present)


def msm_bases_g1(points: Sequence[G1Affine]) -> MsmBases[G1Affine, G1Jacobian]:
    """G1 points made ready for :func:`msm_jacobian`."""
    return _bases(_G1_GROUP, points)


def msm_bases_g2(points: Sequence[G2Affine]) -> MsmBases[G2Affine, G2Jacobian]:
    """G2 points (which must be in G2: see the module doc) made ready for :func:`msm_jacobian`."""
    return _bases(_G2_GROUP, points)


def msm_jacobian(bases: MsmBases[A, J], scalars: Sequence[int]) -> J:
    """``sum scalars[i] * points[i]`` over the points behind ``bases``, in Jacobian form with ``int`` coordinates
    (ValueError if the lengths differ)."""
    _check_lengths(bases.present, scalars)
    r, split = _R, bases.group.split
    sources: list[int] = []
    ks: list[int] = []
    negated: list[bool] = []
    for i, (k, here) in enumerate(zip(scalars, bases.present, strict=True)):
        k %= r
        if not k or not here:
            continue
        k1, k2 = split(k)
        if k1:
            sources.append(2 * i)
            ks.append(abs(k1))
            negated.append(k1 < 0)
        if k2:
            sources.append(2 * i + 1)
            ks.append(abs(k2))
            negated.append(k2 < 0)
    with _cycle_collector_paused():
        return _pippenger(bases.group, bases.table, sources, ks, negated)


def msm_g1_jacobian(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Jacobian:
    """``sum scalars[i] * points[i]`` in G1, in Jacobian form (for points used once; see :class:`MsmBases`)."""
    _check_lengths(points, scalars)
    return msm_jacobian(msm_bases_g1(points), scalars)


def msm_g1(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    """``sum scalars[i] * points[i]`` in G1 (affine; ValueError if the lengths differ)."""
    return g1_to_affine(msm_g1_jacobian(points, scalars))


def msm_g2_jacobian(points: Sequence[G2Affine], scalars: Sequence[int]) -> G2Jacobian:
    """``sum scalars[i] * points[i]`` in G2, in Jacobian form (points must be in G2: see the module doc)."""
    _check_lengths(points, scalars)
    return msm_jacobian(msm_bases_g2(points), scalars)


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
    base = group.to_gmp(base)
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
    with _cycle_collector_paused():
        _sum_groups(group, groups)
    to_int = group.affine_to_int
    return [to_int(g[0]) if g else group.infinity for g in groups]


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
    if (GLV_LAMBDA * GLV_LAMBDA + GLV_LAMBDA + 1) % _R or pow(GLV_BETA, 3, FIELD_MODULUS) != 1 or GLV_BETA == 1:
        raise ValueError("GLV lambda or beta is not a primitive cube root of unity")
    if (PSI_EIGENVALUE - FIELD_MODULUS) % _R:
        raise ValueError("psi's eigenvalue on G2 is not q mod r")


_check_constants()
