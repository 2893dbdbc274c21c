"""Transaction planning: ids assigned, urn:uuid references resolved, malformed Bundles refused."""

from __future__ import annotations

import itertools

import pytest

from ehr.errors import InvalidRequest
from ehr.transaction import assign_patient, plan_transaction

PATIENT = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


def _ids():
    counter = itertools.count(1)
    return lambda resource_type: f"{resource_type.lower()}-{next(counter)}"


def _no_sealed(_: dict) -> str:
    raise AssertionError("no sealed entries here")


def bundle(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


PAT = {
    "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
    "resource": {"resourceType": "Patient", "id": "local-7"},
    "request": {"method": "POST", "url": "Patient"},
}
OBS = {
    "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
    "resource": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
    },
    "request": {"method": "POST", "url": "Observation"},
}


def test_ids_assigned_and_references_resolved() -> None:
    plan = plan_transaction(bundle(OBS, PAT), _ids(), id_of_sealed=_no_sealed)
    by_type = {e.resource_type: e for e in plan}
    patient_id = by_type["Patient"].resource_id
    assert patient_id.startswith("patient-")
    assert by_type["Observation"].resource["subject"]["reference"] == f"Patient/{patient_id}"
    assert by_type["Observation"].resource["id"] == by_type["Observation"].resource_id


def test_processing_order_is_delete_post_put_but_indices_kept() -> None:
    put = {"resource": {"resourceType": "Patient", "id": "p1"}, "request": {"method": "PUT", "url": "Patient/p1"}}
    delete = {"request": {"method": "DELETE", "url": "Observation/o9"}}
    obs = {
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        "request": {"method": "POST", "url": "Observation"},
    }
    plan = plan_transaction(bundle(put, obs, delete), _ids(), id_of_sealed=_no_sealed)
    assert [e.method for e in plan] == ["DELETE", "POST", "PUT"]
    assert [e.index for e in plan] == [2, 1, 0]


def test_dangling_urn_reference_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not the fullUrl of any entry"):
        plan_transaction(bundle(OBS), _ids(), id_of_sealed=_no_sealed)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(type="batch"), "only Bundles of type 'transaction'"),
        (lambda b: b["entry"][0].pop("request"), "needs a request"),
        (lambda b: b["entry"][0]["request"].update(method="PATCH"), "request.method"),
        (lambda b: b["entry"][0]["request"].update(url="Patient/a/b"), "request.url"),
        (lambda b: b["entry"][0]["request"].update(url="Observation"), "does not match request.url"),
        (lambda b: b["entry"][0]["request"].update(method="PUT", url="Patient/other"), "does not match"),
        (lambda b: b["entry"].append(dict(b["entry"][0])), "duplicate fullUrl|two entries"),
    ],
)
def test_malformed_bundles(mutate, message: str) -> None:
    import copy

    b = bundle(copy.deepcopy(PAT))
    mutate(b)
    with pytest.raises(InvalidRequest, match=message):
        plan_transaction(b, _ids(), id_of_sealed=_no_sealed)


def test_assign_patient_rebinds_the_one_patient() -> None:
    local = {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/local-7"},
        },
        "request": {"method": "POST", "url": "Observation"},
    }
    rebound = assign_patient(bundle(PAT, OBS, local), PATIENT)
    plan = plan_transaction(rebound, _ids(), id_of_sealed=_no_sealed)
    refs = {e.resource["subject"]["reference"] for e in plan if e.resource_type == "Observation"}
    assert refs == {f"Patient/{PATIENT}"}
    (patient_entry,) = [e for e in plan if e.resource_type == "Patient"]
    assert (patient_entry.method, patient_entry.resource_id) == ("PUT", PATIENT)


def test_assign_patient_refuses_two_patients() -> None:
    other = {**PAT, "fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333"}
    with pytest.raises(InvalidRequest, match="more than one Patient"):
        assign_patient(bundle(PAT, other), PATIENT)
