"""Radix-2 number-theoretic transforms over F_r, and evaluation on the odd coset as snarkjs's Groth16 prover does.

Specs: the discrete Fourier transform over a finite field (J. M. Pollard, "The fast Fourier transform in a finite
field", Math. Comp. 1971), in the constant-geometry decimation-in-frequency form of M. C. Pease ("An adaptation of
the fast Fourier transform for parallel processing", J. ACM 1968); the domains and the coset of snarkjs 0.7
(``src/groth16_prove.js``: ``Fr.ifft``, ``Fr.batchApplyKey(buff, 1, Fr.w[power + 1])``, ``Fr.fft``) with
ffjavascript's roots of unity (:func:`zk.field.root_of_unity`).

For a domain of size ``n = 2^k`` with generator ``omega = root_of_unity(k)``:

- :func:`ntt` maps coefficients ``c_0..c_{n-1}`` to the evaluations ``sum_j c_j omega^(ij)`` at ``omega^i``, in
  natural order (as ffjavascript's ``fft``);
- :func:`intt` is its inverse;
- :func:`coset_ntt` evaluates at ``shift * omega^i`` instead;
- :func:`odd_coset_evaluations` takes evaluations on the domain to evaluations on the *odd coset*
  ``omega_2n * omega^i`` (``omega_2n = root_of_unity(k + 1)``, a square root of omega): the points of the
  double-size domain that the domain lacks. A Groth16 prover evaluates ``A*B - C`` there, where it does not vanish.

Each stage of the transform reads the two halves of the vector and writes sums and twiddled differences
interleaved, so every stage is a pair of list comprehensions over ``n / 2`` elements (what a Python loop does
fastest); the output comes out in bit-reversed order and one permutation puts it right. Sums are left unreduced
inside the transform (they grow by at most one bit a stage) and reduced once at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Final

from zk.field import CURVE_ORDER, TWO_ADICITY, root_of_unity
from zk.gmp import gmp

__all__ = ["coset_ntt", "domain_size_for", "intt", "ntt", "odd_coset_evaluations"]

_R: Final = CURVE_ORDER
_R_GMP: Final = gmp(CURVE_ORDER)


def _log2_exact(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"an NTT domain has a power-of-two size, not {n}")
    k = n.bit_length() - 1
    if k > TWO_ADICITY:
        raise ValueError(f"F_r has NTT domains of at most 2^{TWO_ADICITY} points, not 2^{k}")
    return k


def domain_size_for(rows: int) -> int:
    """snarkjs's domain for ``rows`` QAP rows (constraints + public inputs): ``2^(floor(log2 rows) + 1)``.

    That is the smallest power of two *strictly* above ``rows`` (``zkey_new.js``: ``cirPower = log2(nConstraints
    + nPubInputs + nOutputs) + 1``), which leaves room for the row of the constant wire.
    """
    if rows < 0:
        raise ValueError("a QAP has a non-negative number of rows")
    return 1 << max(1, rows.bit_length())


@cache
def _plan(log_n: int, inverse: bool) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """Per stage, the twiddle of each of the ``n / 2`` butterflies; and the bit-reversal permutation."""
    n = 1 << log_n
    half = n >> 1
    omega = root_of_unity(log_n)
    if inverse:
        omega = pow(omega, -1, _R)
    powers = [1] * max(half, 1)
    for j in range(1, half):
        powers[j] = powers[j - 1] * omega % _R
    # Stage s pairs positions j and j + n/2; its twiddle is omega^(2^s * floor(j / 2^s)) (Pease's geometry), so the
    # last stage's are all 1.
    powers = [gmp(p) for p in powers]
    stages = tuple(tuple(powers[(j >> s) << s] for j in range(half)) for s in range(log_n))
    reverse = tuple(int(format(i, f"0{log_n}b")[::-1], 2) if log_n else 0 for i in range(n))
    return stages, reverse


def _transform(values: Sequence[int], log_n: int, inverse: bool) -> list[int]:
    """The transform of ``values`` (the plan's twiddles and the arithmetic are GMP integers: :mod:`zk.gmp`), with
    its results left as GMP integers for the caller's last step, which returns ints."""
    r = _R_GMP
    stages, reverse = _plan(log_n, inverse)
    n = 1 << log_n
    half = n >> 1
    x = [gmp(v) for v in values]
    y = [0] * n
    for twiddles in stages[:-1]:
        low, high = x[:half], x[half:]
        y[0::2] = [a + b for a, b in zip(low, high, strict=True)]
        y[1::2] = [(a - b) * w % r for a, b, w in zip(low, high, twiddles, strict=True)]
        x, y = y, x
    if stages:  # the last stage's twiddles are all omega^0 = 1
        low, high = x[:half], x[half:]
        y[0::2] = [a + b for a, b in zip(low, high, strict=True)]
        y[1::2] = [a - b for a, b in zip(low, high, strict=True)]
        x, y = y, x
    return [x[i] % r for i in reverse]


def ntt(coefficients: Sequence[int]) -> list[int]:
    """The evaluations of the polynomial with these coefficients at ``omega^0 .. omega^(n-1)`` (n = its length)."""
    return [int(v) for v in _transform(coefficients, _log2_exact(len(coefficients)), inverse=False)]


def intt(evaluations: Sequence[int]) -> list[int]:
    """The coefficients of the polynomial of degree < n with these evaluations at ``omega^0 .. omega^(n-1)``."""
    log_n = _log2_exact(len(evaluations))
    n_inv = pow(1 << log_n, -1, _R)
    return [int(c * n_inv % _R_GMP) for c in _transform(evaluations, log_n, inverse=True)]


def coset_ntt(coefficients: Sequence[int], shift: int) -> list[int]:
    """The evaluations of the polynomial at ``shift * omega^i``: :func:`ntt` of ``c_j * shift^j``."""
    log_n = _log2_exact(len(coefficients))
    return [int(v) for v in _transform(_scaled(coefficients, shift % _R, 1), log_n, inverse=False)]


@cache
def _odd_coset_factors(log_n: int) -> tuple[int, ...]:
    """``omega_2n^j / n``: the coset shift's powers with the inverse transform's 1/n folded in."""
    n = 1 << log_n
    return tuple(gmp(f) for f in _scaled([1] * n, root_of_unity(log_n + 1), pow(n, -1, _R)))


def odd_coset_evaluations(evaluations: Sequence[int]) -> list[int]:
    """From evaluations at ``omega^i`` to evaluations at ``omega_2n * omega^i`` (the module docstring's odd coset).

    snarkjs's ``ifft``, ``batchApplyKey(·, 1, w[power + 1])``, ``fft``. The domain may have up to 2^27 points (its
    double must exist).
    """
    log_n = _log2_exact(len(evaluations))
    if log_n >= TWO_ADICITY:
        raise ValueError(f"the odd coset of a 2^{log_n}-point domain needs a 2^{log_n + 1}-th root of unity")
    coefficients = _transform(evaluations, log_n, inverse=True)
    r = _R_GMP
    shifted = [c * f % r for c, f in zip(coefficients, _odd_coset_factors(log_n), strict=True)]
    return [int(v) for v in _transform(shifted, log_n, inverse=False)]


def _scaled(values: Sequence[int], shift: int, first: int) -> list[int]:
    """``values[j] * first * shift^j``."""
    r = _R
    out = []
    factor = first % r
    for v in values:
        out.append(v * factor % r)
        factor = factor * shift % r
    return out
