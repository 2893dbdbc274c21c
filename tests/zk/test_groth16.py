"""Groth16 end to end: the development setup, the prover and the verifier, with every refusal and its reason.

Completeness on small and gadget circuits; soundness-style checks (other public inputs, tampered or swapped proof
points, inputs + r, points off the curve or outside G2); the prover's refusal of bad witnesses; the 256-byte proof
form; and the snarkjs conventions of the key (which rows and matrices it holds, and the odd-coset quotient checked
against a textbook polynomial division).
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace

import pytest

from consent_chain.state_tree import ARITY, DEPTH, MerklePath, compute_root, path_children
from tests.zk.strategies import twist_point
from zk import gadgets
from zk.consent_circuit import ConsentStatement, ConsentWitness, build_consent_circuit, consent_r1cs, patient_tag
from zk.curve import (
    G1,
    G1_INFINITY,
    G2,
    G2_INFINITY,
    g1_add,
    g1_mul,
    g1_to_affine,
    g1_to_jacobian,
    g2_add,
    g2_to_affine,
    g2_to_jacobian,
)
from zk.errors import PointError, ProofError, WitnessError
from zk.field import CURVE_ORDER, FIELD_MODULUS, root_of_unity
from zk.groth16 import (
    DEVELOPMENT_SETUP_WARNING,
    PreparedVerifyingKey,
    _quotient_on_odd_coset,
    is_valid,
    prepare,
    prove,
    setup,
    verify,
)
from zk.keys import Proof, ProvingKey
from zk.poseidon import poseidon
from zk.r1cs import ConstraintSystem

R, Q = CURVE_ORDER, FIELD_MODULUS


def cube_circuit(x: int, salt: int = 7) -> ConstraintSystem:
    """Public ``y = x^3 + x + 5`` and ``h = Poseidon(x, salt)`` for private x and salt."""
    cs = ConstraintSystem()
    y = cs.public((x**3 + x + 5) % R)
    h = cs.public(poseidon([x, salt]))
    xv, sv = cs.private(x), cs.private(salt)
    x3 = cs.mul(cs.mul(xv, xv), xv)
    cs.assert_equal(x3 + xv + 5, y)
    cs.assert_equal(gadgets.poseidon(cs, [xv, sv]), h)
    return cs


def random_path(rng: random.Random, depth: int) -> MerklePath:
    """A path of the grant tree's shape with random siblings and a random leaf index."""
    siblings = tuple((rng.randrange(R), rng.randrange(R), rng.randrange(R)) for _ in range(depth))
    return MerklePath(rng.randrange(ARITY**depth), siblings)


def gadget_circuit(rng: random.Random, depth: int = 2) -> ConstraintSystem:
    """A small cousin of the consent circuit: a Merkle path, a mask inside a scope, and ``t < expiry``."""
    leaf, scope, expiry = rng.randrange(R), rng.getrandbits(16), rng.randrange(2**10, 2**16)
    mask, t = scope & rng.getrandbits(16), expiry - rng.randrange(1, 2**10)
    path = random_path(rng, depth)
    cs = ConstraintSystem()
    root_w, mask_w, t_w = cs.public(compute_root(leaf, path)), cs.public(mask), cs.public(t)
    leaf_w, scope_w, expiry_w = cs.private(leaf), cs.private(scope), cs.private(expiry)
    children_w = [[cs.private(c) for c in level] for level in path_children(leaf, path)]
    gadgets.assert_merkle_path(cs, leaf_w, children_w, root_w)
    gadgets.assert_subset(cs, mask_w, scope_w, 16)
    gadgets.to_bits(cs, expiry_w, 16)
    gadgets.to_bits(cs, t_w, 16)
    cs.assert_equal(gadgets.less_than(cs, t_w, expiry_w, 16), 1)
    return cs


@pytest.fixture(scope="module")
def circuit() -> ConstraintSystem:
    return cube_circuit(3)


@pytest.fixture(scope="module")
def key(circuit: ConstraintSystem) -> ProvingKey:
    return setup(circuit.r1cs(), rng=random.Random(2016))


