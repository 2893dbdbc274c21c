"""Errors raised by the zero-knowledge layer: curve points, constraint systems, witnesses and proofs.

The hierarchy::

    ZkError                         base of every zk error
    ├── PointError                  bytes or integers that are not a valid BN254 point (also a ValueError)
    ├── FormatError                 a snarkjs / iden3 file (JSON or binary) that does not parse: names the field
    ├── ConstraintError             a witness that does not satisfy an R1CS constraint (carries its index, label)
    ├── WitnessError                a witness the prover refuses: wrong length, values >= r, or not satisfying the
    │                               proving key's constraints (also a ValueError)
    └── ProofError                  a proof that is malformed or does not verify; ``reason`` says which check failed

To add an error: subclass :class:`ZkError` (or the narrowest error above that it refines), draw it here, and list it
in ``__all__``. A verifier at a trust boundary collapses its failures to one error type (:class:`ProofError`, whose
``reason`` is one of a few fixed strings and never carries witness data); these inner errors carry evidence (which
constraint, which coordinate) for the developer.
"""

from __future__ import annotations

__all__ = ["ConstraintError", "FormatError", "PointError", "ProofError", "WitnessError", "ZkError"]


class ZkError(Exception):
    """Base of every error the zk package raises."""


class PointError(ZkError, ValueError):
    """Not a point of the group it was parsed as: a coordinate >= q, off the curve, or outside the r-torsion."""


class FormatError(ZkError, ValueError):
    """Not a valid snarkjs or iden3 file: the message names the field (``proof.pi_b[1]``, ``zkey section 7``), why."""


class ConstraintError(ZkError):
    """A witness fails constraint ``index`` (``A·w * B·w != C·w`` mod r); ``label`` names the gadget that added it."""

    def __init__(self, index: int, label: str) -> None:
        super().__init__(f"R1CS constraint {index} ({label or 'unlabelled'}) does not hold for this witness")
        self.index = index
        self.label = label


class WitnessError(ZkError, ValueError):
    """The prover refuses this witness (the message says why); no proof is produced."""


class ProofError(ZkError):
    """A Groth16 proof refused by the verifier or the parser.

    ``reason`` is a short fixed phrase naming the check that failed: ``"public input count"``, ``"public input
    out of range"``, ``"proof encoding"``, ``"point not on curve"``, ``"point not in subgroup"`` or ``"pairing
    check failed"``; the message adds which input or point.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
