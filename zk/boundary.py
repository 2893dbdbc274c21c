"""The one module that imports py_ecc: point conversions and the pairing check.

Specs: EIP-197 (the optimal ate pairing on BN254 and the precompile's check ``prod e(P_i, Q_i) == 1``); py_ecc's
``optimized_bn128`` implements the Miller loop and the final exponentiation ``f^((q^12 - 1) / r)``.

:func:`pairing_product_is_one` runs one Miller loop per pair and a single final exponentiation for the product,
which is what a Groth16 verifier needs (``e(A, B) = e(alpha, beta) e(L, gamma) e(C, delta)`` rewritten as a
product equal to one). Miller values of fixed pairs (``e(alpha, beta)`` of a verifying key) can be computed once
with :func:`miller_loop` and passed in as ``prepared``.

Points cross this boundary as :mod:`zk.curve`'s affine int tuples; py_ecc's point objects never leave it except
through the ``*_to_py`` / ``*_from_py`` pairs, which the tests use to compare the fast arithmetic with py_ecc's.
F_q12 elements cross as :mod:`zk.pairing`'s tower tuples (:func:`fq12_to_py`, :func:`fq12_from_py`): py_ecc
writes F_q12 as ``F_q[w] / (w^12 - 18 w^6 + 82)``, the same w as the tower's, with ``i = w^6 - 9``.

The verifier pairs with :mod:`zk.pairing` (about 30 times faster); this module's pairing is the reference the
tests hold it to.
Loading the module checks that py_ecc's field, group order and generators are ours.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc.fields import optimized_bn128_FQ as FQ
from py_ecc.fields import optimized_bn128_FQ2 as FQ2
from py_ecc.fields import optimized_bn128_FQ12 as FQ12
from py_ecc.optimized_bn128 import optimized_curve as bn
from py_ecc.optimized_bn128 import optimized_pairing

from zk.curve import (
    G1,
    G1_INFINITY,
    G2,
    G2_INFINITY,
    G1Affine,
    G2Affine,
    g1_is_on_curve,
    g2_in_subgroup,
)
from zk.errors import PointError
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.pairing import Fq12

__all__ = [
    "FQ12",
    "PyG1",
    "PyG2",
    "final_exponentiate",
    "fq12_from_py",
    "fq12_to_py",
    "g1_from_py",
    "g1_to_py",
    "g2_from_py",
    "g2_to_py",
    "miller_loop",
    "pairing",
    "pairing_product_is_one",
]

PyG1 = tuple[FQ, FQ, FQ]
"""py_ecc's ``optimized_bn128`` G1 point: projective ``(X, Y, Z)``, Z = 0 at infinity."""
PyG2 = tuple[FQ2, FQ2, FQ2]


def g1_to_py(p: G1Affine) -> PyG1:
    if p == G1_INFINITY:
        return bn.Z1
    return FQ(p[0]), FQ(p[1]), FQ.one()


def g1_from_py(p: PyG1) -> G1Affine:
    if bn.is_inf(p):
        return G1_INFINITY
    x, y = bn.normalize(p)
    return int(x), int(y)


def g2_to_py(p: G2Affine) -> PyG2:
    if p == G2_INFINITY:
        return bn.Z2
    (x0, x1), (y0, y1) = p
    return FQ2((x0, x1)), FQ2((y0, y1)), FQ2.one()


def g2_from_py(p: PyG2) -> G2Affine:
    if bn.is_inf(p):
        return G2_INFINITY
    x, y = bn.normalize(p)
    (x0, x1), (y0, y1) = x.coeffs, y.coeffs
    return (int(x0), int(x1)), (int(y0), int(y1))


# Where each of the tower's six F_q2 slots (g0, g1, g2, h0, h1, h2) sits as a power of w.
_SLOT_POWERS = (0, 2, 4, 1, 3, 5)


