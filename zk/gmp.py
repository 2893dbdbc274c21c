"""GMP integers for the prover's hot loops: the same values and operators as ``int``, about twice as fast on
254-bit field elements.

A Groth16 proof is some 400,000 elliptic-curve additions (:mod:`zk.msm`), and each is a handful of 254-bit
multiplications followed by a reduction mod q. CPython's ``int`` does those in its own schoolbook code with 30-bit
digits; GMP (through ``gmpy2``, the standard binding, also behind SymPy and SageMath) does them with 64-bit limbs and
tuned assembly, which halves the cost of ``x * y % q`` and makes a modular inversion fifteen times cheaper. No curve
arithmetic comes from GMP: it only multiplies, reduces and inverts integers; the group law stays in
:mod:`zk.curve` and :mod:`zk.msm`, tested against py_ecc.

An ``mpz`` is not an ``int`` (``isinstance(mpz(1), int)`` is false), although it compares and hashes equal to one
and mixes with ints in arithmetic. So the rule is: a hot loop converts its inputs with :func:`gmp` (the modulus
too: ``mpz % mpz`` is the fast path), and converts its results back with ``int`` before they leave the module. What
callers see is always plain ``int``.

Neither ``int`` nor GMP arithmetic is constant-time; the prover's secrets (the witness, r and s) were already in
variable-time Python integers, so this changes the speed, not the exposure. The prover runs on the grantee's own
machine (:class:`ehr.scoring.ScoringClient`), over a grant opening the grantee already holds.
"""

from __future__ import annotations

from typing import cast

import gmpy2

__all__ = ["gmp", "gmp_inverse"]


def gmp(x: int) -> int:
    """``x`` as a GMP integer (typed as ``int``, which it stands in for: see the module doc)."""
    return cast(int, gmpy2.mpz(x))


def gmp_inverse(x: int, modulus: int) -> int:
    """``x^-1 mod modulus`` (a GMP integer); ZeroDivisionError when there is none, as ``pow(x, -1, m)``."""
    try:
        return cast(int, gmpy2.invert(x, modulus))
    except ZeroDivisionError:
        raise ZeroDivisionError(f"not invertible modulo {modulus}") from None
