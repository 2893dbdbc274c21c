"""fhirpy, a stock FHIR client, drives the pchr gateway over real sockets; the vault behind it sees only sealed data.

The stack is the one a patient runs: a vault (uvicorn, SQLite) and, on the patient's side, the gateway holding the
patient's keys (uvicorn on loopback). fhirpy talks plain FHIR R4 to the gateway and never learns that the record
is encrypted. Every exchange between the gateway and the vault is recorded on the wire, so the tests can say what
the vault was sent and what it answered: sealed Binaries (and OperationOutcomes), never plaintext.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from ehr._serve import listen, serve_in_thread
from ehr.api import create_app
from ehr.client import VaultClient
from ehr.demo import plaintext_needles, synthetic_record
from ehr.gateway import create_gateway
from ehr.identity import ActorKeys, Role
from ehr.settings import Settings
from ehr.transaction import assign_patient

pytestmark = pytest.mark.integration

SEALED = "application/pchr-sealed+json"
MARKER = "pchr-fhirpy-plaintext-marker"  # a string that must never reach the vault in clear
VALUE = 123.456  # likewise, as a number
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    request: bytes
    status: int
    response: bytes


@dataclass
class Stack:
    fhir: SyncFHIRClient
    patient: VaultClient
    vault_url: str
    gateway_url: str
    wire: list[Exchange] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.patient.address


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    listener = listen()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/vault.db", public_url=listener.url))
    wire: list[Exchange] = []

    def record(response: httpx.Response) -> None:
        response.read()
        request = response.request
        wire.append(Exchange(request.method, request.url.path, request.content, response.status_code, response.content))

    try:
        with serve_in_thread(app, listener=listener) as vault_url:
            patient = VaultClient.connect(vault_url, ActorKeys.generate(Role.PATIENT))
            patient.http.event_hooks = {"request": [], "response": [record]}
            try:
                patient.register()
                with serve_in_thread(create_gateway(patient)) as gateway_url:
                    yield Stack(SyncFHIRClient(gateway_url), patient, vault_url, gateway_url, wire)
            finally:
                patient.http.close()
    finally:
        app.state.vault.store.close()


def observation(address: str, value: float = VALUE, text: str = MARKER) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}], "text": text},
        "subject": {"reference": f"Patient/{address}"},
        "effectiveDateTime": "2026-02-27T08:30:00Z",
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }


def json_value(value: float) -> str:
    """A quantity as it appears in plaintext FHIR JSON (a bare number would match timestamps' fractions)."""
    return f'"value":{json.dumps(value)}'


def is_sealed_binary(resource: Any) -> bool:
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Binary"
        and resource.get("contentType") == SEALED
        and isinstance(resource.get("data"), str)
    )


def assert_vault_saw_only_sealed(stack: Stack, needles: set[str]) -> None:
    """Every FHIR body to and from the vault is a sealed Binary, a Bundle of them, or an OperationOutcome."""
    # /auth, /consent and /ledger carry keys, grant metadata and hashes, not records: checked for leaks only.
    fhir_exchanges = [x for x in stack.wire if not x.path.startswith(("/auth/", "/consent/", "/ledger/"))]
    assert fhir_exchanges, "the gateway never talked to the vault"
    for x in stack.wire:
        for body in (x.request, x.response):
            text = body.decode("utf-8", errors="replace")
            leaked = sorted(n for n in needles if n in text)
            assert not leaked, f"{x.method} {x.path} carried plaintext: {leaked[:3]}"
    for x in fhir_exchanges:
        for raw in (x.request, x.response):
            if not raw:
                continue
            body = json.loads(raw)
            kind = body.get("resourceType")
            if kind == "Bundle":
                resources = [e["resource"] for e in body.get("entry", []) if "resource" in e]
                assert all(is_sealed_binary(r) for r in resources), f"{x.method} {x.path}: unsealed Bundle entry"
            else:
                assert kind == "OperationOutcome" or is_sealed_binary(body), f"{x.method} {x.path}: {kind}"


