"""The vault's FHIR API through FastAPI's test client: interactions, refusals and error outcomes."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from ehr.api import create_app
from ehr.client import VaultClient, VaultClientError
from ehr.crypto import SealContext, seal
from ehr.demo import synthetic_record
from ehr.envelope import Envelope
from ehr.fhir import canonical_json
from ehr.identity import ActorKeys, Role
from ehr.service import Vault
from ehr.settings import Settings
from ehr.tokens import ASSERTION_TYPE, make_client_assertion
from ehr.transaction import assign_patient
from tests.conftest import Clock, observation


def bearer(client: VaultClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.access_token()}"}


def outcome(response) -> str:
    """Assert the body is a valid OperationOutcome and return its first diagnostics."""
    body = response.json()
    OperationOutcome.model_validate(body)
    return body["issue"][0]["diagnostics"]


# -- capability and discovery ---------------------------------------------------------------------
def test_metadata_is_a_valid_capability_statement(http: TestClient) -> None:
    response = http.get("/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    types = {r.type for r in statement.rest[0].resource}
    assert {"Observation", "Patient", "Condition", "MedicationRequest"} <= types


def test_smart_configuration_advertises_private_key_jwt(http: TestClient) -> None:
    config = http.get("/.well-known/smart-configuration").json()
    assert config["token_endpoint"].endswith("/auth/token")
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]


# -- the basic interactions -----------------------------------------------------------------------
def test_plain_create_is_sealed_and_only_ciphertext_comes_back(http: TestClient, patient: VaultClient) -> None:
    response = http.post("/Observation", json=observation(patient.address, 6.2), headers=bearer(patient))
    assert response.status_code == 201
    assert response.headers["etag"] == 'W/"1"'
    location = response.headers["location"]
    assert "/Observation/" in location
    assert location.endswith("/_history/1")
    resource_id = location.split("/")[-3]

    raw = http.get(f"/Observation/{resource_id}", headers=bearer(patient))
    assert raw.status_code == 200
    body = raw.json()
    assert body["resourceType"] == "Binary"
    assert body["contentType"] == "application/pchr-sealed+json"
    assert "6.2" not in base64.b64decode(body["data"]).decode()
    assert "Glucose" not in raw.text
    # The patient's client opens it, with the vault's version metadata.
    opened = patient.open_binary(body)
    assert opened["valueQuantity"]["value"] == 6.2
    assert opened["meta"]["versionId"] == "1"


def test_client_sealed_round_trip_versions_and_history(patient: VaultClient, clock: Clock) -> None:
    created = patient.create(observation(patient.address, 5.0))
    clock.advance(minutes=1)
    updated = patient.update({**created, "status": "amended", "valueQuantity": {"value": 5.5, "unit": "mmol/L"}})
    assert updated["meta"]["versionId"] == "2"
    assert patient.read("Observation", created["id"])["valueQuantity"]["value"] == 5.5
    assert patient.vread("Observation", created["id"], "1")["valueQuantity"]["value"] == 5.0
    history = patient.history("Observation", created["id"])
    Bundle.model_validate(
        {**history, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in history["entry"]]}
    )
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_delete_then_read_is_410_and_history_keeps_the_deletion(
    http: TestClient, patient: VaultClient, clock: Clock
) -> None:
    created = patient.create(observation(patient.address))
    clock.advance(seconds=5)
    patient.delete("Observation", created["id"])
    response = http.get(f"/Observation/{created['id']}", headers=bearer(patient))
    assert response.status_code == 410
    assert "deleted" in outcome(response)
    history = http.get(f"/Observation/{created['id']}/_history", headers=bearer(patient)).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    # The old version can still be read by the patient.
    assert patient.vread("Observation", created["id"], "1")["status"] == "final"
    # Deleting again is idempotent.
    assert http.delete(f"/Observation/{created['id']}", headers=bearer(patient)).status_code == 200


def test_search_by_patient_with_paging_links(patient: VaultClient, clock: Clock) -> None:
    for i in range(7):
        patient.create(observation(patient.address, float(i)))
        clock.advance(seconds=1)
    page = patient.search("Observation", [("patient", f"Patient/{patient.address}"), ("_count", "3")])
    assert page["total"] == 7
    assert len(page["entry"]) == 3
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert {"self", "first", "next", "last"} <= links.keys()
    everything = patient.everything("Observation", [("_count", "3")])
    assert sorted(r["valueQuantity"]["value"] for r in everything) == [float(i) for i in range(7)]


def test_search_by_last_updated(patient: VaultClient, clock: Clock) -> None:
    patient.create(observation(patient.address, 1.0))  # 2026-03-01T09:00
    clock.advance(days=2)
    patient.create(observation(patient.address, 2.0))  # 2026-03-03T09:00
    since = patient.search("Observation", [("_lastUpdated", "ge2026-03-02")])
    assert [e["resource"]["valueQuantity"]["value"] for e in since["entry"]] == [2.0]
    day = patient.search("Observation", [("_lastUpdated", "2026-03-01")])
    assert [e["resource"]["valueQuantity"]["value"] for e in day["entry"]] == [1.0]
    newest_first = patient.search("Observation", [("_sort", "-_lastUpdated")])
    assert [e["resource"]["valueQuantity"]["value"] for e in newest_first["entry"]] == [2.0, 1.0]


def test_count_zero_gives_the_total_only(patient: VaultClient) -> None:
    patient.create(observation(patient.address))
    page = patient.search("Observation", [("_count", "0")])
    assert page["total"] == 1
    assert page["entry"] == []


def test_transaction_resolves_references_and_is_all_or_nothing(http: TestClient, patient: VaultClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:a1b2c3d4-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"Patient/{patient.address}"},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": {
                    **observation(patient.address, 9.9),
                    "encounter": {"reference": "urn:uuid:a1b2c3d4-0000-4000-8000-000000000001"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = http.post("/", json=bundle, headers=bearer(patient))
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    encounter_id = result["entry"][0]["response"]["location"].split("/")[1]
    obs_id = result["entry"][1]["response"]["location"].split("/")[1]
    assert patient.read("Observation", obs_id)["encounter"]["reference"] == f"Encounter/{encounter_id}"

    # One bad entry (an impossible date): nothing of the Bundle is stored.
    before = patient.search("Observation", [("_count", "0")])["total"]
    bad = json.loads(json.dumps(bundle))
    bad["entry"][1]["resource"]["effectiveDateTime"] = "2026-02-30"
    response = http.post("/", json=bad, headers=bearer(patient))
    assert response.status_code == 400
    assert outcome(response).startswith("Bundle.entry[1]:")
    assert patient.search("Observation", [("_count", "0")])["total"] == before
    assert patient.search("Encounter", [("_count", "0")])["total"] == 1


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"resourceType": "Condition"}).encode(), 400, "does not match the endpoint"),
        (json.dumps({"status": "final"}).encode(), 400, "no resourceType"),
    ],
)
def test_malformed_bodies(http: TestClient, patient: VaultClient, body: bytes, status: int, message: str) -> None:
    response = http.post(
        "/Observation", content=body, headers={**bearer(patient), "Content-Type": "application/fhir+json"}
    )
    assert response.status_code == status
    assert message in outcome(response)


def test_unknown_resource_type(http: TestClient, patient: VaultClient) -> None:
    response = http.post("/Spaceship", json={"resourceType": "Spaceship"}, headers=bearer(patient))
    assert response.status_code == 404
    assert "unknown resource type" in outcome(response)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"effectiveDateTime": "2026-13-40"}, "effectiveDateTime"),
        ({"status": 17}, "status"),
        ({"subject": {"reference": "Patient with spaces"}}, "subject.reference"),
        ({"performer": [{"reference": "Spaceship/1"}]}, "performer[0].reference"),
        ({"unknownElement": 1}, "unknownElement"),
    ],
)
def test_invalid_fhir_is_400_naming_the_element(
    http: TestClient, patient: VaultClient, change: dict[str, Any], where: str
) -> None:
    body = {**observation(patient.address), **change}
    response = http.post("/Observation", json=body, headers=bearer(patient))
    assert response.status_code == 400
    data = response.json()
    assert where in data["issue"][0]["expression"][0]
    # The error names the element, never the offending value.
    assert "2026-13-40" not in response.text


def test_put_with_mismatched_id_is_400(http: TestClient, patient: VaultClient) -> None:
    body = {**observation(patient.address), "id": "other"}
    response = http.put("/Observation/this-one", json=body, headers=bearer(patient))
    assert response.status_code == 400
    assert "must match the id in the URL" in outcome(response)


def test_body_over_the_limit_is_413(http: TestClient, patient: VaultClient) -> None:
    body = {**observation(patient.address), "note": [{"text": "x" * 300_000}]}
    response = http.post("/Observation", json=body, headers=bearer(patient))
    assert response.status_code == 413
    assert "limit" in outcome(response)


def test_resource_without_patient_from_a_writer_is_422(
    http: TestClient, patient: VaultClient, clinician: VaultClient
) -> None:
    patient.add_writer(clinician.address)
    practitioner = {"resourceType": "Practitioner", "name": [{"family": "Who"}]}
    response = http.post("/Practitioner", json=practitioner, headers=bearer(clinician))
    assert response.status_code == 422
    assert "names no patient" in outcome(response)


def test_writing_into_a_stranger_record_is_403(http: TestClient, patient: VaultClient) -> None:
    stranger = ActorKeys.generate(Role.PATIENT).address
    response = http.post("/Observation", json=observation(stranger), headers=bearer(patient))
    assert response.status_code == 403
    assert "only the patient, or a writer the patient has named" in outcome(response)


def test_patient_id_must_be_an_address(http: TestClient, patient: VaultClient) -> None:
    response = http.post("/Observation", json=observation("12345"), headers=bearer(patient))
    assert response.status_code == 422
    assert "pchr address" in outcome(response)


def test_if_match_mismatch_is_412(http: TestClient, patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    with pytest.raises(VaultClientError) as refused:
        patient.update({**created, "status": "amended"}, if_match='W/"7"')
    assert refused.value.status == 412
    plain = {**observation(patient.address), "id": created["id"]}
    response = http.put(f"/Observation/{created['id']}", json=plain, headers={**bearer(patient), "If-Match": 'W/"7"'})
    assert response.status_code == 412
    assert "does not match the current version" in outcome(response)


def test_sealed_create_with_an_existing_id_is_409(http: TestClient, patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    binary = patient.seal_resource({**observation(patient.address), "id": created["id"]}, 1)
    response = http.post("/Observation", json=binary, headers=bearer(patient))
    assert response.status_code == 409
    assert "already exists" in outcome(response)


def test_sealed_write_for_a_stale_version_is_409(http: TestClient, patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    binary = patient.seal_resource({**observation(patient.address), "id": created["id"]}, 1)  # next is 2
    response = http.put(f"/Observation/{created['id']}", json=binary, headers=bearer(patient))
    assert response.status_code == 409
    assert "next version is 2" in outcome(response)


def test_sealed_envelope_for_another_resource_is_400(http: TestClient, patient: VaultClient) -> None:
    binary = patient.seal_resource({**observation(patient.address), "id": "abc"}, 1)
    response = http.put("/Observation/xyz", json=binary, headers=bearer(patient))
    assert response.status_code == 400


def test_garbage_sealed_binary_is_400(http: TestClient, patient: VaultClient) -> None:
    binary = {"resourceType": "Binary", "contentType": "application/pchr-sealed+json", "data": "!!notbase64"}
    response = http.post("/Observation", json=binary, headers=bearer(patient))
    assert response.status_code == 400
    assert "base64" in outcome(response)


# -- access policy --------------------------------------------------------------------------------
def test_clinician_without_grant_is_refused(http: TestClient, patient: VaultClient, clinician: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    for response in (
        http.get(f"/Observation/{created['id']}", headers=bearer(clinician)),
        http.get("/Observation", params={"patient": patient.address}, headers=bearer(clinician)),
        http.get(f"/Observation/{created['id']}/_history", headers=bearer(clinician)),
        http.delete(f"/Observation/{created['id']}", headers=bearer(clinician)),
    ):
        assert response.status_code == 403
        assert "no active grant" in outcome(response)
    # Without naming a patient, a clinician's search simply finds nothing of anyone's.
    assert http.get("/Observation", headers=bearer(clinician)).json()["total"] == 0


def test_one_patient_cannot_touch_another(patient: VaultClient, other_patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    with pytest.raises(VaultClientError) as refused:
        other_patient.read("Observation", created["id"])
    assert refused.value.status == 403
    with pytest.raises(VaultClientError) as refused:
        other_patient.create(observation(patient.address))
    assert refused.value.status == 403


def test_named_writer_may_add_but_not_read(patient: VaultClient, clinician: VaultClient) -> None:
    with pytest.raises(VaultClientError) as refused:
        clinician.create(observation(patient.address, 4.4))
    assert refused.value.status == 403
    patient.add_writer(clinician.address)
    assert patient.writers() == [clinician.address]
    written = clinician.create(observation(patient.address, 4.4))
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Observation", written["id"])
    assert refused.value.status == 403
    assert patient.read("Observation", written["id"])["valueQuantity"]["value"] == 4.4
    patient.remove_writer(clinician.address)
    with pytest.raises(VaultClientError):
        clinician.create(observation(patient.address))


def _condition(patient: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient}"}, "code": {"text": "HIV"}}


def _token(http: TestClient, keys: ActorKeys, clock: Clock, scope: str) -> dict[str, str]:
    return bearer(VaultClient(http, keys, clock=clock, scope=scope))


@pytest.mark.parametrize(
    ("scope", "missing"),
    [
        ("patient/Observation.r", "delete on Condition (it needs patient/Condition.d)"),
        ("patient/Observation.cruds", "delete on Condition (it needs patient/Condition.d)"),
        ("patient/*.crus", "delete on Condition (it needs patient/Condition.d)"),
    ],
)
def test_erase_needs_delete_on_the_type_as_delete_does(
    http: TestClient, patient: VaultClient, clock: Clock, scope: str, missing: str
) -> None:
    condition = patient.create(_condition(patient.address))
    token = _token(http, patient.keys, clock, scope)
    for refused in (
        http.post(f"/Condition/{condition['id']}/$erase", headers=token),
        http.delete(f"/Condition/{condition['id']}", headers=token),
    ):
        assert refused.status_code == 403
        assert outcome(refused) == f"the access token's scopes do not allow {missing}"
    assert patient.read("Condition", condition["id"])["code"]["text"] == "HIV"  # untouched


@pytest.mark.parametrize("scope", ["patient/Condition.d", "patient/*.d", "patient/*.cruds"])
def test_erase_with_delete_on_the_type(http: TestClient, patient: VaultClient, clock: Clock, scope: str) -> None:
    condition = patient.create(_condition(patient.address))
    erased = http.post(f"/Condition/{condition['id']}/$erase", headers=_token(http, patient.keys, clock, scope))
    assert erased.status_code == 200
    assert "1 version(s) crypto-shredded" in outcome(erased)
    with pytest.raises(VaultClientError) as gone:
        patient.read("Condition", condition["id"])
    assert gone.value.status == 410


@pytest.mark.parametrize(
    ("scope", "missing"),
    [
        ("patient/Observation.r", "create and update on every resource type (it needs patient/*.cu)"),
        ("patient/*.rs", "create and update on every resource type (it needs patient/*.cu)"),
        ("patient/Observation.cruds", "create and update on every resource type (it needs patient/*.cu)"),
        ("patient/*.c", "update on every resource type (it needs patient/*.u)"),
    ],
)
def test_naming_or_removing_a_writer_needs_create_and_update_on_every_type(
    http: TestClient, patient: VaultClient, clinician: VaultClient, clock: Clock, scope: str, missing: str
) -> None:
    token = _token(http, patient.keys, clock, scope)
    added = http.put(f"/auth/writers/{clinician.address}", headers=token)
    assert added.status_code == 403
    assert outcome(added) == f"the access token's scopes do not allow {missing}"
    assert patient.writers() == []
    clock.advance(hours=1)  # the narrow token is long gone: the clinician still may not write
    with pytest.raises(VaultClientError) as refused:
        clinician.create(observation(patient.address))
    assert refused.value.status == 403

    patient.add_writer(clinician.address)
    removed = http.delete(f"/auth/writers/{clinician.address}", headers=_token(http, patient.keys, clock, scope))
    assert removed.status_code == 403
    assert outcome(removed) == f"the access token's scopes do not allow {missing}"
    assert patient.writers() == [clinician.address]


@pytest.mark.parametrize("scope", ["patient/*.cu", "patient/*.write", "patient/*.cruds"])
def test_a_token_that_may_write_everything_names_and_removes_writers(
    http: TestClient, patient: VaultClient, clinician: VaultClient, clock: Clock, scope: str
) -> None:
    token = _token(http, patient.keys, clock, scope)
    assert http.put(f"/auth/writers/{clinician.address}", headers=token).status_code == 200
    assert http.get("/auth/writers", headers=_token(http, patient.keys, clock, "patient/Observation.r")).json()[
        "writers"
    ] == [clinician.address]
    clinician.create(observation(patient.address))
    assert http.delete(f"/auth/writers/{clinician.address}", headers=token).status_code == 200
    assert patient.writers() == []


def test_only_a_patient_names_writers(http: TestClient, patient: VaultClient, clinician: VaultClient) -> None:
    response = http.put(f"/auth/writers/{patient.address}", headers=bearer(clinician))
    assert response.status_code == 403


# -- a Patient resource is its own patient ------------------------------------------------------------
SQUAT = "a Patient resource's id must be the address of the patient whose record holds it"


def _sealed_patient(resource_id: str, owner: ActorKeys, version: int = 1) -> dict[str, Any]:
    """A Patient sealed by hand (the client would file it under its id): ``Patient/<resource_id>`` in ``owner``'s
    record."""
    fake = {"resourceType": "Patient", "id": resource_id, "name": [{"text": "Fake Name"}]}
    context = SealContext("Patient", resource_id, str(version), owner.address)
    sealed, key = seal(canonical_json(fake), context, owner.address, owner.public().encryption_key())
    return Envelope(sealed, key).to_binary("1970-01-01T00:00:00Z")


def _squat_refused(response: Any, owner: str, where: str = "") -> None:
    assert response.status_code == 422
    assert outcome(response) == f"{where}{SQUAT}: Patient/{owner}"
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


def test_a_patient_cannot_file_another_patients_patient_resource(
    http: TestClient, patient: VaultClient, other_patient: VaultClient, clinician: VaultClient, clock: Clock
) -> None:
    victim, mallory = patient, other_patient
    binary = _sealed_patient(victim.address, mallory.keys)
    _squat_refused(http.post("/Patient", json=binary, headers=bearer(mallory)), mallory.address)
    _squat_refused(http.put(f"/Patient/{victim.address}", json=binary, headers=bearer(mallory)), mallory.address)
    # A writer Mallory named cannot do it for her either.
    mallory.add_writer(clinician.address)
    _squat_refused(http.put(f"/Patient/{victim.address}", json=binary, headers=bearer(clinician)), mallory.address)
    # Plain FHIR is filed under the Patient's id: the victim's record, which Mallory may not write to.
    plain = {"resourceType": "Patient", "id": victim.address, "name": [{"text": "Fake Name"}]}
    response = http.put(f"/Patient/{victim.address}", json=plain, headers=bearer(mallory))
    assert response.status_code == 403
    assert "only the patient, or a writer the patient has named" in outcome(response)
    # Nothing was filed: the victim creates, updates and erases her own; Mallory's grantee cannot read it.
    victim.create({"resourceType": "Patient", "name": [{"text": "Real"}]})
    victim.update({"resourceType": "Patient", "id": victim.address, "name": [{"text": "Real, amended"}]})
    assert victim.read("Patient", victim.address)["name"] == [{"text": "Real, amended"}]
    mallory.grant(clinician.address, ["patient"], expiry=clock.now + timedelta(days=1))
    with pytest.raises(VaultClientError) as refused:
        clinician.read("Patient", victim.address)
    assert refused.value.status == 403
    victim.erase("Patient", victim.address)


def test_a_patient_resource_id_is_the_address_as_the_vault_spells_it(http: TestClient, patient: VaultClient) -> None:
    lower = patient.address.lower()
    plain = {"resourceType": "Patient", "id": lower, "name": [{"text": "Ada"}]}
    _squat_refused(http.put(f"/Patient/{lower}", json=plain, headers=bearer(patient)), patient.address)
    binary = _sealed_patient("not-an-address", patient.keys)
    _squat_refused(http.post("/Patient", json=binary, headers=bearer(patient)), patient.address)
    # Its own address, sealed by hand or plain: accepted.
    created = http.post("/Patient", json=_sealed_patient(patient.address, patient.keys), headers=bearer(patient))
    assert created.status_code == 201
    updated = http.put(f"/Patient/{patient.address}", json={**plain, "id": patient.address}, headers=bearer(patient))
    assert updated.status_code == 200


def test_a_transaction_cannot_file_another_patients_patient_resource(
    http: TestClient, patient: VaultClient, other_patient: VaultClient
) -> None:
    victim, mallory = patient, other_patient
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation(mallory.address), "request": {"method": "POST", "url": "Observation"}},
            {
                "resource": _sealed_patient(victim.address, mallory.keys),
                "request": {"method": "PUT", "url": f"Patient/{victim.address}"},
            },
        ],
    }
    _squat_refused(http.post("/", json=bundle, headers=bearer(mallory)), mallory.address, "Bundle.entry[1]: ")
    assert mallory.search("Observation", [("_count", "0")])["total"] == 0  # all or nothing
    # pchr upload's Bundle (its Patient rebound to the uploader) goes through, whatever the address's case.
    record = assign_patient(synthetic_record(seed=5), victim.address.lower())
    response = victim.transaction(record, patient=victim.address)
    assert any(e["response"]["location"].startswith(f"Patient/{victim.address}/") for e in response["entry"])


# -- authentication -------------------------------------------------------------------------------
def test_missing_token_is_401_with_challenge(http: TestClient) -> None:
    response = http.get("/Observation")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "bearer access token" in outcome(response)


def test_forged_token_is_401(http: TestClient, patient: VaultClient, clock: Clock) -> None:
    forged = jwt.encode(
        {
            "iss": "pchr-vault",
            "sub": patient.address,
            "role": "patient",
            "scope": "patient/*.cruds",
            "exp": int(clock.now.timestamp()) + 300,
        },
        ed25519.Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
    )
    response = http.get("/Observation", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "invalid" in outcome(response)


def test_token_with_alg_none_is_401(http: TestClient, patient: VaultClient) -> None:
    token = jwt.encode(
        {"iss": "pchr-vault", "sub": patient.address, "role": "patient", "scope": "patient/*.cruds", "exp": 4102444800},
        None,
        algorithm="none",
    )
    assert http.get("/Observation", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_expired_token_is_401(http: TestClient, patient: VaultClient, clock: Clock) -> None:
    headers = bearer(patient)
    assert http.get("/Observation", headers=headers).status_code == 200
    clock.advance(minutes=6)
    response = http.get("/Observation", headers=headers)
    assert response.status_code == 401
    assert "expired" in outcome(response)


def _token_request(http: TestClient, assertion: str, scope: str = "patient/*.rs"):
    return http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def test_token_endpoint_issues_scoped_tokens(http: TestClient, patient: VaultClient, clock: Clock) -> None:
    response = _token_request(
        http,
        make_client_assertion(patient.keys, "http://testserver/auth/token", now=clock.now),
        scope="patient/Observation.rs user/*.cruds",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "patient/Observation.rs"  # user/ scopes are not a patient's to hold
    assert response.headers["cache-control"] == "no-store"
    # The narrower token cannot write.
    write = {"Authorization": f"Bearer {body['access_token']}"}
    denied = http.post("/Observation", json=observation(patient.address), headers=write)
    assert denied.status_code == 403
    assert "scopes do not allow create" in outcome(denied)


def test_replayed_assertion_is_refused(http: TestClient, patient: VaultClient, clock: Clock) -> None:
    assertion = make_client_assertion(patient.keys, "http://testserver/auth/token", now=clock.now)
    assert _token_request(http, assertion).status_code == 200
    replay = _token_request(http, assertion)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("case", ["wrong audience", "unregistered", "signed by another key", "expired", "too long"])
def test_bad_assertions_are_refused(http: TestClient, patient: VaultClient, clock: Clock, case: str) -> None:
    keys, audience, now, lifetime = patient.keys, "http://testserver/auth/token", clock.now, 60
    if case == "wrong audience":
        audience = "http://elsewhere/auth/token"
    elif case == "unregistered":
        keys = ActorKeys.generate(Role.PATIENT)
    elif case == "expired":
        now = clock.now.replace(hour=clock.now.hour - 1)
    elif case == "too long":
        lifetime = 3600
    assertion = make_client_assertion(keys, audience, now=now, lifetime=lifetime)
    if case == "signed by another key":
        claims = jwt.decode(assertion, options={"verify_signature": False})
        assertion = jwt.encode(claims, ActorKeys.generate(Role.PATIENT).identity, algorithm="ES256K")
    response = _token_request(http, assertion)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_assertion_for_another_server_is_refused_whatever_the_host_header(
    http: TestClient, patient: VaultClient, clock: Clock
) -> None:
    # Signed by the patient for another service; replayed here with that service's name in Host.
    stolen = make_client_assertion(patient.keys, "http://other-vault.example/auth/token", now=clock.now)
    replay = http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "patient/*.cruds",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": stolen,
        },
        headers={"Host": "other-vault.example"},
    )
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert "access_token" not in replay.json()
    # The Host header changes nothing for an assertion made for this vault either.
    ours = make_client_assertion(patient.keys, "http://testserver/auth/token", now=clock.now)
    form = {
        "grant_type": "client_credentials",
        "scope": "patient/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": ours,
    }
    assert http.post("/auth/token", data=form, headers={"Host": "other-vault.example"}).status_code == 200


def test_links_are_built_on_the_public_url_not_the_host_header(
    http: TestClient, patient: VaultClient, clock: Clock
) -> None:
    for i in range(3):
        patient.create(observation(patient.address, float(i)))
        clock.advance(seconds=1)
    page = http.get("/Observation", params={"_count": "2"}, headers={**bearer(patient), "Host": "evil.example"})
    assert page.status_code == 200
    urls = [link["url"] for link in page.json()["link"]] + [e["fullUrl"] for e in page.json()["entry"]]
    assert urls
    assert all(url.startswith("http://testserver/") for url in urls)
    config = http.get("/.well-known/smart-configuration", headers={"Host": "evil.example"}).json()
    assert config["token_endpoint"] == "http://testserver/auth/token"


@pytest.fixture
def loopback_vault(settings: Settings, vault: Vault) -> FastAPI:
    """A vault served as ``pchr serve`` serves one by default: public URL http://127.0.0.1:8080."""
    return create_app(dataclasses.replace(settings, public_url="http://127.0.0.1:8080"), vault=vault)


