"""snarkjs's file formats on their own: round trips, and every malformed input refused with the field and the reason.

The files snarkjs itself wrote are in test_snarkjs_vectors.py; the tools run in test_snarkjs_interop.py.
"""

from __future__ import annotations

import json
import random
import struct
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.interop.pchr_circuits import bounded_preimage
from tests.interop.tamper import g2_point_outside_subgroup
from tests.zk.strategies import g1_points, g2_points, scalars, twist_point
from zk import groth16
from zk.curve import G1, G2, g1_mul, g2_mul
from zk.errors import FormatError
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.iden3_binfile import build, parse
from zk.keys import Proof, VerifyingKey
from zk.r1cs import R1CS
from zk.snarkjs import (
    check_key_matches,
    dump_json,
    load_json,
    proof_from_json,
    proof_to_json,
    public_signals_from_json,
    public_signals_to_json,
    r1cs_from_bytes,
    r1cs_to_bytes,
    verifying_key_from_json,
    verifying_key_to_json,
    wtns_from_bytes,
    wtns_to_bytes,
    zkey_from_bytes,
    zkey_to_bytes,
)

R, Q = CURVE_ORDER, FIELD_MODULUS


def sample_proof() -> Proof:
    return Proof(g1_mul(G1, 11), g2_mul(G2, 12), g1_mul(G1, 13))


def sample_vk(num_public: int = 2) -> VerifyingKey:
    return VerifyingKey(
        g1_mul(G1, 3),
        g2_mul(G2, 4),
        g2_mul(G2, 5),
        g2_mul(G2, 6),
        tuple(g1_mul(G1, 7 + i) for i in range(num_public + 1)),
    )


@cache
def _vk_doc() -> str:
    return dump_json(verifying_key_to_json(sample_vk(2)))


def vk_doc() -> dict[str, Any]:
    """A fresh copy of the sample key's JSON (the pairing in vk_alphabeta_12 is computed once)."""
    doc: dict[str, Any] = load_json(_vk_doc())
    return doc


def proof_doc() -> dict[str, Any]:
    return proof_to_json(sample_proof())


# ---------------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0x1", "not a canonical decimal"),
        ("1e3", "not a canonical decimal"),
        ("-1", "not a canonical decimal"),
        ("+1", "not a canonical decimal"),
        (" 1", "not a canonical decimal"),
        ("1 ", "not a canonical decimal"),
        ("1.0", "not a canonical decimal"),
        ("01", "not a canonical decimal"),
        ("1_000", "not a canonical decimal"),
        ("", "not a canonical decimal"),
        ("١٢", "not a canonical decimal"),  # Arabic-Indic digits, which int() would accept
        ("9" * 81, "81 characters is too long for a field element"),
        (1, "not a JSON number"),
        (1.5, "not a JSON number"),
        (True, "not true"),
        (None, "not null"),
        ([], "not an array"),
    ],
)
def test_coordinates_must_be_canonical_decimal_strings(value: object, why: str) -> None:
    doc = proof_doc()
    doc["pi_c"][1] = value
    with pytest.raises(FormatError, match=rf"^proof\.pi_c\[1\]: .*{why}"):
        proof_from_json(doc)


def test_a_coordinate_must_be_below_q_even_when_it_is_the_right_point_mod_q() -> None:
    doc = proof_doc()
    doc["pi_a"][0] = str(int(doc["pi_a"][0]) + Q)
    with pytest.raises(FormatError, match=r"^proof\.pi_a\[0\]: \d+ is not below q$"):
        proof_from_json(doc)


def test_g2_coordinates_are_range_checked_per_component() -> None:
    doc = proof_doc()
    doc["pi_b"][1][1] = str(Q)
    with pytest.raises(FormatError, match=r"^proof\.pi_b\[1\]\[1\]: \d+ is not below q$"):
        proof_from_json(doc)


# ---------------------------------------------------------------------------------------------------- points


@settings(max_examples=25, deadline=None)
@given(g1_points(), g2_points(), g1_points())
def test_proofs_round_trip_through_json(a: Any, b: Any, c: Any) -> None:
    proof = Proof(a, b, c)
    doc = proof_to_json(proof)
    assert proof_from_json(load_json(dump_json(doc))) == proof
    assert doc["protocol"] == "groth16"
    assert doc["curve"] == "bn128"


