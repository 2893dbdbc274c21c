"""Files snarkjs and circom made (tests/interop/snarkjs_vectors, by make_snarkjs_vectors.py), read by pchr.

No node needed: these run in the default suite. circuits/bounded_preimage.circom compiled by circom 2.2.3 (circom2
0.2.23), a toy powers-of-tau and phase-2 ceremony by snarkjs 0.7.5, circom's witness and snarkjs's proof. pchr's
readers must load every file, write the JSON back byte for byte, and agree with snarkjs on what the binary files
hold; pchr's verifier accepts snarkjs's proof, pchr's prover proves with snarkjs's key and circom's witness, and
every case of the tamper matrix is refused: by the readers with the field named, by the verifier with its reason.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from functools import cache
from pathlib import Path

import pytest

from tests.interop.tamper import MATRIX, Files, Tamper, g2_point_outside_subgroup, unparsed
from tests.zk.strategies import twist_point
from zk import groth16
from zk.curve import G2Affine, g2_add, g2_mul, g2_to_affine, g2_to_jacobian
from zk.errors import FormatError, PointError, ProofError, WitnessError
from zk.field import CURVE_ORDER, FIELD_MODULUS
from zk.iden3_binfile import build, parse
from zk.keys import Proof, ProvingKey, VerifyingKey
from zk.poseidon import poseidon
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

VECTORS = Path(__file__).resolve().parents[1] / "interop" / "snarkjs_vectors"


def text(name: str) -> str:
    return (VECTORS / name).read_text()


def data(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


@cache
def zkey() -> ProvingKey:
    return zkey_from_bytes(data("bounded_preimage.zkey"))


@cache
def r1cs() -> R1CS:
    return r1cs_from_bytes(data("bounded_preimage.r1cs"))


@cache
def witness() -> list[int]:
    return wtns_from_bytes(data("witness.wtns"))


def read_all(triple: Files) -> tuple[VerifyingKey, Proof, list[int]]:
    vk, proof, public = triple
    return verifying_key_from_json(vk), proof_from_json(proof), public_signals_from_json(public, 2)


def files() -> Files:
    return load_json(text("verification_key.json")), load_json(text("proof.json")), load_json(text("public.json"))


def test_the_vectors_are_the_ones_recorded() -> None:
    source = json.loads(text("source.json"))
    assert source["tools"]["snarkjs"] == "0.7.5"
    for name, digest in source["sha256"].items():
        assert hashlib.sha256(data(name)).hexdigest() == digest, name


# ---------------------------------------------------------------------------------------------------- JSON


def test_verification_key_json_is_rewritten_byte_for_byte_alphabeta_included() -> None:
    vk = verifying_key_from_json(load_json(text("verification_key.json")))
    assert vk.num_public == 2
    # vk_alphabeta_12 is computed by our pairing, raised and laid out as ffjavascript's: an independent check of both.
    assert dump_json(verifying_key_to_json(vk)) == text("verification_key.json")


def test_proof_and_public_json_are_rewritten_byte_for_byte() -> None:
    proof = proof_from_json(load_json(text("proof.json")))
    assert dump_json(proof_to_json(proof)) == text("proof.json")
    public = public_signals_from_json(load_json(text("public.json")), 2)
    assert dump_json(public_signals_to_json(public)) == text("public.json")


def test_public_signals_are_circom_s_output_then_inputs_and_the_digest_is_our_poseidon() -> None:
    inputs = json.loads(text("input.json"))
    public = public_signals_from_json(load_json(text("public.json")))
    # circomlib's Poseidon circuit (through circom and snarkjs) and pchr's Poseidon agree.
    assert public == [poseidon([int(inputs["secret"]), int(inputs["salt"])]), int(inputs["bound"])]


@pytest.mark.parametrize("case", [t for t in MATRIX if t.refused_by == "reader"], ids=lambda t: t.name)
def test_the_tamper_matrix_reader_cases_are_refused_naming_the_field(case: Tamper) -> None:
    with pytest.raises(FormatError, match=case.ours):
        read_all(case.apply(files()))


@pytest.mark.parametrize("case", [t for t in MATRIX if t.refused_by == "verifier"], ids=lambda t: t.name)
def test_the_tamper_matrix_verifier_cases_parse_and_fail_the_pairing_check(case: Tamper) -> None:
    vk, proof, public = read_all(case.apply(files()))
    with pytest.raises(ProofError, match=case.ours) as refused:
        groth16.verify(groth16.prepare(vk), public, proof)
    assert refused.value.reason == "pairing check failed"


@pytest.mark.parametrize("case", MATRIX, ids=lambda t: t.name)
def test_the_verifier_refuses_every_tamper_case_on_its_own(case: Tamper) -> None:
    """Keys and proofs built in code skip the readers: the verifier must refuse each case by itself."""
    vk, proof, public = unparsed(case.apply(files()))
    with pytest.raises((ProofError, PointError), match=case.unparsed):
        groth16.verify(groth16.prepare(vk), public, proof)


# ---------------------------------------------------------------------------------------------------- Groth16


def test_our_verifier_accepts_snarkjs_s_proof() -> None:
    vk, proof, public = read_all(files())
    groth16.verify(groth16.prepare(vk), public, proof)


def test_our_prover_with_snarkjs_s_key_and_circom_s_witness_makes_proofs_our_verifier_accepts() -> None:
    vk, snarkjs_proof, public = read_all(files())
    proof = groth16.prove(zkey(), witness(), rng=random.Random(7))
    assert proof != snarkjs_proof
    groth16.verify(groth16.prepare(vk), public, proof)
    # And its 256-byte form, as a ledger entry would carry it, verifies too.
    groth16.verify(groth16.prepare(vk), public, Proof.from_bytes(proof.to_bytes()))


def test_our_prover_refuses_a_witness_the_snarkjs_key_does_not_accept() -> None:
    spoiled = witness()[:]
    spoiled[-1] = (spoiled[-1] + 1) % CURVE_ORDER
    with pytest.raises(WitnessError, match="does not satisfy the proving key's constraints"):
        groth16.prove(zkey(), spoiled)


# ---------------------------------------------------------------------------------------------------- binary


def test_the_zkey_holds_the_exported_verification_key() -> None:
    assert zkey().vk == verifying_key_from_json(load_json(text("verification_key.json")))


def test_the_zkey_is_for_the_circom_circuit() -> None:
    pk, circuit = zkey(), r1cs()
    check_key_matches(pk, circuit)
    assert (pk.num_variables, pk.num_public, pk.domain_size) == (circuit.num_variables, 2, 512)
    assert len(pk.l_query) == pk.num_variables - 3
    assert len(pk.h_query) == 512


def test_the_zkey_sections_are_written_back_byte_for_byte() -> None:
    ours = parse(zkey_to_bytes(zkey()), "zkey", 1).sections
    theirs = parse(data("bounded_preimage.zkey"), "zkey", 1).sections
    assert sorted(ours) == list(range(1, 10))
    assert 10 in theirs  # the ceremony transcript, which we do not write
    for kind in range(1, 10):
        assert ours[kind] == theirs[kind], f"section {kind}"


def test_circom_s_constraints_are_written_back_byte_for_byte() -> None:
    ours = parse(r1cs_to_bytes(r1cs()), "r1cs", 1).sections
    theirs = parse(data("bounded_preimage.r1cs"), "r1cs", 1).sections
    assert ours[2] == theirs[2]


def test_circom_s_witness_satisfies_the_circuit_and_is_written_back_byte_for_byte() -> None:
    circuit, values = r1cs(), witness()
    circuit.check(values)
    assert circuit.public_inputs(values) == public_signals_from_json(load_json(text("public.json")))
    assert wtns_to_bytes(values) == data("witness.wtns")


def test_a_key_for_another_circuit_is_caught() -> None:
    circuit = r1cs()
    (a, b, c), *rest = circuit.constraints
    changed_a = ((a[0][0], (a[0][1] + 1) % CURVE_ORDER),)
    other = R1CS(circuit.num_variables, circuit.num_public, ((changed_a + a[1:], b, c), *rest), circuit.labels)
    with pytest.raises(FormatError, match="the key's A and B coefficients are not this circuit's constraints"):
        check_key_matches(zkey(), other)
    fewer_public = R1CS(circuit.num_variables, 1, circuit.constraints, circuit.labels)
    with pytest.raises(FormatError, match=r"the key is for \d+ wires and 2 public inputs, the circuit has \d+ and 1$"):
        check_key_matches(zkey(), fewer_public)


# ---------------------------------------------------------------------------------------------------- zkey refusals


def _with_section(kind: int, content: bytes) -> bytes:
    sections = parse(data("bounded_preimage.zkey"), "zkey", 1).sections
    sections[kind] = [content]
    return build("zkey", 1, [(k, v[0]) for k, v in sections.items()])


def _section(kind: int) -> bytes:
    return parse(data("bounded_preimage.zkey"), "zkey", 1).sections[kind][0]


def _mont(c: int) -> bytes:
    return (c * pow(2, 256, FIELD_MODULUS) % FIELD_MODULUS).to_bytes(32, "little")


def _refused(content: bytes, kind: int, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        zkey_from_bytes(_with_section(kind, content))


def test_a_plonk_key_is_refused() -> None:
    _refused(struct.pack("<I", 2), 1, r"zkey section 1 \(header\): protocol 2 \(PLONK\): only Groth16")


def test_a_key_on_another_curve_is_refused() -> None:
    groth = bytearray(_section(2))
    groth[4] ^= 1
    _refused(bytes(groth), 2, r"q = \d+ is not BN254's")


def test_a_non_reduced_montgomery_coordinate_is_refused() -> None:
    groth = bytearray(_section(2))
    alpha_x = 4 + 32 + 4 + 32 + 12
    groth[alpha_x : alpha_x + 32] = FIELD_MODULUS.to_bytes(32, "little")  # 0 + q: the right value, not reduced
    _refused(bytes(groth), 2, "alpha1: a coordinate is not below q")


def test_a_point_off_the_curve_is_refused_naming_section_and_index() -> None:
    a_points = bytearray(_section(5))
    first = next(i for i in range(0, len(a_points), 64) if any(a_points[i : i + 64]))
    a_points[first + 32 : first + 64] = _mont(5)
    _refused(bytes(a_points), 5, rf"zkey section 5 \(A points\): point {first // 64}: point is not on the G1 curve")


def test_a_b2_point_outside_the_subgroup_is_refused() -> None:
    _refused(
        _b2_replaced(0, g2_point_outside_subgroup()),
        7,
        r"zkey section 7 \(B2 points\): point 0: .* not in its order-r subgroup",
    )


def _b2_replaced(index: int, point: G2Affine) -> bytes:
    b2 = bytearray(_section(7))
    (x0, x1), (y0, y1) = point
    b2[128 * index : 128 * (index + 1)] = _mont(x0) + _mont(x1) + _mont(y0) + _mont(y1)
    return bytes(b2)


def _present_b2_indices() -> list[int]:
    return [i for i, p in enumerate(zkey().b_g2_query) if p != ((0, 0), (0, 0))]


def test_a_b2_point_with_a_small_order_component_is_found_by_the_batched_subgroup_test() -> None:
    """The hardest case for a batched test: P + T with T of order 10069, the twist's smallest prime factor."""
    cofactor = 2 * FIELD_MODULUS - CURVE_ORDER
    small = g2_mul(twist_point(random.Random(1)), CURVE_ORDER * cofactor // 10069)
    assert small != ((0, 0), (0, 0))
    assert g2_mul(small, 10069) == ((0, 0), (0, 0))
    index = _present_b2_indices()[-1]
    bad = g2_to_affine(g2_add(g2_to_jacobian(zkey().b_g2_query[index]), g2_to_jacobian(small)))
    for _ in range(3):  # each read draws fresh weights
        _refused(
            _b2_replaced(index, bad), 7, rf"point {index}: point is on the G2 twist but not in its order-r subgroup"
        )


def test_a_b2_point_off_the_twist_is_refused() -> None:
    index = _present_b2_indices()[3]
    (x, (y0, y1)) = zkey().b_g2_query[index]
    _refused(
        _b2_replaced(index, (x, (y0, (y1 + 1) % FIELD_MODULUS))), 7, rf"point {index}: point is not on the G2 twist"
    )


def test_missing_or_extra_points_are_refused() -> None:
    _refused(_section(9)[:-64], 9, r"zkey section 9 \(H points\): \d+ bytes do not hold the 512 points")
    _refused(_section(3) + _section(3)[:64], 3, r"zkey section 3 \(IC\): \d+ bytes do not hold the 3 points")


def test_coefficients_outside_the_matrices_are_refused() -> None:
    coefficients = bytearray(_section(4))
    coefficients[4:8] = struct.pack("<I", 2)
    _refused(bytes(coefficients), 4, "coefficient 0: matrix 2 is neither A")
    coefficients = bytearray(_section(4))
    coefficients[8:12] = struct.pack("<I", 512)
    _refused(bytes(coefficients), 4, "coefficient 0: row 512 is outside the domain of 512")
    coefficients = bytearray(_section(4))
    coefficients[16:48] = (2**256 - 1).to_bytes(32, "little")
    _refused(bytes(coefficients), 4, "coefficient 0: its value is not below r")


def test_a_key_without_its_h_points_is_refused() -> None:
    sections = parse(data("bounded_preimage.zkey"), "zkey", 1).sections
    del sections[9]
    with pytest.raises(FormatError, match=r"section 9 \(H points\) is missing"):
        zkey_from_bytes(build("zkey", 1, [(k, v[0]) for k, v in sections.items()]))