@pytest.mark.parametrize("spelling", ["http://127.0.0.1:8080", "http://localhost:8080"])
def test_a_loopback_vault_answers_to_127_0_0_1_and_localhost(
    loopback_vault: FastAPI, spelling: str, clock: Clock
) -> None:
    with TestClient(loopback_vault, base_url=spelling) as http:
        client = VaultClient(http, ActorKeys.generate(Role.PATIENT), clock=clock)
        client.register()
        for i in range(3):
            client.create(observation(client.address, float(i)))
        page = client.search("Observation", [("_count", "2")])
        # Links in the spelling the client used, which its client follows.
        assert all(link["url"].startswith(f"{spelling}/") for link in page["link"])
        assert len(client.everything("Observation", [("_count", "2")])) == 3


@pytest.mark.parametrize("other", ["http://127.0.0.1:8081", "https://127.0.0.1:8080", "http://[::1]:8080"])
def test_a_loopback_vault_refuses_assertions_for_another_port_or_scheme(
    loopback_vault: FastAPI, patient_keys: ActorKeys, clock: Clock, other: str
) -> None:
    with TestClient(loopback_vault, base_url="http://127.0.0.1:8080") as http:
        VaultClient(http, patient_keys, clock=clock).register()
        response = _token_request(http, make_client_assertion(patient_keys, f"{other}/auth/token", now=clock.now))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_vault_without_a_public_url_is_not_built(settings: Settings, vault: Vault) -> None:
    with pytest.raises(ValueError, match="needs its public URL"):
        create_app(dataclasses.replace(settings, public_url=None), vault=vault)


