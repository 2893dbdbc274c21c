"""The optimal ate pairing on BN254 on plain integers: Miller loops with precomputed lines, one final exponentiation.

Specs: EIP-197 (the pairing the ``ecPairing`` precompile checks, ``prod e(P_i, Q_i) = 1``); F. Vercauteren,
"Optimal pairings" (IEEE Trans. Inf. Theory 2010) for the ate loop over ``6u + 2`` with its two Frobenius lines;
the tower ``F_q12 = F_q6[w] / (w^2 - v)``, ``F_q6 = F_q2[v] / (v^3 - xi)``, ``xi = 9 + i`` and the line
formulas of Beuchat et al., "High-speed software implementation of the optimal ate pairing over Barreto-Naehrig
curves" (Pairing 2010); the hard part of the final exponentiation by the addition chain of Scott et al., "On the
final exponentiation for calculating pairings on ordinary elliptic curves" (Pairing 2009), with the cyclotomic
squaring of Granger and Scott, "Faster squaring in the cyclotomic subgroup of sixth degree extensions" (PKC 2010).

Why it exists: py_ecc's pairing (the reference, behind :mod:`zk.boundary`) spends about 0.16 s on a Miller loop
and 0.23 s on a final exponentiation, so a Groth16 check of four pairs takes about 0.8 s. Here the lines of a G2
point are computed once (:func:`prepare_g2`: a verifying key's gamma and delta are fixed), several Miller loops
share their squarings (:func:`multi_miller_loop`), and one final exponentiation serves the product. The results are
tested equal to py_ecc's ``pairing`` and ``final_exponentiate``.

Representation: an F_q12 element is ``(g, h)`` meaning ``g + h w``; an F_q6 element is six ints ``(a0, a1, b0, b1,
c0, c1)`` meaning ``(a0 + a1 i) + (b0 + b1 i) v + (c0 + c1 i) v^2``. Since ``v = w^2`` and ``w^6 = xi``, slot
``(g0, g1, g2, h0, h1, h2)`` holds the coefficient of ``w^(0, 2, 4, 1, 3, 5)``. G2 points are untwisted by
``(x, y) -> (x w^2, y w^3)``, as py_ecc's ``twist``. Everything here works on public data (a verifier's inputs);
nothing is constant-time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from zk.curve import G1_INFINITY, G2_INFINITY, G1Affine, G2Affine, g2_neg, g2_psi, wnaf
from zk.field import FIELD_MODULUS, Fq2, U, fq2_inv, fq2_mul, fq2_pow, fq2_square

__all__ = [
    "FQ12_ONE",
    "Fq6",
    "Fq12",
    "G2Prepared",
    "cyclotomic_square",
    "final_exponentiate",
    "fq12_conjugate",
    "fq12_frobenius",
    "fq12_inverse",
    "fq12_mul",
    "fq12_square",
    "miller_loop",
    "multi_miller_loop",
    "pairing",
    "pairing_check",
    "prepare_g2",
]

_Q: Final = FIELD_MODULUS

Fq6 = tuple[int, int, int, int, int, int]
Fq12 = tuple[Fq6, Fq6]

_FQ6_ZERO: Final[Fq6] = (0, 0, 0, 0, 0, 0)
_FQ6_ONE: Final[Fq6] = (1, 0, 0, 0, 0, 0)
FQ12_ONE: Final[Fq12] = (_FQ6_ONE, _FQ6_ZERO)

Line = tuple[Fq2, Fq2]
"""A line of the Miller loop as ``(lambda, mu)``: through the untwisted T with slope ``lambda w``, its value at
an affine G1 point P is ``y_P - lambda x_P w + mu w^3`` (``mu = lambda x_T - y_T``)."""

G2Prepared = tuple[Line, ...]
"""The lines of a G2 point's Miller loop, in loop order; empty for the point at infinity."""


# ---------------------------------------------------------------------------------------------------- F_q6, F_q12


