"""BN254 (alt_bn128) G1 and G2 arithmetic on plain integers, for the prover's hot path.

Specs: EIP-196 (G1: ``y^2 = x^3 + 3`` over F_q, generator (1, 2), the 64-byte encoding, (0, 0) for the point at
infinity) and EIP-197 (G2: the sextic twist ``y^2 = x^3 + 3 / (9 + i)`` over F_q2, its generator, the 128-byte
encoding with the imaginary part of each coordinate first). Formulas: the Explicit-Formulas Database, Jacobian
coordinates for a = 0 (``dbl-2009-l``; ``add-2007-bl`` and ``madd-2007-bl`` without the factor-2 rescaling).
The G2 membership test is the endomorphism one of El Housni, Guillevic and Piellard, "Co-factor clearing and
subgroup membership testing on pairing-friendly curves" (AFRICACRYPT 2022; ePrint 2022/352): for BN curves
``Q`` is in G2 iff ``psi(Q) = [6u^2] Q``, where psi is the untwist-Frobenius-twist endomorphism; the tests check
it against multiplication by r.

Representation: affine points are ``(x, y)`` tuples of ints, ``(0, 0)`` being the point at infinity (it is not on
either curve); Jacobian points are ``(X, Y, Z)`` meaning ``(X / Z^2, Y / Z^3)``, any ``Z = 0`` being infinity. G2
coordinates are F_q2 pairs ``(c0, c1)`` = ``c0 + c1 i``, py_ecc's and snarkjs's order. Coordinates are reduced
(0 <= c < q) on input and output. Functions take and return plain tuples; there are no point objects, so an inner
loop pays for arithmetic only. :func:`g1_from_ints`, :func:`g2_from_ints` and the ``from_bytes`` functions are
the parsers: whatever they return is on the curve and in the group.

py_ecc's ``optimized_bn128`` is the reference these are tested against (:mod:`zk.boundary` converts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from zk.errors import PointError
from zk.field import CURVE_ORDER, FIELD_MODULUS, Fq2, U, fq2_inv, fq2_mul, fq2_pow, fq2_square

__all__ = [
    "B1",
    "B2",
    "G1",
    "G1_INFINITY",
    "G2",
    "G2_INFINITY",
    "G1Affine",
    "G1Jacobian",
    "G2Affine",
    "G2Jacobian",
    "g1_add",
    "g1_add_mixed",
    "g1_batch_to_affine",
    "g1_double",
    "g1_eq",
    "g1_from_bytes",
    "g1_from_ints",
    "g1_in_subgroup",
    "g1_is_on_curve",
    "g1_mul",
    "g1_mul_jacobian",
    "g1_neg",
    "g1_to_affine",
    "g1_to_bytes",
    "g1_to_jacobian",
    "g2_add",
    "g2_add_mixed",
    "g2_batch_to_affine",
    "g2_double",
    "g2_eq",
    "g2_from_bytes",
    "g2_from_ints",
    "g2_in_subgroup",
    "g2_is_on_curve",
    "g2_mul",
    "g2_mul_jacobian",
    "g2_neg",
    "g2_psi",
    "g2_to_affine",
    "g2_to_bytes",
    "g2_to_jacobian",
    "wnaf",
]

G1Affine = tuple[int, int]
G1Jacobian = tuple[int, int, int]
G2Affine = tuple[Fq2, Fq2]
G2Jacobian = tuple[Fq2, Fq2, Fq2]

_Q: Final = FIELD_MODULUS

B1: Final = 3
B2: Final[Fq2] = fq2_mul((3, 0), fq2_inv((9, 1)))
"""The twist's constant ``3 / (9 + i)``."""

G1: Final[G1Affine] = (1, 2)
G2: Final[G2Affine] = (
    (
        10857046999023057135944570762232829481370756359578518086990519993285655852781,
        11559732032986387107991004021392285783925812861821192530917403151452391805634,
    ),
    (
        8495653923123431417604973247489272438418190587263600148770280649306958101930,
        4082367875863433681332203403145435568316851327593401208105741076214120093531,
    ),
)
G1_INFINITY: Final[G1Affine] = (0, 0)
G2_INFINITY: Final[G2Affine] = ((0, 0), (0, 0))
_G1_INF_J: Final[G1Jacobian] = (1, 1, 0)
_G2_INF_J: Final[G2Jacobian] = ((1, 0), (1, 0), (0, 0))

