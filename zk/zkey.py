"""snarkjs's Groth16 proving key file (``.zkey``), to and from :class:`zk.keys.ProvingKey`.

Spec: snarkjs 0.7.5 ``src/zkey_utils.js`` (``readHeaderGroth16``, ``readZKey``, ``writeZKey``) and
``src/zkey_new.js`` (what the sections hold), in the iden3 container (:mod:`zk.iden3_binfile`), version 1:

====  ===============  ==========================================================================================
 1    header           u32 protocol: 1 = Groth16 (2 PLONK and 10 FFLONK are refused)
 2    Groth16 header   n8q, q, n8r, r, nVars, nPublic, domainSize (u32s and primes), then alpha1, beta1, beta2,
                       gamma2, delta1, delta2
 3    IC               nPublic + 1 G1 points
 4    coefficients     u32 count, then (matrix u32, constraint u32, signal u32, value) per non-zero A / B entry
 5    A                nVars G1 points
 6    B1               nVars G1 points
 7    B2               nVars G2 points
 8    C                nVars - nPublic - 1 G1 points (snarkjs's name for the private wires' L query)
 9    H                domainSize G1 points
 10   contributions    the phase-2 ceremony's transcript: read by ``snarkjs zkey verify``, ignored here
====  ===============  ==========================================================================================

Encodings: a base-field coordinate is 32 bytes little-endian in Montgomery form (``x * 2^256 mod q``); a G1 point
is x then y, a G2 point x.c0, x.c1, y.c0, y.c1; the point at infinity is all zero bytes. A coefficient value is
stored as ``value * 2^512 mod r`` (snarkjs's ``writeFr2``: Montgomery form twice, so that the prover's Montgomery
product with a plain witness value lands in Montgomery form).

Reading checks everything a key from outside (a multi-party phase-2 ceremony) could get wrong by accident or on
purpose, short of the ceremony's own transcript: the curve, the sizes, every coordinate below q, every point on its
curve and every G2 point in the order-r subgroup (the B2 points in a batch, see :func:`_check_in_g2`; the test is
randomised with the operating system's generator), coefficients below r and inside the matrices. Whether the key was
made for *this* circuit is :func:`check_key_matches` (the coefficients are the circuit's A and B matrices).
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from zk.curve import (
    G1_INFINITY,
    G2_INFINITY,
    G1Affine,
    G2Affine,
    g1_from_ints,
    g2_from_ints,
    g2_in_subgroup,
    g2_is_on_curve,
    g2_to_affine,
)
from zk.errors import FormatError, PointError
from zk.field import CURVE_ORDER, FIELD_MODULUS, TWO_ADICITY
from zk.iden3_binfile import SectionReader, build, field_size, parse
from zk.keys import Coefficient, ProvingKey, VerifyingKey
from zk.msm import msm_g2_jacobian
from zk.r1cs import R1CS

__all__ = ["GROTH16_PROTOCOL", "check_key_matches", "expected_coefficients", "zkey_from_bytes", "zkey_to_bytes"]

GROTH16_PROTOCOL: Final = 1
_PROTOCOLS: Final = {1: "Groth16", 2: "PLONK", 10: "FFLONK"}

_Q: Final = FIELD_MODULUS
_R: Final = CURVE_ORDER
_N8Q: Final = field_size(FIELD_MODULUS)
_N8R: Final = field_size(CURVE_ORDER)
_MONT_Q: Final = pow(2, 8 * _N8Q, _Q)
_MONT_Q_INV: Final = pow(_MONT_Q, -1, _Q)
_MONT_R2: Final = pow(2, 16 * _N8R, _R)
_MONT_R2_INV: Final = pow(_MONT_R2, -1, _R)
_G1_BYTES: Final = 2 * _N8Q
_G2_BYTES: Final = 4 * _N8Q
_COEFFICIENT_BYTES: Final = 12 + _N8R
_G2_BATCH_ROUNDS: Final = 5

_P = TypeVar("_P")


# ---------------------------------------------------------------------------------------------------- points


def _coordinates(section: SectionReader, count: int, what: str) -> list[int]:
    raw = section.take(count * _N8Q, what)
    out = []
    for i in range(count):
        m = int.from_bytes(raw[i * _N8Q : (i + 1) * _N8Q], "little")
        if m >= _Q:
            raise section.error(f"{what}: a coordinate is not below q (Montgomery form must be reduced)")
        out.append(m * _MONT_Q_INV % _Q)
    return out


def _read_g1(section: SectionReader, what: str) -> G1Affine:
    raw = section.take(_G1_BYTES, what)
    if not any(raw):
        return G1_INFINITY
    x, y = _coordinates(SectionReader(raw, section.name), 2, what)
    try:
        return g1_from_ints(x, y)
    except PointError as e:
        raise section.error(f"{what}: {e}") from e


def _read_g2(section: SectionReader, what: str) -> G2Affine:
    raw = section.take(_G2_BYTES, what)
    if not any(raw):
        return G2_INFINITY
    x0, x1, y0, y1 = _coordinates(SectionReader(raw, section.name), 4, what)
    try:
        return g2_from_ints((x0, x1), (y0, y1))
    except PointError as e:
        raise section.error(f"{what}: {e}") from e


def _read_twist_point(section: SectionReader, what: str) -> G2Affine:
    """A G2 point checked for range and curve only: :func:`_check_in_g2` does the subgroup test, batched."""
    raw = section.take(_G2_BYTES, what)
    if not any(raw):
        return G2_INFINITY
    x0, x1, y0, y1 = _coordinates(SectionReader(raw, section.name), 4, what)
    p = ((x0, x1), (y0, y1))
    if not g2_is_on_curve(p):
        raise section.error(f"{what}: point is not on the G2 twist y^2 = x^3 + 3/(9+i)")
    return p


def _check_in_g2(section: SectionReader, points: Sequence[G2Affine]) -> None:
    """FormatError unless every point (each already on the twist) is in G2; batched, with a per-point fallback.

    The subgroup test is ``D(P) = psi(P) - [6u^2] P = O`` (:func:`zk.curve.g2_in_subgroup`), and D is a group
    homomorphism, so ``D(sum c_i P_i) = sum c_i D(P_i)``. If some ``D(P_j)`` is not O, a sum with ``c_j`` drawn
    uniformly from ``[0, 2^64)`` (independently of the file) is O with probability at most ``1 / ord(D(P_j)) +
    2^-64``, and the smallest prime dividing the twist's order ``r (2q - r)`` is 10069; so each round misses a bad
    point with probability below 2^-13.2, and :data:`_G2_BATCH_ROUNDS` rounds below 2^-66. A round costs one G2
    multi-scalar multiplication with 64-bit scalars instead of one 127-bit scalar multiplication per point (about
    six times less for a key of a few thousand wires). When a round fails, the points are tested one by one to name
    the bad one.
    """
    present = [p for p in points if p != G2_INFINITY]
    if not present:
        return
    for _ in range(_G2_BATCH_ROUNDS):
        weights = [secrets.randbits(64) for _ in present]
        if not g2_in_subgroup(g2_to_affine(msm_g2_jacobian(present, weights))):
            break
    else:
        return
    for i, p in enumerate(points):
        if not g2_in_subgroup(p):
            raise section.error(f"point {i}: point is on the G2 twist but not in its order-r subgroup")
    raise AssertionError("a batched G2 subgroup test failed although every point passes alone")


def _read_points(section: SectionReader, count: int, read: Callable[[SectionReader, str], _P], size: int) -> list[_P]:
    if section.remaining != count * size:
        raise section.error(f"{section.remaining} bytes do not hold the {count} points it should ({size} bytes each)")
    points = [read(section, f"point {i}") for i in range(count)]
    section.done()
    return points


def _mont(c: int) -> bytes:
    return (c * _MONT_Q % _Q).to_bytes(_N8Q, "little")


def _g1_bytes(p: G1Affine) -> bytes:
    return bytes(_G1_BYTES) if p == G1_INFINITY else _mont(p[0]) + _mont(p[1])


def _g2_bytes(p: G2Affine) -> bytes:
    if p == G2_INFINITY:
        return bytes(_G2_BYTES)
    (x0, x1), (y0, y1) = p
    return _mont(x0) + _mont(x1) + _mont(y0) + _mont(y1)


# ---------------------------------------------------------------------------------------------------- read


def zkey_from_bytes(data: bytes) -> ProvingKey:
    """Parse a snarkjs Groth16 ``.zkey`` (from ``snarkjs groth16 setup``, ``zkey contribute`` or ``beacon``).

    FormatError naming the section and the field for anything that is not a BN254 Groth16 key as described in the
    module docstring. The contributions section is not checked (``snarkjs zkey verify`` checks the ceremony).
    """
    binfile = parse(data, "zkey", 1)
    header = binfile.section(1, "header")
    protocol = header.u32("the protocol")
    header.done()
    if protocol != GROTH16_PROTOCOL:
        name = _PROTOCOLS.get(protocol, "unknown")
        raise header.error(f"protocol {protocol} ({name}): only Groth16 (1) keys can be read")

    groth = binfile.section(2, "Groth16 header")
    for n8_name, prime_name, expected in (("n8q", "q", _Q), ("n8r", "r", _R)):
        n8 = groth.u32(n8_name)
        if n8 != field_size(expected):
            raise groth.error(f"{n8_name} = {n8}: only BN254 (32-byte fields) is supported")
        prime = groth.uint(n8, prime_name)
        if prime != expected:
            raise groth.error(f"{prime_name} = {prime} is not BN254's")
    num_variables = groth.u32("nVars")
    num_public = groth.u32("nPublic")
    domain_size = groth.u32("domainSize")
    if num_variables < num_public + 1:
        raise groth.error(f"nVars = {num_variables} does not cover the constant wire and nPublic = {num_public}")
    if domain_size < 2 or domain_size & (domain_size - 1) or domain_size > 1 << TWO_ADICITY:
        raise groth.error(f"domainSize = {domain_size} is not a power of two in 2..2^{TWO_ADICITY}")
    if domain_size < num_public + 1:
        raise groth.error(f"domainSize = {domain_size} has no room for the {num_public + 1} public input rows")
    alpha_g1 = _read_g1(groth, "alpha1")
    beta_g1 = _read_g1(groth, "beta1")
    beta_g2 = _read_g2(groth, "beta2")
    gamma_g2 = _read_g2(groth, "gamma2")
    delta_g1 = _read_g1(groth, "delta1")
    delta_g2 = _read_g2(groth, "delta2")
    groth.done()

    ic = _read_points(binfile.section(3, "IC"), num_public + 1, _read_g1, _G1_BYTES)
    coefficients = _read_coefficients(binfile.section(4, "coefficients"), num_variables, domain_size)
    a_query = _read_points(binfile.section(5, "A points"), num_variables, _read_g1, _G1_BYTES)
    b_g1_query = _read_points(binfile.section(6, "B1 points"), num_variables, _read_g1, _G1_BYTES)
    b2_section = binfile.section(7, "B2 points")
    b_g2_query = _read_points(b2_section, num_variables, _read_twist_point, _G2_BYTES)
    _check_in_g2(b2_section, b_g2_query)
    l_query = _read_points(binfile.section(8, "C points"), num_variables - num_public - 1, _read_g1, _G1_BYTES)
    h_query = _read_points(binfile.section(9, "H points"), domain_size, _read_g1, _G1_BYTES)

    vk = VerifyingKey(alpha_g1, beta_g2, gamma_g2, delta_g2, tuple(ic))
    return ProvingKey(
        vk=vk,
        beta_g1=beta_g1,
        delta_g1=delta_g1,
        num_variables=num_variables,
        domain_size=domain_size,
        coefficients=tuple(coefficients),
        a_query=tuple(a_query),
        b_g1_query=tuple(b_g1_query),
        b_g2_query=tuple(b_g2_query),
        l_query=tuple(l_query),
        h_query=tuple(h_query),
    )


def _read_coefficients(section: SectionReader, num_variables: int, domain_size: int) -> list[Coefficient]:
    count = section.u32("the number of coefficients")
    if section.remaining != count * _COEFFICIENT_BYTES:
        raise section.error(f"{section.remaining} bytes do not hold {count} coefficients of {_COEFFICIENT_BYTES}")
    out = []
    for index in range(count):
        matrix, constraint, signal = struct.unpack("<III", section.take(12, f"coefficient {index}"))
        stored = section.uint(_N8R, f"coefficient {index}'s value")
        if matrix not in (0, 1):
            raise section.error(f"coefficient {index}: matrix {matrix} is neither A (0) nor B (1)")
        if constraint >= domain_size:
            raise section.error(f"coefficient {index}: row {constraint} is outside the domain of {domain_size}")
        if signal >= num_variables:
            raise section.error(f"coefficient {index}: wire {signal} does not exist ({num_variables} wires)")
        if stored >= _R:
            raise section.error(f"coefficient {index}: its value is not below r")
        out.append(Coefficient(matrix, constraint, signal, stored * _MONT_R2_INV % _R))
    section.done()
    return out


# ---------------------------------------------------------------------------------------------------- write


def zkey_to_bytes(pk: ProvingKey) -> bytes:
    """The ``.zkey`` encoding of ``pk`` (sections 1-9, as snarkjs's ``writeZKey``; no ceremony transcript).

    ``snarkjs groth16 prove`` and ``snarkjs zkey export verificationkey`` accept it; ``snarkjs zkey verify`` needs
    the contributions section and does not.
    """
    vk = pk.vk
    groth = b"".join(
        [
            struct.pack("<I", _N8Q),
            _Q.to_bytes(_N8Q, "little"),
            struct.pack("<I", _N8R),
            _R.to_bytes(_N8R, "little"),
            struct.pack("<III", pk.num_variables, pk.num_public, pk.domain_size),
            _g1_bytes(vk.alpha_g1),
            _g1_bytes(pk.beta_g1),
            _g2_bytes(vk.beta_g2),
            _g2_bytes(vk.gamma_g2),
            _g1_bytes(pk.delta_g1),
            _g2_bytes(vk.delta_g2),
        ]
    )
    coefficients = struct.pack("<I", len(pk.coefficients)) + b"".join(
        struct.pack("<III", c.matrix, c.constraint, c.signal) + (c.value * _MONT_R2 % _R).to_bytes(_N8R, "little")
        for c in pk.coefficients
    )
    return build(
        "zkey",
        1,
        [
            (1, struct.pack("<I", GROTH16_PROTOCOL)),
            (2, groth),
            (3, b"".join(map(_g1_bytes, vk.ic))),
            (4, coefficients),
            (5, b"".join(map(_g1_bytes, pk.a_query))),
            (6, b"".join(map(_g1_bytes, pk.b_g1_query))),
            (7, b"".join(map(_g2_bytes, pk.b_g2_query))),
            (8, b"".join(map(_g1_bytes, pk.l_query))),
            (9, b"".join(map(_g1_bytes, pk.h_query))),
        ],
    )


# ---------------------------------------------------------------------------------------------------- circuit


def expected_coefficients(r1cs: R1CS) -> list[Coefficient]:
    """The coefficients a Groth16 key for ``r1cs`` holds, in snarkjs's order (``zkey_new.js``).

    For each constraint its A entries then its B entries (C is not stored: the prover takes ``C.w = A.w * B.w``);
    then one extra A row per public wire and the constant, ``A[num_constraints + i][i] = 1``.
    """
    out = []
    for row, (a, b, _) in enumerate(r1cs.constraints):
        out += [Coefficient(0, row, wire, value) for wire, value in a]
        out += [Coefficient(1, row, wire, value) for wire, value in b]
    out += [Coefficient(0, r1cs.num_constraints + i, i, 1) for i in range(r1cs.num_public + 1)]
    return out


def check_key_matches(pk: ProvingKey, r1cs: R1CS) -> None:
    """FormatError unless ``pk`` was made for ``r1cs``: same wires, public inputs, domain and A / B coefficients.

    A ceremony's key is only as good as its transcript (``snarkjs zkey verify``), but a key for another circuit, or
    for another version of ours, is caught here before it makes proofs no verifier accepts.
    """
    if pk.num_variables != r1cs.num_variables or pk.num_public != r1cs.num_public:
        raise FormatError(
            f"the key is for {pk.num_variables} wires and {pk.num_public} public inputs, the circuit has "
            f"{r1cs.num_variables} and {r1cs.num_public}"
        )
    needed = r1cs.num_constraints + r1cs.num_public + 1
    if pk.domain_size < needed:
        raise FormatError(f"the key's domain of {pk.domain_size} is smaller than the circuit's {needed} rows")
    if sorted(map(_coefficient_key, pk.coefficients)) != sorted(map(_coefficient_key, expected_coefficients(r1cs))):
        raise FormatError("the key's A and B coefficients are not this circuit's constraints")


def _coefficient_key(c: Coefficient) -> tuple[int, int, int, int]:
    return c.matrix, c.constraint, c.signal, c.value