def test_wrong_grant_type_and_unknown_scope(http: TestClient, patient: VaultClient, clock: Clock) -> None:
    assertion = make_client_assertion(patient.keys, "http://testserver/auth/token", now=clock.now)
    response = http.post(
        "/auth/token",
        data={"grant_type": "password", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
    )
    assert response.json()["error"] == "unsupported_grant_type"
    response = _token_request(
        http, make_client_assertion(patient.keys, "http://testserver/auth/token", now=clock.now), scope="system/*.cruds"
    )
    assert response.json()["error"] == "invalid_scope"


def test_registration_rejects_a_forged_binding(http: TestClient) -> None:
    victim, attacker = ActorKeys.generate(Role.PATIENT), ActorKeys.generate(Role.PATIENT)
    record = victim.public().to_json()
    record["x25519Public"] = attacker.x25519_public.hex()
    response = http.post("/auth/register", json=record)
    assert response.status_code == 400
    assert "registration rejected" in outcome(response)


def test_registration_is_idempotent_but_keys_cannot_be_replaced(http: TestClient) -> None:
    keys = ActorKeys.generate(Role.PATIENT)
    assert http.post("/auth/register", json=keys.public().to_json()).status_code == 201
    assert http.post("/auth/register", json=keys.public().to_json()).status_code == 200
    # Same identity, new encryption key: a takeover attempt unless the ledger says otherwise.
    rotated = ActorKeys.from_secrets(Role.PATIENT, keys.identity_secret(), bytes(range(32)))
    response = http.post("/auth/register", json=rotated.public().to_json())
    assert response.status_code == 409


def test_unknown_route_and_method_are_outcomes(http: TestClient, patient: VaultClient) -> None:
    response = http.patch("/Observation/x", headers=bearer(patient))
    assert response.status_code == 405
    outcome(response)


# -- deeply nested JSON -----------------------------------------------------------------------------
# 200 KB of brackets: under the tests' 256 KiB body limit, and far deeper than the C stack survives once py_ecc
# has raised the recursion limit (without the depth check, json.loads kills the whole test process).
DEEP = b"[" * 100_000 + b"]" * 100_000


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize(
    ("path", "authenticated"),
    [("/auth/register", False), ("/Observation", True), ("/", True), ("/consent/grants", True)],
)
def test_json_nested_too_deep_is_400_and_the_vault_keeps_serving(
    http: TestClient, patient: VaultClient, path: str, authenticated: bool
) -> None:
    headers = {"Content-Type": "application/fhir+json", **(bearer(patient) if authenticated else {})}
    response = http.post(path, content=DEEP, headers=headers)
    assert response.status_code == 400
    assert outcome(response).startswith("body is nested deeper than 64 levels of arrays and objects")
    assert http.get("/metadata").status_code == 200
    assert patient.search("Observation")["resourceType"] == "Bundle"


def test_a_deep_value_inside_a_transaction_is_refused_before_parsing(http: TestClient, patient: VaultClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "Basic"}, "resource": {"resourceType": "Basic", "x": 0}}],
    }
    bundle["entry"][0]["resource"]["x"] = _nested(900, 1)
    response = http.post("/", content=json.dumps(bundle).encode(), headers=bearer(patient))
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in outcome(response)


