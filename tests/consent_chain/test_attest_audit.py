"""The attestations audit from public data: which ATTEST entries it verifies, and which it names, and why.

One development setup of the consent circuit serves the module (it takes seconds), and each proof about a second.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent_chain.attest_audit import AttestationFinding, audit_attestations
from consent_chain.backends.sql import SqlLedgerBackend
from consent_chain.catalogue import read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, sign
from consent_chain.entries import AttestEntry, GrantEntry, KeyEntry
from consent_chain.grants import Grant
from consent_chain.ledger import Ledger
from consent_chain.note import Signer
from ehr.identity import ActorKeys
from zk import groth16
from zk.attestation import attest
from zk.consent_circuit import consent_r1cs, model_field

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = int(T0.timestamp())
CAT = read_catalogue()
MODEL = "ab" * 32
WINDOW = 300


@pytest.fixture(scope="module")
def keys() -> groth16.ProvingKey:
    return groth16.setup(consent_r1cs(), rng=random.Random(2026))


@pytest.fixture
def ledger(tmp_path: Path, alice: ActorKeys, doctor: ActorKeys) -> Ledger:
    signer = Signer.generate("pchr.test/attest-audit")
    ledger = Ledger(
        SqlLedgerBackend(f"sqlite:///{tmp_path}/ledger.db"),
        signer,
        origin=signer.name,
        domain=Domain(chain_id=31337),
        clock=lambda: T0,
    )
    ledger.append([_key(alice), _key(doctor)])
    return ledger


def _key(keys: ActorKeys) -> KeyEntry:
    public = keys.public()
    return KeyEntry(public.address, public.role, public.x25519_public, public.binding_signature)


def _scoring_grant(patient: ActorKeys, doctor: ActorKeys, seed: int) -> Grant:
    return Grant.new(
        patient.address,
        doctor.address,
        f"model:{MODEL}",
        CAT.mask(["laboratory"]),
        T0 + timedelta(days=30),
        CAT,
        rng=random.Random(seed).randbytes,
    )


def _attest_entry(ledger: Ledger, pk: groth16.ProvingKey, grant: Grant, leaf: int, request: int) -> AttestEntry:
    """What the model service appends for a request scored under ``grant`` (at ``leaf``) now."""
    _, root, path = ledger.grant_path(leaf)
    a = attest(pk, grant, path, root, used_mask=CAT.mask(["laboratory"]), t=NOW, request_hash=request)
    return AttestEntry(a.statement.request_hash, model_field(MODEL), a.statement.root, a.to_bytes())


def _granted(ledger: Ledger, alice: ActorKeys, doctor: ActorKeys) -> tuple[Grant, int]:
    """Alice's scoring grant for the doctor, signed and appended; with its leaf."""
    grant = _scoring_grant(alice, doctor, 1)
    message = GrantMessage(grant.grant_id, grant.commitment(), 0, NOW)
    signed = GrantEntry(grant.grant_id, alice.address, grant.commitment(), 0, NOW, sign(alice, ledger.domain, message))
    (granted,) = ledger.append([signed])
    assert granted.leaf_index is not None
    return grant, granted.leaf_index


def _audit(ledger: Ledger, keys: groth16.ProvingKey) -> list[AttestationFinding]:
    raw = ledger.backend.entry_bytes(0, ledger.size())
    return audit_attestations(raw, groth16.prepare(keys.vk), window=WINDOW, domain=ledger.domain)


def test_an_attestation_under_a_grant_the_patient_never_signed_does_not_verify(
    ledger: Ledger, keys: groth16.ProvingKey, alice: ActorKeys, doctor: ActorKeys
) -> None:
    honest, leaf = _granted(ledger, alice, doctor)
    ledger.append([_attest_entry(ledger, keys, honest, leaf, 1)])

    # The operator writes a scoring grant Alice never signed into its own database, past the rules, and a colluding
    # clinician proves consent under it: the proof is sound against the root the operator's tree then has.
    invented = _scoring_grant(alice, doctor, 2)
    junk = b"\x11" * 64 + b"\x1b"
    forged = GrantEntry(invented.grant_id, alice.address, invented.commitment(), 1, NOW, junk)
    (written,) = ledger.backend.append([forged], lambda view, entry: dataclasses.replace(entry, time=NOW))
    assert written.leaf_index is not None
    ledger.append([_attest_entry(ledger, keys, invented, written.leaf_index, 2)])

    findings = _audit(ledger, keys)
    assert [(f.index, f.ok) for f in findings] == [(3, True), (5, False)]
    assert findings[1].problem == "unknown grant root: the root is not one of the ledger's grant roots"
    assert findings[1].grantee == doctor.address  # the ledger audit names the forged GRANT itself


def test_a_second_attest_entry_for_one_request_is_a_replayed_attestation(
    ledger: Ledger, keys: groth16.ProvingKey, alice: ActorKeys, doctor: ActorKeys
) -> None:
    """The service scores a request once; an ATTEST entry for a request already attested is named, though its proof
    verifies (an operator, or a race between two copies of one request, put it there)."""
    grant, leaf = _granted(ledger, alice, doctor)
    entry = _attest_entry(ledger, keys, grant, leaf, 1)
    ledger.append([entry])
    ledger.append([entry])  # the ledger's rules do not know requests: the service asks it first (attestation_entry)
    # And once more, stamped before the entries ahead of it, as only an operator writing its own storage could.
    ledger.backend.append([entry], lambda view, e: dataclasses.replace(e, time=NOW - 60))
    findings = _audit(ledger, keys)
    assert [(f.index, f.ok) for f in findings] == [(3, True), (4, False), (5, False)]
    assert findings[1].problem == (
        f"entry 3 already attests this request (request hash {entry.request_hash:064x}): a replayed attestation"
    )
    assert findings[2].problem == (
        f"entry 5 (ATTEST): time-went-back: stamped {NOW - 60}, before entry 4's {NOW}: the ledger's time never goes "
        "back"
    )
