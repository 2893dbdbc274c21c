"""Errors raised by the zero-knowledge layer: curve points, constraint systems and (later) proofs.

The hierarchy::

    ZkError                         base of every zk error
    ├── PointError                  bytes or integers that are not a valid BN254 point (also a ValueError)
    ├── FormatError                 a snarkjs / iden3 file (JSON or binary) that does not parse: names the field
    └── ConstraintError             a witness that does not satisfy an R1CS constraint (carries its index, label)

To add an error: subclass :class:`ZkError` (or the narrowest error above that it refines), draw it here, and list it
in ``__all__``. A verifier at a trust boundary collapses its failures to one error type; these inner errors carry
evidence (which constraint, which coordinate) for the developer.
"""

from __future__ import annotations

__all__ = ["ConstraintError", "FormatError", "PointError", "ZkError"]


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