@pytest.fixture(scope="module")
def prepared(key: ProvingKey) -> PreparedVerifyingKey:
    return prepare(key.vk)


@pytest.fixture(scope="module")
def proof(key: ProvingKey, circuit: ConstraintSystem) -> Proof:
    return prove(key, circuit.witness, rng=random.Random(1))


@pytest.fixture(scope="module")
def public(circuit: ConstraintSystem) -> list[int]:
    return circuit.r1cs().public_inputs(circuit.witness)


def refusal(prepared: PreparedVerifyingKey, inputs: list[int], proof: Proof) -> ProofError:
    with pytest.raises(ProofError) as caught:
        verify(prepared, inputs, proof)
    assert not is_valid(prepared, inputs, proof)
    return caught.value


# ---------------------------------------------------------------------------------------------------- completeness


def test_an_honest_proof_verifies(prepared: PreparedVerifyingKey, public: list[int], proof: Proof) -> None:
    assert public == [35, poseidon([3, 7])]
    verify(prepared, public, proof)
    assert is_valid(prepared, public, proof)


def test_proofs_are_randomised_and_all_verify(
    key: ProvingKey, circuit: ConstraintSystem, prepared: PreparedVerifyingKey, public: list[int], proof: Proof
) -> None:
    again = prove(key, circuit.witness, rng=random.Random(2))
    assert again != proof
    verify(prepared, public, again)
    # With the same injected randomness the proof is reproducible (tests only; the default is the OS CSPRNG).
    assert prove(key, circuit.witness, rng=random.Random(1)) == proof
    verify(prepared, public, prove(key, circuit.witness))


def test_the_same_key_proves_other_witnesses(key: ProvingKey, prepared: PreparedVerifyingKey) -> None:
    other = cube_circuit(10, salt=99)
    verify(prepared, other.r1cs().public_inputs(other.witness), prove(key, other.witness))


def test_a_gadget_circuit_proves_and_verifies() -> None:
    rng = random.Random(20)
    cs = gadget_circuit(rng)
    r1cs = cs.r1cs()
    pk = setup(r1cs, rng=rng)
    pvk = prepare(pk.vk)
    verify(pvk, r1cs.public_inputs(cs.witness), prove(pk, cs.witness, rng=rng))
    fresh = gadget_circuit(random.Random(21))
    assert fresh.r1cs() == r1cs  # the circuit's shape does not depend on the values
    verify(pvk, r1cs.public_inputs(fresh.witness), prove(pk, fresh.witness, rng=rng))


def test_a_circuit_without_public_inputs() -> None:
    cs = ConstraintSystem()
    x = cs.private(5)
    cs.assert_equal(cs.mul(x, x), 25)
    pk = setup(cs.r1cs(), rng=random.Random(3))
    verify(prepare(pk.vk), [], prove(pk, cs.witness, rng=random.Random(4)))


def test_setup_says_it_is_for_development(caplog: pytest.LogCaptureFixture, circuit: ConstraintSystem) -> None:
    with caplog.at_level(logging.WARNING, logger="zk.groth16"):
        setup(circuit.r1cs(), rng=random.Random(5))
    assert DEVELOPMENT_SETUP_WARNING in caplog.messages
    assert "DEVELOPMENT" in DEVELOPMENT_SETUP_WARNING
    assert "forge" in DEVELOPMENT_SETUP_WARNING
    assert "DEVELOPMENT ONLY" in (setup.__doc__ or "")


# ---------------------------------------------------------------------------------------------------- soundness


def test_a_proof_does_not_verify_for_other_public_inputs(
    prepared: PreparedVerifyingKey, public: list[int], proof: Proof
) -> None:
    for inputs in ([36, public[1]], [public[0], public[1] + 1], [public[1], public[0]]):
        assert refusal(prepared, inputs, proof).reason == "pairing check failed"


