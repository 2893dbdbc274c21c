"""snarkjs's Groth16 files: ``verification_key.json``, ``proof.json`` and ``public.json`` here; the binary ones
(``.zkey``, ``.r1cs``, ``.wtns``) in :mod:`zk.zkey` and :mod:`zk.r1csfile`, re-exported.

Spec: snarkjs 0.7.5 — ``src/zkey_export_verificationkey.js`` (the key's fields), ``src/groth16_prove.js`` (the
proof's and the public signals'), ``src/groth16_verify.js`` (how they are read) — and ffjavascript 0.3.1's
``toObject`` / ``fromObject`` (how points are written). What the JSON holds:

- every number is a decimal string, as ``stringifyBigInts`` writes it (``nPublic`` alone is a JSON number);
- G1 points are ``[x, y, "1"]`` and G2 points ``[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]``: affine coordinates
  with a trailing Z = 1; the point at infinity is ``["0", "1", "0"]`` (G2: ``[["0","0"], ["1","0"], ["0","0"]]``);
- F_q2 elements are ``[c0, c1]`` for ``c0 + c1 i`` (EIP-197's bytes put c1 first; JSON does not);
- the public signals are circom's public wires in order: outputs, then public inputs in declaration order;
- ``vk_alphabeta_12`` is ffjavascript's ``e(alpha, beta)`` in F_q12 written over snarkjs's tower (F_q2[v] /
  (v^3 - (9 + i)), then [w] / (w^2 - v)) as ``[[a0, a1, a2], [b0, b1, b2]]`` of F_q2 pairs (see
  :func:`alphabeta_to_json`: ffjavascript's pairing is a fixed power of py_ecc's).

Reading is stricter than snarkjs, which runs ``BigInt()`` on whatever it finds: a number must match
``0|[1-9][0-9]*`` (no hex, sign, exponent, whitespace, leading zeros, non-ASCII digits or JSON numbers), be below
its modulus (coordinates below q, public signals below r: ``x + r`` is refused, not reduced); Z must be 1 unless the
point is the point at infinity written as above (other projective forms are refused, not normalised); points must
be on their curve and G2 points in the order-r subgroup (snarkjs checks only the curve). Unknown fields are refused.
Each :class:`~zk.errors.FormatError` names the field (``proof.pi_b[0][1]``) and the reason. ``vk_alphabeta_12`` is
written (computed through :mod:`zk.boundary`'s pairing) and, on reading, ignored: a verifier computes it itself.

Functions take and return decoded JSON (``dict`` / ``list`` / ``str``); :func:`load_json` and :func:`dump_json` are
the text edges, the first refusing duplicate keys and non-finite numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Final

from zk.boundary import pairing
from zk.curve import G1_INFINITY, G2_INFINITY, G1Affine, G2Affine, g1_from_ints, g2_from_ints
from zk.errors import FormatError, PointError
from zk.field import CURVE_ORDER, FIELD_MODULUS, Fq2, U
from zk.keys import Proof, VerifyingKey
from zk.r1csfile import r1cs_from_bytes, r1cs_to_bytes, wtns_from_bytes, wtns_to_bytes
from zk.zkey import check_key_matches, expected_coefficients, zkey_from_bytes, zkey_to_bytes

__all__ = [
    "CURVE_NAME",
    "PROTOCOL",
    "alphabeta_to_json",
    "check_key_matches",
    "dump_json",
    "expected_coefficients",
    "g1_from_json",
    "g1_to_json",
    "g2_from_json",
    "g2_to_json",
    "load_json",
    "proof_from_json",
    "proof_to_json",
    "public_signals_from_json",
    "public_signals_to_json",
    "r1cs_from_bytes",
    "r1cs_to_bytes",
    "verifying_key_from_json",
    "verifying_key_to_json",
    "wtns_from_bytes",
    "wtns_to_bytes",
    "zkey_from_bytes",
    "zkey_to_bytes",
]

PROTOCOL: Final = "groth16"
CURVE_NAME: Final = "bn128"
"""What snarkjs calls BN254 (alt_bn128) in the ``curve`` field."""

_Q: Final = FIELD_MODULUS
_R: Final = CURVE_ORDER
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_MAX_DIGITS: Final = 80
"""Beyond any field element here (q has 77 digits); bounds what ``int()`` is asked to read."""

_FFJAVASCRIPT_PAIRING_POWER: Final = 2 * U * (6 * U * U + 3 * U + 1)
"""ffjavascript's pairing is py_ecc's to this power (see :func:`alphabeta_to_json`)."""

_VK_FIELDS: Final = {"protocol", "curve", "nPublic", "vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC"}
_VK_OPTIONAL: Final = {"vk_alphabeta_12"}
_PROOF_FIELDS: Final = {"pi_a", "pi_b", "pi_c", "protocol", "curve"}


# ---------------------------------------------------------------------------------------------------- text


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"JSON object has the key {key!r} twice")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise FormatError(f"JSON holds {name}, which is not a number")


def load_json(text: str | bytes) -> Any:
    """Decode JSON text; FormatError for invalid JSON, a duplicate key, or NaN / Infinity."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise FormatError(f"not JSON: {e}") from e
    except UnicodeDecodeError as e:
        raise FormatError(f"not UTF-8 JSON: {e}") from e


