"""The two prime fields of BN254 (alt_bn128): the base field F_q of the curve and the scalar field F_r.

Specs: EIP-196 and EIP-197 (the curve ``y^2 = x^3 + 3`` over F_q, its group order r, the pairing's quadratic
extension ``F_q2 = F_q[i] / (i^2 + 1)``); Barreto and Naehrig, "Pairing-Friendly Elliptic Curves of Prime Order"
(SAC 2005), for the parametrisation of q and r by the curve parameter u. The NTT domain follows ffjavascript (the
field library under snarkjs): the primitive 2^28-th root of unity of F_r is ``g^((r - 1) / 2^28)`` for the smallest
quadratic non-residue g = 5, and the 2^k-th roots are its repeated squares, so that evaluation domains match
snarkjs's.

Elements are plain ``int``s in ``0 .. m - 1``; F_q2 elements are pairs ``(c0, c1)`` meaning ``c0 + c1 * i``, the
order py_ecc and snarkjs's JSON use (EIP-197's byte encoding puts ``c1`` first; :mod:`zk.curve` handles that).
The hot paths (:mod:`zk.curve`, :mod:`zk.msm`) inline their arithmetic; the helpers here are for everything else.

The constants are checked when the module loads; :mod:`zk.boundary` also checks them against py_ecc's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "CURVE_ORDER",
    "FIELD_MODULUS",
    "MULTIPLICATIVE_GENERATOR",
    "ROOT_OF_UNITY",
    "TWO_ADICITY",
    "Fq2",
    "Q",
    "R",
    "U",
    "batch_inverse",
    "fq2_add",
    "fq2_inv",
    "fq2_mul",
    "fq2_neg",
    "fq2_pow",
    "fq2_sqrt",
    "fq2_square",
    "fq2_sub",
    "fq_sqrt",
    "inv",
    "root_of_unity",
]

U: Final = 4965661367192848881
"""The BN parameter (``x`` in some papers, ``t`` in others) from which q and r are polynomials."""

FIELD_MODULUS: Final = 21888242871839275222246405745257275088696311157297823662689037894645226208583
"""q: the base field of G1's curve, ``36u^4 + 36u^3 + 24u^2 + 6u + 1``."""