def test_tampered_points_fail_the_pairing(prepared: PreparedVerifyingKey, public: list[int], proof: Proof) -> None:
    def plus_g1(p: tuple[int, int]) -> tuple[int, int]:
        return g1_to_affine(g1_add(g1_to_jacobian(p), g1_to_jacobian(G1)))

    b_plus = g2_to_affine(g2_add(g2_to_jacobian(proof.b), g2_to_jacobian(G2)))
    for tampered in (
        replace(proof, a=plus_g1(proof.a)),
        replace(proof, b=b_plus),
        replace(proof, c=plus_g1(proof.c)),
        replace(proof, c=g1_mul(proof.c, 2)),
        Proof(proof.c, proof.b, proof.a),  # A and C swapped
        Proof(G1_INFINITY, G2_INFINITY, G1_INFINITY),
    ):
        assert refusal(prepared, public, tampered).reason == "pairing check failed"


def test_a_proof_from_another_key_fails(circuit: ConstraintSystem, prepared: PreparedVerifyingKey) -> None:
    other_key = setup(circuit.r1cs(), rng=random.Random(77))
    forged = prove(other_key, circuit.witness)
    assert refusal(prepared, circuit.r1cs().public_inputs(circuit.witness), forged).reason == "pairing check failed"


def test_public_inputs_are_not_reduced_mod_r(prepared: PreparedVerifyingKey, public: list[int], proof: Proof) -> None:
    # x + r is the same field element as x, but an encoding a verifier must refuse (EIP-197 verifiers do).
    error = refusal(prepared, [public[0] + R, public[1]], proof)
    assert error.reason == "public input out of range"
    assert "public input 0" in str(error)
    for bad in (-1, R, 2**256):
        assert refusal(prepared, [public[0], bad], proof).reason == "public input out of range"
    assert refusal(prepared, [True, public[1]], proof).reason == "public input out of range"  # type: ignore[list-item]


def test_the_number_of_public_inputs_is_checked(
    prepared: PreparedVerifyingKey, public: list[int], proof: Proof
) -> None:
    for inputs in ([], public[:1], [*public, 0]):
        error = refusal(prepared, inputs, proof)
        assert error.reason == "public input count"
        assert f"takes 2 public inputs, not {len(inputs)}" in str(error)


def test_points_off_their_curves_are_refused_before_pairing(
    prepared: PreparedVerifyingKey, public: list[int], proof: Proof
) -> None:
    off_g1 = (1, 3)
    error = refusal(prepared, public, replace(proof, a=off_g1))
    assert error.reason == "point not on curve"
    assert "proof point A is not on the G1 curve" in str(error)
    assert refusal(prepared, public, replace(proof, c=off_g1)).reason == "point not on curve"
    assert refusal(prepared, public, replace(proof, a=(Q, 2))).reason == "point not on curve"
    (x0, x1), y = proof.b
    error = refusal(prepared, public, replace(proof, b=((x0, (x1 + 1) % Q), y)))
    assert error.reason == "point not on curve"
    assert "proof point B" in str(error)


def test_a_g2_point_outside_the_subgroup_is_refused(
    prepared: PreparedVerifyingKey, public: list[int], proof: Proof
) -> None:
    outside = twist_point(random.Random(9))
    error = refusal(prepared, public, replace(proof, b=outside))
    assert error.reason == "point not in subgroup"
    assert "outside the order-r" in str(error)


def test_prepare_refuses_a_key_with_points_outside_the_groups(key: ProvingKey) -> None:
    with pytest.raises(PointError, match="gamma is not in G2"):
        prepare(replace(key.vk, gamma_g2=twist_point(random.Random(10))))
    with pytest.raises(PointError, match=r"IC\[1\] is not on the G1 curve"):
        prepare(replace(key.vk, ic=(key.vk.ic[0], (1, 3), key.vk.ic[2])))


# ---------------------------------------------------------------------------------------------------- the prover


def test_the_prover_refuses_a_witness_that_does_not_satisfy_the_key(key: ProvingKey, circuit: ConstraintSystem) -> None:
    witness = circuit.witness
    for index, value in ((3, 4), (1, 36), (len(witness) - 1, 1)):
        bad = list(witness)
        bad[index] = value
        with pytest.raises(WitnessError, match="does not satisfy the proving key's constraints"):
            prove(key, bad)