def dump_json(doc: object) -> str:
    """JSON text laid out byte for byte as snarkjs writes its files (bfj, one-space indent, no final newline)."""
    return json.dumps(doc, indent=1)


# ---------------------------------------------------------------------------------------------------- numbers


def _decimal(value: object, where: str, bound: int, bound_name: str) -> int:
    if not isinstance(value, str):
        raise FormatError(f"{where}: must be a decimal string, not {_json_kind(value)}")
    if len(value) > _MAX_DIGITS:
        raise FormatError(f"{where}: {len(value)} characters is too long for a field element")
    if not _DECIMAL.fullmatch(value):
        raise FormatError(f"{where}: {value[:90]!r} is not a canonical decimal string (digits only, no leading zeros)")
    number = int(value)
    if number >= bound:
        raise FormatError(f"{where}: {number} is not below {bound_name}")
    return number


def _json_kind(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return "a JSON number (it would pass through a double in JavaScript)"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _list(value: object, where: str, length: int) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(f"{where}: must be a JSON array")
    if len(value) != length:
        raise FormatError(f"{where}: must have {length} elements, not {len(value)}")
    return value


def _fq2(value: object, where: str) -> Fq2:
    c0, c1 = _list(value, where, 2)
    return _decimal(c0, f"{where}[0]", _Q, "q"), _decimal(c1, f"{where}[1]", _Q, "q")


def _object(
    doc: object, where: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise FormatError(f"{where}: must be a JSON object")
    missing = sorted(required - doc.keys())
    if missing:
        raise FormatError(f"{where}: field {missing[0]!r} is missing")
    unknown = sorted(doc.keys() - required - optional)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    return doc


def _expect(doc: dict[str, Any], where: str, key: str, allowed: Sequence[str]) -> None:
    value = doc[key]
    if value not in allowed:
        raise FormatError(f"{where}.{key}: {value!r} is not supported (only {', '.join(map(repr, allowed))})")


# ---------------------------------------------------------------------------------------------------- points


def g1_from_json(value: object, where: str) -> G1Affine:
    """A G1 point written ``[x, y, "1"]`` (or ``["0", "1", "0"]`` at infinity); FormatError naming ``where``."""
    x_s, y_s, z_s = _list(value, where, 3)
    x = _decimal(x_s, f"{where}[0]", _Q, "q")
    y = _decimal(y_s, f"{where}[1]", _Q, "q")
    z = _decimal(z_s, f"{where}[2]", _Q, "q")
    if z == 0:
        if (x, y) != (0, 1):
            raise FormatError(f'{where}: a point with Z = 0 is the point at infinity, written ["0", "1", "0"]')
        return G1_INFINITY
    if z != 1:
        raise FormatError(f"{where}[2]: Z must be 1 (affine coordinates, as snarkjs writes them), not {z}")
    try:
        return g1_from_ints(x, y)
    except PointError as e:
        raise FormatError(f"{where}: {e}") from e


def g2_from_json(value: object, where: str) -> G2Affine:
    """A G2 point written ``[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]``; on the twist and in G2, else FormatError."""
    x_s, y_s, z_s = _list(value, where, 3)
    x = _fq2(x_s, f"{where}[0]")
    y = _fq2(y_s, f"{where}[1]")
    z = _fq2(z_s, f"{where}[2]")
    if z == (0, 0):
        if (x, y) != ((0, 0), (1, 0)):
            raise FormatError(
                f'{where}: a point with Z = 0 is the point at infinity, written [["0", "0"], ["1", "0"], ["0", "0"]]'
            )
        return G2_INFINITY
    if z != (1, 0):
        raise FormatError(f'{where}[2]: Z must be ["1", "0"] (affine coordinates, as snarkjs writes them)')
    try:
        return g2_from_ints(x, y)
    except PointError as e:
        raise FormatError(f"{where}: {e}") from e


def g1_to_json(p: G1Affine) -> list[str]:
    if p == G1_INFINITY:
        return ["0", "1", "0"]
    return [str(p[0]), str(p[1]), "1"]


def g2_to_json(p: G2Affine) -> list[list[str]]:
    if p == G2_INFINITY:
        return [["0", "0"], ["1", "0"], ["0", "0"]]
    (x0, x1), (y0, y1) = p
    return [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]


# ---------------------------------------------------------------------------------------------------- keys


def alphabeta_to_json(alpha_g1: G1Affine, beta_g2: G2Affine) -> list[list[list[str]]]:
    """``vk_alphabeta_12`` as snarkjs writes it: ``e(alpha, beta)`` in ffjavascript's form, over its F_q12 tower.

    Two differences from :func:`zk.boundary.pairing`. The value: ffjavascript (wasmcurves'
    ``finalExponentiation``) computes the hard part of the final exponentiation as Fuentes-Castañeda, Knapp and
    Rodríguez-Henríquez do ("Faster hashing to G2", SAC 2011), which yields the optimal ate pairing raised to
    ``2u(6u^2 + 3u + 1)``; that is another bilinear pairing, so it is that power of py_ecc's. The layout: py_ecc
    writes F_q12 as ``sum c_k w^k`` with ``w^12 = 18 w^6 - 82``; in the tower ``w^2 = v``, ``v^3 = 9 + i``, so
    ``i = w^6 - 9``, and the F_q2 coefficient ``x + y i`` of ``w^k`` (k < 6) is ``(c_k + 9 c_(k+6)) + c_(k+6) i``;
    the even powers of w make the tower's first F_q6 half (``1, v, v^2``), the odd ones its second. The tests hold
    both against a key that snarkjs exported.
    """
    c = [int(x) for x in (pairing(alpha_g1, beta_g2) ** _FFJAVASCRIPT_PAIRING_POWER).coeffs]
    pairs = [[str((c[k] + 9 * c[k + 6]) % _Q), str(c[k + 6] % _Q)] for k in range(6)]
    return [[pairs[0], pairs[2], pairs[4]], [pairs[1], pairs[3], pairs[5]]]


def verifying_key_to_json(vk: VerifyingKey) -> dict[str, Any]:
    """``verification_key.json`` as ``snarkjs zkey export verificationkey`` writes it (the pairing costs ~0.4 s)."""
    return {
        "protocol": PROTOCOL,
        "curve": CURVE_NAME,
        "nPublic": vk.num_public,
        "vk_alpha_1": g1_to_json(vk.alpha_g1),
        "vk_beta_2": g2_to_json(vk.beta_g2),
        "vk_gamma_2": g2_to_json(vk.gamma_g2),
        "vk_delta_2": g2_to_json(vk.delta_g2),
        "vk_alphabeta_12": alphabeta_to_json(vk.alpha_g1, vk.beta_g2),
        "IC": [g1_to_json(p) for p in vk.ic],
    }


def verifying_key_from_json(doc: object) -> VerifyingKey:
    """Parse ``verification_key.json`` (module docstring); FormatError naming the field that is wrong."""
    where = "verification_key"
    vk = _object(doc, where, _VK_FIELDS, _VK_OPTIONAL)
    _expect(vk, where, "protocol", [PROTOCOL])
    _expect(vk, where, "curve", [CURVE_NAME])
    n_public = vk["nPublic"]
    if not isinstance(n_public, int) or isinstance(n_public, bool) or n_public < 0:
        raise FormatError(f"{where}.nPublic: must be a non-negative JSON integer, not {n_public!r}")
    ic = vk["IC"]
    if not isinstance(ic, list) or len(ic) != n_public + 1:
        count = len(ic) if isinstance(ic, list) else "no"
        raise FormatError(f"{where}.IC: must hold nPublic + 1 = {n_public + 1} points, not {count}")
    return VerifyingKey(
        alpha_g1=g1_from_json(vk["vk_alpha_1"], f"{where}.vk_alpha_1"),
        beta_g2=g2_from_json(vk["vk_beta_2"], f"{where}.vk_beta_2"),
        gamma_g2=g2_from_json(vk["vk_gamma_2"], f"{where}.vk_gamma_2"),
        delta_g2=g2_from_json(vk["vk_delta_2"], f"{where}.vk_delta_2"),
        ic=tuple(g1_from_json(p, f"{where}.IC[{i}]") for i, p in enumerate(ic)),
    )


# ---------------------------------------------------------------------------------------------------- proofs


def proof_to_json(proof: Proof) -> dict[str, Any]:
    """``proof.json`` as ``snarkjs groth16 prove`` writes it."""
    return {
        "pi_a": g1_to_json(proof.a),
        "pi_b": g2_to_json(proof.b),
        "pi_c": g1_to_json(proof.c),
        "protocol": PROTOCOL,
        "curve": CURVE_NAME,
    }


def proof_from_json(doc: object) -> Proof:
    """Parse ``proof.json``; FormatError naming the field (``proof.pi_b[1][0]``) and why."""
    where = "proof"
    proof = _object(doc, where, _PROOF_FIELDS)
    _expect(proof, where, "protocol", [PROTOCOL])
    _expect(proof, where, "curve", [CURVE_NAME])
    return Proof(
        a=g1_from_json(proof["pi_a"], f"{where}.pi_a"),
        b=g2_from_json(proof["pi_b"], f"{where}.pi_b"),
        c=g1_from_json(proof["pi_c"], f"{where}.pi_c"),
    )


def public_signals_to_json(values: Sequence[int]) -> list[str]:
    """``public.json``: the public inputs in declaration order as decimal strings; ValueError for one not below r."""
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _R:
            raise ValueError(f"public input {i} is not a field element (0 <= x < r)")
    return [str(v) for v in values]


def public_signals_from_json(doc: object, num_public: int | None = None) -> list[int]:
    """Parse ``public.json`` (each value below r; ``x + r`` is refused); with ``num_public``, insist on that many."""
    if not isinstance(doc, list):
        raise FormatError("public: must be a JSON array of decimal strings")
    if num_public is not None and len(doc) != num_public:
        raise FormatError(f"public: the key has {num_public} public inputs, the file {len(doc)}")
    bound = "r (a public input is a field element: x + r is not accepted for x)"
    return [_decimal(v, f"public[{i}]", _R, bound) for i, v in enumerate(doc)]