# psi(x, y) = (conj(x) * xi^((q - 1) / 3), conj(y) * xi^((q - 1) / 2)) with xi = 9 + i, the twist's non-residue.
_PSI_X: Final[Fq2] = fq2_pow((9, 1), (_Q - 1) // 3)
_PSI_Y: Final[Fq2] = fq2_pow((9, 1), (_Q - 1) // 2)
_SIX_U_SQUARED: Final = 6 * U * U  # = q mod r: psi's eigenvalue on G2


# ---------------------------------------------------------------------------------------------------- scalars


def wnaf(k: int, width: int) -> list[int]:
    """The width-``width`` non-adjacent form of ``k >= 0``, least significant digit first.

    Digits are 0 or odd in ``(-2^(width-1), 2^(width-1))``, and of any ``width`` consecutive digits at most one is
    non-zero, so a scalar multiplication needs a table of ``2^(width-2)`` odd multiples and about
    ``bits / (width + 1)`` additions.
    """
    digits = []
    full = 1 << width
    half = full >> 1
    mask = full - 1
    while k:
        if k & 1:
            d = k & mask
            if d >= half:
                d -= full
            k -= d
            digits.append(d)
        else:
            digits.append(0)
        k >>= 1
    return digits


def _wnaf_width(k: int) -> int:
    bits = k.bit_length()
    return 2 if bits < 8 else 3 if bits < 24 else 4 if bits < 72 else 5


# ---------------------------------------------------------------------------------------------------- G1


def g1_is_on_curve(p: G1Affine) -> bool:
    """Whether ``p`` is the point at infinity or a point of ``y^2 = x^3 + 3`` with coordinates below q."""
    x, y = p
    if x == 0 and y == 0:
        return True
    return 0 <= x < _Q and 0 <= y < _Q and (y * y - x * x * x - B1) % _Q == 0


def g1_in_subgroup(p: G1Affine) -> bool:
    """Whether ``p`` is in G1: the curve has prime order r (cofactor 1), so every point of it is."""
    return g1_is_on_curve(p)


def g1_neg(p: G1Affine) -> G1Affine:
    x, y = p
    return (x, -y % _Q) if (x or y) else p


def g1_to_jacobian(p: G1Affine) -> G1Jacobian:
    x, y = p
    return (x, y, 1) if (x or y) else _G1_INF_J


def g1_to_affine(p: G1Jacobian) -> G1Affine:
    x, y, z = p
    if not z:
        return G1_INFINITY
    q = _Q
    zi = pow(z, -1, q)
    zi2 = zi * zi % q
    return x * zi2 % q, y * zi2 * zi % q


def g1_batch_to_affine(points: Sequence[G1Jacobian]) -> list[G1Affine]:
    """Affine forms of many Jacobian points with one field inversion (Montgomery's trick)."""
    q = _Q
    prefix = []
    acc = 1
    for _, _, z in points:
        prefix.append(acc)
        if z:
            acc = acc * z % q
    inverse = pow(acc, -1, q)
    out: list[G1Affine] = [G1_INFINITY] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        if z:
            zi = inverse * prefix[i] % q
            inverse = inverse * z % q
            zi2 = zi * zi % q
            out[i] = (x * zi2 % q, y * zi2 * zi % q)
    return out


def g1_eq(p: G1Jacobian, r: G1Jacobian) -> bool:
    """Whether two Jacobian points are the same point."""
    x1, y1, z1 = p
    x2, y2, z2 = r
    if not z1 or not z2:
        return not z1 and not z2
    q = _Q
    z1z1 = z1 * z1
    z2z2 = z2 * z2
    return (x1 * z2z2 - x2 * z1z1) % q == 0 and (y1 * z2z2 * z2 - y2 * z1z1 * z1) % q == 0


def g1_double(p: G1Jacobian) -> G1Jacobian:
    x, y, z = p
    if not z:
        return p
    q = _Q
    a = x * x % q
    b = y * y % q
    c = b * b % q
    d = 4 * x * b % q
    e = 3 * a
    f = e * e % q
    x3 = (f - 2 * d) % q
    return x3, (e * (d - x3) - 8 * c) % q, 2 * y * z % q


def g1_add_mixed(p: G1Jacobian, r: G1Affine) -> G1Jacobian:
    """``p + r`` for a Jacobian ``p`` and an affine ``r``."""
    x1, y1, z1 = p
    x2, y2 = r
    if not (x2 or y2):
        return p
    if not z1:
        return x2, y2, 1
    q = _Q
    z1z1 = z1 * z1 % q
    h = x2 * z1z1 % q - x1
    rr = y2 * z1 * z1z1 % q - y1
    if not h:
        return g1_double(p) if not rr else _G1_INF_J
    hh = h * h % q
    hhh = h * hh % q
    v = x1 * hh % q
    x3 = (rr * rr - hhh - 2 * v) % q
    return x3, (rr * (v - x3) - y1 * hhh) % q, z1 * h % q


def g1_add(p: G1Jacobian, r: G1Jacobian) -> G1Jacobian:
    x1, y1, z1 = p
    x2, y2, z2 = r
    if not z1:
        return r
    if not z2:
        return p
    q = _Q
    z1z1 = z1 * z1 % q
    z2z2 = z2 * z2 % q
    u1 = x1 * z2z2 % q
    s1 = y1 * z2 * z2z2 % q
    h = x2 * z1z1 % q - u1
    rr = y2 * z1 * z1z1 % q - s1
    if not h:
        return g1_double(p) if not rr else _G1_INF_J
    hh = h * h % q
    hhh = h * hh % q
    v = u1 * hh % q
    x3 = (rr * rr - hhh - 2 * v) % q
    return x3, (rr * (v - x3) - s1 * hhh) % q, z1 * z2 * h % q


def g1_mul_jacobian(p: G1Affine, k: int) -> G1Jacobian:
    """``[k] p`` for any integer k (negative k multiplies ``-p``), with a wNAF over an affine table."""
    if k < 0:
        p, k = g1_neg(p), -k
    if not k or p == G1_INFINITY:
        return _G1_INF_J
    width = _wnaf_width(k)
    digits = wnaf(k, width)
    base = g1_to_jacobian(p)
    twice = g1_double(base)
    table_j = [base]
    for _ in range((1 << (width - 2)) - 1):
        table_j.append(g1_add(table_j[-1], twice))
    table = g1_batch_to_affine(table_j)
    negated = [g1_neg(t) for t in table]
    acc = _G1_INF_J
    for d in reversed(digits):
        acc = g1_double(acc)
        if d > 0:
            acc = g1_add_mixed(acc, table[d >> 1])
        elif d < 0:
            acc = g1_add_mixed(acc, negated[(-d) >> 1])
    return acc


def g1_mul(p: G1Affine, k: int) -> G1Affine:
    """``[k] p`` in affine form."""
    return g1_to_affine(g1_mul_jacobian(p, k))


def g1_from_ints(x: int, y: int) -> G1Affine:
    """Parse affine coordinates into a G1 point; PointError unless both are in ``0..q-1`` and the point is on G1."""
    p = (x, y)
    if not (isinstance(x, int) and isinstance(y, int)) or isinstance(x, bool) or isinstance(y, bool):
        raise PointError("G1 coordinates must be integers")
    if not (0 <= x < _Q and 0 <= y < _Q):
        raise PointError("G1 coordinate out of range: each must be in 0..q-1")
    if not g1_is_on_curve(p):
        raise PointError("point is not on the G1 curve y^2 = x^3 + 3")
    return p


def g1_to_bytes(p: G1Affine) -> bytes:
    """The EIP-196 encoding: x then y, 32 bytes big-endian each; 64 zero bytes for the point at infinity."""
    x, y = p
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def g1_from_bytes(data: bytes) -> G1Affine:
    """Parse an EIP-196 encoded G1 point (see :func:`g1_to_bytes`); PointError for anything else."""
    if len(data) != 64:
        raise PointError(f"a G1 point is 64 bytes, not {len(data)}")
    return g1_from_ints(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big"))


# ---------------------------------------------------------------------------------------------------- G2


def g2_is_on_curve(p: G2Affine) -> bool:
    """Whether ``p`` is the point at infinity or a point of the twist with coordinates below q."""
    (x0, x1), (y0, y1) = p
    if not (x0 or x1 or y0 or y1):
        return True
    if not all(0 <= c < _Q for c in (x0, x1, y0, y1)):
        return False
    y2 = fq2_square((y0, y1))
    x3 = fq2_mul(fq2_square((x0, x1)), (x0, x1))
    return y2 == ((x3[0] + B2[0]) % _Q, (x3[1] + B2[1]) % _Q)


def g2_neg(p: G2Affine) -> G2Affine:
    x, (y0, y1) = p
    return (x, (-y0 % _Q, -y1 % _Q)) if p != G2_INFINITY else p


def g2_to_jacobian(p: G2Affine) -> G2Jacobian:
    return (p[0], p[1], (1, 0)) if p != G2_INFINITY else _G2_INF_J


def g2_to_affine(p: G2Jacobian) -> G2Affine:
    return g2_batch_to_affine([p])[0]


def g2_batch_to_affine(points: Sequence[G2Jacobian]) -> list[G2Affine]:
    """Affine forms of many Jacobian G2 points with one field inversion (of the product of the Z norms)."""
    q = _Q
    prefix = []
    acc = 1
    norms = []
    for _, _, (z0, z1) in points:
        n = (z0 * z0 + z1 * z1) % q
        norms.append(n)
        prefix.append(acc)
        if n:
            acc = acc * n % q
    inverse = pow(acc, -1, q)
    out: list[G2Affine] = [G2_INFINITY] * len(points)
    for i in range(len(points) - 1, -1, -1):
        n = norms[i]
        if not n:
            continue
        ni = inverse * prefix[i] % q
        inverse = inverse * n % q
        (x0, x1), (y0, y1), (z0, z1) = points[i]
        # 1/z = conj(z) / N(z); then 1/z^2 and 1/z^3.
        i0, i1 = z0 * ni % q, -z1 * ni % q
        s0, s1 = (i0 + i1) * (i0 - i1) % q, 2 * i0 * i1 % q
        c0, c1 = (s0 * i0 - s1 * i1) % q, (s0 * i1 + s1 * i0) % q
        out[i] = (
            ((x0 * s0 - x1 * s1) % q, (x0 * s1 + x1 * s0) % q),
            ((y0 * c0 - y1 * c1) % q, (y0 * c1 + y1 * c0) % q),
        )
    return out


def g2_eq(p: G2Jacobian, r: G2Jacobian) -> bool:
    """Whether two Jacobian G2 points are the same point."""
    (x1, y1, z1), (x2, y2, z2) = p, r
    inf1, inf2 = z1 == (0, 0), z2 == (0, 0)
    if inf1 or inf2:
        return inf1 and inf2
    z1z1, z2z2 = fq2_square(z1), fq2_square(z2)
    return fq2_mul(x1, z2z2) == fq2_mul(x2, z1z1) and fq2_mul(y1, fq2_mul(z2z2, z2)) == fq2_mul(y2, fq2_mul(z1z1, z1))


def g2_double(p: G2Jacobian) -> G2Jacobian:
    (x0, x1), (y0, y1), (z0, z1) = p
    if not (z0 or z1):
        return p
    q = _Q
    a0, a1 = (x0 + x1) * (x0 - x1) % q, 2 * x0 * x1 % q
    b0, b1 = (y0 + y1) * (y0 - y1) % q, 2 * y0 * y1 % q
    c0, c1 = (b0 + b1) * (b0 - b1) % q, 2 * b0 * b1 % q
    d0, d1 = 4 * (x0 * b0 - x1 * b1) % q, 4 * (x0 * b1 + x1 * b0) % q
    e0, e1 = 3 * a0, 3 * a1
    f0, f1 = (e0 + e1) * (e0 - e1) % q, 2 * e0 * e1 % q
    X0, X1 = (f0 - 2 * d0) % q, (f1 - 2 * d1) % q
    t0, t1 = d0 - X0, d1 - X1
    return (
        (X0, X1),
        ((e0 * t0 - e1 * t1 - 8 * c0) % q, (e0 * t1 + e1 * t0 - 8 * c1) % q),
        (2 * (y0 * z0 - y1 * z1) % q, 2 * (y0 * z1 + y1 * z0) % q),
    )


def g2_add_mixed(p: G2Jacobian, r: G2Affine) -> G2Jacobian:
    """``p + r`` for a Jacobian ``p`` and an affine ``r``."""
    (x2_0, x2_1), (y2_0, y2_1) = r
    if not (x2_0 or x2_1 or y2_0 or y2_1):
        return p
    (x1_0, x1_1), (y1_0, y1_1), (z0, z1) = p
    if not (z0 or z1):
        return r[0], r[1], (1, 0)
    q = _Q
    zz0, zz1 = (z0 + z1) * (z0 - z1) % q, 2 * z0 * z1 % q  # z^2
    zzz0, zzz1 = (zz0 * z0 - zz1 * z1) % q, (zz0 * z1 + zz1 * z0) % q  # z^3
    h0 = (x2_0 * zz0 - x2_1 * zz1) % q - x1_0
    h1 = (x2_0 * zz1 + x2_1 * zz0) % q - x1_1
    r0 = (y2_0 * zzz0 - y2_1 * zzz1) % q - y1_0
    r1 = (y2_0 * zzz1 + y2_1 * zzz0) % q - y1_1
    if not (h0 or h1):
        return g2_double(p) if not (r0 or r1) else _G2_INF_J
    hh0, hh1 = (h0 + h1) * (h0 - h1) % q, 2 * h0 * h1 % q
    hhh0, hhh1 = (h0 * hh0 - h1 * hh1) % q, (h0 * hh1 + h1 * hh0) % q
    v0, v1 = (x1_0 * hh0 - x1_1 * hh1) % q, (x1_0 * hh1 + x1_1 * hh0) % q
    X0 = ((r0 + r1) * (r0 - r1) - hhh0 - 2 * v0) % q
    X1 = (2 * r0 * r1 - hhh1 - 2 * v1) % q
    t0, t1 = v0 - X0, v1 - X1
    return (
        (X0, X1),
        (
            (r0 * t0 - r1 * t1 - y1_0 * hhh0 + y1_1 * hhh1) % q,
            (r0 * t1 + r1 * t0 - y1_0 * hhh1 - y1_1 * hhh0) % q,
        ),
        ((z0 * h0 - z1 * h1) % q, (z0 * h1 + z1 * h0) % q),
    )


def g2_add(p: G2Jacobian, r: G2Jacobian) -> G2Jacobian:
    (x1_0, x1_1), (y1_0, y1_1), (z1_0, z1_1) = p
    (x2_0, x2_1), (y2_0, y2_1), (z2_0, z2_1) = r
    if not (z1_0 or z1_1):
        return r
    if not (z2_0 or z2_1):
        return p
    q = _Q
    a0, a1 = (z1_0 + z1_1) * (z1_0 - z1_1) % q, 2 * z1_0 * z1_1 % q  # z1^2
    b0, b1 = (z2_0 + z2_1) * (z2_0 - z2_1) % q, 2 * z2_0 * z2_1 % q  # z2^2
    a3_0, a3_1 = (a0 * z1_0 - a1 * z1_1) % q, (a0 * z1_1 + a1 * z1_0) % q  # z1^3
    b3_0, b3_1 = (b0 * z2_0 - b1 * z2_1) % q, (b0 * z2_1 + b1 * z2_0) % q  # z2^3
    u1_0, u1_1 = (x1_0 * b0 - x1_1 * b1) % q, (x1_0 * b1 + x1_1 * b0) % q
    s1_0, s1_1 = (y1_0 * b3_0 - y1_1 * b3_1) % q, (y1_0 * b3_1 + y1_1 * b3_0) % q
    h0 = (x2_0 * a0 - x2_1 * a1) % q - u1_0
    h1 = (x2_0 * a1 + x2_1 * a0) % q - u1_1
    r0 = (y2_0 * a3_0 - y2_1 * a3_1) % q - s1_0
    r1 = (y2_0 * a3_1 + y2_1 * a3_0) % q - s1_1
    if not (h0 or h1):
        return g2_double(p) if not (r0 or r1) else _G2_INF_J
    hh0, hh1 = (h0 + h1) * (h0 - h1) % q, 2 * h0 * h1 % q
    hhh0, hhh1 = (h0 * hh0 - h1 * hh1) % q, (h0 * hh1 + h1 * hh0) % q
    v0, v1 = (u1_0 * hh0 - u1_1 * hh1) % q, (u1_0 * hh1 + u1_1 * hh0) % q
    X0 = ((r0 + r1) * (r0 - r1) - hhh0 - 2 * v0) % q
    X1 = (2 * r0 * r1 - hhh1 - 2 * v1) % q
    t0, t1 = v0 - X0, v1 - X1
    zz0, zz1 = (z1_0 * z2_0 - z1_1 * z2_1) % q, (z1_0 * z2_1 + z1_1 * z2_0) % q
    return (
        (X0, X1),
        (
            (r0 * t0 - r1 * t1 - s1_0 * hhh0 + s1_1 * hhh1) % q,
            (r0 * t1 + r1 * t0 - s1_0 * hhh1 - s1_1 * hhh0) % q,
        ),
        ((zz0 * h0 - zz1 * h1) % q, (zz0 * h1 + zz1 * h0) % q),
    )


def g2_mul_jacobian(p: G2Affine, k: int) -> G2Jacobian:
    """``[k] p`` for any integer k and any point of the twist (not reduced mod r: the subgroup test needs that)."""
    if k < 0:
        p, k = g2_neg(p), -k
    if not k or p == G2_INFINITY:
        return _G2_INF_J
    width = _wnaf_width(k)
    digits = wnaf(k, width)
    base = g2_to_jacobian(p)
    twice = g2_double(base)
    table_j = [base]
    for _ in range((1 << (width - 2)) - 1):
        table_j.append(g2_add(table_j[-1], twice))
    table = g2_batch_to_affine(table_j)
    negated = [g2_neg(t) for t in table]
    acc = _G2_INF_J
    for d in reversed(digits):
        acc = g2_double(acc)
        if d > 0:
            acc = g2_add_mixed(acc, table[d >> 1])
        elif d < 0:
            acc = g2_add_mixed(acc, negated[(-d) >> 1])
    return acc


def g2_mul(p: G2Affine, k: int) -> G2Affine:
    """``[k] p`` in affine form."""
    return g2_to_affine(g2_mul_jacobian(p, k))


def g2_psi(p: G2Affine) -> G2Affine:
    """The endomorphism untwist-Frobenius-twist; on G2 it is multiplication by q (= 6u^2 mod r)."""
    if p == G2_INFINITY:
        return p
    (x0, x1), (y0, y1) = p
    return fq2_mul((x0, -x1 % _Q), _PSI_X), fq2_mul((y0, -y1 % _Q), _PSI_Y)


def g2_in_subgroup(p: G2Affine) -> bool:
    """Whether ``p`` is on the twist and in its order-r subgroup G2: ``psi(p) = [6u^2] p`` (see the module doc)."""
    if not g2_is_on_curve(p):
        return False
    if p == G2_INFINITY:
        return True
    return g2_eq(g2_to_jacobian(g2_psi(p)), g2_mul_jacobian(p, _SIX_U_SQUARED))


def g2_from_ints(x: Fq2, y: Fq2) -> G2Affine:
    """Parse affine F_q2 coordinates into a G2 point; PointError unless in range, on the twist and in G2."""
    coords = (*x, *y)
    if len(coords) != 4 or not all(isinstance(c, int) and not isinstance(c, bool) for c in coords):
        raise PointError("G2 coordinates must be two pairs of integers (c0, c1)")
    if not all(0 <= c < _Q for c in coords):
        raise PointError("G2 coordinate out of range: each must be in 0..q-1")
    p = ((x[0], x[1]), (y[0], y[1]))
    if not g2_is_on_curve(p):
        raise PointError("point is not on the G2 twist y^2 = x^3 + 3/(9+i)")
    if not g2_in_subgroup(p):
        raise PointError("point is on the G2 twist but not in its order-r subgroup")
    return p


def g2_to_bytes(p: G2Affine) -> bytes:
    """The EIP-197 encoding: x.c1, x.c0, y.c1, y.c0, 32 bytes big-endian each; zeros for the point at infinity."""
    (x0, x1), (y0, y1) = p
    return b"".join(c.to_bytes(32, "big") for c in (x1, x0, y1, y0))


def g2_from_bytes(data: bytes) -> G2Affine:
    """Parse an EIP-197 encoded G2 point (see :func:`g2_to_bytes`); PointError for anything else."""
    if len(data) != 128:
        raise PointError(f"a G2 point is 128 bytes, not {len(data)}")
    x1, x0, y1, y0 = (int.from_bytes(data[i : i + 32], "big") for i in range(0, 128, 32))
    return g2_from_ints((x0, x1), (y0, y1))


def _check_constants() -> None:
    if not g1_is_on_curve(G1) or not g2_is_on_curve(G2):
        raise ValueError("a BN254 generator is not on its curve")
    if g1_mul_jacobian(G1, CURVE_ORDER)[2] != 0 or g2_mul_jacobian(G2, CURVE_ORDER)[2] != (0, 0):
        raise ValueError("a BN254 generator does not have order r")
    if not g2_in_subgroup(G2):
        raise ValueError("the G2 generator fails the endomorphism subgroup test")
    if (_SIX_U_SQUARED - FIELD_MODULUS) % CURVE_ORDER:
        raise ValueError("6u^2 is not q mod r")


_check_constants()