def test_the_prover_refuses_malformed_witnesses(key: ProvingKey, circuit: ConstraintSystem) -> None:
    witness = circuit.witness
    with pytest.raises(WitnessError, match=f"has {len(witness)} values, not {len(witness) - 1}"):
        prove(key, witness[:-1])
    with pytest.raises(WitnessError, match="field elements"):
        prove(key, [*witness[:-1], R])
    with pytest.raises(WitnessError, match="field elements"):
        prove(key, [*witness[:-1], -1])
    with pytest.raises(WitnessError, match="wire 0 of a witness is the constant 1"):
        prove(key, [2, *witness[1:]])


# ---------------------------------------------------------------------------------------------------- binary form


def test_the_binary_form_is_256_bytes_and_round_trips(proof: Proof) -> None:
    data = proof.to_bytes()
    assert len(data) == Proof.SIZE == 256
    assert Proof.from_bytes(data) == proof
    assert Proof.from_bytes(bytearray(data)) == proof
    # EIP-197 order: A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y.
    words = [int.from_bytes(data[i : i + 32], "big") for i in range(0, 256, 32)]
    assert words == [*proof.a, proof.b[0][1], proof.b[0][0], proof.b[1][1], proof.b[1][0], *proof.c]
    infinity = Proof(G1_INFINITY, G2_INFINITY, G1_INFINITY)
    assert Proof.from_bytes(infinity.to_bytes()) == infinity


def test_the_parser_is_strict(proof: Proof) -> None:
    data = proof.to_bytes()
    for bad_length in (data[:-1], data + b"\0", b""):
        with pytest.raises(ProofError, match=f"a proof is 256 bytes, not {len(bad_length)}") as caught:
            Proof.from_bytes(bad_length)
        assert caught.value.reason == "proof encoding"
    with pytest.raises(ProofError, match="256 bytes, not a str"):
        Proof.from_bytes(data.hex())  # type: ignore[arg-type]
    # A coordinate >= q, even one congruent to a valid one, is refused.
    big = (proof.c[1] + Q).to_bytes(32, "big") if proof.c[1] + Q < 2**256 else b"\xff" * 32
    with pytest.raises(ProofError, match="proof point C is not below the modulus q") as caught:
        Proof.from_bytes(data[:224] + big)
    assert caught.value.reason == "proof encoding"
    with pytest.raises(ProofError, match="proof point A is not on the G1 curve") as caught:
        Proof.from_bytes((1).to_bytes(32, "big") + (3).to_bytes(32, "big") + data[64:])
    assert caught.value.reason == "point not on curve"
    outside = replace(proof, b=twist_point(random.Random(11))).to_bytes()
    with pytest.raises(ProofError, match="outside the order-r") as caught:
        Proof.from_bytes(outside)
    assert caught.value.reason == "point not in subgroup"
    swapped = data[:64] + data[96:128] + data[64:96] + data[128:]  # B.x's c0 and c1 exchanged
    with pytest.raises(ProofError) as caught:
        Proof.from_bytes(swapped)
    assert caught.value.reason in {"point not on curve", "point not in subgroup"}


# ---------------------------------------------------------------------------------------------------- conventions


def test_the_key_has_snarkjs_s_layout(key: ProvingKey, circuit: ConstraintSystem) -> None:
    r1cs = circuit.r1cs()
    m, n_pub, n_vars = r1cs.num_constraints, r1cs.num_public, r1cs.num_variables
    # 2^(floor(log2(m + n_pub)) + 1): the smallest power of two above the rows, room for the constant's row.
    assert key.domain_size == 1 << (m + n_pub).bit_length() == 256
    assert key.num_variables == n_vars
    assert key.num_public == n_pub == 2
    assert len(key.a_query) == len(key.b_g1_query) == len(key.b_g2_query) == n_vars
    assert len(key.vk.ic) == n_pub + 1
    assert len(key.l_query) == n_vars - n_pub - 1
    assert len(key.h_query) == key.domain_size
    # Coefficients: A then B per constraint, then one A row per public wire (and the constant): C is not stored.
    expected = []
    for row, (a, b, _c) in enumerate(r1cs.constraints):
        expected += [(0, row, wire, k) for wire, k in a] + [(1, row, wire, k) for wire, k in b]
    expected += [(0, m + wire, wire, 1) for wire in range(n_pub + 1)]
    assert [(c.matrix, c.constraint, c.signal, c.value) for c in key.coefficients] == expected
    # A wire that never appears in B has B points at infinity (the MSMs skip them).
    in_b = {wire for _a, b, _c in r1cs.constraints for wire, _ in b}
    assert all((key.b_g1_query[i] == G1_INFINITY) == (i not in in_b) for i in range(n_vars))
    assert all((key.b_g2_query[i] == G2_INFINITY) == (i not in in_b) for i in range(n_vars))


