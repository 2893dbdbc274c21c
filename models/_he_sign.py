"""The composite polynomial that stands in for ``sign`` in the encrypted tree evaluator (:mod:`models.he`).

Construction (Lee, Lee, Kim, Kim, No and Kang 2021, "Minimax approximation of sign function by composite
polynomial for homomorphic comparison", IEEE TDSC, section 3; the approach of Cheon, Kim and Kim 2020, "Efficient
homomorphic comparison methods with optimal complexity", ASIACRYPT, of composing low-degree odd polynomials):
a first stage takes every comparison into ``[1 - TAU1, 1 + TAU1]`` (going left) or its negative (going right);
stages 2..4, odd cubics, each map ``[1 - tau, 1 + tau]`` into a narrower interval around 1. Stage *k* is the odd
minimax cubic for 1 on ``[1 - tau_{k-1} - WIDEN, 1 + tau_{k-1} + WIDEN]``, widened so that the rounding noise of
CKKS between stages stays inside the domain it was fitted on, found with the Remez exchange algorithm; the
coefficients are stored below and checked when the module loads: the composite must take every stage-1 output
to within ``ERROR_BOUND`` of ``sign``. ``python -m models._he_sign`` recomputes them.

**Stage 1 is a different polynomial for every comparison and costs one level.** The client sends ``T_1 .. T_63``
(Chebyshev polynomials) of each feature's grid coordinate ``u = 2x - 1``; any polynomial of degree 63 in ``u``
is then a plaintext linear combination of what the client sent. Features are snapped to a public grid of at most
64 points, so a comparison ``x < t`` only ever sees the grid points, and what stage 1 must do is take the points
below the threshold close to +1 and the others close to -1: a discrete problem. :func:`stage1_chebyshev` solves
it as a linear program (discrete minimax, Chebyshev basis): minimise the largest error on the grid points,
subject to ``|p(u)| <= STAGE1_BOUND`` at 128 Chebyshev nodes of ``[-1, 1]`` so that the coefficients stay small
(their 1-norm, which multiplies the encryption noise, stays below 8). Over every comparison on every grid of 2
to 64 points the error is at most 0.222 (a generic first stage, the continuous minimax polynomial for ``sign`` on
``[2^-7, 1]``, leaves 0.82 at degree 15 and 0.68 at degree 31), which is why three cubic stages suffice: the
composite keeps ``|p(y) - sign(y)| <= 1.2e-5`` at every grid point of every comparison whose stage 1 stays within
``TAU1 = 0.25``; the planner refuses a model with a comparison it cannot fit that closely (a grid much finer than
64 points). A cubic stage costs one 59-bit prime in :mod:`models.he` (``z^3`` is formed before any rescaling),
so the whole composite takes four primes.

Pure: numpy, and scipy's linear-programming solver (HiGHS).
"""

from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from numpy.polynomial import chebyshev, polynomial
from scipy.optimize import linprog  # type: ignore[import-untyped]

__all__ = [
    "DEGREES",
    "ERROR_BOUND",
    "STAGE1_BOUND",
    "STAGE1_DEGREE",
    "STAGES",
    "TAU1",
    "TAUS",
    "WIDEN",
    "Stage1Error",
    "composite",
    "evaluate",
    "regenerate",
    "remez_odd",
    "stage1_chebyshev",
]

FloatArray = npt.NDArray[np.float64]

STAGE1_DEGREE = 63
TAU1 = 0.25
"""Largest distance from ±1 that a stage-1 polynomial may leave at a grid point (the later stages' domain)."""
STAGE1_BOUND = 1.5
"""``|p(u)| <= STAGE1_BOUND`` on ``[-1, 1]`` (at 128 Chebyshev nodes) for every stage-1 polynomial."""
_BOUND_NODES = 128
DEGREES = (STAGE1_DEGREE, 3, 3, 3)
WIDEN = 2e-3
"""Noise allowance added on each side of the domain of stages 2..4."""
ERROR_BOUND = 1.5e-5

# Odd coefficients (of y, y^3) of stages 2..4 and each stage's minimax error on its widened domain, from
# regenerate().
STAGES: tuple[tuple[float, ...], ...] = (
    (1.556329996410387, -0.5080228380346123),
    (1.5022306798447436, -0.5003186298867437),
    (1.5000133930148183, -0.5000019132864395),
)
TAUS: tuple[float, ...] = (0.04847728854387556, 0.0019123205955374756, 1.1479738140529605e-05)


class Stage1Error(ValueError):
    """No stage-1 polynomial of the allowed degree and size separates this grid within :data:`TAU1`."""


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
    tau1: float = TAU1, degrees: tuple[int, ...] = DEGREES[1:], widen: float = WIDEN
) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """Minimax odd stages taking ``[1 - tau1, 1 + tau1]`` towards 1, one after another: coefficients and errors."""
    stages: list[tuple[float, ...]] = []
    taus: list[float] = []
    lo, hi = 1.0 - tau1, 1.0 + tau1
    for degree in degrees:
        coef, tau = remez_odd(degree, lo - widen, hi + widen)
        stages.append(tuple(float(c) for c in coef))
        taus.append(tau)
        lo, hi = 1.0 - tau, 1.0 + tau
    return tuple(stages), tuple(taus)