def _fq6_mul(x: Fq6, y: Fq6) -> Fq6:
    """Karatsuba over F_q2 (six F_q2 products), one reduction per output coordinate."""
    q = _Q
    a0, a1, b0, b1, c0, c1 = x
    d0, d1, e0, e1, f0, f1 = y
    t0r, t0i = a0 * d0 - a1 * d1, a0 * d1 + a1 * d0
    t1r, t1i = b0 * e0 - b1 * e1, b0 * e1 + b1 * e0
    t2r, t2i = c0 * f0 - c1 * f1, c0 * f1 + c1 * f0
    # v^3 = xi: the (B + C)(E + F) cross term lands on v^0 times xi; t2 on v^1 times xi.
    u0, u1, w0, w1 = b0 + c0, b1 + c1, e0 + f0, e1 + f1
    sr = u0 * w0 - u1 * w1 - t1r - t2r
    si = u0 * w1 + u1 * w0 - t1i - t2i
    u0, u1, w0, w1 = a0 + b0, a1 + b1, d0 + e0, d1 + e1
    pr = u0 * w0 - u1 * w1 - t0r - t1r + 9 * t2r - t2i
    pi = u0 * w1 + u1 * w0 - t0i - t1i + t2r + 9 * t2i
    u0, u1, w0, w1 = a0 + c0, a1 + c1, d0 + f0, d1 + f1
    return (
        (t0r + 9 * sr - si) % q,
        (t0i + sr + 9 * si) % q,
        pr % q,
        pi % q,
        (u0 * w0 - u1 * w1 - t0r - t2r + t1r) % q,
        (u0 * w1 + u1 * w0 - t0i - t2i + t1i) % q,
    )


def _fq6_add(x: Fq6, y: Fq6) -> Fq6:
    q = _Q
    return (
        (x[0] + y[0]) % q,
        (x[1] + y[1]) % q,
        (x[2] + y[2]) % q,
        (x[3] + y[3]) % q,
        (x[4] + y[4]) % q,
        (x[5] + y[5]) % q,
    )


def _fq6_sub(x: Fq6, y: Fq6) -> Fq6:
    q = _Q
    return (
        (x[0] - y[0]) % q,
        (x[1] - y[1]) % q,
        (x[2] - y[2]) % q,
        (x[3] - y[3]) % q,
        (x[4] - y[4]) % q,
        (x[5] - y[5]) % q,
    )


def _fq6_mul_by_v(x: Fq6) -> Fq6:
    """``x * v``: ``(A, B, C) -> (xi C, A, B)``."""
    a0, a1, b0, b1, c0, c1 = x
    return (9 * c0 - c1) % _Q, (c0 + 9 * c1) % _Q, a0, a1, b0, b1


def _fq6_neg(x: Fq6) -> Fq6:
    q = _Q
    return (-x[0] % q, -x[1] % q, -x[2] % q, -x[3] % q, -x[4] % q, -x[5] % q)


def _fq6_inverse(x: Fq6) -> Fq6:
    a: Fq2 = (x[0], x[1])
    b: Fq2 = (x[2], x[3])
    c: Fq2 = (x[4], x[5])
    q = _Q

    def xi(e: Fq2) -> Fq2:
        return (9 * e[0] - e[1]) % q, (e[0] + 9 * e[1]) % q

    def sub(e: Fq2, f: Fq2) -> Fq2:
        return (e[0] - f[0]) % q, (e[1] - f[1]) % q

    t0 = sub(fq2_square(a), xi(fq2_mul(b, c)))
    t1 = sub(xi(fq2_square(c)), fq2_mul(a, b))
    t2 = sub(fq2_square(b), fq2_mul(a, c))
    det = fq2_mul(a, t0)
    e1, e2 = xi(fq2_mul(c, t1)), xi(fq2_mul(b, t2))
    det_inv = fq2_inv(((det[0] + e1[0] + e2[0]) % q, (det[1] + e1[1] + e2[1]) % q))
    r0, r1, r2 = fq2_mul(t0, det_inv), fq2_mul(t1, det_inv), fq2_mul(t2, det_inv)
    return r0[0], r0[1], r1[0], r1[1], r2[0], r2[1]