def test_points_are_affine_with_a_trailing_one_and_g2_coordinates_c0_first() -> None:
    doc = proof_to_json(Proof(G1, G2, G1))
    assert doc["pi_a"] == ["1", "2", "1"]
    (x0, x1), (y0, y1) = G2
    assert doc["pi_b"] == [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]


def test_the_point_at_infinity_is_written_as_snarkjs_writes_it() -> None:
    doc = proof_to_json(Proof((0, 0), ((0, 0), (0, 0)), (0, 0)))
    assert doc["pi_a"] == ["0", "1", "0"]
    assert doc["pi_b"] == [["0", "0"], ["1", "0"], ["0", "0"]]
    assert proof_from_json(doc) == Proof((0, 0), ((0, 0), (0, 0)), (0, 0))


@pytest.mark.parametrize(
    ("field", "z", "why"),
    [
        ("pi_a", "2", r"proof\.pi_a\[2\]: Z must be 1"),
        ("pi_c", str(Q - 1), r"proof\.pi_c\[2\]: Z must be 1"),
        ("pi_b", ["1", "1"], r"proof\.pi_b\[2\]: Z must be \[\"1\", \"0\"\]"),
        ("pi_b", ["0", "1"], r"proof\.pi_b\[2\]: Z must be \[\"1\", \"0\"\]"),
    ],
)
def test_projective_z_other_than_one_is_refused(field: str, z: Any, why: str) -> None:
    doc = proof_doc()
    doc[field][2] = z
    with pytest.raises(FormatError, match=why):
        proof_from_json(doc)


def test_z_zero_is_infinity_only_in_its_canonical_form() -> None:
    doc = proof_doc()
    doc["pi_a"][2] = "0"
    with pytest.raises(FormatError, match=r"proof\.pi_a: a point with Z = 0 is the point at infinity"):
        proof_from_json(doc)


def test_a_point_with_two_coordinates_is_refused() -> None:
    doc = proof_doc()
    doc["pi_a"] = doc["pi_a"][:2]
    with pytest.raises(FormatError, match=r"^proof\.pi_a: must have 3 elements, not 2$"):
        proof_from_json(doc)


def test_off_curve_points_are_refused() -> None:
    doc = proof_doc()
    doc["pi_c"][0] = str((int(doc["pi_c"][0]) + 1) % Q)
    with pytest.raises(FormatError, match=r"^proof\.pi_c: point is not on the G1 curve"):
        proof_from_json(doc)


def test_g2_points_outside_the_subgroup_are_refused() -> None:
    (x0, x1), (y0, y1) = g2_point_outside_subgroup()
    doc = proof_doc()
    doc["pi_b"] = [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]
    with pytest.raises(FormatError, match=r"^proof\.pi_b: point is on the G2 twist but not in its order-r subgroup"):
        proof_from_json(doc)


def test_random_twist_points_are_refused_as_outside_the_subgroup() -> None:
    rng = random.Random(5)
    for _ in range(3):
        (x0, x1), (y0, y1) = twist_point(rng)
        doc = proof_doc()
        doc["pi_b"] = [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]
        with pytest.raises(FormatError, match="not in its order-r subgroup"):
            proof_from_json(doc)


def test_swapping_c0_and_c1_of_a_g2_point_is_caught() -> None:
    doc = proof_doc()
    x, y, z = doc["pi_b"]
    doc["pi_b"] = [x[::-1], y[::-1], z]
    with pytest.raises(FormatError, match=r"^proof\.pi_b: point is not on the G2 twist"):
        proof_from_json(doc)


# ---------------------------------------------------------------------------------------------------- objects


@pytest.mark.parametrize("field", ["pi_a", "pi_b", "pi_c", "protocol", "curve"])
def test_every_proof_field_is_required(field: str) -> None:
    doc = proof_doc()
    del doc[field]
    with pytest.raises(FormatError, match=rf"^proof: field '{field}' is missing$"):
        proof_from_json(doc)


def test_unknown_fields_are_refused() -> None:
    doc = proof_doc()
    doc["pi_z"] = ["1", "2", "1"]
    with pytest.raises(FormatError, match=r"^proof: unknown field 'pi_z'$"):
        proof_from_json(doc)