def evaluate(z: npt.ArrayLike, stages: tuple[tuple[float, ...], ...] = STAGES) -> FloatArray:
    """Stages 2..4 applied to stage-1 outputs ``z``, in floating point (what the encrypted evaluation approximates)."""
    out = np.asarray(z, dtype=np.float64)
    for coef in stages:
        out = np.asarray(polynomial.polyval(out, _odd(coef)), dtype=np.float64)
    return out


def stage1_chebyshev(levels: int, below: int) -> tuple[FloatArray, float]:
    """Stage 1 of the comparison that sends grid points ``0 .. below - 1`` of a ``levels``-point grid left.

    Returns Chebyshev coefficients ``a_0 .. a_63`` of ``p(u)``, ``u = 2k / (levels - 1) - 1`` for grid point
    ``k``, with ``p(u_k)`` within ``TAU1`` of +1 for the points going left and of -1 for the others, and the
    largest such distance. :class:`Stage1Error` when no polynomial meets ``TAU1``.
    """
    if levels < 2 or not 0 <= below <= levels:
        raise ValueError(f"no comparison sends {below} of {levels} grid points left")
    if 2 * below > levels:  # p(u) for (levels, below) is -p(-u) for (levels, levels - below): T_j(-u) = (-1)^j T_j
        coef, tau = _fit(levels, levels - below)
        return -coef * (-1.0) ** np.arange(coef.size), tau
    coef, tau = _fit(levels, below)
    return coef.copy(), tau


@lru_cache(maxsize=4096)
def _fit(levels: int, below: int) -> tuple[FloatArray, float]:
    out = np.zeros(STAGE1_DEGREE + 1)
    if below in (0, levels):  # every grid point goes the same way
        out[0] = 1.0 if below else -1.0
        return out, 0.0
    degree = min(STAGE1_DEGREE, levels - 1)
    u = 2.0 * np.arange(levels) / (levels - 1) - 1.0
    target = np.where(np.arange(levels) < below, 1.0, -1.0)
    grid = chebyshev.chebvander(u, degree)
    nodes = chebyshev.chebvander(np.cos(np.pi * (np.arange(_BOUND_NODES) + 0.5) / _BOUND_NODES), degree)
    n = degree + 1
    # Variables a_0 .. a_degree and the error e: minimise e with |grid a - target| <= e and |nodes a| <= bound.
    ones, zeros = np.ones((levels, 1)), np.zeros((_BOUND_NODES, 1))
    a_ub = np.vstack(
        [np.hstack([grid, -ones]), np.hstack([-grid, -ones]), np.hstack([nodes, zeros]), np.hstack([-nodes, zeros])]
    )
    b_ub = np.concatenate([target, -target, np.full(2 * _BOUND_NODES, STAGE1_BOUND)])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * n + [(0.0, None)], method="highs-ds")
    if result.status != 0:
        raise Stage1Error(f"the stage-1 program for {below} of {levels} grid points failed: {result.message}")
    out[:n] = np.asarray(result.x[:n], dtype=np.float64)
    tau = float(np.max(np.abs(grid @ out[:n] - target)))
    if tau > TAU1:
        raise Stage1Error(
            f"no polynomial of degree {degree} separates {below} of {levels} grid points within {TAU1} "
            f"(best {tau:.3f}): the grid is too fine for the encrypted comparison"
        )
    out.setflags(write=False)
    return out, tau


def _odd(coef: tuple[float, ...]) -> FloatArray:
    full = np.zeros(2 * len(coef))
    full[1::2] = coef
    return full


def _check() -> None:
    if len(STAGES) != len(DEGREES) - 1 or any(2 * len(c) - 1 != d for c, d in zip(STAGES, DEGREES[1:], strict=True)):
        raise AssertionError("sign stages do not match their degrees")
    z = np.linspace(1.0 - TAU1, 1.0 + TAU1, 20_001)
    worst = float(np.max(np.abs(evaluate(z) - 1.0)))
    if not worst <= ERROR_BOUND or not np.allclose(evaluate(-z), -evaluate(z)):
        raise AssertionError(f"the composite sign approximation misses its bound: {worst} > {ERROR_BOUND}")
    # Each stage keeps its output bound on its widened domain (noise between stages stays harmless).
    lo, hi = 1.0 - TAU1, 1.0 + TAU1
    for coef, tau in zip(STAGES, TAUS, strict=True):
        grid = np.linspace(lo - WIDEN, hi + WIDEN, 4_001)
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