def test_fhir_nesting_well_within_the_limit_is_stored(http: TestClient, patient: VaultClient) -> None:
    item: dict[str, Any] = {"linkId": "leaf", "text": "[[[ not nesting ]]]"}
    for level in range(25):  # 25 levels of items: 52 levels of JSON
        item = {"linkId": f"q{level}", "item": [item]}
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient.address}"},
        "item": [item],
    }
    created = http.post("/QuestionnaireResponse", json=response, headers=bearer(patient))
    assert created.status_code == 201
    stored = patient.read("QuestionnaireResponse", created.headers["location"].split("/")[-3])
    assert stored["item"] == [item]


def test_a_sealed_envelope_nested_too_deep_is_400(http: TestClient, patient: VaultClient) -> None:
    # The envelope inside Binary.data is JSON too, parsed by the vault: 3 MiB of it would fit a 4 MiB body.
    data = base64.b64encode(b"[" * 60_000 + b"]" * 60_000).decode()
    binary = {"resourceType": "Binary", "contentType": "application/pchr-sealed+json", "data": data}
    response = http.post("/Observation", json=binary, headers=bearer(patient))
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in outcome(response)


def _deep_jwt(levels: int) -> str:
    header = base64.urlsafe_b64encode(b"[" * levels + b"]" * levels).rstrip(b"=").decode()
    return f"{header}.e30.c2ln"


