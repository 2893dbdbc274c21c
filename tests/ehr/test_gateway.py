"""The local gateway's refusals of bodies it must not parse: deep JSON, bodies over its limit, non-form searches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ehr.client import VaultClient
from ehr.gateway import create_gateway
from tests.conftest import observation

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def gateway(patient: VaultClient) -> Iterator[TestClient]:
    # Addressed to loopback, as a FHIR client on the patient's machine would: the guard refuses other names.
    with TestClient(create_gateway(patient), base_url="http://127.0.0.1:8081") as client:
        yield client


def diagnostics(response) -> str:
    assert response.json()["resourceType"] == "OperationOutcome"
    return response.json()["issue"][0]["diagnostics"]


def test_deep_json_is_400_and_the_gateway_keeps_serving(gateway: TestClient) -> None:
    response = gateway.post("/Observation", content=b"[" * 100_000 + b"]" * 100_000, headers=FHIR)
    assert response.status_code == 400
    assert diagnostics(response).startswith("body is nested deeper than 64 levels")
    assert gateway.get("/metadata").status_code == 200


def test_a_body_over_the_limit_is_413_before_it_is_read_whole(gateway: TestClient) -> None:
    response = gateway.post("/Observation", content=b" " * (4 * 1024 * 1024 + 1), headers=FHIR)
    assert response.status_code == 413
    assert diagnostics(response) == "request body is larger than the 4194304-byte limit"


def test_search_takes_a_urlencoded_form_only(gateway: TestClient, patient: VaultClient) -> None:
    patient.create(observation(patient.address))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    found = gateway.post("/Observation/_search", content=b"_count=0", headers=form)
    assert found.status_code == 200
    assert found.json()["total"] == 1
    refused = gateway.post("/Observation/_search", files={"blob": ("a.bin", b"x")}, data={"_count": "0"})
    assert refused.status_code == 415
    assert diagnostics(refused).startswith("a form body must be application/x-www-form-urlencoded")


@pytest.mark.parametrize("etag", ['W/"99999999999999999999"', 'W/"one"'])
def test_an_if_match_that_is_no_version_is_400(gateway: TestClient, patient: VaultClient, etag: str) -> None:
    created = patient.create(observation(patient.address))
    body = {**created, "status": "amended"}
    response = gateway.put(f"/Observation/{created['id']}", json=body, headers={**FHIR, "If-Match": etag})
    assert response.status_code == 400
    assert diagnostics(response) == f"not a version ETag: {etag[:20]!r}"
