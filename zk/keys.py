"""Groth16 keys and proofs as plain data, laid out as snarkjs lays them out (so a ``.zkey`` maps onto them 1:1).

Spec: J. Groth, "On the Size of Pairing-based Non-interactive Arguments" (EUROCRYPT 2016), section 3.2, in the
form snarkjs 0.7 implements (``src/zkey_new.js``, ``src/groth16_prove.js``, ``src/groth16_verify.js``):

- the QAP is built over a multiplicative domain of size ``domain_size`` (a power of two at least
  ``num_constraints + num_public + 1``); besides the circuit's constraints, A gets one extra row per public wire
  (and the constant wire) so the public inputs are linearly independent;
- ``coefficients`` are the non-zero entries of the A and B matrices (``matrix`` 0 or 1, row ``constraint``,
  column ``signal``); the prover evaluates A.w and B.w on the domain from them and takes C.w = A.w * B.w
  pointwise, as snarkjs does (a satisfied constraint has exactly that C);
- ``h_query`` holds ``domain_size`` G1 points for the quotient, in snarkjs's form: the prover multiplies them by
  the evaluations of ``A.w * B.w - C.w`` on the odd coset of the domain (``omega_2n * omega_n^i``), without an
  inverse transform at the end;
- ``l_query`` holds one G1 point per private wire (snarkjs's section 8, "C"), ``a_query``, ``b_g1_query`` and
  ``b_g2_query`` one point per wire.

Points are affine tuples of ints as in :mod:`zk.curve`, ``(0, 0)`` at infinity. This module only holds data;
:mod:`zk.groth16` makes, proves and verifies, :mod:`zk.snarkjs` reads and writes snarkjs's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from zk.curve import (
    G1Affine,
    G1Jacobian,
    G2Affine,
    G2Jacobian,
    g1_is_on_curve,
    g1_to_bytes,
    g2_in_subgroup,
    g2_is_on_curve,
    g2_to_bytes,
)
from zk.errors import ProofError
from zk.field import FIELD_MODULUS
from zk.msm import MsmBases, msm_bases_g1, msm_bases_g2

__all__ = ["Coefficient", "Proof", "ProvingKey", "VerifyingKey"]


@dataclass(frozen=True)
class VerifyingKey:
    """What a verifier needs: ``e(A, B) = e(alpha, beta) e(sum x_i IC_i, gamma) e(C, delta)``."""

    alpha_g1: G1Affine
    beta_g2: G2Affine
    gamma_g2: G2Affine
    delta_g2: G2Affine
    ic: tuple[G1Affine, ...]
    """``num_public + 1`` points: IC_0 for the constant wire, then one per public input in declaration order."""

    @property
    def num_public(self) -> int:
        return len(self.ic) - 1


@dataclass(frozen=True)
class Coefficient:
    """One non-zero entry of the A (``matrix = 0``) or B (``matrix = 1``) matrix: row, wire and value (< r)."""

    matrix: int
    constraint: int
    signal: int
    value: int


@dataclass(frozen=True)
class ProvingKey:
    """What a prover needs, in snarkjs's ``.zkey`` layout (module docstring)."""

    vk: VerifyingKey
    beta_g1: G1Affine
    delta_g1: G1Affine
    num_variables: int
    """Wires in all, the constant-one wire included."""
    domain_size: int
    coefficients: tuple[Coefficient, ...]
    a_query: tuple[G1Affine, ...]
    b_g1_query: tuple[G1Affine, ...]
    b_g2_query: tuple[G2Affine, ...]
    l_query: tuple[G1Affine, ...]
    """One point per private wire (wires ``num_public + 1 ..``)."""
    h_query: tuple[G1Affine, ...]

    @property
    def num_public(self) -> int:
        return self.vk.num_public

    @cached_property
    def msm_bases(self) -> ProverBases:
        """The queries made ready for the prover's MSMs, on first use (0.1-0.2 s for the consent circuit's key in
        ``make bench``), then kept with the key."""
        return ProverBases(
            a=msm_bases_g1(self.a_query),
            b_g2=msm_bases_g2(self.b_g2_query),
            c=msm_bases_g1((*self.l_query, *self.h_query, *self.b_g1_query)),
        )


@dataclass(frozen=True, eq=False)
class ProverBases:
    """A proving key's queries as :class:`zk.msm.MsmBases`: A, B in G2, and the C MSM's L, H and B-in-G1 in that
    order (:func:`zk.groth16.prove` explains the last)."""

    a: MsmBases[G1Affine, G1Jacobian]
    b_g2: MsmBases[G2Affine, G2Jacobian]
    c: MsmBases[G1Affine, G1Jacobian]


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof: A and C in G1, B in G2.

    Its binary form (:meth:`to_bytes`, :meth:`from_bytes`) is 256 bytes: A, B and C in the EIP-196/EIP-197
    encodings of the ``ecPairing`` precompile (64 + 128 + 64 bytes, big-endian, G2 coordinates imaginary part
    first, zeros for the point at infinity), so the bytes can go to a Solidity verifier as they are.
    """

    a: G1Affine
    b: G2Affine
    c: G1Affine

    SIZE: ClassVar[int] = 256

    def to_bytes(self) -> bytes:
        return g1_to_bytes(self.a) + g2_to_bytes(self.b) + g1_to_bytes(self.c)

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        """Parse the 256-byte form strictly: every coordinate below q, A and C on G1, B on the twist and in G2.

        :class:`~zk.errors.ProofError` naming the point and the failed check otherwise (reason ``"proof
        encoding"``, ``"point not on curve"`` or ``"point not in subgroup"``).
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofError("proof encoding", f"a proof is {cls.SIZE} bytes, not a {type(data).__name__}")
        data = bytes(data)
        if len(data) != cls.SIZE:
            raise ProofError("proof encoding", f"a proof is {cls.SIZE} bytes, not {len(data)}")
        words = [int.from_bytes(data[i : i + 32], "big") for i in range(0, cls.SIZE, 32)]
        for i, w in enumerate(words):
            if w >= FIELD_MODULUS:
                name = "AABBBBCC"[i]
                raise ProofError("proof encoding", f"a coordinate of proof point {name} is not below the modulus q")
        a: G1Affine = (words[0], words[1])
        b: G2Affine = ((words[3], words[2]), (words[5], words[4]))
        c: G1Affine = (words[6], words[7])
        proof = cls(a, b, c)
        proof.check_points()
        return proof

    def check_points(self) -> None:
        """ProofError unless A and C are points of G1 and B a point of G2 (subgroup included); infinity allowed.

        The encoding cannot tell which points a prover meant, so a verifier checks them before pairing: a B on the
        twist but outside G2 would make the pairing equation meaningless.
        """
        for name, point in (("A", self.a), ("C", self.c)):
            if not g1_is_on_curve(point):
                raise ProofError("point not on curve", f"proof point {name} is not on the G1 curve y^2 = x^3 + 3")
        if not g2_is_on_curve(self.b):
            raise ProofError("point not on curve", "proof point B is not on the G2 twist y^2 = x^3 + 3/(9+i)")
        if not g2_in_subgroup(self.b):
            raise ProofError("point not in subgroup", "proof point B is on the G2 twist but outside the order-r G2")
