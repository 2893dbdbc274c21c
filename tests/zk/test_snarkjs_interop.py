"""pchr against the pinned snarkjs 0.7.5 and circom 2.2.3 (circom2 0.2.23), run through node.

Integration tests (outside tools); the ones that compile a circuit or run a ceremony are also slow. Node missing is
a failure with the reason, not a skip. The slow fixtures are made once per module under a temporary directory:
circuits/grant_check.circom compiled by circom2, a powers-of-tau ceremony of power 10 (one contribution), and for
each circuit a Groth16 phase 2 with one contribution. The consent circuit's own ceremony (power 12) is made in its
test.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent_chain.catalogue import read_catalogue
from consent_chain.grants import Grant
from consent_chain.state_tree import GrantTree
from ehr.cli import main
from ehr.zk_keys import load_or_create_consent_keys
from tests.interop import npm, snarkjs_cli
from tests.interop.pchr_circuits import bounded_preimage
from tests.interop.snarkjs_cli import CIRCUITS, Run
from tests.interop.tamper import MATRIX
from zk import groth16
from zk.attestation import attest, check_attestation
from zk.field import CURVE_ORDER
from zk.keys import ProvingKey
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

pytestmark = pytest.mark.integration

VECTORS = Path(__file__).resolve().parents[1] / "interop" / "snarkjs_vectors"
POWER = 10


@pytest.fixture(scope="module")
def tools() -> None:
    """The pinned npm packages, installed; a failure naming what is missing when node is not there."""
    if (why := npm.node_missing()) is not None:
        pytest.fail(why)
    npm.install()
    assert npm.package_version("snarkjs") == "0.7.5"


def ok(run: Run) -> None:
    assert run.ok, f"{' '.join(run.args)} exited {run.returncode}:\n{run.output}"


# ---------------------------------------------------------------------------------------------------- r1cs, wtns


@dataclass(frozen=True)
class Ours:
    r1cs: R1CS
    witness: list[int]
    r1cs_file: Path
    wtns_file: Path


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Ours:
    """pchr's bounded-preimage circuit (zk.gadgets) and its witness, written as .r1cs and .wtns."""
    work = tmp_path_factory.mktemp("ours")
    cs = bounded_preimage(421, 9876543210123456789, 1000)
    r1cs, witness = cs.r1cs(), cs.witness
    (work / "ours.r1cs").write_bytes(r1cs_to_bytes(r1cs))
    (work / "ours.wtns").write_bytes(wtns_to_bytes(witness))
    return Ours(r1cs, witness, work / "ours.r1cs", work / "ours.wtns")


def test_snarkjs_checks_our_witness_against_our_r1cs(tools: None, ours: Ours) -> None:
    run = snarkjs_cli.snarkjs("wtns", "check", ours.r1cs_file, ours.wtns_file)
    ok(run)
    assert "WITNESS IS CORRECT" in run.output
    assert re.search(rf"Constraints:\s+{ours.r1cs.num_constraints}\b", run.output)


def test_snarkjs_refuses_our_witness_with_one_wire_changed(tools: None, ours: Ours, tmp_path: Path) -> None:
    spoiled = list(ours.witness)
    spoiled[-1] = (spoiled[-1] + 1) % CURVE_ORDER
    (tmp_path / "spoiled.wtns").write_bytes(wtns_to_bytes(spoiled))
    run = snarkjs_cli.snarkjs("wtns", "check", ours.r1cs_file, tmp_path / "spoiled.wtns")
    assert run.returncode == 1, run.output
    assert "WITNESS IS NOT CORRECT" in run.output


def test_snarkjs_reads_our_r1cs_counts(tools: None, ours: Ours) -> None:
    run = snarkjs_cli.snarkjs("r1cs", "info", ours.r1cs_file)
    ok(run)
    r1cs = ours.r1cs
    assert "Curve: bn-128" in run.output
    assert re.search(rf"# of Wires: {r1cs.num_variables}\b", run.output)
    assert re.search(rf"# of Constraints: {r1cs.num_constraints}\b", run.output)
    assert re.search(rf"# of Public Inputs: {r1cs.num_public}\b", run.output)


# ---------------------------------------------------------------------------------------------------- our keys, proofs


@dataclass(frozen=True)
class OurProof:
    pk: ProvingKey
    zkey: Path
    verification_key: Path
    proof: Path
    public: Path