CURVE_ORDER: Final = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""r: the order of G1 and G2 and the scalar field of circuits, ``36u^4 + 36u^3 + 18u^2 + 6u + 1``."""

Q: Final = FIELD_MODULUS
R: Final = CURVE_ORDER

TWO_ADICITY: Final = 28
"""The largest s with 2^s dividing r - 1: NTT domains have up to 2^28 points."""

MULTIPLICATIVE_GENERATOR: Final = 5
"""The smallest quadratic non-residue of F_r (ffjavascript's ``nqr``); it generates F_r^*."""

ROOT_OF_UNITY: Final = 19103219067921713944291392827692070036145651957329286315305642004821462161904
"""A primitive 2^28-th root of unity of F_r: ``5^((r - 1) / 2^28)``."""

Fq2 = tuple[int, int]


def inv(a: int, modulus: int = R) -> int:
    """The inverse of ``a`` modulo the prime ``modulus``; ZeroDivisionError for 0."""
    if a % modulus == 0:
        raise ZeroDivisionError("0 has no inverse in a field")
    return pow(a, -1, modulus)


def batch_inverse(values: Sequence[int], modulus: int = R) -> list[int]:
    """The inverses of ``values`` with one modular inversion (Montgomery's trick); 0 maps to 0.

    Mapping 0 to 0 lets callers invert Jacobian Z coordinates where some points are at infinity.
    """
    m = modulus
    prefix = []
    acc = 1
    for v in values:
        prefix.append(acc)
        if v % m:
            acc = acc * v % m
    inverse = pow(acc, -1, m)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        v = values[i] % m
        if v:
            out[i] = inverse * prefix[i] % m
            inverse = inverse * v % m
    return out


def root_of_unity(log_n: int) -> int:
    """A primitive 2^log_n-th root of unity of F_r (0 <= log_n <= 28), the one snarkjs uses for that domain size."""
    if not 0 <= log_n <= TWO_ADICITY:
        raise ValueError(f"F_r has roots of unity of order 2^0..2^{TWO_ADICITY}, not 2^{log_n}")
    return pow(ROOT_OF_UNITY, 1 << (TWO_ADICITY - log_n), R)


def fq_sqrt(a: int) -> int | None:
    """A square root of ``a`` in F_q, or None when ``a`` is not a square. q = 3 mod 4, so it is ``a^((q + 1) / 4)``."""
    a %= Q
    root = pow(a, (Q + 1) // 4, Q)
    return root if root * root % Q == a else None


def fq2_add(a: Fq2, b: Fq2) -> Fq2:
    return (a[0] + b[0]) % Q, (a[1] + b[1]) % Q


def fq2_sub(a: Fq2, b: Fq2) -> Fq2:
    return (a[0] - b[0]) % Q, (a[1] - b[1]) % Q


def fq2_neg(a: Fq2) -> Fq2:
    return -a[0] % Q, -a[1] % Q


def fq2_mul(a: Fq2, b: Fq2) -> Fq2:
    a0, a1 = a
    b0, b1 = b
    return (a0 * b0 - a1 * b1) % Q, (a0 * b1 + a1 * b0) % Q


def fq2_square(a: Fq2) -> Fq2:
    a0, a1 = a
    return (a0 + a1) * (a0 - a1) % Q, 2 * a0 * a1 % Q


def fq2_inv(a: Fq2) -> Fq2:
    """``1 / (c0 + c1 i) = (c0 - c1 i) / (c0^2 + c1^2)``; ZeroDivisionError for 0."""
    a0, a1 = a
    norm = (a0 * a0 + a1 * a1) % Q
    if norm == 0:
        raise ZeroDivisionError("0 has no inverse in a field")
    n = pow(norm, -1, Q)
    return a0 * n % Q, -a1 * n % Q


def fq2_pow(a: Fq2, e: int) -> Fq2:
    result: Fq2 = (1, 0)
    base = a
    while e > 0:
        if e & 1:
            result = fq2_mul(result, base)
        base = fq2_square(base)
        e >>= 1
    return result


def fq2_sqrt(a: Fq2) -> Fq2 | None:
    """A square root of ``a`` in F_q2, or None when ``a`` is not a square.

    Through the norm: if ``x^2 = a`` then ``N(x)^2 = N(a)``, so ``x0^2 = (a0 + sqrt(N(a))) / 2`` for one of the two
    square roots of the norm, and ``x1 = a1 / (2 x0)``. The answer is checked by squaring it.
    """
    a0, a1 = a[0] % Q, a[1] % Q
    if a1 == 0:
        root = fq_sqrt(a0)
        if root is not None:
            return root, 0
        # A non-square of F_q is a square in F_q2: -1 is a non-square (q = 3 mod 4), so a0 = -(a0 / -1) = (x1 i)^2.
        root = fq_sqrt(-a0 % Q)
        return None if root is None else (0, root)
    norm_root = fq_sqrt(a0 * a0 + a1 * a1)
    if norm_root is None:
        return None
    half = (Q + 1) // 2
    for candidate in ((a0 + norm_root) * half % Q, (a0 - norm_root) * half % Q):
        x0 = fq_sqrt(candidate)
        if x0:
            x: Fq2 = (x0, a1 * pow(2 * x0, -1, Q) % Q)
            if fq2_square(x) == (a0, a1):
                return x
    return None


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first twelve primes as bases: a load-time sanity check of the constants, not a proof."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _check_constants() -> None:
    u = U
    if 36 * u**4 + 36 * u**3 + 24 * u**2 + 6 * u + 1 != Q or 36 * u**4 + 36 * u**3 + 18 * u**2 + 6 * u + 1 != R:
        raise ValueError("BN254 moduli do not match the BN parametrisation in u")
    if not (_is_probable_prime(Q) and _is_probable_prime(R)):
        raise ValueError("BN254 moduli are not prime")
    if Q % 4 != 3:
        raise ValueError("F_q square roots assume q = 3 mod 4")
    if (R - 1) % (1 << TWO_ADICITY) or ((R - 1) >> TWO_ADICITY) % 2 == 0:
        raise ValueError("r - 1 is not 2^28 times an odd number")
    if any(pow(g, (R - 1) // 2, R) != R - 1 for g in (MULTIPLICATIVE_GENERATOR,)) or any(
        pow(g, (R - 1) // 2, R) == R - 1 for g in range(2, MULTIPLICATIVE_GENERATOR)
    ):
        raise ValueError("5 is not the smallest quadratic non-residue of F_r")
    if pow(MULTIPLICATIVE_GENERATOR, (R - 1) >> TWO_ADICITY, R) != ROOT_OF_UNITY:
        raise ValueError("the root of unity is not 5^((r - 1) / 2^28)")
    if pow(ROOT_OF_UNITY, 1 << (TWO_ADICITY - 1), R) != R - 1:
        raise ValueError("the root of unity does not have order 2^28")


_check_constants()