@pytest.mark.parametrize("token", [_deep_jwt(65), _deep_jwt(3000), "a" * 9000 + ".e30.c2ln", "e30.e30.e30.e30"])
def test_a_bearer_token_with_deep_or_oversized_json_is_401(http: TestClient, token: str) -> None:
    # PyJWT parses the JOSE header before any signature check: it must never see deep JSON.
    response = http.get("/Observation", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert outcome(response) == "access token is invalid"


@pytest.mark.parametrize("assertion", [_deep_jwt(65), _deep_jwt(3000), "a" * 9000 + ".e30.c2ln"])
def test_a_client_assertion_with_deep_or_oversized_json_is_refused(http: TestClient, assertion: str) -> None:
    response = _token_request(http, assertion)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client assertion rejected (signature, audience, lifetime or registration)",
    }


# -- form bodies ------------------------------------------------------------------------------------
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOO_BIG = "request body is larger than the 262144-byte limit"  # the tests' limit is 256 KiB


def _form_over_the_limit() -> bytes:
    return b"padding=" + b"x" * 300_000 + b"&grant_type=client_credentials"


def test_token_endpoint_refuses_a_form_over_the_body_limit_as_an_oauth_error(http: TestClient) -> None:
    response = http.post("/auth/token", content=_form_over_the_limit(), headers=FORM)
    assert response.status_code == 413
    assert response.json() == {"error": "invalid_request", "error_description": TOO_BIG}
    # Without a Content-Length (chunked), the body is cut off at the limit just the same.
    chunked = http.post("/auth/token", content=iter([b"x" * 100_000] * 3), headers=FORM)
    assert chunked.status_code == 413
    assert chunked.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("kind", "request_args"),
    [
        ("multipart", {"files": {"blob": ("a.bin", b"x")}, "data": {"grant_type": "client_credentials"}}),
        ("json", {"json": {"grant_type": "client_credentials"}}),
        ("no content type", {"content": b"grant_type=client_credentials"}),
    ],
)
def test_token_endpoint_takes_urlencoded_forms_only(http: TestClient, kind: str, request_args: dict[str, Any]) -> None:
    response = http.post("/auth/token", **request_args)
    assert response.status_code == 415
    assert response.json()["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in response.json()["error_description"]


@pytest.mark.parametrize("body", [b"grant_type=\xff", b"grant_type=%ff", b"&".join([b"f=1"] * 1001)])
def test_token_endpoint_refuses_a_malformed_form(http: TestClient, body: bytes) -> None:
    response = http.post("/auth/token", content=body, headers=FORM)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "form body is not UTF-8 application/x-www-form-urlencoded of at most 1000 fields",
    }