@pytest.fixture(scope="module")
def our_proof(ours: Ours, tmp_path_factory: pytest.TempPathFactory) -> OurProof:
    """pchr's development setup and prover on its own circuit, exported as snarkjs's files."""
    work = tmp_path_factory.mktemp("our_proof")
    pk = groth16.setup(ours.r1cs, rng=random.Random(20240607))
    proof = groth16.prove(pk, ours.witness, rng=random.Random(1))
    done = OurProof(pk, work / "ours.zkey", work / "ours_vk.json", work / "ours_proof.json", work / "ours_public.json")
    done.zkey.write_bytes(zkey_to_bytes(pk))
    done.verification_key.write_text(dump_json(verifying_key_to_json(pk.vk)))
    done.proof.write_text(dump_json(proof_to_json(proof)))
    done.public.write_text(dump_json(public_signals_to_json(ours.r1cs.public_inputs(ours.witness))))
    return done


def test_snarkjs_verifies_our_proof_under_our_key(tools: None, our_proof: OurProof) -> None:
    run = snarkjs_cli.groth16_verify(our_proof.verification_key, our_proof.public, our_proof.proof)
    ok(run)
    assert "OK!" in run.output


def test_snarkjs_refuses_our_proof_for_another_public_input(tools: None, our_proof: OurProof, tmp_path: Path) -> None:
    bound, digest = public_signals_from_json(load_json(our_proof.public.read_text()))
    (tmp_path / "public.json").write_text(dump_json(public_signals_to_json([bound + 1, digest])))
    run = snarkjs_cli.groth16_verify(our_proof.verification_key, tmp_path / "public.json", our_proof.proof)
    assert run.returncode == 1, run.output
    assert "Invalid proof" in run.output


def test_snarkjs_exports_from_our_zkey_the_verification_key_we_write(tools: None, our_proof: OurProof) -> None:
    exported = our_proof.zkey.parent / "exported_vk.json"
    ok(snarkjs_cli.snarkjs("zkey", "export", "verificationkey", our_proof.zkey, exported))
    assert exported.read_text() == our_proof.verification_key.read_text()


def test_snarkjs_proves_with_our_zkey_and_our_witness_and_our_verifier_accepts(
    tools: None, ours: Ours, our_proof: OurProof, tmp_path: Path
) -> None:
    proved = snarkjs_cli.groth16_prove(our_proof.zkey, ours.wtns_file, tmp_path)
    public = public_signals_from_json(load_json(proved.public.read_text()), our_proof.pk.num_public)
    assert public == ours.r1cs.public_inputs(ours.witness)
    proof = proof_from_json(load_json(proved.proof.read_text()))
    groth16.verify(groth16.prepare(our_proof.pk.vk), public, proof)


# ---------------------------------------------------------------------------------------------------- tamper matrix


def test_snarkjs_accepts_the_vectors_and_refuses_every_tampered_triple(tools: None) -> None:
    files = tuple(
        load_json((VECTORS / name).read_text()) for name in ("verification_key.json", "proof.json", "public.json")
    )
    cases = [{"vk": files[0], "proof": files[1], "public": files[2]}]
    for case in MATRIX:
        vk, proof, public = case.apply(files)
        cases.append({"vk": vk, "proof": proof, "public": public})
    answer = snarkjs_cli.groth16_verify_many(cases)
    assert answer["version"] == "0.7.5"
    untouched, *tampered = answer["results"]
    assert untouched == {"valid": True, "log": ["OK!"]}
    for case, result in zip(MATRIX, tampered, strict=True):
        assert result["valid"] is False, case.name
        said = " ".join(result.get("log", [])) + result.get("threw", "")
        assert re.search(case.theirs, said), (case.name, said)


# ---------------------------------------------------------------------------------------------------- circom + snarkjs


@dataclass(frozen=True)
class CircomProof:
    r1cs: Path
    zkey: Path
    verification_key: Path
    wtns: Path
    proof: Path
    public: Path
    inputs: dict[str, int]


