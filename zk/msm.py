"""Multi-scalar multiplication ``sum k_i P_i`` in G1 and G2: Pippenger's bucket method with batch-affine additions.

Spec: N. Pippenger, "On the evaluation of powers and monomials" (SIAM J. Comput. 1980), in the bucket form used by
ZK provers (Bernstein et al., "Faster batch forgery identification", INDOCRYPT 2012, section 4; the "batch affine"
accumulation of gnark and of Aztec's barretenberg).

Each scalar is cut into signed c-bit digits (``-2^(c-1) < d <= 2^(c-1)``), so a window needs ``2^(c-1)``
buckets: the point goes into bucket ``|d|`` with the sign of d. Filling the buckets is where the time goes (one
addition per point per window), so it is done in affine coordinates: the additions of a whole round, across all
windows and buckets, share one field inversion (Montgomery's trick), and an affine addition then costs 6
multiplications in G1 instead of the 11 of a mixed Jacobian one. Buckets are summed as a balanced tree, round by
round, so that no two additions of a round touch the same point. Each window's ``sum_d d * B_d`` is then the
classic running sum (Jacobian), and the windows are combined by c doublings each (Horner).

The window c minimises ``windows * (n + ratio * 2^(c-1))`` for the n non-zero scalars and the largest scalar's bit
length, so short scalars (bits, small integers of a witness) cost proportionally fewer windows. Scalars are
reduced mod r (G1 and G2 have order r); points must be in the group (the proving key's are, by construction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from zk.curve import (
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
    g1_neg,
    g1_to_affine,
    g1_to_jacobian,
    g2_add,
    g2_add_mixed,
    g2_batch_to_affine,
    g2_double,
    g2_neg,
    g2_to_affine,
    g2_to_jacobian,
)
from zk.field import CURVE_ORDER, FIELD_MODULUS

__all__ = [
    "fixed_base_g1",
    "fixed_base_g2",
    "msm_g1",
    "msm_g1_jacobian",
    "msm_g2",
    "msm_g2_jacobian",
    "window_size",
]

_Q: Final = FIELD_MODULUS
_G1_INF_J: Final[G1Jacobian] = (1, 1, 0)
_G2_INF_J: Final[G2Jacobian] = ((1, 0), (1, 0), (0, 0))

# Cost of summing a window's buckets (two Jacobian additions per bucket) in units of one batch-affine addition.
_G1_BUCKET_RATIO: Final = 3.0
_G2_BUCKET_RATIO: Final = 2.5


def window_size(n: int, bits: int, bucket_ratio: float = _G1_BUCKET_RATIO) -> int:
    """The window c (in bits) that minimises the estimated cost of an MSM of ``n`` scalars of ``bits`` bits."""
    best, best_cost = 1, float("inf")
    for c in range(1, 21):
        windows = -(-(bits + 1) // c)
        cost = windows * (n + bucket_ratio * (1 << (c - 1)))
        if cost < best_cost:
            best, best_cost = c, cost
    return best


def _sum_groups_g1(groups: list[list[G1Affine]]) -> None:
    """Replace each group (a list of affine G1 points, none at infinity) by ``[its sum]``, or ``[]`` at infinity.

    Round by round, the points of every group are added in pairs, all the round's slopes sharing one inversion.
    """
    q = _Q
    pending = [g for g in groups if len(g) > 1]
    while pending:
        left: list[G1Affine] = []
        right: list[G1Affine] = []
        for g in pending:
            even = len(g) & ~1
            left += g[0:even:2]
            right += g[1:even:2]
        dx = [b[0] - a[0] for a, b in zip(left, right, strict=True)]
        # The same x: the same point (a doubling, slope 3x^2 / 2y) or opposite points (their sum is at infinity).
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
        prefix: list[int] = []
        append = prefix.append
        acc = 1
        for d in dx:
            append(acc)
            acc = acc * d % q
        inverse = pow(acc, -1, q)
        inverses = [0] * len(dx)
        for i in range(len(dx) - 1, -1, -1):
            inverses[i] = inverse * prefix[i] % q
            inverse = inverse * dx[i] % q
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
        offset = 0
        for g in pending:
            m = len(g)
            half = m >> 1
            new = sums[offset : offset + half]
            if m & 1:
                new.append(g[-1])
            g[:] = new
            offset += half
        if cancels:
            for g in pending:
                g[:] = [p for p in g if p != G1_INFINITY]
        pending = [g for g in pending if len(g) > 1]


def _sum_groups_g2(groups: list[list[G2Affine]]) -> None:
    """:func:`_sum_groups_g1` for G2: F_q2 slopes, inverted through their norms (one F_q inversion per round)."""
    q = _Q
    pending = [g for g in groups if len(g) > 1]
    while pending:
        left: list[G2Affine] = []
        right: list[G2Affine] = []
        for g in pending:
            even = len(g) & ~1
            left += g[0:even:2]
            right += g[1:even:2]
        # Slope numerators and denominators: (y2 - y1) / (x2 - x1), or 3x^2 / 2y for a doubling.
        num = [(b0 - a0, b1 - a1) for ((_, (a0, a1)), (_, (b0, b1))) in zip(left, right, strict=True)]
        den = [(b0 - a0, b1 - a1) for (((a0, a1), _), ((b0, b1), _)) in zip(left, right, strict=True)]
        cancels: list[int] = []
        if (0, 0) in den:
            for i, d in enumerate(den):
                if d == (0, 0):
                    (x0, x1), (y0, y1) = left[i]
                    if num[i] == (0, 0):
                        num[i] = (3 * (x0 + x1) * (x0 - x1) % q, 6 * x0 * x1 % q)
                        den[i] = (2 * y0, 2 * y1)
                    else:
                        cancels.append(i)
                        num[i], den[i] = (0, 0), (1, 0)
        norms = [(d0 * d0 + d1 * d1) % q for d0, d1 in den]
        prefix: list[int] = []
        append = prefix.append
        acc = 1
        for n in norms:
            append(acc)
            acc = acc * n % q
        inverse = pow(acc, -1, q)
        inverses = [0] * len(norms)
        for i in range(len(norms) - 1, -1, -1):
            inverses[i] = inverse * prefix[i] % q
            inverse = inverse * norms[i] % q
        # slope = num * conj(den) / N(den)
        slopes = [
            ((s0 * d0 + s1 * d1) % q * n_inv % q, (s1 * d0 - s0 * d1) % q * n_inv % q)
            for (s0, s1), (d0, d1), n_inv in zip(num, den, inverses, strict=True)
        ]
        sums: list[G2Affine] = [
            ((x3_0, x3_1), ((l0 * t0 - l1 * t1 - y1_0) % q, (l0 * t1 + l1 * t0 - y1_1) % q))
            for ((x1_0, x1_1), (y1_0, y1_1)), ((x2_0, x2_1), _), (l0, l1) in zip(left, right, slopes, strict=True)
            for x3_0 in (((l0 + l1) * (l0 - l1) - x1_0 - x2_0) % q,)
            for x3_1 in ((2 * l0 * l1 - x1_1 - x2_1) % q,)
            for t0 in (x1_0 - x3_0,)
            for t1 in (x1_1 - x3_1,)
        ]
        for i in cancels:
            sums[i] = G2_INFINITY
        offset = 0
        for g in pending:
            m = len(g)
            half = m >> 1
            new = sums[offset : offset + half]
            if m & 1:
                new.append(g[-1])
            g[:] = new
            offset += half
        if cancels:
            for g in pending:
                g[:] = [p for p in g if p != G2_INFINITY]
        pending = [g for g in pending if len(g) > 1]


def _check_lengths(points: Sequence[object], scalars: Sequence[int]) -> None:
    if len(points) != len(scalars):
        raise ValueError(f"an MSM needs as many scalars as points, not {len(scalars)} for {len(points)}")


def msm_g1_jacobian(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Jacobian:
    """``sum scalars[i] * points[i]`` in G1, in Jacobian form."""
    _check_lengths(points, scalars)
    q, r = _Q, CURVE_ORDER
    pairs = [(p, k % r) for p, k in zip(points, scalars, strict=True) if k % r and p != G1_INFINITY]
    if not pairs:
        return _G1_INF_J
    bits = max(k.bit_length() for _, k in pairs)
    c = window_size(len(pairs), bits, _G1_BUCKET_RATIO)
    windows = -(-(bits + 1) // c)
    full, half = 1 << c, 1 << (c - 1)
    mask = full - 1
    buckets: list[list[list[G1Affine]]] = [[[] for _ in range(half)] for _ in range(windows)]
    for p, k in pairs:
        negated = (p[0], q - p[1])
        j = 0
        while k:
            d = k & mask
            if d > half:
                d -= full
                k -= d
                buckets[j][-d - 1].append(negated)
            elif d:
                buckets[j][d - 1].append(p)
            k >>= c
            j += 1
    _sum_groups_g1([b for window in buckets for b in window])

    result = _G1_INF_J
    for j in range(windows - 1, -1, -1):
        for _ in range(c):
            result = g1_double(result)
        running = total = _G1_INF_J
        for b in reversed(buckets[j]):
            if b:
                running = g1_add_mixed(running, b[0])
            if running[2]:
                total = g1_add(total, running)
        result = g1_add(result, total)
    return result


def msm_g1(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    """``sum scalars[i] * points[i]`` in G1 (affine; ValueError if the lengths differ)."""
    return g1_to_affine(msm_g1_jacobian(points, scalars))


def msm_g2_jacobian(points: Sequence[G2Affine], scalars: Sequence[int]) -> G2Jacobian:
    """``sum scalars[i] * points[i]`` in G2, in Jacobian form."""
    _check_lengths(points, scalars)
    q, r = _Q, CURVE_ORDER
    pairs = [(p, k % r) for p, k in zip(points, scalars, strict=True) if k % r and p != G2_INFINITY]
    if not pairs:
        return _G2_INF_J
    bits = max(k.bit_length() for _, k in pairs)
    c = window_size(len(pairs), bits, _G2_BUCKET_RATIO)
    windows = -(-(bits + 1) // c)
    full, half = 1 << c, 1 << (c - 1)
    mask = full - 1
    buckets: list[list[list[G2Affine]]] = [[[] for _ in range(half)] for _ in range(windows)]
    for p, k in pairs:
        (y0, y1) = p[1]
        negated = (p[0], (-y0 % q, -y1 % q))
        j = 0
        while k:
            d = k & mask
            if d > half:
                d -= full
                k -= d
                buckets[j][-d - 1].append(negated)
            elif d:
                buckets[j][d - 1].append(p)
            k >>= c
            j += 1
    _sum_groups_g2([b for window in buckets for b in window])

    result = _G2_INF_J
    for j in range(windows - 1, -1, -1):
        for _ in range(c):
            result = g2_double(result)
        running = total = _G2_INF_J
        for b in reversed(buckets[j]):
            if b:
                running = g2_add_mixed(running, b[0])
            if running[2] != (0, 0):
                total = g2_add(total, running)
        result = g2_add(result, total)
    return result


def msm_g2(points: Sequence[G2Affine], scalars: Sequence[int]) -> G2Affine:
    """``sum scalars[i] * points[i]`` in G2 (affine; ValueError if the lengths differ)."""
    return g2_to_affine(msm_g2_jacobian(points, scalars))


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


def fixed_base_g1(base: G1Affine, scalars: Sequence[int]) -> list[G1Affine]:
    """``[k] base`` for every k of ``scalars`` (reduced mod r), sharing one table of multiples of ``base``.

    The table holds ``d * 2^(cj) * base`` for each c-bit window j and signed digit ``1 <= d <= 2^(c-1)``; each
    product is then the sum of one table entry per non-zero digit, and all those sums are done together in
    batch-affine form (:func:`_sum_groups_g1`). A trusted setup turns thousands of field elements into points
    this way.
    """
    r = CURVE_ORDER
    ks = [k % r for k in scalars]
    if base == G1_INFINITY or not any(ks):
        return [G1_INFINITY] * len(ks)
    c = window_size(len(ks), r.bit_length(), _TABLE_RATIO)
    half = 1 << (c - 1)
    windows = -(-(r.bit_length() + 1) // c)
    table: list[list[G1Affine]] = []
    start = g1_to_jacobian(base)
    for _ in range(windows):
        row = [start]
        for _ in range(half - 1):
            row.append(g1_add(row[-1], start))
        affine = g1_batch_to_affine(row)
        table.append(affine)
        start = g1_to_jacobian(affine[0])
        for _ in range(c):
            start = g1_double(start)
    groups: list[list[G1Affine]] = []
    for k in ks:
        group = []
        for j, d in enumerate(_signed_digits(k, c)):
            if d > 0:
                group.append(table[j][d - 1])
            elif d < 0:
                group.append(g1_neg(table[j][-d - 1]))
        groups.append(group)
    _sum_groups_g1(groups)
    return [g[0] if g else G1_INFINITY for g in groups]


def fixed_base_g2(base: G2Affine, scalars: Sequence[int]) -> list[G2Affine]:
    """:func:`fixed_base_g1` in G2."""
    r = CURVE_ORDER
    ks = [k % r for k in scalars]
    if base == G2_INFINITY or not any(ks):
        return [G2_INFINITY] * len(ks)
    c = window_size(len(ks), r.bit_length(), _TABLE_RATIO)
    half = 1 << (c - 1)
    windows = -(-(r.bit_length() + 1) // c)
    table: list[list[G2Affine]] = []
    start = g2_to_jacobian(base)
    for _ in range(windows):
        row = [start]
        for _ in range(half - 1):
            row.append(g2_add(row[-1], start))
        affine = g2_batch_to_affine(row)
        table.append(affine)
        start = g2_to_jacobian(affine[0])
        for _ in range(c):
            start = g2_double(start)
    groups: list[list[G2Affine]] = []
    for k in ks:
        group = []
        for j, d in enumerate(_signed_digits(k, c)):
            if d > 0:
                group.append(table[j][d - 1])
            elif d < 0:
                group.append(g2_neg(table[j][-d - 1]))
        groups.append(group)
    _sum_groups_g2(groups)
    return [g[0] if g else G2_INFINITY for g in groups]
