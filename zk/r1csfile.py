"""circom's ``.r1cs`` (constraint system) and ``.wtns`` (witness) files, to and from :mod:`zk.r1cs`'s types.

Specs: iden3 ``r1csfile`` ``doc/r1cs_bin_format.md`` (version 1: header section 1, constraints section 2,
wire-to-label map section 3; custom-gate sections 4 and 5 are PLONK-only) as read by ``r1csfile`` 0.0.48, and
snarkjs 0.7.5 ``src/wtns_utils.js`` (``wtns`` version 2: section 1 ``n8, prime, nWitness``, section 2 the values).
Both sit in the iden3 container (:mod:`zk.iden3_binfile`); field elements are 32 bytes little-endian in their
plain (not Montgomery) form, every one below r.

Wire order is the same on both sides: wire 0 is the constant 1, then circom's public outputs, its public inputs
(together our ``num_public`` public wires, in declaration order), then private wires. An :class:`~zk.r1cs.R1CS`
does not tell outputs, private inputs and intermediate wires apart, so :func:`r1cs_to_bytes` declares every public
wire a public input, no outputs and no private inputs (counts ``snarkjs r1cs info`` only reports), and labels wire
i with label i; :func:`r1cs_from_bytes` counts circom's outputs and public inputs together as public wires.

These files are for cross-checks with snarkjs (``snarkjs wtns check``, ``snarkjs groth16 setup``) and for proving
circom circuits; the functions are pure, on bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from zk.errors import FormatError
from zk.field import CURVE_ORDER
from zk.iden3_binfile import SectionReader, build, field_size, parse
from zk.r1cs import R1CS, Terms

__all__ = ["r1cs_from_bytes", "r1cs_to_bytes", "wtns_from_bytes", "wtns_to_bytes"]

_R: Final = CURVE_ORDER
_N8: Final = field_size(CURVE_ORDER)
_R1CS_HEADER, _R1CS_CONSTRAINTS, _R1CS_MAP, _R1CS_CUSTOM_GATES, _R1CS_CUSTOM_USES = 1, 2, 3, 4, 5
_WTNS_HEADER, _WTNS_VALUES = 1, 2
_LABEL: Final = "circom"
"""The gadget label of constraints read from a circom file (which has none)."""


def _element(value: int) -> bytes:
    return value.to_bytes(_N8, "little")


def _read_prime(section: SectionReader) -> None:
    n8 = section.u32("the field size")
    if n8 != _N8:
        raise section.error(f"field elements of {n8} bytes: only BN254's scalar field (32 bytes) is supported")
    prime = section.uint(n8, "the prime")
    if prime != _R:
        raise section.error(f"prime {prime} is not the BN254 scalar field order r")


def _read_element(section: SectionReader, what: str) -> int:
    value = section.uint(_N8, what)
    if value >= _R:
        raise section.error(f"{what} is not below r")
    return value


# ---------------------------------------------------------------------------------------------------- r1cs


def _linear_combination(terms: Terms) -> bytes:
    out = [struct.pack("<I", len(terms))]
    for wire, coefficient in terms:
        out.append(struct.pack("<I", wire))
        out.append(_element(coefficient))
    return b"".join(out)


def r1cs_to_bytes(r1cs: R1CS) -> bytes:
    """The iden3 ``.r1cs`` (version 1) encoding of ``r1cs`` (header, constraints, identity wire-to-label map)."""
    header = b"".join(
        [
            struct.pack("<I", _N8),
            _element(_R),
            struct.pack("<IIIIQI", r1cs.num_variables, 0, r1cs.num_public, 0, r1cs.num_variables, r1cs.num_constraints),
        ]
    )
    constraints = b"".join(
        _linear_combination(a) + _linear_combination(b) + _linear_combination(c) for a, b, c in r1cs.constraints
    )
    labels = struct.pack(f"<{r1cs.num_variables}Q", *range(r1cs.num_variables))
    return build("r1cs", 1, [(_R1CS_HEADER, header), (_R1CS_CONSTRAINTS, constraints), (_R1CS_MAP, labels)])


def _read_linear_combination(section: SectionReader, num_variables: int, where: str) -> Terms:
    count = section.u32(f"{where}: its number of terms")
    terms: dict[int, int] = {}
    for _ in range(count):
        wire = section.u32(f"{where}: a wire index")
        if wire >= num_variables:
            raise section.error(f"{where}: wire {wire} does not exist (the circuit has {num_variables} wires)")
        if wire in terms:
            raise section.error(f"{where}: wire {wire} occurs twice")
        coefficient = _read_element(section, f"{where}: the coefficient of wire {wire}")
        if coefficient:
            terms[wire] = coefficient
    return tuple(sorted(terms.items()))


def r1cs_from_bytes(data: bytes) -> R1CS:
    """Parse an iden3 ``.r1cs`` file (as circom writes it) over BN254's scalar field.

    FormatError for another field, custom gates (PLONK only), a wire index out of range, a wire twice in one
    linear combination, a value not below r, counts that disagree, or a malformed container. Zero coefficients are
    dropped; each constraint is labelled ``"circom"``.
    """
    binfile = parse(data, "r1cs", 1)
    if _R1CS_CUSTOM_GATES in binfile.sections or _R1CS_CUSTOM_USES in binfile.sections:
        raise FormatError("r1cs file uses custom gates (PLONK only): it is not a plain R1CS")
    header = binfile.section(_R1CS_HEADER, "header")
    _read_prime(header)
    num_variables = header.u32("nWires")
    num_outputs = header.u32("nPubOut")
    num_public_inputs = header.u32("nPubIn")
    num_private_inputs = header.u32("nPrvIn")
    num_labels = header.u64("nLabels")
    num_constraints = header.u32("mConstraints")
    header.done()
    num_public = num_outputs + num_public_inputs
    if num_variables < 1 + num_public + num_private_inputs:
        raise header.error(
            f"{num_variables} wires cannot hold the constant, {num_public} public and {num_private_inputs} private "
            "inputs"
        )
    if num_labels < num_variables:
        raise header.error(f"{num_labels} labels for {num_variables} wires")

    body = binfile.section(_R1CS_CONSTRAINTS, "constraints")
    constraints = []
    for index in range(num_constraints):
        a = _read_linear_combination(body, num_variables, f"constraint {index} A")
        b = _read_linear_combination(body, num_variables, f"constraint {index} B")
        c = _read_linear_combination(body, num_variables, f"constraint {index} C")
        constraints.append((a, b, c))
    body.done()

    if _R1CS_MAP in binfile.sections:
        labels = binfile.section(_R1CS_MAP, "wire-to-label map")
        if labels.u64("the label of wire 0") != 0:
            raise labels.error("wire 0 (the constant 1) must have label 0")
        for wire in range(1, num_variables):
            if labels.u64(f"the label of wire {wire}") >= num_labels:
                raise labels.error(f"wire {wire} has a label beyond nLabels = {num_labels}")
        labels.done()
    return R1CS(num_variables, num_public, tuple(constraints), (_LABEL,) * num_constraints)


# ---------------------------------------------------------------------------------------------------- wtns


def wtns_to_bytes(witness: Sequence[int]) -> bytes:
    """The ``.wtns`` (version 2) encoding of a full witness (wire 0 first); ValueError for a value not below r."""
    for index, value in enumerate(witness):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _R:
            raise ValueError(f"witness value {index} is not a field element (0 <= x < r)")
    header = struct.pack("<I", _N8) + _element(_R) + struct.pack("<I", len(witness))
    values = b"".join(_element(v) for v in witness)
    return build("wtns", 2, [(_WTNS_HEADER, header), (_WTNS_VALUES, values)])


def wtns_from_bytes(data: bytes) -> list[int]:
    """Parse a ``.wtns`` file (snarkjs's or circom's witness calculator's) over BN254's scalar field.

    FormatError for another field, a count that disagrees with the values, a value not below r, or wire 0 not 1.
    """
    binfile = parse(data, "wtns", 2)
    header = binfile.section(_WTNS_HEADER, "header")
    _read_prime(header)
    count = header.u32("nWitness")
    header.done()
    values = binfile.section(_WTNS_VALUES, "values")
    if values.remaining != count * _N8:
        raise values.error(f"{values.remaining} bytes do not hold nWitness = {count} values of {_N8} bytes")
    witness = [_read_element(values, f"value {i}") for i in range(count)]
    values.done()
    if not witness or witness[0] != 1:
        raise values.error("wire 0 of a witness is the constant 1")
    return witness