def test_the_odd_coset_quotient_is_a_textbook_polynomial_division(key: ProvingKey, circuit: ConstraintSystem) -> None:
    # p = A.w * B.w - C.w vanishes on the domain, so p = h t with t = x^n - 1; the prover's evaluations on the odd
    # coset times the double domain's Lagrange basis must give p at any point: sum_i p_odd[i] L'_(2i+1)(z) = p(z).
    witness = circuit.witness
    r1cs = circuit.r1cs()
    n = key.domain_size
    omega = root_of_unity(n.bit_length() - 1)
    rows_a, rows_b, rows_c = [0] * n, [0] * n, [0] * n
    for row, (a, b, c) in enumerate(r1cs.constraints):
        rows_a[row] = sum(k * witness[i] for i, k in a) % R
        rows_b[row] = sum(k * witness[i] for i, k in b) % R
        rows_c[row] = sum(k * witness[i] for i, k in c) % R
    for wire in range(r1cs.num_public + 1):
        rows_a[r1cs.num_constraints + wire] = witness[wire]
    z = 123456789

    def lagrange_at(values: list[int], size: int, root: int) -> int:
        """The interpolating polynomial of ``values`` on the size-``size`` domain, at z (barycentric form)."""
        total = 0
        x = 1
        for v in values:
            if v:
                total += v * x * pow(z - x, -1, R)
            x = x * root % R
        return total * (pow(z, size, R) - 1) * pow(size, -1, R) % R

    a_z, b_z, c_z = (lagrange_at(rows, n, omega) for rows in (rows_a, rows_b, rows_c))
    p_z = (a_z * b_z - c_z) % R
    omega_2n = root_of_unity(n.bit_length())
    p_odd = _quotient_on_odd_coset(key, witness)
    on_double = [0] * (2 * n)
    on_double[1::2] = p_odd
    assert lagrange_at(on_double, 2 * n, omega_2n) == p_z
    # ... and p is divisible by t: its values on the domain itself are zero.
    assert all((x * y - c) % R == 0 for x, y, c in zip(rows_a, rows_b, rows_c, strict=True))


# ---------------------------------------------------------------------------------------------------- consent size


@pytest.mark.slow
def test_the_consent_circuit_proves_and_verifies_under_a_development_key() -> None:
    # The real consent circuit (3,890 constraints, a 4,096-point domain) for a random grant on a random path.
    rng = random.Random(3890)
    scope, expiry, salt, request_hash = rng.getrandbits(64), 2**40, rng.randrange(R), rng.randrange(R)
    path = random_path(rng, DEPTH)
    statement = ConsentStatement(
        root=compute_root(poseidon([1, 2, scope, expiry, salt]), path),
        grantee=1,
        model=2,
        used_mask=scope & rng.getrandbits(64),
        t=expiry - 1,
        request_hash=request_hash,
        tag=patient_tag(salt, request_hash),
    )
    cs = build_consent_circuit(statement, ConsentWitness(scope, expiry, salt, path))
    assert cs.r1cs() == consent_r1cs()
    pk = setup(consent_r1cs(), rng=rng)
    assert pk.domain_size == 4096
    pvk = prepare(pk.vk)
    proof = prove(pk, cs.witness, rng=rng)
    verify(pvk, list(statement.public_inputs()), proof)
    later = replace(statement, t=statement.t + 1)
    assert refusal(pvk, list(later.public_inputs()), proof).reason == "pairing check failed"