def fetch_from_vault(stack: Stack, path: str) -> dict[str, Any]:
    """What the vault itself answers to the patient's own token, bypassing the gateway."""
    response = httpx.get(
        f"{stack.vault_url}/{path}",
        headers={"Authorization": f"Bearer {stack.patient.access_token()}", "Accept": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_read_update_vread_and_history(stack: Stack) -> None:
    fhir, address = stack.fhir, stack.address

    # The Patient is created by an update at the patient's own address (PUT Patient/<address>).
    person = fhir.resource("Patient", id=address, name=[{"family": f"{MARKER}-family", "given": ["Ada"]}])
    person.save()
    assert person.id == address
    assert person["meta"]["versionId"] == "1"
    assert fhir.get("Patient", address)["name"][0]["family"] == f"{MARKER}-family"

    # Create: POST /Observation; the gateway assigns the id.
    obs = fhir.resource("Observation", **observation(address))
    obs.save()
    assert obs.id
    assert obs["meta"]["versionId"] == "1"
    obs_id = obs.id

    # Read back, decrypted by the gateway.
    read = fhir.get("Observation", obs_id)
    assert read["resourceType"] == "Observation"
    assert read["id"] == obs_id
    assert read["meta"]["versionId"] == "1"
    assert read["subject"]["reference"] == f"Patient/{address}"
    assert read["valueQuantity"]["value"] == VALUE
    assert read["code"]["text"] == MARKER

    # Update: PUT makes version 2; the read follows it.
    obs["valueQuantity"]["value"] = 6.5
    obs.save()
    assert obs.id == obs_id
    assert obs["meta"]["versionId"] == "2"
    current = fhir.get("Observation", obs_id)
    assert current["meta"]["versionId"] == "2"
    assert current["valueQuantity"]["value"] == 6.5

    # vread: both versions stay readable.
    v1 = fhir.execute(f"Observation/{obs_id}/_history/1", method="get")
    v2 = fhir.execute(f"Observation/{obs_id}/_history/2", method="get")
    assert (v1["meta"]["versionId"], v1["valueQuantity"]["value"]) == ("1", VALUE)
    assert (v2["meta"]["versionId"], v2["valueQuantity"]["value"]) == ("2", 6.5)

    # History: every version, decrypted.
    history = fhir.execute(f"Observation/{obs_id}/_history", method="get")
    assert history["resourceType"] == "Bundle"
    assert history["type"] == "history"
    assert history["total"] == 2
    versions = {e["resource"]["meta"]["versionId"]: e["resource"]["valueQuantity"]["value"] for e in history["entry"]}
    assert versions == {"1": VALUE, "2": 6.5}
    assert all(e["fullUrl"].startswith(stack.gateway_url + "/") for e in history["entry"])
    type_history = fhir.execute("Observation/_history", method="get")
    assert {e["resource"]["meta"]["versionId"] for e in type_history["entry"]} == {"1", "2"}

    # The vault itself holds and serves only a sealed Binary for the same resource.
    sealed = fetch_from_vault(stack, f"Observation/{obs_id}")
    assert is_sealed_binary(sealed)
    assert sealed["id"] == obs_id
    assert sealed["meta"]["versionId"] == "2"
    raw = json.dumps(sealed) + base64.b64decode(sealed["data"]).decode()
    assert MARKER not in raw
    assert '"value":6.5' not in raw.replace(" ", "")
    assert is_sealed_binary(fetch_from_vault(stack, f"Patient/{address}"))

    # Delete: later reads fail as "not found" (410 Gone), and the history records the deletion.
    obs.delete()
    with pytest.raises(ResourceNotFound):
        fhir.get("Observation", obs_id)
    assert fhir.resources("Observation").search(patient=address).fetch() == []
    history = fhir.execute(f"Observation/{obs_id}/_history", method="get")
    assert history["total"] == 3
    assert "DELETE" in {e["request"]["method"] for e in history["entry"]}
    assert_vault_saw_only_sealed(stack, {MARKER, json_value(VALUE), json_value(6.5)})


def test_search_by_patient_pages_through_the_gateway(stack: Stack) -> None:
    fhir, address = stack.fhir, stack.address
    fhir.resource("Patient", id=address, name=[{"family": "Lovelace"}]).save()
    values = [float(n) + 0.25 for n in range(7)]
    ids = set()
    for value in values:
        obs = fhir.resource("Observation", **observation(address, value))
        obs.save()
        ids.add(obs.id)

    search = fhir.resources("Observation").search(patient=address).limit(3)
    first_page = search.fetch_raw()
    assert first_page["total"] == 7
    assert len(first_page["entry"]) == 3
    links = {link["relation"]: link["url"] for link in first_page["link"]}
    assert links["next"].startswith(stack.gateway_url + "/Observation?")  # relinked: not the vault's address

    found = search.fetch_all()
    assert len(found) == 7
    assert {r.id for r in found} == ids
    assert sorted(r["valueQuantity"]["value"] for r in found) == values
    assert all(r["subject"]["reference"] == f"Patient/{address}" for r in found)

    # The reference form of the parameter, and _id, behave the same.
    assert len(fhir.resources("Observation").search(patient=f"Patient/{address}").limit(2).fetch_all()) == 7
    some_id = sorted(ids)[0]
    assert fhir.resources("Observation").search(_id=some_id).get().id == some_id
    assert fhir.resources("Patient").search(_id=address).fetch()[0]["name"][0]["family"] == "Lovelace"
    assert_vault_saw_only_sealed(stack, {MARKER, *(json_value(v) for v in values)})


def _observation_key(resource: dict[str, Any]) -> str:
    """What a user sees of an Observation: its code, time and value(s), independent of ids and references."""
    keep = {k: v for k, v in resource.items() if k.startswith("value") or k in ("code", "component", "status")}
    keep["effective"] = {k: v for k, v in resource.items() if k.startswith("effective")}
    return json.dumps(keep, sort_keys=True)


def test_transaction_bundle_from_carebundle(stack: Stack) -> None:
    fhir, address = stack.fhir, stack.address
    original = synthetic_record(11)
    bundle = assign_patient(original, address)
    expected = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(expected) > 20  # more than one page of 10 below

    response = fhir.execute("", method="post", data=bundle)
    assert response["resourceType"] == "Bundle"
    assert response["type"] == "transaction-response"
    assert len(response["entry"]) == len(bundle["entry"])
    assert all(e["response"]["status"].startswith("201") for e in response["entry"])

    person = fhir.get("Patient", address)
    source_patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert person["name"] == source_patient["name"]
    assert person["birthDate"] == source_patient["birthDate"]

    found = fhir.resources("Observation").search(patient=address).limit(10).fetch_all()
    assert len(found) == len(expected)
    assert all(r["subject"]["reference"] == f"Patient/{address}" for r in found)
    assert Counter(_observation_key(r) for r in found) == Counter(_observation_key(r) for r in expected)
    quantities = sorted(r["valueQuantity"]["value"] for r in found if "valueQuantity" in r)
    assert quantities == sorted(r["valueQuantity"]["value"] for r in expected if "valueQuantity" in r)
    assert quantities

    # The vault never saw the record in clear. (Date-like strings are left out: the vault's own lastUpdated
    # timestamps are metadata and could share a day with a date in the record.)
    needles = {n for n in plaintext_needles(original, min_length=8) if not _ISO_DATE.match(n)}
    assert_vault_saw_only_sealed(stack, needles)


def test_errors_reach_fhirpy_as_fhir_errors(stack: Stack) -> None:
    fhir, address = stack.fhir, stack.address

    with pytest.raises(ResourceNotFound):
        fhir.get("Observation", "00000000-0000-4000-8000-000000000000")
    with pytest.raises(ResourceNotFound):
        fhir.execute("Observation/00000000-0000-4000-8000-000000000000/_history/1", method="get")

    bad = {**observation(address), "effectiveDateTime": "2024-13-45"}
    with pytest.raises(OperationOutcome) as caught:
        fhir.resource("Observation", **bad).save()
    outcome = caught.value.resource
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["code"] == "invalid"
    assert "effectiveDateTime" in outcome["issue"][0].get("diagnostics", "")

    # The same request, seen at the HTTP level: 400 with a FHIR OperationOutcome.
    raw = httpx.post(f"{stack.gateway_url}/Observation", json=bad, headers={"Content-Type": "application/fhir+json"})
    assert raw.status_code == 400
    assert raw.headers["content-type"].startswith("application/fhir+json")
    assert raw.json()["resourceType"] == "OperationOutcome"

    # An interaction the gateway does not offer (PATCH) is refused with a FHIR OperationOutcome too.
    with pytest.raises(OperationOutcome) as caught:
        fhir.patch("Observation", "00000000-0000-4000-8000-000000000000", status="amended")
    assert caught.value.resource["issue"][0]["code"] == "not-supported"
    refused = httpx.patch(f"{stack.gateway_url}/Observation/some-id", json={"status": "amended"})
    assert refused.status_code == 405
    assert refused.json()["resourceType"] == "OperationOutcome"

    # Nothing was stored by the failed create.
    assert fhir.resources("Observation").search(patient=address).fetch() == []


def test_web_pages_in_the_patient_s_browser_cannot_use_the_gateway(stack: Stack) -> None:
    """What a page on any site could make the patient's browser send to 127.0.0.1 is refused, and nothing of the
    record is read or written; fhirpy (above), curl-like clients and a page the gateway itself serves still work."""
    url, port = stack.gateway_url, stack.gateway_url.rsplit(":", 1)[1]
    assert httpx.post(f"{url}/Observation", json=observation(stack.address)).status_code == 201

    def observations() -> int:
        return int(httpx.get(f"{url}/Observation", params={"_summary": "count"}).json()["total"])

    before, wire_before = observations(), len(stack.wire)

    # DNS rebinding: evil.example now resolves to 127.0.0.1, so its script reads the gateway as same-origin.
    rebound = httpx.get(f"{url}/Observation", headers={"Host": f"evil.example:{port}"})
    assert rebound.status_code == 403
    assert rebound.json()["resourceType"] == "OperationOutcome"
    assert "DNS rebinding" in rebound.text
    assert MARKER not in rebound.text
    # A cross-site form on any page: a "simple" request, sent without a preflight.
    forged = json.dumps(observation(stack.address, text="forged by a web page"))
    cross_site = httpx.post(
        f"{url}/Observation", content=forged, headers={"Content-Type": "text/plain", "Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "a web page at 'http://evil.example' may not use this gateway" in cross_site.text
    # The same body from an old browser that sends no Origin: refused for its media type.
    assert httpx.post(f"{url}/Observation", content=forged, headers={"Content-Type": "text/plain"}).status_code == 415
    assert len(stack.wire) == wire_before  # none of it reached the vault
    assert observations() == before

    # A page the gateway served itself (same origin), and a client addressing it as localhost, are served.
    same_origin = httpx.post(f"{url}/Observation", json=observation(stack.address), headers={"Origin": url})
    assert same_origin.status_code == 201
    assert httpx.get(f"http://localhost:{port}/metadata").status_code == 200
