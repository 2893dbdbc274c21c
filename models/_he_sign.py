"""The composite polynomial that stands in for ``sign`` in the encrypted tree evaluator (:mod:`models.he`).

Construction (Lee, Lee, Kim, Kim, No and Kang 2021, "Minimax approximation of sign function by composite
polynomial for homomorphic comparison", IEEE TDSC, section 3; the approach of Cheon, Kim and Kim 2020, "Efficient
homomorphic comparison methods with optimal complexity", ASIACRYPT, of composing low-degree odd polynomials): stage
1 is the odd minimax polynomial for ``sign`` on ``[EPSILON, 1]`` (and by oddness on ``[-1, -EPSILON]``); it maps
that set into ``[1 - tau_1, 1 + tau_1]``; stage *k* is the odd minimax polynomial for 1 on
``[1 - tau_{k-1} - w_k, 1 + tau_{k-1} + w_k]``, widened by ``w_k`` so that the rounding noise of CKKS between
stages stays inside the domain the next stage was fitted on. Each stage is found with the Remez exchange
algorithm (odd monomial basis) on a dense grid; the coefficients are stored below and checked when the module
loads: the composite must keep ``|p(y) - sign(y)| <= ERROR_BOUND`` for ``EPSILON <= |y| <= 1``. ``python -m
models._he_sign`` recomputes them.

Degrees 15, 3, 7, 7 take ``EPSILON = 2^-7`` to an error of 6e-5. Stage 1 is not evaluated on ciphertexts: for a
comparison ``x < t`` scaled by ``s``, ``p_1(s (t - x))`` is a polynomial of degree 15 in ``x`` that
:func:`stage1_chebyshev` writes in the Chebyshev basis ``T_j(2x - 1)``; the client sends ``T_1 .. T_15`` of each
feature and the server evaluates stage 1 as a plaintext linear combination (one level, with coefficients bounded
by about ``2 max|p_1| < 4``: in the monomial basis they reach 8e4, the blow-up of single high-degree stages).
Stages 2..4 (depth 2, 3, 3) run on ciphertexts, all comparisons at once. For comparison, 7∘7∘7 leaves an error of
8e-2 at ``2^-7``: too much for a margin tolerance of 5e-3 once several near-threshold comparisons of one patient
add up.

Why ``EPSILON = 2^-7`` suffices: features are snapped to a grid of at most 64 points per feature and thresholds to
grid midpoints (:mod:`models.features`), so in unit coordinates ``|x - t| >= 1/126``; the evaluator scales each
comparison by ``1 / max(|t|, |1 - t|) >= 1`` to fill ``[-1, 1]``, and refuses a model whose scaled margin falls
below ``EPSILON``.

Pure: numpy only.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev, polynomial

__all__ = [
    "DEGREES",
    "EPSILON",
    "ERROR_BOUND",
    "STAGES",
    "TAUS",
    "WIDEN",
    "composite",
    "evaluate",
    "regenerate",
    "remez_odd",
    "stage1_chebyshev",
]

FloatArray = npt.NDArray[np.float64]

EPSILON = 2.0**-7
"""The smallest ``|y|`` the composite must take to ``sign(y)``."""
DEGREES = (15, 3, 7, 7)
WIDEN = (0.0, 4e-3, 2e-3, 2e-3)
"""Noise allowance added on each side of the domain of stage *k* (stage 1 is exact: see the module docstring)."""
ERROR_BOUND = 8e-5

# Odd coefficients (of y, y^3, y^5, ..) per stage and the stage's minimax error, from regenerate().
STAGES: tuple[tuple[float, ...], ...] = (
    (
        22.546019219775985,
        -595.8525725011021,
        5882.2428334294445,
        -26855.29451042653,
        64052.679461570864,
        -82508.47443759383,
        54380.973788886426,
        -14378.644725763392,
    ),
    (2.199179612308678, -0.596659343579169),
    (2.871537965802455, -3.5680130052064527, 1.9922123505577871, -0.36838963562076676),
    (2.2001717807158307, -2.2139979475392932, 1.3274160202887868, -0.31364928411751736),
)
TAUS: tuple[float, ...] = (0.8241431783535518, 0.6250844759840037, 0.10019733877405912, 5.9880627247821394e-05)


def remez_odd(
    degree: int, lo: float, hi: float, *, grid: int = 400_001, iterations: int = 100
) -> tuple[FloatArray, float]:
    """The odd polynomial of ``degree`` closest to 1 in the uniform norm on ``[lo, hi]`` (0 < lo < hi).

    Returns the coefficients of ``y, y^3, ..`` and the minimax error. Remez exchange: solve for equioscillation on
    ``degree // 2 + 2`` reference points, move the references to the extrema of the error, repeat.
    """
    if degree % 2 != 1 or not 0.0 < lo < hi:
        raise ValueError("an odd degree and 0 < lo < hi are required")
    k = degree // 2 + 1
    n = k + 1
    xs = (lo + hi) / 2 - (hi - lo) / 2 * np.cos(np.pi * np.arange(n) / (n - 1))
    dense = np.linspace(lo, hi, grid)
    powers = np.stack([dense ** (2 * i + 1) for i in range(k)], axis=1)
    alternation = (-1.0) ** np.arange(n)
    coef = np.zeros(k)
    for _ in range(iterations):
        a = np.column_stack([np.stack([xs ** (2 * i + 1) for i in range(k)], axis=1), alternation])
        coef = np.asarray(np.linalg.solve(a, np.ones(n))[:k], dtype=np.float64)
        err = powers @ coef - 1.0
        # Local extrema of the error, endpoints included, then n of them that alternate in sign.
        interior = np.flatnonzero((np.abs(err[1:-1]) >= np.abs(err[:-2])) & (np.abs(err[1:-1]) >= np.abs(err[2:])))
        candidates = np.unique(np.concatenate([[0], interior + 1, [grid - 1]]))
        chosen: list[int] = []
        for i in candidates:
            if chosen and np.sign(err[i]) == np.sign(err[chosen[-1]]):
                if abs(err[i]) > abs(err[chosen[-1]]):
                    chosen[-1] = int(i)
            else:
                chosen.append(int(i))
        while len(chosen) > n:  # drop the smaller end
            chosen.pop(0 if abs(err[chosen[0]]) < abs(err[chosen[-1]]) else -1)
        if len(chosen) < n:
            break
        new = dense[chosen]
        if np.allclose(new, xs, rtol=0.0, atol=(hi - lo) / grid):
            xs = new
            break
        xs = new
    err = powers @ coef - 1.0
    return coef, float(np.max(np.abs(err)))


def composite(
    epsilon: float = EPSILON, degrees: tuple[int, ...] = DEGREES, widen: tuple[float, ...] = WIDEN
) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """Stage-by-stage minimax composite for ``sign`` on ``[epsilon, 1]``: coefficients and error per stage."""
    stages: list[tuple[float, ...]] = []
    taus: list[float] = []
    lo, hi = epsilon, 1.0
    for degree, w in zip(degrees, widen, strict=True):
        coef, tau = remez_odd(degree, lo - w, hi + w)
        stages.append(tuple(float(c) for c in coef))
        taus.append(tau)
        lo, hi = 1.0 - tau, 1.0 + tau
    return tuple(stages), tuple(taus)


def evaluate(y: npt.ArrayLike, stages: tuple[tuple[float, ...], ...] = STAGES) -> FloatArray:
    """The composite at ``y`` in floating point (what the encrypted evaluation approximates)."""
    out = np.asarray(y, dtype=np.float64)
    for coef in stages:
        out = np.asarray(polynomial.polyval(out, _odd(coef)), dtype=np.float64)
    return out


def stage1_chebyshev(scale: float, threshold: float) -> FloatArray:
    """Coefficients ``a_0 .. a_7`` with ``p_1(scale * (x - threshold)) = sum_j a_j T_j(2x - 1)``."""
    # y = scale * ((u + 1) / 2 - threshold) for u = 2x - 1; compose p_1 with that affine map, then change basis.
    affine = polynomial.Polynomial([scale * (0.5 - threshold), scale / 2])
    composed = polynomial.Polynomial(_odd(STAGES[0]))(affine)
    out = np.zeros(DEGREES[0] + 1)
    cheb = chebyshev.poly2cheb(composed.coef)
    out[: len(cheb)] = cheb
    return out


def _odd(coef: tuple[float, ...]) -> FloatArray:
    full = np.zeros(2 * len(coef))
    full[1::2] = coef
    return full


def _check() -> None:
    if len(STAGES) != len(DEGREES) or any(2 * len(c) - 1 != d for c, d in zip(STAGES, DEGREES, strict=True)):
        raise AssertionError("sign stages do not match their degrees")
    y = np.concatenate([np.linspace(EPSILON, 1.0, 20_001), np.geomspace(EPSILON, 1.0, 2_001)])
    worst = float(np.max(np.abs(evaluate(y) - 1.0)))
    if not worst <= ERROR_BOUND or not np.allclose(evaluate(-y), -evaluate(y)):
        raise AssertionError(f"the composite sign approximation misses its bound: {worst} > {ERROR_BOUND}")
    # Each later stage keeps its output bound on its widened domain (noise between stages stays harmless).
    lo, hi = EPSILON, 1.0
    for coef, tau, w in zip(STAGES, TAUS, WIDEN, strict=True):
        grid = np.linspace(lo - w, hi + w, 4_001)
        if np.max(np.abs(polynomial.polyval(grid, _odd(coef)) - 1.0)) > tau * (1 + 1e-6) + 1e-12:
            raise AssertionError("a sign stage exceeds its stored error")
        lo, hi = 1.0 - tau, 1.0 + tau


def regenerate() -> str:
    """The ``STAGES`` and ``TAUS`` constants, recomputed, as Python source."""
    stages, taus = composite()
    lines = ["STAGES: tuple[tuple[float, ...], ...] = ("]
    lines += [f"    ({', '.join(repr(c) for c in coef)})," for coef in stages]
    lines += [")", f"TAUS: tuple[float, ...] = ({', '.join(repr(t) for t in taus)})"]
    return "\n".join(lines)


_check()

if __name__ == "__main__":
    sys.stdout.write(regenerate() + "\n")