def test_search_with_a_form_body(http: TestClient, patient: VaultClient) -> None:
    for value in (1.0, 2.0):
        patient.create(observation(patient.address, value))
    form = b"_count=1&_sort=-_lastUpdated"
    response = http.post("/Observation/_search", content=form, headers={**bearer(patient), **FORM})
    assert response.status_code == 200
    assert (response.json()["total"], len(response.json()["entry"])) == (2, 1)
    # A search with no body at all (the parameters in the URL) needs no Content-Type.
    empty = http.post("/Observation/_search?_count=0", headers=bearer(patient))
    assert empty.status_code == 200
    assert empty.json()["total"] == 2


def test_search_form_over_the_body_limit_is_413(http: TestClient, patient: VaultClient) -> None:
    response = http.post("/Observation/_search", content=_form_over_the_limit(), headers={**bearer(patient), **FORM})
    assert response.status_code == 413
    assert outcome(response) == TOO_BIG
    assert response.json()["issue"][0]["code"] == "too-long"


def test_search_form_must_be_urlencoded(http: TestClient, patient: VaultClient) -> None:
    response = http.post(
        "/Observation/_search", files={"blob": ("a.bin", b"x" * 1000)}, data={"_count": "1"}, headers=bearer(patient)
    )
    assert response.status_code == 415
    expected = "a form body must be application/x-www-form-urlencoded, not 'multipart/form-data'"
    assert outcome(response) == expected
    assert response.json()["issue"][0]["code"] == "not-supported"