def fq12_mul(x: Fq12, y: Fq12) -> Fq12:
    """``(g + h w)(g' + h' w) = g g' + h h' v + ((g + h)(g' + h') - g g' - h h') w``."""
    g, h = x
    g2, h2 = y
    gg = _fq6_mul(g, g2)
    hh = _fq6_mul(h, h2)
    cross = _fq6_mul(_fq6_add(g, h), _fq6_add(g2, h2))
    return _fq6_add(gg, _fq6_mul_by_v(hh)), _fq6_sub(cross, _fq6_add(gg, hh))


def fq12_square(x: Fq12) -> Fq12:
    """``(g + h w)^2 = (g + h)(g + v h) - gh - v gh + 2 gh w``."""
    g, h = x
    gh = _fq6_mul(g, h)
    s = _fq6_mul(_fq6_add(g, h), _fq6_add(g, _fq6_mul_by_v(h)))
    return _fq6_sub(s, _fq6_add(gh, _fq6_mul_by_v(gh))), _fq6_add(gh, gh)


def fq12_conjugate(x: Fq12) -> Fq12:
    """``x^(q^6)``, the conjugate over F_q6 (``w -> -w``); on the cyclotomic subgroup, the inverse."""
    return x[0], _fq6_neg(x[1])


def fq12_inverse(x: Fq12) -> Fq12:
    """``1 / (g + h w) = (g - h w) / (g^2 - v h^2)``; ZeroDivisionError for 0."""
    g, h = x
    d = _fq6_inverse(_fq6_sub(_fq6_mul(g, g), _fq6_mul_by_v(_fq6_mul(h, h))))
    return _fq6_mul(g, d), _fq6_neg(_fq6_mul(h, d))


