"""Groth16 on BN254: a development setup, the prover and the verifier, in snarkjs's conventions.

Spec: J. Groth, "On the Size of Pairing-based Non-interactive Arguments" (EUROCRYPT 2016), section 3.2, as snarkjs
0.7.5 implements it (``src/zkey_new.js``, ``src/groth16_prove.js``, ``src/groth16_verify.js``), so that a key from
a snarkjs ceremony (read into :class:`~zk.keys.ProvingKey` by :mod:`zk.snarkjs`) and a key from :func:`setup` drive
the same prover, and proofs verify under either side's verifier. The layout of the keys is described in
:mod:`zk.keys`.

With the toxic waste ``tau, alpha, beta, gamma, delta`` and ``u_i, v_i, w_i`` the A, B, C columns of wire i
evaluated at tau (Lagrange basis of the QAP domain, plus snarkjs's extra A rows for the public wires):

- the prover sends ``A = alpha + sum a_i u_i + r delta``, ``B = beta + sum a_i v_i + s delta`` (in G2, and in G1
  for C) and ``C = sum_private a_i (beta u_i + alpha v_i + w_i) / delta + h(tau) t(tau) / delta + s A + r B -
  r s delta``, with fresh random r and s;
- the verifier checks ``e(A, B) = e(alpha, beta) e(sum_public a_i IC_i, gamma) e(C, delta)``.

The quotient term comes from snarkjs's trick (module doc of :mod:`zk.keys`): ``p = A.w * B.w - C.w`` has degree
below 2n and vanishes on the domain, so ``p(tau) = sum_i p(omega_2n^(2i+1)) L'_(2i+1)(tau)`` over the Lagrange
basis L' of the double domain; ``h_query`` holds ``L'_(2i+1)(tau) / delta`` and the prover multiplies it by p on
the odd coset (:func:`zk.ntt.odd_coset_evaluations`), with no division by ``t`` at all.

:func:`setup` is single-party: whoever runs it knows the toxic waste and can forge proofs. It is for development
and tests; production imports the key of a multi-party ceremony.

The prover works on secrets (the witness, r and s) with Python integers, which are not constant-time: run it where
the prover's own data is, not beside untrusted code that can time it. The verifier works on public data only.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from zk.curve import (
    G1,
    G2,
    g1_add,
    g1_add_mixed,
    g1_in_subgroup,
    g1_mul_jacobian,
    g1_neg,
    g1_to_affine,
    g2_add_mixed,
    g2_in_subgroup,
    g2_mul_jacobian,
    g2_to_affine,
)
from zk.errors import PointError, ProofError, WitnessError
from zk.field import CURVE_ORDER, batch_inverse, root_of_unity
from zk.keys import Coefficient, Proof, ProvingKey, VerifyingKey
from zk.msm import fixed_base_g1, fixed_base_g2, msm_g1_jacobian, msm_jacobian
from zk.ntt import domain_size_for, odd_coset_evaluations
from zk.pairing import Fq12, G2Prepared, pairing, pairing_check, prepare_g2
from zk.r1cs import R1CS

__all__ = [
    "DEVELOPMENT_SETUP_WARNING",
    "PreparedVerifyingKey",
    "is_valid",
    "prepare",
    "prove",
    "setup",
    "verify",
]

_R: Final = CURVE_ORDER
_log = logging.getLogger(__name__)

DEVELOPMENT_SETUP_WARNING: Final = (
    "Groth16 keys from a single-party DEVELOPMENT setup: the process that ran it held the toxic waste and could "
    "forge proofs. Use a proving key from a multi-party ceremony (a snarkjs .zkey) in production."
)


# ---------------------------------------------------------------------------------------------------- setup


def setup(r1cs: R1CS, *, rng: random.Random | None = None) -> ProvingKey:
    """Single-party trusted setup FOR DEVELOPMENT ONLY: a proving key for ``r1cs`` in snarkjs's layout.

    The toxic waste (tau, alpha, beta, gamma, delta) is drawn from ``rng`` (default: the operating system's
    CSPRNG), lives in this process's memory while the key is computed, and is dropped on return (Python cannot
    wipe it); anyone who saw it can forge proofs for this key. Every call logs :data:`DEVELOPMENT_SETUP_WARNING`
    at WARNING level. An injected ``rng`` makes the key reproducible, which is only ever wanted in tests.

    Unlike a fresh snarkjs key (gamma = delta = 1 until phase-2 contributions), gamma and delta are random here,
    as in the paper.
    """
    rng = rng if rng is not None else secrets.SystemRandom()
    _log.warning(DEVELOPMENT_SETUP_WARNING)
    m, n_pub, n_vars = r1cs.num_constraints, r1cs.num_public, r1cs.num_variables
    n = domain_size_for(m + n_pub)
    log_n = n.bit_length() - 1
    if log_n + 1 > 28:
        raise ValueError(f"a circuit of {m} constraints needs a domain beyond BN254's 2^28 roots of unity")

    tau = _random_nonzero(rng)
    while pow(tau, 2 * n, _R) == 1:  # tau on the (double) domain would zero a Lagrange denominator
        tau = _random_nonzero(rng)
    alpha, beta, gamma, delta = (_random_nonzero(rng) for _ in range(4))
    gamma_inv, delta_inv = pow(gamma, -1, _R), pow(delta, -1, _R)

    lagrange = _lagrange_at(tau, log_n, odd_only=False)
    u, v, w = [0] * n_vars, [0] * n_vars, [0] * n_vars
    coefficients: list[Coefficient] = []
    for row, (a_terms, b_terms, c_terms) in enumerate(r1cs.constraints):
        basis = lagrange[row]
        for signal, k in a_terms:
            u[signal] += k * basis
            coefficients.append(Coefficient(0, row, signal, k))
        for signal, k in b_terms:
            v[signal] += k * basis
            coefficients.append(Coefficient(1, row, signal, k))
        for signal, k in c_terms:
            w[signal] += k * basis
    # snarkjs's extra A rows: row m + i holds wire i (the constant and the public inputs) alone.
    for signal in range(n_pub + 1):
        u[signal] += lagrange[m + signal]
        coefficients.append(Coefficient(0, m + signal, signal, 1))
    u = [x % _R for x in u]
    v = [x % _R for x in v]
    combined = [(beta * u[i] + alpha * v[i] + w[i]) % _R for i in range(n_vars)]
    ic = [x * gamma_inv % _R for x in combined[: n_pub + 1]]
    private = [x * delta_inv % _R for x in combined[n_pub + 1 :]]
    h = [x * delta_inv % _R for x in _lagrange_at(tau, log_n + 1, odd_only=True)]

    g1_scalars = [alpha, beta, delta, *u, *v, *ic, *private, *h]
    g1_points = fixed_base_g1(G1, g1_scalars)
    g2_points = fixed_base_g2(G2, [beta, gamma, delta, *v])
    alpha_g1, beta_g1, delta_g1 = g1_points[:3]
    cursor = 3
    queries = []
    for length in (n_vars, n_vars, n_pub + 1, n_vars - n_pub - 1, n):
        queries.append(tuple(g1_points[cursor : cursor + length]))
        cursor += length
    a_query, b_g1_query, ic_points, l_query, h_query = queries
    beta_g2, gamma_g2, delta_g2 = g2_points[:3]
    vk = VerifyingKey(alpha_g1, beta_g2, gamma_g2, delta_g2, ic_points)
    return ProvingKey(
        vk=vk,
        beta_g1=beta_g1,
        delta_g1=delta_g1,
        num_variables=n_vars,
        domain_size=n,
        coefficients=tuple(coefficients),
        a_query=a_query,
        b_g1_query=b_g1_query,
        b_g2_query=tuple(g2_points[3:]),
        l_query=l_query,
        h_query=h_query,
    )


def _random_nonzero(rng: random.Random) -> int:
    return rng.randrange(1, _R)


def _lagrange_at(tau: int, log_n: int, *, odd_only: bool) -> list[int]:
    """``L_i(tau)`` for the Lagrange basis of the 2^log_n domain: ``(tau^n - 1) / n * omega^i / (tau - omega^i)``.

    With ``odd_only``, only the odd i (the coset points of the half-size domain), in order.
    """
    n = 1 << log_n
    omega = root_of_unity(log_n)
    points = [1] * n
    for i in range(1, n):
        points[i] = points[i - 1] * omega % _R
    if odd_only:
        points = points[1::2]
    scale = (pow(tau, n, _R) - 1) * pow(n, -1, _R) % _R
    inverses = batch_inverse([(tau - x) % _R for x in points])
    return [scale * x % _R * d % _R for x, d in zip(points, inverses, strict=True)]


# ---------------------------------------------------------------------------------------------------- prover


def prove(pk: ProvingKey, witness: Sequence[int], *, rng: random.Random | None = None) -> Proof:
    """A zero-knowledge proof that ``witness`` satisfies the constraints behind ``pk``.

    ``witness`` is the full wire assignment in snarkjs's order (1, the public inputs, the private wires), e.g.
    :attr:`zk.r1cs.ConstraintSystem.witness`. The blinding r and s come from ``rng`` (default: the operating
    system's CSPRNG); an injected generator makes proofs reproducible, for tests only.

    :class:`~zk.errors.WitnessError` for a witness of the wrong length, with a value outside ``0..r-1`` or without 1
    at wire 0, and for one that does not satisfy the key's constraints. A proving key holds only the A and B
    matrices (as snarkjs's), so the last is found by checking the finished proof against the key's verifying key,
    which fails for such a witness except with negligible probability; the witness's values never appear in the
    message.
    """
    rng = rng if rng is not None else secrets.SystemRandom()
    _check_witness(pk, witness)
    n_pub = pk.num_public
    wires = list(witness)
    p_odd = _quotient_on_odd_coset(pk, wires)
    r, s = _random_nonzero(rng), _random_nonzero(rng)
    vk = pk.vk

    bases = pk.msm_bases
    a_sum = msm_jacobian(bases.a, wires)
    b_sum = msm_jacobian(bases.b_g2, wires)
    # C = L.w + H.p + s A + r B1 - r s delta with B1 = beta + B1.w + s delta, so C = (L.w + H.p + B1.(r w)) + s A +
    # r beta: B in G1 is never formed, its query joins the others in one larger (so cheaper per point) MSM.
    c_sum = msm_jacobian(bases.c, [*wires[n_pub + 1 :], *p_odd, *(r * x % _R for x in wires)])
    a = g1_to_affine(g1_add(g1_add_mixed(a_sum, vk.alpha_g1), g1_mul_jacobian(pk.delta_g1, r)))
    b = g2_add_mixed(g2_add_mixed(b_sum, vk.beta_g2), g2_to_affine(g2_mul_jacobian(vk.delta_g2, s)))
    c = g1_add(g1_add(c_sum, g1_mul_jacobian(a, s)), g1_mul_jacobian(pk.beta_g1, r))
    proof = Proof(a, g2_to_affine(b), g1_to_affine(c))

    if not is_valid(_prepared(vk), wires[1 : n_pub + 1], proof):
        raise WitnessError(
            "the witness does not satisfy the proving key's constraints: its proof does not verify under the key's "
            "verifying key (or the key itself is inconsistent)"
        )
    return proof


def _check_witness(pk: ProvingKey, witness: Sequence[int]) -> None:
    if len(witness) != pk.num_variables:
        raise WitnessError(f"a witness for this key has {pk.num_variables} values, not {len(witness)}")
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < _R for x in witness):
        raise WitnessError("witness values must be field elements (integers 0 <= x < r)")
    if witness[0] != 1:
        raise WitnessError("wire 0 of a witness is the constant 1")


def _quotient_on_odd_coset(pk: ProvingKey, witness: Sequence[int]) -> list[int]:
    """``A.w * B.w - C.w`` on the odd coset, with ``C.w = A.w * B.w`` on the domain (snarkjs's ``buildABC1``)."""
    n = pk.domain_size
    r = _R
    rows: tuple[list[int], list[int]] = ([0] * n, [0] * n)
    for co in pk.coefficients:
        rows[co.matrix][co.constraint] += co.value * witness[co.signal]
    a = [x % r for x in rows[0]]
    b = [x % r for x in rows[1]]
    c = [x * y % r for x, y in zip(a, b, strict=True)]
    a_odd, b_odd, c_odd = (odd_coset_evaluations(e) for e in (a, b, c))
    return [(x * y - z) % r for x, y, z in zip(a_odd, b_odd, c_odd, strict=True)]


# ---------------------------------------------------------------------------------------------------- verifier


@dataclass(frozen=True, eq=False)
class PreparedVerifyingKey:
    """A verifying key with what does not depend on the proof computed once (see :func:`prepare`)."""

    vk: VerifyingKey
    alpha_beta: Fq12
    """``e(alpha, beta)`` in GT."""
    gamma_lines: G2Prepared
    delta_lines: G2Prepared


def prepare(vk: VerifyingKey) -> PreparedVerifyingKey:
    """Check the key's points and precompute what :func:`verify` needs that does not depend on the proof.

    PointError when a G1 point of the key is off the curve or a G2 point outside G2 (a key read from a file is
    checked by its parser too; this also covers keys built in code). Precomputes ``e(alpha, beta)`` and the Miller
    loop lines of gamma and delta.
    """
    for name, point in (("alpha", vk.alpha_g1), *((f"IC[{i}]", p) for i, p in enumerate(vk.ic))):
        if not g1_in_subgroup(point):
            raise PointError(f"verifying key point {name} is not on the G1 curve")
    for name, point2 in (("beta", vk.beta_g2), ("gamma", vk.gamma_g2), ("delta", vk.delta_g2)):
        if not g2_in_subgroup(point2):
            raise PointError(f"verifying key point {name} is not in G2")
    return PreparedVerifyingKey(
        vk=vk,
        alpha_beta=pairing(vk.alpha_g1, vk.beta_g2),
        gamma_lines=prepare_g2(vk.gamma_g2),
        delta_lines=prepare_g2(vk.delta_g2),
    )


@lru_cache(maxsize=8)
def _prepared(vk: VerifyingKey) -> PreparedVerifyingKey:
    return prepare(vk)


def verify(prepared: PreparedVerifyingKey, public_inputs: Sequence[int], proof: Proof) -> None:
    """Accept (return None) or refuse (:class:`~zk.errors.ProofError` with its ``reason``) a proof.

    Checks, in order: as many public inputs as the key has, each an integer in ``0..r-1`` (no reduction mod r:
    ``x + r`` is refused, not read as x); A and C on G1, B on the twist and in its order-r subgroup; and the
    pairing equation ``e(A, B) = e(alpha, beta) e(sum x_i IC_i, gamma) e(C, delta)``.
    """
    vk = prepared.vk
    if len(public_inputs) != vk.num_public:
        count = len(public_inputs)
        raise ProofError("public input count", f"this key takes {vk.num_public} public inputs, not {count}")
    for i, x in enumerate(public_inputs):
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < _R:
            raise ProofError("public input out of range", f"public input {i} is not an integer in 0..r-1")
    proof.check_points()
    public = g1_to_affine(g1_add_mixed(msm_g1_jacobian(vk.ic[1:], public_inputs), vk.ic[0]))
    # e(A, B) e(-L, gamma) e(-C, delta) = e(alpha, beta), one final exponentiation for the three Miller loops.
    pairs = [
        (proof.a, prepare_g2(proof.b)),
        (g1_neg(public), prepared.gamma_lines),
        (g1_neg(proof.c), prepared.delta_lines),
    ]
    if not pairing_check(pairs, prepared.alpha_beta):
        raise ProofError("pairing check failed", "e(A, B) != e(alpha, beta) e(L, gamma) e(C, delta)")


def is_valid(prepared: PreparedVerifyingKey, public_inputs: Sequence[int], proof: Proof) -> bool:
    """:func:`verify` as a boolean, for callers that only need yes or no."""
    try:
        verify(prepared, public_inputs, proof)
    except ProofError:
        return False
    return True
