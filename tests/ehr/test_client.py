"""The client SDK against a vault that misbehaves: substituted keys and tampered payloads are refused."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from ehr.client import VaultClient, VaultClientError
from ehr.crypto import SealContext, seal
from ehr.envelope import Envelope
from ehr.identity import ActorKeys, Role
from tests.conftest import observation


def test_client_refuses_a_substituted_patient_key(patient: VaultClient, clinician: VaultClient) -> None:
    """A vault that hands a writer its own encryption key instead of the patient's is caught."""
    patient.add_writer(clinician.address)
    mallory = ActorKeys.generate(Role.PATIENT)
    real_get = clinician.get_json

    def lying_get(path: str, params=None):
        record = real_get(path, params)
        if path.startswith("/auth/actors/"):
            record = {**record, "x25519Public": mallory.x25519_public.hex()}
        return record

    clinician.get_json = lying_get  # type: ignore[method-assign]
    with pytest.raises(VaultClientError, match="does not verify"):
        clinician.create(observation(patient.address))


def test_client_refuses_a_tampered_payload(patient: VaultClient) -> None:
    created = patient.create(observation(patient.address))
    binary = patient.get_json(f"/Observation/{created['id']}")
    envelope = json.loads(base64.b64decode(binary["data"]))
    raw = bytearray(base64.urlsafe_b64decode(envelope["ciphertext"] + "=="))
    raw[5] ^= 0x80
    envelope["ciphertext"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    binary["data"] = base64.b64encode(json.dumps(envelope).encode()).decode()
    with pytest.raises(VaultClientError, match="failed authentication"):
        patient.open_binary(binary)


def test_client_refuses_a_payload_relabelled_as_another_resource(patient: VaultClient) -> None:
    a = patient.create(observation(patient.address, 1.0))
    b = patient.create(observation(patient.address, 2.0))
    binary = patient.get_json(f"/Observation/{a['id']}")
    envelope = json.loads(base64.b64decode(binary["data"]))
    envelope["id"] = b["id"]  # the vault swaps which resource this ciphertext claims to be
    binary["data"] = base64.b64encode(json.dumps(envelope).encode()).decode()
    with pytest.raises(VaultClientError, match="failed authentication"):
        patient.open_binary(binary)


def test_paging_links_must_point_at_the_vault(patient: VaultClient) -> None:
    with pytest.raises(VaultClientError, match="does not point at this vault"):
        patient.follow("http://evil.example/Observation?_offset=20")


def test_refusals_carry_status_and_outcome(patient: VaultClient) -> None:
    with pytest.raises(VaultClientError) as refused:
        patient.read("Observation", "does-not-exist")
    assert refused.value.status == 404
    assert refused.value.body["resourceType"] == "OperationOutcome"


def test_tokens_are_reused_until_near_expiry(patient: VaultClient, clock) -> None:
    first = patient.access_token()
    assert patient.access_token() == first
    clock.advance(minutes=4, seconds=40)
    assert patient.access_token() != first


def test_unreachable_vault_is_a_clear_error() -> None:
    client = VaultClient(httpx.Client(base_url="http://127.0.0.1:9"), ActorKeys.generate(Role.PATIENT))
    with pytest.raises(httpx.ConnectError):
        client.register()


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_client_refuses_a_sealed_resource_nested_too_deep(patient: VaultClient) -> None:
    # Any named writer can seal anything for the patient, and the vault cannot look inside: opening this used to
    # overflow the C stack of the patient's own gateway (py_ecc raises the recursion limit) and kill it.
    context = SealContext("Observation", "deep", "1", patient.address)
    sealed, key = seal(DEEP, context, patient.address, patient.keys.public().encryption_key())
    binary = Envelope(sealed, key).to_binary("2026-03-01T09:00:00Z")
    with pytest.raises(VaultClientError, match="nested deeper than 64 levels") as refused:
        patient.open_binary(binary)
    assert refused.value.status == 502


@pytest.mark.parametrize("answer", [DEEP, b"[1, 2]", b"{not json"], ids=["deep", "not an object", "not JSON"])
def test_client_refuses_an_unusable_answer_from_the_vault(answer: bytes) -> None:
    vault = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    client = VaultClient(httpx.Client(transport=vault, base_url="http://vault"), ActorKeys.generate(Role.PATIENT))
    with pytest.raises(VaultClientError, match="the vault's answer is not") as refused:
        client.register()
    assert refused.value.status == 502


@pytest.mark.parametrize("etag", ['W/"²"', 'W/"٣"', 'W/"99999999999999999999"'])
def test_update_refuses_an_if_match_that_is_no_version(patient: VaultClient, etag: str) -> None:
    # "²" passed str.isdigit() and then failed int() (a ValueError, a 500 from the gateway that relays If-Match).
    created = patient.create(observation(patient.address))
    with pytest.raises(VaultClientError, match="not a version ETag") as refused:
        patient.update({**created, "status": "amended"}, if_match=etag)
    assert refused.value.status == 400