@pytest.mark.parametrize(("field", "value"), [("protocol", "plonk"), ("curve", "bls12381"), ("curve", "BN128")])
def test_other_protocols_and_curves_are_refused(field: str, value: str) -> None:
    doc = proof_doc()
    doc[field] = value
    with pytest.raises(FormatError, match=rf"^proof\.{field}: '{value}' is not supported"):
        proof_from_json(doc)


@pytest.mark.parametrize("doc", [[], "proof", None])
def test_a_proof_is_a_json_object(doc: object) -> None:
    with pytest.raises(FormatError, match=r"^proof: must be a JSON object$"):
        proof_from_json(doc)


def test_verifying_keys_round_trip_through_json() -> None:
    vk = sample_vk()
    doc = verifying_key_to_json(vk)
    assert doc["nPublic"] == 2
    assert list(doc) == [
        "protocol",
        "curve",
        "nPublic",
        "vk_alpha_1",
        "vk_beta_2",
        "vk_gamma_2",
        "vk_delta_2",
        "vk_alphabeta_12",
        "IC",
    ]
    assert verifying_key_from_json(load_json(dump_json(doc))) == vk


def test_vk_alphabeta_12_is_optional_and_not_trusted_on_reading() -> None:
    doc = vk_doc()
    doc["vk_alphabeta_12"] = "anything"
    vk = verifying_key_from_json(doc)
    del doc["vk_alphabeta_12"]
    assert verifying_key_from_json(doc) == vk


@pytest.mark.parametrize(("n_public", "why"), [(3, "= 4 points, not 3"), (1, "= 2 points, not 3")])
def test_npublic_must_agree_with_the_ic_points(n_public: int, why: str) -> None:
    doc = vk_doc()
    doc["nPublic"] = n_public
    with pytest.raises(FormatError, match=rf"^verification_key\.IC: must hold nPublic \+ 1 {why}$"):
        verifying_key_from_json(doc)


@pytest.mark.parametrize("n_public", ["2", 2.0, True, -1])
def test_npublic_is_a_json_integer(n_public: object) -> None:
    doc = vk_doc()
    doc["nPublic"] = n_public
    with pytest.raises(FormatError, match=r"^verification_key\.nPublic: must be a non-negative JSON integer"):
        verifying_key_from_json(doc)


def test_key_points_name_their_field_and_index() -> None:
    doc = vk_doc()
    doc["IC"][2][1] = str((int(doc["IC"][2][1]) + 1) % Q)
    with pytest.raises(FormatError, match=r"^verification_key\.IC\[2\]: point is not on the G1 curve"):
        verifying_key_from_json(doc)
    doc = vk_doc()
    doc["vk_gamma_2"] = [doc["vk_gamma_2"][0][::-1], doc["vk_gamma_2"][1][::-1], ["1", "0"]]
    with pytest.raises(FormatError, match=r"^verification_key\.vk_gamma_2: point is not on the G2 twist"):
        verifying_key_from_json(doc)


# ---------------------------------------------------------------------------------------------------- public.json


@settings(max_examples=50, deadline=None)
@given(st.lists(scalars(), max_size=8))
def test_public_signals_round_trip_in_order(values: list[int]) -> None:
    doc = public_signals_to_json(values)
    assert all(isinstance(v, str) for v in doc)
    assert public_signals_from_json(load_json(dump_json(doc)), len(values)) == values


@pytest.mark.parametrize("excess", [0, 1, R - 1, R])
def test_public_inputs_at_or_above_r_are_refused_not_reduced(excess: int) -> None:
    with pytest.raises(FormatError, match=r"^public\[1\]: \d+ is not below r"):
        public_signals_from_json(["5", str(R + excess)])


def test_the_largest_field_element_is_a_valid_public_input() -> None:
    assert public_signals_from_json([str(R - 1), "0"]) == [R - 1, 0]


def test_public_signals_count_must_match_the_key() -> None:
    with pytest.raises(FormatError, match=r"^public: the key has 3 public inputs, the file 2$"):
        public_signals_from_json(["1", "2"], 3)


@pytest.mark.parametrize("values", [[R], [-1], [True]])
def test_writing_refuses_values_that_are_not_field_elements(values: list[int]) -> None:
    with pytest.raises(ValueError, match="public input 0 is not a field element"):
        public_signals_to_json(values)