# Frobenius: (c w^j)^(q^k) = c^(q^k) xi^(j (q^k - 1) / 6) w^j, c^(q^k) the conjugate of c for odd k.
_SLOT_POWERS: Final = (0, 2, 4, 1, 3, 5)
_FROBENIUS: Final = {k: tuple(fq2_pow((9, 1), j * (_Q**k - 1) // 6) for j in _SLOT_POWERS) for k in (1, 2, 3)}


def fq12_frobenius(x: Fq12, k: int) -> Fq12:
    """``x^(q^k)`` for k = 1, 2 or 3."""
    q = _Q
    constants = _FROBENIUS[k]
    flat = (*x[0], *x[1])
    out = []
    for slot in range(6):
        c0, c1 = flat[2 * slot], flat[2 * slot + 1]
        if k & 1:
            c1 = -c1
        g0, g1 = constants[slot]
        out += [(c0 * g0 - c1 * g1) % q, (c0 * g1 + c1 * g0) % q]
    return (out[0], out[1], out[2], out[3], out[4], out[5]), (out[6], out[7], out[8], out[9], out[10], out[11])


def cyclotomic_square(x: Fq12) -> Fq12:
    """The square of an element of the cyclotomic subgroup (``x^(q^4 - q^2 + 1) = 1``), Granger-Scott.

    Viewing x as three F_q4 elements ``(g0, h1), (h0, g2), (g1, h2)`` over ``s^2 = xi``, each is squared with two
    F_q2 products; the result is only right on the cyclotomic subgroup (after the easy part of the exponentiation).
    """
    q = _Q
    (z0r, z0i, z4r, z4i, z3r, z3i), (z2r, z2i, z1r, z1i, z5r, z5i) = x

    def fq4_square(ar: int, ai: int, br: int, bi: int) -> tuple[int, int, int, int]:
        # (a + b s)^2 = (a^2 + xi b^2) + 2ab s
        abr, abi = ar * br - ai * bi, ar * bi + ai * br
        a2r, a2i = (ar + ai) * (ar - ai), 2 * ar * ai
        b2r, b2i = (br + bi) * (br - bi), 2 * br * bi
        return a2r + 9 * b2r - b2i, a2i + b2r + 9 * b2i, 2 * abr, 2 * abi

    t0r, t0i, t1r, t1i = fq4_square(z0r, z0i, z1r, z1i)
    t2r, t2i, t3r, t3i = fq4_square(z2r, z2i, z3r, z3i)
    t4r, t4i, t5r, t5i = fq4_square(z4r, z4i, z5r, z5i)
    # A: 3 t0 - 2 z0, 3 t1 + 2 z1; B: 3 xi t5 + 2 z2, 3 t4 - 2 z3; C: 3 t2 - 2 z4, 3 t3 + 2 z5.
    x5r, x5i = 9 * t5r - t5i, t5r + 9 * t5i
    return (
        (
            (3 * t0r - 2 * z0r) % q,
            (3 * t0i - 2 * z0i) % q,
            (3 * t2r - 2 * z4r) % q,
            (3 * t2i - 2 * z4i) % q,
            (3 * t4r - 2 * z3r) % q,
            (3 * t4i - 2 * z3i) % q,
        ),
        (
            (3 * x5r + 2 * z2r) % q,
            (3 * x5i + 2 * z2i) % q,
            (3 * t1r + 2 * z1r) % q,
            (3 * t1i + 2 * z1i) % q,
            (3 * t3r + 2 * z5r) % q,
            (3 * t3i + 2 * z5i) % q,
        ),
    )


_U_NAF: Final = wnaf(U, 2)


def _cyclotomic_pow_u(x: Fq12) -> Fq12:
    """``x^u`` on the cyclotomic subgroup: signed binary, conjugation standing in for inversion."""
    inverse = fq12_conjugate(x)
    acc = x
    for d in _U_NAF[-2::-1]:
        acc = cyclotomic_square(acc)
        if d > 0:
            acc = fq12_mul(acc, x)
        elif d < 0:
            acc = fq12_mul(acc, inverse)
    return acc


def final_exponentiate(f: Fq12) -> Fq12:
    """``f^((q^12 - 1) / r)``, exactly py_ecc's ``final_exponentiate``: maps a Miller value into GT.

    Easy part ``(q^6 - 1)(q^2 + 1)`` with one inversion and Frobenius maps; hard part ``(q^4 - q^2 + 1) / r`` by
    Scott et al.'s chain (three exponentiations by u, a few Frobenius maps and products).
    """
    t = fq12_mul(fq12_conjugate(f), fq12_inverse(f))
    t = fq12_mul(fq12_frobenius(t, 2), t)

    fp = fq12_frobenius(t, 1)
    fp2 = fq12_frobenius(t, 2)
    fp3 = fq12_frobenius(fp2, 1)
    fu = _cyclotomic_pow_u(t)
    fu2 = _cyclotomic_pow_u(fu)
    fu3 = _cyclotomic_pow_u(fu2)
    y0 = fq12_mul(fq12_mul(fp, fp2), fp3)
    y1 = fq12_conjugate(t)
    y2 = fq12_frobenius(fu2, 2)
    y3 = fq12_conjugate(fq12_frobenius(fu, 1))
    y4 = fq12_conjugate(fq12_mul(fu, fq12_frobenius(fu2, 1)))
    y5 = fq12_conjugate(fu2)
    y6 = fq12_conjugate(fq12_mul(fu3, fq12_frobenius(fu3, 1)))

    t0 = fq12_mul(fq12_mul(cyclotomic_square(y6), y4), y5)
    t1 = fq12_mul(fq12_mul(y3, y5), t0)
    t0 = fq12_mul(t0, y2)
    t1 = cyclotomic_square(fq12_mul(cyclotomic_square(t1), t0))
    t0 = fq12_mul(t1, y1)
    t1 = fq12_mul(t1, y0)
    return fq12_mul(cyclotomic_square(t0), t1)


# ---------------------------------------------------------------------------------------------------- Miller loop

_ATE_LOOP_COUNT: Final = 6 * U + 2
_ATE_NAF: Final = wnaf(_ATE_LOOP_COUNT, 2)


def _line_double(t: G2Affine) -> tuple[Line, G2Affine]:
    """The tangent at T and 2T (affine, one F_q2 inversion)."""
    q = _Q
    x, y = t
    lam = fq2_mul(fq2_mul((3, 0), fq2_square(x)), fq2_inv(((2 * y[0]) % q, (2 * y[1]) % q)))
    return _line_and_sum(lam, t, x)


def _line_add(t: G2Affine, p: G2Affine) -> tuple[Line, G2Affine]:
    """The line through T and P (T != +-P, which the loop never meets on G2) and T + P."""
    q = _Q
    (x1, y1), (x2, y2) = t, p
    num = ((y2[0] - y1[0]) % q, (y2[1] - y1[1]) % q)
    lam = fq2_mul(num, fq2_inv(((x2[0] - x1[0]) % q, (x2[1] - x1[1]) % q)))
    return _line_and_sum(lam, t, x2)


def _line_and_sum(lam: Fq2, t: G2Affine, other_x: Fq2) -> tuple[Line, G2Affine]:
    q = _Q
    x1, y1 = t
    lam_x1 = fq2_mul(lam, x1)
    mu = ((lam_x1[0] - y1[0]) % q, (lam_x1[1] - y1[1]) % q)
    lam2 = fq2_square(lam)
    x3 = ((lam2[0] - x1[0] - other_x[0]) % q, (lam2[1] - x1[1] - other_x[1]) % q)
    lx3 = fq2_mul(lam, x3)
    y3 = ((lam_x1[0] - lx3[0] - y1[0]) % q, (lam_x1[1] - lx3[1] - y1[1]) % q)
    return (lam, mu), (x3, y3)


def prepare_g2(point: G2Affine) -> G2Prepared:
    """The lines of the Miller loop of ``point``, which must be in G2 (callers check; the parsers do).

    Loop over the signed binary digits of ``6u + 2`` (doubling, then adding ``+-point``), then the lines to
    ``psi(point)`` and ``-psi^2(point)``.
    """
    if point == G2_INFINITY:
        return ()
    lines: list[Line] = []
    negated = g2_neg(point)
    t = point
    for d in _ATE_NAF[-2::-1]:
        line, t = _line_double(t)
        lines.append(line)
        if d:
            line, t = _line_add(t, point if d > 0 else negated)
            lines.append(line)
    q1 = g2_psi(point)
    q2 = g2_neg(g2_psi(q1))
    line, t = _line_add(t, q1)
    lines.append(line)
    line, _ = _line_add(t, q2)
    lines.append(line)
    return tuple(lines)


def _mul_by_line(f: Fq12, line: Line, xp_neg: int, yp: int) -> Fq12:
    """``f * (y_P + (-lambda x_P) w + mu w^3)``: the line is ``G + H w`` with ``G = y_P`` and ``H = (-lambda x_P,
    mu, 0)``, so ``f * line = (g y_P + h H v) + (g H + h y_P) w``."""
    q = _Q
    (l0, l1), (m0, m1) = line
    h0r, h0i = l0 * xp_neg % q, l1 * xp_neg % q  # H = (h0, m, 0)
    g, h = f

    def times_h(x: Fq6) -> tuple[int, int, int, int, int, int]:
        # (x0 + x1 v + x2 v^2)(h0 + m v) = (x0 h0 + xi x2 m) + (x0 m + x1 h0) v + (x1 m + x2 h0) v^2, unreduced
        a0, a1, b0, b1, c0, c1 = x
        cmr, cmi = c0 * m0 - c1 * m1, c0 * m1 + c1 * m0
        return (
            a0 * h0r - a1 * h0i + 9 * cmr - cmi,
            a0 * h0i + a1 * h0r + cmr + 9 * cmi,
            a0 * m0 - a1 * m1 + b0 * h0r - b1 * h0i,
            a0 * m1 + a1 * m0 + b0 * h0i + b1 * h0r,
            b0 * m0 - b1 * m1 + c0 * h0r - c1 * h0i,
            b0 * m1 + b1 * m0 + c0 * h0i + c1 * h0r,
        )

    gh = times_h(g)
    hh = times_h(h)
    # hh * v: (A, B, C) -> (xi C, A, B)
    return (
        (
            (g[0] * yp + 9 * hh[4] - hh[5]) % q,
            (g[1] * yp + hh[4] + 9 * hh[5]) % q,
            (g[2] * yp + hh[0]) % q,
            (g[3] * yp + hh[1]) % q,
            (g[4] * yp + hh[2]) % q,
            (g[5] * yp + hh[3]) % q,
        ),
        (
            (gh[0] + h[0] * yp) % q,
            (gh[1] + h[1] * yp) % q,
            (gh[2] + h[2] * yp) % q,
            (gh[3] + h[3] * yp) % q,
            (gh[4] + h[4] * yp) % q,
            (gh[5] + h[5] * yp) % q,
        ),
    )


def multi_miller_loop(pairs: Sequence[tuple[G1Affine, G2Prepared]]) -> Fq12:
    """The product of the Miller loops of ``(P_i, Q_i)`` sharing one squaring per step; 1 for an empty product.

    Each P must be in G1 and each prepared Q come from :func:`prepare_g2` of a point in G2; pairs with a point at
    infinity contribute 1.
    """
    active = [(-p[0] % _Q, p[1], lines) for p, lines in pairs if p != G1_INFINITY and lines]
    f = FQ12_ONE
    if not active:
        return f
    step = 0
    for d in _ATE_NAF[-2::-1]:
        f = fq12_square(f)
        for xp_neg, yp, lines in active:
            f = _mul_by_line(f, lines[step], xp_neg, yp)
        step += 1
        if d:
            for xp_neg, yp, lines in active:
                f = _mul_by_line(f, lines[step], xp_neg, yp)
            step += 1
    for _ in range(2):
        for xp_neg, yp, lines in active:
            f = _mul_by_line(f, lines[step], xp_neg, yp)
        step += 1
    return f


def miller_loop(p: G1Affine, q: G2Affine) -> Fq12:
    """The Miller loop of ``e(p, q)`` (before the final exponentiation); p in G1 and q in G2, unchecked."""
    return multi_miller_loop([(p, prepare_g2(q))])


def pairing(p: G1Affine, q: G2Affine) -> Fq12:
    """``e(p, q)`` in GT, equal to py_ecc's ``pairing(q, p)``; p in G1 and q in G2, unchecked."""
    return final_exponentiate(miller_loop(p, q))


def pairing_check(pairs: Sequence[tuple[G1Affine, G2Prepared]], expected: Fq12 = FQ12_ONE) -> bool:
    """Whether ``prod e(P_i, Q_i)`` equals ``expected`` (a GT element, 1 by default), with one final exponentiation.

    The caller has checked that each P is in G1 and each Q (before :func:`prepare_g2`) in G2.
    """
    return final_exponentiate(multi_miller_loop(pairs)) == expected


def _check_constants() -> None:
    if sum(d << i for i, d in enumerate(_ATE_NAF)) != _ATE_LOOP_COUNT or _ATE_NAF[-1] != 1:
        raise ValueError("the NAF of 6u + 2 is wrong")
    if sum(d << i for i, d in enumerate(_U_NAF)) != U:
        raise ValueError("the NAF of u is wrong")
    sample: Fq12 = ((2, 3, 5, 7, 11, 13), (17, 19, 23, 29, 31, 37))
    if fq12_mul(fq12_inverse(sample), sample) != FQ12_ONE:
        raise ValueError("F_q12 inversion is wrong")
    if fq12_frobenius(fq12_frobenius(sample, 1), 1) != fq12_frobenius(sample, 2) or fq12_frobenius(
        fq12_frobenius(sample, 2), 1
    ) != fq12_frobenius(sample, 3):
        raise ValueError("the Frobenius constants are inconsistent")


_check_constants()