def fq12_to_py(f: Fq12) -> FQ12:
    """A :mod:`zk.pairing` element as py_ecc's: slot ``c0 + c1 i`` at ``w^j`` adds ``c0 - 9 c1`` to the coefficient of
    ``w^j`` and ``c1`` to that of ``w^(j + 6)``."""
    flat = (*f[0], *f[1])
    coeffs = [0] * 12
    for slot, j in enumerate(_SLOT_POWERS):
        c0, c1 = flat[2 * slot], flat[2 * slot + 1]
        coeffs[j] += c0 - 9 * c1
        coeffs[j + 6] += c1
    return FQ12([c % FIELD_MODULUS for c in coeffs])


def fq12_from_py(f: FQ12) -> Fq12:
    """py_ecc's F_q12 element as :mod:`zk.pairing`'s, using ``w^6 = 9 + i``:
    ``e_j w^j + e_(j+6) w^(j+6) = (e_j + 9 e_(j+6) + e_(j+6) i) w^j``."""
    e = [int(c) for c in f.coeffs]
    flat = [0] * 12
    for slot, j in enumerate(_SLOT_POWERS):
        flat[2 * slot] = (e[j] + 9 * e[j + 6]) % FIELD_MODULUS
        flat[2 * slot + 1] = e[j + 6] % FIELD_MODULUS
    g0r, g0i, g1r, g1i, g2r, g2i, h0r, h0i, h1r, h1i, h2r, h2i = flat
    return (g0r, g0i, g1r, g1i, g2r, g2i), (h0r, h0i, h1r, h1i, h2r, h2i)


def _checked(p: G1Affine, q: G2Affine) -> None:
    if not g1_is_on_curve(p):
        raise PointError("pairing input is not a G1 point")
    if not g2_in_subgroup(q):
        raise PointError("pairing input is not a G2 point (off the twist or outside the order-r subgroup)")


def miller_loop(p: G1Affine, q: G2Affine) -> FQ12:
    """The Miller loop of the optimal ate pairing ``e(p, q)``, before the final exponentiation; 1 at infinity.

    PointError unless ``p`` is in G1 and ``q`` in G2.
    """
    _checked(p, q)
    return _miller_loop(p, q)


def _miller_loop(p: G1Affine, q: G2Affine) -> FQ12:
    if p == G1_INFINITY or q == G2_INFINITY:
        return FQ12.one()
    twisted, cast = bn.twist(g2_to_py(q)), optimized_pairing.cast_point_to_fq12(g1_to_py(p))
    return optimized_pairing.miller_loop(twisted, cast, final_exponentiate=False)


def final_exponentiate(f: FQ12) -> FQ12:
    """``f^((q^12 - 1) / r)``: maps a Miller value (or a product of them) to the pairing group GT."""
    return optimized_pairing.final_exponentiate(f)


def pairing(p: G1Affine, q: G2Affine) -> FQ12:
    """The optimal ate pairing ``e(p, q)`` in GT (for tests and for preparing keys; verifiers use the product)."""
    return final_exponentiate(miller_loop(p, q))


def pairing_product_is_one(pairs: Sequence[tuple[G1Affine, G2Affine]], prepared: Sequence[FQ12] = ()) -> bool:
    """Whether ``prod e(P_i, Q_i)`` times the ``prepared`` Miller values is 1 in GT, with one final exponentiation.

    PointError when a ``P_i`` is not in G1 or a ``Q_i`` not in G2 (subgroup checked: a point outside it would make
    the product meaningless). Pairs with a point at infinity contribute 1.
    """
    for p, q in pairs:
        _checked(p, q)
    f = FQ12.one()
    for value in prepared:
        f = f * value
    for p, q in pairs:
        f = f * _miller_loop(p, q)
    return final_exponentiate(f) == FQ12.one()


def _check_against_py_ecc() -> None:
    if bn.field_modulus != FIELD_MODULUS or bn.curve_order != CURVE_ORDER:
        raise ValueError("py_ecc's BN254 moduli differ from zk.field's")
    if g1_from_py(bn.G1) != G1 or g2_from_py(bn.G2) != G2:
        raise ValueError("py_ecc's BN254 generators differ from zk.curve's")


_check_against_py_ecc()
