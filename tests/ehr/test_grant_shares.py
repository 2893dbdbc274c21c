"""A key shared under a grant opens a record only under that grant: while it is active and covers the record.

What the grantee and the patient notice: a narrower grant made after a broader one ended opens only what it
covers; revoking one of two overlapping grants leaves the other's access as it was; expiry stops reads and
searches; the access log names the grant each record was opened under.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from ehr.client import VaultClient, VaultClientError
from ehr.store import Store
from tests.conftest import Clock

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _observation(patient: str, category: str, code: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-02-27T08:30:00Z",
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }


@pytest.fixture
def lab(patient: VaultClient) -> dict[str, Any]:
    return patient.create(_observation(patient.address, "laboratory", "2345-7", 9.9))


@pytest.fixture
def vitals(patient: VaultClient) -> dict[str, Any]:
    return patient.create(_observation(patient.address, "vital-signs", "29463-7", 120))


def _refused(call: Any) -> VaultClientError:
    with pytest.raises(VaultClientError) as refused:
        call()
    return refused.value


def _searched(clinician: VaultClient, patient: VaultClient) -> list[str]:
    return sorted(o["id"] for o in clinician.everything("Observation", [("patient", patient.address)]))


def _grant_of(event: dict[str, Any]) -> str:
    return str(event["purposeOfEvent"][0]["coding"][0]["code"])


def _opened(event: dict[str, Any]) -> list[str]:
    refs = [e["what"]["reference"] for e in event["entity"][1:]]
    return [ref.split("/")[1] for ref in refs]


def _shares(store: Store, grant_id: str) -> int:
    with store.engine.connect() as conn:
        query = text("SELECT COUNT(*) FROM key_share WHERE grant_id = :g")
        return int(conn.execute(query, {"g": grant_id}).scalar_one())


def test_a_narrower_grant_after_a_broader_one_expired_opens_only_what_it_covers(
    patient: VaultClient, clinician: VaultClient, lab: dict, vitals: dict, clock: Clock, store: Store
) -> None:
    broad = patient.grant(clinician.address, ["observation"], expiry=clock.now + timedelta(days=1))
    assert broad["keysShared"] == 2
    clock.advance(days=2)
    assert _refused(lambda: clinician.read("Observation", lab["id"])).status == 403
    assert _shares(store, broad["grantId"]) == 0  # found expired: its keys are deleted, as a revocation would

    narrow = patient.grant(clinician.address, ["vital-signs"], expiry=clock.now + timedelta(days=1))
    assert narrow["keysShared"] == 1
    refused = _refused(lambda: clinician.read("Observation", lab["id"]))
    assert (refused.status, refused.message) == (403, f"your grant does not cover Observation/{lab['id']}")
    assert clinician.read("Observation", vitals["id"])["valueQuantity"]["value"] == 120
    assert _searched(clinician, patient) == [vitals["id"]]
    assert clinician.search("Observation", [("patient", patient.address)])["total"] == 1
    history = clinician.history("Observation", lab["id"])
    assert [e.get("resource") for e in history["entry"]] == [None]  # the version is listed, no key comes with it


def test_an_expired_grant_keeps_no_key_the_vault_serves_under_another_grant(
    patient: VaultClient, clinician: VaultClient, lab: dict, vitals: dict, clock: Clock, store: Store
) -> None:
    """The reviewer's scenario without a read in between: the expired grant's keys are still stored, unused."""
    broad = patient.grant(clinician.address, ["observation"], expiry=clock.now + timedelta(days=1))
    clock.advance(days=2)
    patient.grant(clinician.address, ["vital-signs"], expiry=clock.now + timedelta(days=1))
    assert _shares(store, broad["grantId"]) == 2
    assert _searched(clinician, patient) == [vitals["id"]]
    assert _refused(lambda: clinician.read("Observation", lab["id"])).status == 403
    assert _shares(store, broad["grantId"]) == 0


def test_revoking_one_of_two_overlapping_grants_keeps_the_others_access(
    patient: VaultClient, clinician: VaultClient, lab: dict, vitals: dict, clock: Clock, store: Store
) -> None:
    labs_only = patient.grant(clinician.address, ["laboratory"], expiry=clock.now + timedelta(days=7))
    everything = patient.grant(clinician.address, ["observation"], expiry=clock.now + timedelta(days=7))
    assert (labs_only["keysShared"], everything["keysShared"]) == (1, 2)

    clock.advance(minutes=1)
    assert patient.revoke(labs_only["grantId"])["keysDeleted"] == 1
    assert clinician.read("Observation", lab["id"])["valueQuantity"]["value"] == 9.9
    assert _searched(clinician, patient) == sorted([lab["id"], vitals["id"]])
    assert _grant_of(patient.access_log()[0]) == everything["grantId"]

    clock.advance(minutes=1)
    assert patient.revoke(everything["grantId"])["keysDeleted"] == 2
    assert _refused(lambda: clinician.read("Observation", lab["id"])).status == 403
    assert clinician.everything("Observation") == []
    assert _shares(store, labs_only["grantId"]) + _shares(store, everything["grantId"]) == 0


def test_expiry_stops_reads_searches_and_history(
    patient: VaultClient, clinician: VaultClient, lab: dict, clock: Clock
) -> None:
    patient.grant(clinician.address, ["laboratory"], expiry=clock.now + timedelta(hours=1))
    assert clinician.read("Observation", lab["id"])["id"] == lab["id"]
    clock.advance(hours=1)  # expiry is exclusive: at the instant itself the grant has ended
    refused = _refused(lambda: clinician.read("Observation", lab["id"]))
    assert refused.status == 403
    assert refused.message == "no active grant lets you read this patient's Observation resources"
    assert _refused(lambda: clinician.search("Observation", [("patient", patient.address)])).status == 403
    assert clinician.everything("Observation") == []
    assert _refused(lambda: clinician.history("Observation", lab["id"])).status == 403


def test_the_access_log_names_the_grant_each_record_was_opened_under(
    patient: VaultClient, clinician: VaultClient, lab: dict, vitals: dict, clock: Clock
) -> None:
    labs = patient.grant(clinician.address, ["laboratory"], expiry=clock.now + timedelta(days=7))
    signs = patient.grant(clinician.address, ["vital-signs"], expiry=clock.now + timedelta(days=7))

    clinician.read("Observation", vitals["id"])
    clock.advance(seconds=1)
    clinician.read("Observation", lab["id"])
    clock.advance(seconds=1)
    assert _searched(clinician, patient) == sorted([lab["id"], vitals["id"]])
    clock.advance(seconds=1)
    clinician.history("Observation", lab["id"])

    log = list(reversed(patient.access_log()))  # oldest first
    named = [(e["subtype"][0]["code"], _grant_of(e), _opened(e)) for e in log]
    assert named[:2] == [("read", signs["grantId"], [vitals["id"]]), ("read", labs["grantId"], [lab["id"]])]
    assert sorted(named[2:4]) == sorted(
        [("search-type", labs["grantId"], [lab["id"]]), ("search-type", signs["grantId"], [vitals["id"]])]
    )
    assert named[4:] == [("history-instance", labs["grantId"], [lab["id"]])]


def test_a_vault_from_before_key_shares_drops_the_keys_it_cannot_tie_to_a_grant(database_url: str) -> None:
    """An existing database gains the ``key_share`` table; its old grantee keys are deleted, the patient's kept."""
    patient, grantee = "0x" + "11" * 20, "0x" + "22" * 20
    old = Store(database_url)
    with old.engine.begin() as conn:
        conn.execute(text("DROP TABLE key_share"))  # the schema before shares belonged to grants
        conn.execute(
            text(
                "INSERT INTO resource_version (resource_type, resource_id, version_id, patient, method, last_updated)"
                " VALUES ('Observation', 'a', 1, :p, 'POST', CURRENT_TIMESTAMP)"
            ),
            {"p": patient},
        )
        for recipient in (patient, grantee):
            conn.execute(
                text(
                    "INSERT INTO wrapped_key (resource_type, resource_id, version_id, recipient, ephemeral_public,"
                    " wrapped) VALUES ('Observation', 'a', 1, :r, :k, :k)"
                ),
                {"r": recipient, "k": bytes(32)},
            )
    old.close()

    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            kept = conn.execute(text("SELECT recipient FROM wrapped_key")).scalars().all()
            shares = conn.execute(text("SELECT COUNT(*) FROM key_share")).scalar_one()
        assert (kept, shares) == ([patient], 0)
        with store.session() as tx:
            record = tx.version("Observation", "a", 1, grantee)
            assert record is not None
            assert record.key is None
    finally:
        store.close()