# -- parameters that used to be 500s ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/Observation", {"_lastUpdated": "9999"}, "_lastUpdated"),
        ("/Observation", {"_lastUpdated": "ge2026-01-01T00:00:00+24:00"}, "_lastUpdated"),
        ("/Observation", {"_lastUpdated": "0001-01-01T00:00:00+01:00"}, "_lastUpdated"),
        ("/Observation/_history", {"_since": "9999-12-31T23:59:59.9999999Z"}, "_since"),
        ("/Observation/_history", {"_since": "2026-01-01T00:00:00+24:00"}, "_since"),
        ("/Observation", {"_count": "²"}, "_count"),
        ("/Observation", {"_offset": "1" * 5000}, "_offset"),
        ("/Observation/_history", {"_count": "²"}, "_count"),
        ("/Observation/_history", {"_offset": "1" * 5000}, "_offset"),
    ],
)
def test_bad_search_and_history_parameters_are_400_naming_the_parameter(
    http: TestClient, patient: VaultClient, path: str, params: dict[str, str], parameter: str
) -> None:
    response = http.get(path, params=params, headers=bearer(patient))
    assert response.status_code == 400
    assert outcome(response).startswith(f"{parameter} ")
    assert response.json()["issue"][0]["expression"] == [parameter]


def test_a_version_that_is_not_a_fhir_id_is_400(http: TestClient, patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    response = http.get(f"/Observation/{created['id']}/_history/²", headers=bearer(patient))
    assert response.status_code == 400
    assert outcome(response) == "not a valid FHIR versionId"
    assert response.json()["issue"][0]["expression"] == ["versionId"]


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("99999999999999999999", "has no version '9999999999999999'"),
        ("1000000000", "has no version '1000000000'"),
        ("abc", "has no version 'abc'"),
        ("7", "has no version 7"),
    ],
)
def test_a_version_the_resource_cannot_have_is_404(
    http: TestClient, patient: VaultClient, version: str, said: str
) -> None:
    # A well-formed FHIR id that names no version of the resource: 404, like version 7 of a resource that has one.
    created = patient.create(observation(patient.address))
    response = http.get(f"/Observation/{created['id']}/_history/{version}", headers=bearer(patient))
    assert response.status_code == 404
    assert outcome(response) == f"Observation/{created['id']} {said}"


def test_a_content_length_of_thousands_of_digits_is_413(http: TestClient, patient: VaultClient) -> None:
    headers = {**bearer(patient), "Content-Type": "application/fhir+json", "Content-Length": "9" * 5000}
    response = http.post("/Observation", content=b"{}", headers=headers)
    assert response.status_code == 413
    assert outcome(response) == TOO_BIG


def test_a_client_assertion_with_an_exp_that_is_no_time_is_refused(
    http: TestClient, patient: VaultClient, clock: Clock
) -> None:
    for exp in (10**30, "soon"):
        claims = {
            "iss": patient.address,
            "sub": patient.address,
            "aud": "http://testserver/auth/token",
            "exp": exp,
            "jti": f"jti-{exp}"[:20],
        }
        assertion = jwt.encode(claims, patient.keys.identity, algorithm="ES256K", headers={"kid": patient.address})
        response = _token_request(http, assertion)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