def test_public_json_is_an_array() -> None:
    with pytest.raises(FormatError, match=r"^public: must be a JSON array"):
        public_signals_from_json({"0": "1"})


# ---------------------------------------------------------------------------------------------------- JSON text


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(FormatError, match="JSON object has the key 'pi_a' twice"):
        load_json('{"pi_a": 1, "pi_a": 2}')


@pytest.mark.parametrize("text", ["[NaN]", "[Infinity]", "[-Infinity]"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(FormatError, match="which is not a number"):
        load_json(text)


@pytest.mark.parametrize("text", ["{", b"\xff\xfe"])
def test_text_that_is_not_json_is_refused(text: str | bytes) -> None:
    with pytest.raises(FormatError, match=r"^not (UTF-8 )?JSON"):
        load_json(text)


def test_dump_json_lays_out_files_as_snarkjs_does() -> None:
    assert dump_json(["1", "2"]) == '[\n "1",\n "2"\n]'
    assert json.loads(dump_json(proof_doc())) == proof_doc()


# ---------------------------------------------------------------------------------------------------- container


def test_the_container_round_trips_and_keeps_unknown_sections() -> None:
    data = build("wtns", 2, [(1, b"abc"), (7, b""), (2, b"defg")])
    parsed = parse(data, "wtns", 2)
    assert parsed.sections == {1: [b"abc"], 7: [b""], 2: [b"defg"]}
    assert parsed.section(2, "values").take(4, "all") == b"defg"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"wtn", "shorter than its 12-byte header"),
        (b"zkey" + struct.pack("<II", 2, 0), "not a wtns file: it starts with b'zkey'"),
        (b"wtns" + struct.pack("<II", 3, 0), "wtns file version 3 is not supported"),
        (b"wtns" + struct.pack("<II", 0, 0), "wtns file version 0 is not supported"),
        (b"wtns" + struct.pack("<II", 2, 1) + b"\x01\x00", "section header 0 of 1 is cut off"),
        (b"wtns" + struct.pack("<IIIQ", 2, 1, 1, 9) + b"12345678", "section 1 claims 9 bytes, 8 remain"),
        (build("wtns", 2, [(1, b"")]) + b"\x00", "1 bytes after its last section"),
    ],
)
def test_malformed_containers_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        parse(data, "wtns", 2)


def test_a_section_read_must_occur_once() -> None:
    twice = parse(build("wtns", 2, [(1, b""), (1, b"")]), "wtns", 2)
    with pytest.raises(FormatError, match=r"section 1 \(header\) occurs 2 times"):
        twice.section(1, "header")
    with pytest.raises(FormatError, match=r"section 2 \(values\) is missing"):
        twice.section(2, "values")


# ---------------------------------------------------------------------------------------------------- r1cs, wtns


@pytest.fixture(scope="module")
def circuit() -> tuple[R1CS, list[int]]:
    cs = bounded_preimage(421, 9876543210123456789, 1000)
    return cs.r1cs(), cs.witness


def test_r1cs_round_trips(circuit: tuple[R1CS, list[int]]) -> None:
    r1cs, _ = circuit
    back = r1cs_from_bytes(r1cs_to_bytes(r1cs))
    assert (back.num_variables, back.num_public, back.constraints) == (
        r1cs.num_variables,
        r1cs.num_public,
        r1cs.constraints,
    )
    assert back.labels == ("circom",) * r1cs.num_constraints


def test_r1cs_header_declares_public_inputs_and_labels(circuit: tuple[R1CS, list[int]]) -> None:
    r1cs, _ = circuit
    header = parse(r1cs_to_bytes(r1cs), "r1cs", 1).sections[1][0]
    n8, *rest = struct.unpack("<I32sIIIIQI", header)
    assert n8 == 32
    assert int.from_bytes(rest[0], "little") == R
    assert rest[1:] == [r1cs.num_variables, 0, r1cs.num_public, 0, r1cs.num_variables, r1cs.num_constraints]


def _r1cs_bytes(constraints: bytes, n_vars: int = 3, n_constraints: int = 1, extra: tuple[int, ...] = ()) -> bytes:
    header = (
        struct.pack("<I", 32)
        + R.to_bytes(32, "little")
        + struct.pack("<IIIIQI", n_vars, 0, 1, 0, n_vars, n_constraints)
    )
    sections = [(1, header), (2, constraints)] + [(kind, b"") for kind in extra]
    return build("r1cs", 1, sections)