@pytest.fixture(scope="module")
def ptau(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snarkjs_cli.powers_of_tau(tmp_path_factory.mktemp("ptau"), POWER)


@pytest.fixture(scope="module")
def circom_proof(ptau: Path, tmp_path_factory: pytest.TempPathFactory) -> CircomProof:
    """grant_check.circom compiled, set up with one phase-2 contribution, and proved by snarkjs."""
    work = tmp_path_factory.mktemp("grant_check")
    compiled = snarkjs_cli.circom(CIRCUITS / "grant_check.circom", work)
    ceremony = snarkjs_cli.groth16_ceremony(compiled.r1cs, ptau, work, "grant_check")
    expiry, salt, now = 1_790_000_000, 31415926535897932384626433, 1_767_225_600
    inputs = {"commitment": poseidon([expiry, salt]), "now": now, "expiry": expiry, "salt": salt}
    (work / "input.json").write_text(json.dumps({k: str(v) for k, v in inputs.items()}))
    wtns = snarkjs_cli.witness(compiled.wasm, work / "input.json", work / "grant_check.wtns")
    proved = snarkjs_cli.groth16_prove(ceremony.zkey, wtns, work)
    return CircomProof(
        compiled.r1cs, ceremony.zkey, ceremony.verification_key, wtns, proved.proof, proved.public, inputs
    )


@pytest.mark.slow
def test_our_verifier_accepts_snarkjs_s_proof_of_a_circom_circuit(circom_proof: CircomProof) -> None:
    vk = verifying_key_from_json(load_json(circom_proof.verification_key.read_text()))
    proof = proof_from_json(load_json(circom_proof.proof.read_text()))
    public = public_signals_from_json(load_json(circom_proof.public.read_text()), vk.num_public)
    groth16.verify(groth16.prepare(vk), public, proof)


@pytest.mark.slow
def test_our_prover_with_snarkjs_s_zkey_and_witness_convinces_snarkjs(
    circom_proof: CircomProof, tmp_path: Path
) -> None:
    pk = zkey_from_bytes(circom_proof.zkey.read_bytes())
    witness = wtns_from_bytes(circom_proof.wtns.read_bytes())
    proof = groth16.prove(pk, witness)
    (tmp_path / "proof.json").write_text(dump_json(proof_to_json(proof)))
    (tmp_path / "public.json").write_text(dump_json(public_signals_to_json(witness[1 : 1 + pk.num_public])))
    run = snarkjs_cli.groth16_verify(circom_proof.verification_key, tmp_path / "public.json", tmp_path / "proof.json")
    ok(run)
    assert "OK!" in run.output


@pytest.mark.slow
def test_a_circom_circuit_s_files_load_and_agree(circom_proof: CircomProof) -> None:
    vk = verifying_key_from_json(load_json(circom_proof.verification_key.read_text()))
    proof_from_json(load_json(circom_proof.proof.read_text()))
    public = public_signals_from_json(load_json(circom_proof.public.read_text()), vk.num_public)
    inputs = circom_proof.inputs
    # Declaration order, outputs first, whatever order main's public list gives.
    assert public == [poseidon([inputs["salt"], inputs["now"]]), inputs["commitment"], inputs["now"]]

    pk = zkey_from_bytes(circom_proof.zkey.read_bytes())
    r1cs = r1cs_from_bytes(circom_proof.r1cs.read_bytes())
    check_key_matches(pk, r1cs)
    assert pk.vk == vk
    witness = wtns_from_bytes(circom_proof.wtns.read_bytes())
    r1cs.check(witness)
    assert r1cs.public_inputs(witness) == public


# ---------------------------------------------------------------------------------------------------- ceremony on ours


@dataclass(frozen=True)
class CeremonyOnOurs:
    zkey: Path
    verification_key: Path


@pytest.fixture(scope="module")
def ceremony_on_ours(ptau: Path, ours: Ours, tmp_path_factory: pytest.TempPathFactory) -> CeremonyOnOurs:
    """``snarkjs groth16 setup`` and a phase-2 contribution on pchr's .r1cs: a ceremony key for our circuit."""
    done = snarkjs_cli.groth16_ceremony(ours.r1cs_file, ptau, tmp_path_factory.mktemp("ceremony"), "ours")
    return CeremonyOnOurs(done.zkey, done.verification_key)


@pytest.mark.slow
def test_a_ceremony_key_for_our_r1cs_reads_as_a_key_for_our_circuit(
    ceremony_on_ours: CeremonyOnOurs, ours: Ours
) -> None:
    pk = zkey_from_bytes(ceremony_on_ours.zkey.read_bytes())
    check_key_matches(pk, ours.r1cs)
    exported = load_json(ceremony_on_ours.verification_key.read_text())
    assert verifying_key_to_json(pk.vk) == exported


@pytest.mark.slow
def test_our_prover_with_a_ceremony_key_for_our_circuit_convinces_snarkjs_and_us(
    ceremony_on_ours: CeremonyOnOurs, ours: Ours, tmp_path: Path
) -> None:
    """The production path: a phase-2 ceremony's .zkey for pchr's .r1cs replaces the development setup."""
    pk = zkey_from_bytes(ceremony_on_ours.zkey.read_bytes())
    check_key_matches(pk, ours.r1cs)
    proof = groth16.prove(pk, ours.witness)
    public = ours.r1cs.public_inputs(ours.witness)
    groth16.verify(groth16.prepare(pk.vk), public, proof)
    (tmp_path / "proof.json").write_text(dump_json(proof_to_json(proof)))
    (tmp_path / "public.json").write_text(dump_json(public_signals_to_json(public)))
    ok(snarkjs_cli.groth16_verify(ceremony_on_ours.verification_key, tmp_path / "public.json", tmp_path / "proof.json"))


# ---------------------------------------------------------------------------------------------------- consent key

CONSENT_POWER = 12  # the consent circuit's 3,890 constraints, 7 public inputs and the constant: a 4,096-point domain


@pytest.mark.slow
def test_a_ceremony_over_the_exported_consent_circuit_proves_what_the_service_checks(
    tools: None, tmp_path: Path
) -> None:
    """The production path on the real circuit: ``pchr zk export-r1cs``, a snarkjs phase 1 and phase 2 over it,
    snarkjs's own audit of the transcript, ``pchr zk check-key``, the vault's key loader, then a real grant's proof
    under the ceremony's key that we and snarkjs accept."""
    cli = CliRunner()
    r1cs_file = tmp_path / "consent.r1cs"
    exported = cli.invoke(main, ["zk", "export-r1cs", str(r1cs_file)])
    assert exported.exit_code == 0, exported.output
    ptau = snarkjs_cli.powers_of_tau(tmp_path / "ptau", CONSENT_POWER)
    ceremony = snarkjs_cli.groth16_ceremony(r1cs_file, ptau, tmp_path / "ceremony", "consent")
    transcript = snarkjs_cli.snarkjs("zkey", "verify", r1cs_file, ptau, ceremony.zkey)
    ok(transcript)
    assert "ZKey Ok!" in transcript.output
    checked = cli.invoke(main, ["zk", "check-key", str(ceremony.zkey)])
    assert checked.exit_code == 0, checked.output
    keys = load_or_create_consent_keys(ceremony.zkey)
    assert not keys.development
    assert keys.describe()["setup"] == "ceremony"

    catalogue, rng = read_catalogue(), random.Random(12)
    expiry = datetime(2027, 1, 1, tzinfo=UTC)
    grants = [
        Grant.new("0x" + "a1" * 20, "0x" + "c2" * 20, f"model:{'ab' * 32}", catalogue.mask(["laboratory"]), expiry,
                  catalogue, rng=rng.randbytes)
        for _ in range(6)
    ]  # fmt: skip
    tree = GrantTree()
    tree.extend(g.commitment() for g in grants)
    t, request = int(expiry.timestamp()) - 3600, rng.randrange(CURVE_ORDER)
    attestation = attest(
        keys.proving_key, grants[5], tree.path(5), tree.root, used_mask=catalogue.mask(["laboratory"]), t=t,
        request_hash=request,
    )  # fmt: skip
    check_attestation(
        keys.prepared, attestation, known_roots={tree.root: None}, now=t, window_seconds=300, expected_request_hash=None
    )
    proof, public = tmp_path / "proof.json", tmp_path / "public.json"
    proof.write_text(dump_json(proof_to_json(attestation.proof)))
    public.write_text(dump_json(public_signals_to_json(list(attestation.statement.public_inputs()))))
    ok(snarkjs_cli.groth16_verify(ceremony.verification_key, public, proof))
    later = list(attestation.statement.public_inputs())
    later[4] += 1  # t, one second later: the proof says nothing about that statement
    public.write_text(dump_json(public_signals_to_json(later)))
    assert not snarkjs_cli.groth16_verify(ceremony.verification_key, public, proof).ok
