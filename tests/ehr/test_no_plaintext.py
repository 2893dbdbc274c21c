"""After a demo-like run, the vault's SQLite file holds none of the record's names or values."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from ehr.client import VaultClient
from ehr.demo import database_bytes, plaintext_needles, synthetic_record
from ehr.fhir import canonical_json
from ehr.transaction import assign_patient
from tests.storage.databases import sqlite_only


@sqlite_only  # reads the SQLite file; tests/storage/test_postgres.py checks PostgreSQL's bytes
def test_database_holds_no_plaintext(http: TestClient, patient: VaultClient, db_path: Path) -> None:
    # Two records: one sealed on the patient's side, one sent as plain FHIR and sealed by the vault.
    client_sealed = assign_patient(synthetic_record(seed=11), patient.address)
    server_sealed = assign_patient(synthetic_record(seed=12, profile="hypertension"), patient.address)
    patient.transaction(client_sealed, patient=patient.address)
    response = http.post("/", json=server_sealed, headers={"Authorization": f"Bearer {patient.access_token()}"})
    assert response.status_code == 200, response.text

    needles = plaintext_needles(client_sealed) | plaintext_needles(server_sealed)
    family = client_sealed["entry"][0]["resource"]["name"][0]["family"]
    assert family in needles
    assert len(needles) > 200

    # Positive control: the same search finds the needles in a plaintext copy of the records.
    plain = b"".join(canonical_json(e["resource"]) for b in (client_sealed, server_sealed) for e in b["entry"])
    assert all(n.encode() in plain for n in needles)

    raw = database_bytes(db_path)
    assert len(raw) > 50_000
    leaked = sorted(n for n in needles if n.encode() in raw)
    assert leaked == []

    # And the patient still reads both records back intact.
    observations = patient.everything("Observation")
    expected = [
        e for b in (client_sealed, server_sealed) for e in b["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert len(observations) == len(expected)
    values = sorted(json.dumps(o.get("valueQuantity"), sort_keys=True) for o in observations)
    assert values == sorted(json.dumps(e["resource"].get("valueQuantity"), sort_keys=True) for e in expected)


def test_short_hex_codes_are_searched_with_their_quotes() -> None:
    # "310798" (RxNorm) turns up by chance inside hex addresses; '"310798"' is how a leak would look.
    bundle = {"entry": [{"resource": {"code": {"coding": [{"code": "310798", "display": "Hydrochlorothiazide"}]}}}]}
    needles = plaintext_needles(bundle)
    assert needles == {'"310798"', "Hydrochlorothiazide"}
    hex_text = b"0x7E58B89fD3919f3107984b5Aff88f7"
    assert not any(n.encode() in hex_text for n in needles)
    # "8867-4" (LOINC heart rate) turns up inside a random UUID (a resource id) whenever its digits line up.
    loinc = {"entry": [{"resource": {"code": {"coding": [{"code": "8867-4", "display": "Heart rate"}]}}}]}
    assert plaintext_needles(loinc) == {'"8867-4"', "Heart rate"}
    assert not any(n.encode() in b"67b418f1-8867-424c-99dc-5628f92e9825" for n in plaintext_needles(loinc))