def _lc(*terms: tuple[int, int]) -> bytes:
    return struct.pack("<I", len(terms)) + b"".join(struct.pack("<I", w) + v.to_bytes(32, "little") for w, v in terms)


def test_a_hand_written_r1cs_reads_as_its_constraint() -> None:
    # (2 w1) * (w2 + 1) = w2 with the terms of B out of order: the spec says sorted, the reader sorts.
    r1cs = r1cs_from_bytes(_r1cs_bytes(_lc((1, 2)) + _lc((2, 1), (0, 1)) + _lc((2, 1))))
    assert r1cs.constraints == ((((1, 2),), ((0, 1), (2, 1)), ((2, 1),)),)
    assert r1cs.num_public == 1


@pytest.mark.parametrize(
    ("constraints", "why"),
    [
        (_lc((3, 1)) + _lc() + _lc(), "constraint 0 A: wire 3 does not exist"),
        (_lc((1, 1), (1, 2)) + _lc() + _lc(), "constraint 0 A: wire 1 occurs twice"),
        (_lc() + _lc((1, R)) + _lc(), "constraint 0 B: the coefficient of wire 1 is not below r"),
        (_lc() + _lc(), "constraint 0 C: its number of terms"),
        (_lc() + _lc() + _lc() + b"\x00", "1 unexpected bytes at its end"),
    ],
)
def test_malformed_r1cs_constraints_are_refused(constraints: bytes, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        r1cs_from_bytes(_r1cs_bytes(constraints))


def test_r1cs_with_custom_gates_is_refused() -> None:
    with pytest.raises(FormatError, match=r"custom gates \(PLONK only\)"):
        r1cs_from_bytes(_r1cs_bytes(_lc() * 3, extra=(4, 5)))


def test_r1cs_over_another_field_is_refused() -> None:
    data = bytearray(_r1cs_bytes(_lc() * 3))
    data[12 + 12 + 4] ^= 1  # the low byte of the prime
    with pytest.raises(FormatError, match="is not the BN254 scalar field order r"):
        r1cs_from_bytes(bytes(data))


@settings(max_examples=30, deadline=None)
@given(st.lists(scalars(), max_size=20))
def test_witnesses_round_trip(values: list[int]) -> None:
    witness = [1, *values]
    assert wtns_from_bytes(wtns_to_bytes(witness)) == witness


def test_wtns_layout_is_n8_prime_count_then_values() -> None:
    data = wtns_to_bytes([1, 2, R - 1])
    sections = parse(data, "wtns", 2).sections
    assert sections[1] == [struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<I", 3)]
    assert sections[2] == [b"".join(v.to_bytes(32, "little") for v in (1, 2, R - 1))]


def test_wtns_refuses_values_not_below_r_and_a_first_wire_other_than_one() -> None:
    with pytest.raises(ValueError, match="witness value 1 is not a field element"):
        wtns_to_bytes([1, R])
    header = struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<I", 2)
    too_big = build("wtns", 2, [(1, header), (2, (1).to_bytes(32, "little") + R.to_bytes(32, "little"))])
    with pytest.raises(FormatError, match=r"value 1 is not below r"):
        wtns_from_bytes(too_big)
    not_one = build("wtns", 2, [(1, header), (2, (2).to_bytes(32, "little") + (0).to_bytes(32, "little"))])
    with pytest.raises(FormatError, match="wire 0 of a witness is the constant 1"):
        wtns_from_bytes(not_one)
    short = build("wtns", 2, [(1, header), (2, (1).to_bytes(32, "little"))])
    with pytest.raises(FormatError, match="32 bytes do not hold nWitness = 2 values"):
        wtns_from_bytes(short)


def test_a_development_key_round_trips_through_zkey_bytes(circuit: tuple[R1CS, list[int]]) -> None:
    r1cs, _ = circuit
    pk = groth16.setup(r1cs, rng=random.Random(3))
    data = zkey_to_bytes(pk)
    assert zkey_from_bytes(data) == pk
    check_key_matches(pk, r1cs)
    assert sorted(parse(data, "zkey", 1).sections) == list(range(1, 10))
