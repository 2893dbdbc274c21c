"""Grants enforced by the vault: grant -> the clinician reads what is in scope -> access log -> revoke -> refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import text

from consent_chain.audit import audit_ledger
from consent_chain.eip712 import Domain
from consent_chain.note import Verifier
from ehr.client import VaultClient, VaultClientError
from ehr.demo import synthetic_record
from ehr.store import Store
from ehr.transaction import assign_patient
from tests.conftest import Clock

LAB = "laboratory"


def _category(resource: dict) -> set[str]:
    return {c["code"] for cat in resource.get("category", []) for c in cat.get("coding", [])}


@pytest.fixture
def record(patient: VaultClient) -> dict:
    bundle = assign_patient(synthetic_record(seed=5), patient.address)
    patient.transaction(bundle, patient=patient.address)
    return bundle


def test_grant_read_log_revoke(
    http: TestClient, patient: VaultClient, clinician: VaultClient, record: dict, clock: Clock
) -> None:
    observations = patient.everything("Observation")
    labs = [o for o in observations if LAB in _category(o)]
    vitals = [o for o in observations if "vital-signs" in _category(o)]
    assert labs
    assert vitals

    # Without a grant: refused.
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Observation", labs[0]["id"])
    assert refused.value.status == 403

    grant = patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(days=7))
    assert grant["keysShared"] == len(labs)
    assert grant["entryIndex"] >= 2  # after the two KEY entries

    # In scope: readable, decrypted on the clinician's side. Out of scope: refused by the missing key.
    assert clinician.read("Observation", labs[0]["id"])["valueQuantity"] == labs[0]["valueQuantity"]
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Observation", vitals[0]["id"])
    assert refused.value.status == 403
    assert "does not cover" in refused.value.message
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Condition", patient.everything("Condition")[0]["id"])
    assert refused.value.status == 403
    found = clinician.everything("Observation", [("patient", patient.address)])
    assert sorted(o["id"] for o in found) == sorted(o["id"] for o in labs)

    # New lab results the patient adds later are shared automatically.
    new_lab = dict(labs[0])
    new_lab.pop("id")
    created = patient.create(new_lab)
    assert clinician.read("Observation", created["id"])["code"] == labs[0]["code"]

    # The patient sees who read what.
    log = patient.access_log()
    assert log
    for event in log:
        AuditEvent.model_validate(event)
        assert event["agent"][0]["who"]["identifier"]["value"] == clinician.address
    assert any(labs[0]["id"] in json.dumps(e["entity"]) for e in log)

    # Revoke: keys deleted, next request refused.
    clock.advance(minutes=1)
    revoked = patient.revoke(grant["grantId"])
    assert revoked["keysDeleted"] == len(labs) + 1
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Observation", labs[0]["id"])
    assert refused.value.status == 403
    assert clinician.everything("Observation") == []

    # And the ledger audits clean from public data.
    verifier = Verifier.from_vkey(http.get("/ledger/key").text.strip())

    class Source:
        def checkpoint(self) -> str:
            return http.get("/ledger/checkpoint").text

        def entries(self, start: int, end: int) -> list[bytes]:
            import base64

            data = http.get("/ledger/entries", params={"start": start, "end": end}).json()
            return [base64.b64decode(e) for e in data["entries"]]

        def inclusion_proof(self, index: int, size: int) -> list[bytes]:
            raise AssertionError("not needed for a clean ledger")

        def consistency_proof(self, old: int, new: int) -> list[bytes]:
            raise AssertionError("no previous checkpoint")

    report = audit_ledger(Source(), verifier, domain=Domain.from_json(http.get("/ledger/domain").json()))
    assert report.clean
    assert report.counts == {"KEY": 2, "GRANT": 1, "REVOKE": 1}


def test_expired_grant_reads_nothing(patient: VaultClient, clinician: VaultClient, record: dict, clock: Clock) -> None:
    lab = next(o for o in patient.everything("Observation") if LAB in _category(o))
    patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(hours=1))
    assert clinician.read("Observation", lab["id"])["id"] == lab["id"]
    clock.advance(hours=2)
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Observation", lab["id"])
    assert refused.value.status == 403


def test_only_the_patient_revokes(
    patient: VaultClient, other_patient: VaultClient, clinician: VaultClient, clock: Clock
) -> None:
    grant = patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(days=1))
    with pytest.raises(VaultClientError) as refused:
        other_patient.revoke(grant["grantId"])
    assert refused.value.status == 403
    with pytest.raises(VaultClientError) as refused:
        patient.revoke("00" * 32)
    assert refused.value.status == 404


def test_erase_crypto_shreds(
    patient: VaultClient, clinician: VaultClient, record: dict, clock: Clock, store: Store
) -> None:
    lab = next(o for o in patient.everything("Observation") if LAB in _category(o))
    patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(days=1))
    patient.erase("Observation", lab["id"])
    for reader in (patient, clinician):
        with pytest.raises(VaultClientError) as refused:
            reader.read("Observation", lab["id"])
        assert refused.value.status == 410  # erased: gone for everyone, grantee included
    with store.engine.connect() as conn:
        where = {"rid": lab["id"]}
        keys = conn.execute(text("SELECT COUNT(*) FROM wrapped_key WHERE resource_id = :rid"), where).scalar_one()
        blobs = conn.execute(
            text("SELECT COUNT(*) FROM resource_version WHERE resource_id = :rid AND ciphertext IS NOT NULL"), where
        ).scalar_one()
    assert (keys, blobs) == (0, 0)
    with pytest.raises(VaultClientError) as refused:
        clinician.erase("Observation", patient.everything("Observation")[0]["id"])
    assert refused.value.status == 403


def _post(http: TestClient, client: VaultClient, path: str, body: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {client.access_token()}", "Content-Type": "application/json"}
    response = http.post(path, content=body.encode(), headers=headers)
    return response.status_code, response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("nonce", "issued_at", "said"),
    [
        ("1" + "0" * 100, "1", "nonce must be an integer from 0 to 2**256 - 1"),
        ("-1", "1", "nonce must be an integer from 0 to 2**256 - 1"),
        ('"²"', "1", "nonce must be an integer from 0 to 2**256 - 1"),
        ("0", "1" + "0" * 30, "issuedAt must be an integer from 0 to 2**64 - 1"),
        ("0", "1e300", "issuedAt must be an integer from 0 to 2**64 - 1"),
        ("0", "true", "issuedAt must be an integer from 0 to 2**64 - 1"),
        ("Infinity", "1", "body is not valid JSON: Infinity is not a JSON number (RFC 8259, section 6)"),
        ("0", "NaN", "body is not valid JSON: NaN is not a JSON number (RFC 8259, section 6)"),
    ],
)
def test_a_grant_with_numbers_out_of_range_is_400(
    http: TestClient, patient: VaultClient, clinician: VaultClient, clock: Clock, nonce: str, issued_at: str, said: str
) -> None:
    # These reached the EIP-712 encoder (ValueError) or int() (OverflowError): 500s before.
    opening = patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(days=1))["opening"]
    body = f'{{"grant": {json.dumps(opening)}, "nonce": {nonce}, "issuedAt": {issued_at}, "signature": "{"00" * 65}"}}'
    assert _post(http, patient, "/consent/grants", body) == (400, said)


MALFORMED_VERSION = "malformed key share: versionId must be an integer from 1 to 999999999"


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("1" + "0" * 30, MALFORMED_VERSION),  # an OverflowError from the database before
        ("0", MALFORMED_VERSION),
        ('"²"', MALFORMED_VERSION),
        ("Infinity", "body is not valid JSON: Infinity is not a JSON number (RFC 8259, section 6)"),
    ],
)
def test_a_key_share_with_a_version_out_of_range_is_400(
    http: TestClient, patient: VaultClient, clinician: VaultClient, record: dict, clock: Clock, version: str, said: str
) -> None:
    grant = patient.grant(clinician.address, [LAB], expiry=clock.now + timedelta(days=1))
    lab = next(o for o in patient.everything("Observation") if LAB in _category(o))
    body = f'{{"keys": [{{"resourceType": "Observation", "id": "{lab["id"]}", "versionId": {version}, "key": {{}}}}]}}'
    assert _post(http, patient, f"/consent/grants/{grant['grantId']}/keys", body) == (400, said)
