"""Encrypted risk scoring through the vault's API: grants, proofs of consent, the CKKS round trip, every refusal.

One diabetes model (trained into a temporary registry), one clinician CKKS key and one development setup of the
consent circuit serve the whole module: each takes seconds to make.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from consent_chain.entries import AttestEntry
from ehr.api import create_app
from ehr.client import VaultClient, VaultClientError
from ehr.identity import ActorKeys
from ehr.scoring import ScoringClient, grant_scoring
from ehr.service import Vault
from ehr.settings import Settings
from ehr.zk_keys import ConsentKeys, load_or_create_consent_keys
from models.features import DIABETES, FeatureSpec, to_fhir
from models.he import HeClient
from models.recipes import recipe
from models.registry import Registry
from models.service import ScoringService
from models.train import split
from models.trees import margins
from tests.conftest import Clock
from zk.attestation import Attestation
from zk.consent_circuit import model_field

ON = date(2026, 3, 1)
# The database is not what these tests are about (the consent-flow and storage tests cover grants and policies on
# PostgreSQL too); each proof and evaluation takes seconds, so they run once, on SQLite.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def scoring_service(tmp_path_factory: pytest.TempPathFactory) -> ScoringService:
    return ScoringService.from_registry(Registry(tmp_path_factory.mktemp("models")), ["diabetes"])


@pytest.fixture(scope="module")
def he_key() -> HeClient:
    return HeClient()


@pytest.fixture(scope="module")
def consent_keys() -> ConsentKeys:
    return load_or_create_consent_keys(None)


@pytest.fixture(scope="module")
def held_out() -> np.ndarray:
    return split(recipe("diabetes")).x_test


@pytest.fixture
def app_http(
    settings: Settings, vault: Vault, scoring_service: ScoringService, consent_keys: ConsentKeys
) -> Iterator[TestClient]:
    app = create_app(settings, vault=vault, scoring=scoring_service, consent_keys=consent_keys)
    with TestClient(app) as client:
        yield client


def _client(http: TestClient, keys: ActorKeys, clock: Clock) -> VaultClient:
    client = VaultClient(http, keys, clock=clock)
    client.register()
    return client


@pytest.fixture
def alice(app_http: TestClient, patient_keys: ActorKeys, clock: Clock) -> VaultClient:
    return _client(app_http, patient_keys, clock)


@pytest.fixture
def doctor(app_http: TestClient, clinician_keys: ActorKeys, clock: Clock) -> VaultClient:
    return _client(app_http, clinician_keys, clock)


@pytest.fixture
def scorer(doctor: VaultClient, he_key: HeClient, consent_keys: ConsentKeys) -> ScoringClient:
    return ScoringClient(doctor, he=he_key, proving_key=consent_keys.proving_key)


@pytest.fixture
def model(scorer: ScoringClient) -> dict[str, Any]:
    return scorer.model("diabetes")


def _upload_row(patient: VaultClient, row: np.ndarray) -> None:
    resources = to_fhir(DIABETES, row, patient.address, reference_date=ON)
    person, observations = resources[0], resources[1:]
    patient.update({**person, "id": patient.address})
    for obs in observations:
        patient.create(obs)


def _read_grant(patient: VaultClient, doctor: VaultClient, clock: Clock) -> dict[str, Any]:
    return patient.grant(doctor.address, ["patient", "observation"], expiry=clock() + timedelta(days=30))


def _scoring_patient(
    alice: VaultClient,
    doctor: VaultClient,
    model: dict[str, Any],
    clock: Clock,
    row: np.ndarray,
    features: list[str] | None = None,
) -> dict[str, Any]:
    """Alice's record holds ``row``; the doctor may read it and score it (these features): the scoring grant."""
    _upload_row(alice, row)
    _read_grant(alice, doctor, clock)
    return grant_scoring(alice, doctor.address, model, expiry=clock() + timedelta(days=30), features=features)


def _plain_margin(scoring_service: ScoringService, row: np.ndarray) -> float:
    ensemble = scoring_service.model("diabetes").artifact.ensemble
    return float(margins(ensemble, row[None, :])[0])


def test_models_are_described_without_their_trees(app_http: TestClient, scoring_service: ScoringService) -> None:
    listing = app_http.get("/models").json()["models"]
    (entry,) = listing
    served = scoring_service.model("diabetes")
    assert entry["id"] == served.model_id
    assert entry["purpose"] == f"model:{served.model_id}"
    assert [e["key"] for e in entry["catalogue"]["entries"]] == [f.key for f in DIABETES.features]
    assert entry["card"]["metrics"]["auc"] > 0.75
    text = json.dumps(entry)
    for tree_key in ("split_conditions", "base_weights", "booster"):
        assert tree_key not in text
    assert app_http.get(f"/models/{served.model_id}").json()["name"] == "diabetes"
    missing = app_http.get("/models/" + "0" * 64)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_an_encrypted_score_matches_plaintext_xgboost(
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
    scoring_service: ScoringService,
) -> None:
    row = held_out[3]
    grant = _scoring_patient(alice, doctor, model, clock, row)
    assert grant["keysShared"] == 0  # a scoring grant opens no record
    result = scorer.score("diabetes", alice.address, on=ON)
    assert result.used_mask == DIABETES.full_mask
    assert result.missing == ()
    np.testing.assert_allclose(result.features.array(), row)
    reference = _plain_margin(scoring_service, row)
    assert abs(result.margin - reference) <= 5e-3
    assert result.upload_bytes <= 2 * 1024 * 1024
    assert 0.0 < result.probability < 1.0
    # The client's timings, each step on its own: the proof's figure is the proof alone, as the benchmark's is.
    assert set(result.seconds) == {"proving key", "encrypt", "witness", "prove", "round trip", "decrypt"}
    assert all(s > 0 for s in result.seconds.values())


def test_features_outside_the_scoring_grant_are_missing(
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
    scoring_service: ScoringService,
) -> None:
    row = held_out[10]
    allowed = ["glucose-2h-ogtt", "bmi", "age"]
    _scoring_patient(alice, doctor, model, clock, row, allowed)
    result = scorer.score("diabetes", alice.address, on=ON)
    assert result.used == tuple(allowed)
    assert set(result.missing) == {f.key for f in DIABETES.features} - set(allowed)
    masked = np.where([f.key in allowed for f in DIABETES.features], row, np.nan)
    assert abs(result.margin - _plain_margin(scoring_service, masked)) <= 5e-3


def _raw_score(http: TestClient, doctor: VaultClient, model_id: str, **fields: str) -> Any:
    body = {"session": "0" * 64, "grant": "0" * 64, "usedMask": "01", "ciphertext": "AAAA", "attestation": "AAAA"}
    body.update(fields)
    return http.post(
        f"/models/{model_id}/score", json=body, headers={"Authorization": f"Bearer {doctor.access_token()}"}
    )


def _diagnostics(response: Any) -> str:
    assert response.json()["resourceType"] == "OperationOutcome"
    return str(response.json()["issue"][0]["diagnostics"])


def _proved(
    scorer: ScoringClient, grant: dict[str, Any], model_id: str, mask: int, ciphertext: bytes
) -> dict[str, str]:
    """The fields of a score request with a real proof of consent for ``ciphertext``."""
    session = scorer.open_session()
    attestation = scorer.prove(grant, model_id, mask, session, ciphertext)
    return {
        "session": session,
        "grant": grant["grantId"],
        "usedMask": format(mask, "016x"),
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "attestation": base64.b64encode(attestation.to_bytes()).decode(),
    }


def test_each_score_leaves_an_attest_entry_that_audits_clean(
    app_http: TestClient,
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
) -> None:
    _scoring_patient(alice, doctor, model, clock, held_out[5])
    result = scorer.score("diabetes", alice.address, on=ON)
    audit = app_http.get("/ledger/attestations").json()
    (finding,) = audit["attestations"]
    assert finding["entryIndex"] == result.attest_entry
    assert finding["verified"] is True
    assert finding["model"] == model["id"]
    assert finding["grantee"] == doctor.address
    assert finding["usedMask"] == format(result.used_mask, "016x")
    assert audit["verified"] == 1

    # Entries nobody could have proved are named by the audit: a narrower mask under a proof made for all seven
    # features, and an entry whose fields are not its attestation's.
    a = result.attestation
    wider = Attestation(a.model_id, dataclasses.replace(a.statement, used_mask=0x3F), a.proof)
    s = a.statement
    ledger = app_http.app.state.consents.ledger  # type: ignore[attr-defined]
    ledger.append(
        [
            AttestEntry(s.request_hash, model_field(a.model_id), s.root, wider.to_bytes()),
            AttestEntry(s.request_hash + 1, model_field(a.model_id), s.root, a.to_bytes()),
        ]
    )
    audit = app_http.get("/ledger/attestations").json()
    assert [f["verified"] for f in audit["attestations"]] == [True, False, False]
    assert "invalid proof" in audit["attestations"][1]["problem"]
    assert "not its attestation's" in audit["attestations"][2]["problem"]
    described = app_http.get("/zk").json()
    assert described["setup"] == "development"
    assert (described["circuit"], described["constraints"]) == ("pchr-consent-v2", 3890)
    assert app_http.get("/zk/verifying-key").json()["nPublic"] == 7


def test_a_request_is_scored_once(
    app_http: TestClient,
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
    scoring_service: ScoringService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same request (proof, ciphertext, session) sent again within the window is refused before any homomorphic
    work, and leaves no second ATTEST entry."""
    grant = _scoring_patient(alice, doctor, model, clock, held_out[7])
    vector = scorer.features(alice.address, model, int(grant["scope"], 16), on=ON)
    ciphertext = scorer.he.encrypt(FeatureSpec.from_json(model["spec"]).unit(vector.array())[0])
    fields = _proved(scorer, grant, model["id"], vector.used_mask, ciphertext)
    first = _raw_score(app_http, doctor, model["id"], **fields)
    assert first.status_code == 200, first.text
    index = first.json()["attestation"]["entryIndex"]

    def evaluate(*args: object) -> bytes:
        raise AssertionError("a request already scored was evaluated again")

    monkeypatch.setattr(scoring_service, "score", evaluate)
    clock.advance(seconds=60)
    again = _raw_score(app_http, doctor, model["id"], **fields)
    assert again.status_code == 409
    assert _diagnostics(again) == f"this request was already scored (ATTEST entry {index}): a request is scored once"
    ledger = app_http.app.state.consents.ledger  # type: ignore[attr-defined]
    assert ledger.size() == index + 1
    assert ledger.attestation_entry(int(first.json()["attestation"]["requestHash"], 16)) == index


def test_a_request_is_refused_before_any_work_unless_its_proof_and_grant_hold(
    app_http: TestClient,
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
) -> None:
    model_id = model["id"]
    # No attestation that parses: 400, whatever else the request holds.
    assert _raw_score(app_http, doctor, model_id).status_code == 400

    read = _read_grant(alice, doctor, clock)
    grant = grant_scoring(
        alice, doctor.address, model, expiry=clock() + timedelta(days=1), features=["glucose-2h-ogtt"]
    )
    fields = _proved(scorer, grant, model_id, 0b1, b"any ciphertext bytes")

    # The proof is bound to its request: another ciphertext, mask or grantee is refused before evaluation.
    other = _raw_score(app_http, doctor, model_id, **{**fields, "ciphertext": base64.b64encode(b"x").decode()})
    assert other.status_code == 403
    assert "request hash mismatch" in _diagnostics(other)
    wider = _raw_score(app_http, doctor, model_id, **{**fields, "usedMask": "03"})
    assert wider.status_code == 403
    assert "another model or another used-feature mask" in _diagnostics(wider)
    # A valid proof, but the grant the request names is a read grant: the vault's own record refuses it.
    wrong_purpose = _raw_score(app_http, doctor, model_id, **{**fields, "grant": read["grantId"]})
    assert wrong_purpose.status_code == 403
    assert "purpose" in _diagnostics(wrong_purpose)

    # Everything holds: the request goes on to evaluation, which finds the ciphertext is no CKKS query (400).
    garbage = _raw_score(app_http, doctor, model_id, **fields)
    assert garbage.status_code == 400
    assert "does not fit" in _diagnostics(garbage)

    # Later than the window: the proof's t is too old, and the grant has expired anyway.
    clock.advance(days=2)
    late = _raw_score(app_http, doctor, model_id, **fields)
    assert late.status_code == 403
    assert "time outside the window" in _diagnostics(late)
    with pytest.raises(VaultClientError) as expired:
        scorer.prove(grant, model_id, 0b1, fields["session"], b"any ciphertext bytes")
    assert expired.value.status == 403


def test_after_a_revocation_no_proof_is_possible_and_old_proofs_are_stale(
    app_http: TestClient,
    alice: VaultClient,
    doctor: VaultClient,
    scorer: ScoringClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
) -> None:
    grant = _scoring_patient(alice, doctor, model, clock, held_out[0])
    old = _proved(scorer, grant, model["id"], DIABETES.full_mask, b"a request made before the revocation")
    alice.revoke(grant["grantId"])
    with pytest.raises(VaultClientError) as refused:
        scorer.score("diabetes", alice.address, grant_id=grant["grantId"], on=ON)
    assert refused.value.status == 403
    assert "no proof of consent is possible" in refused.value.message
    stale = _raw_score(app_http, doctor, model["id"], **old)
    assert stale.status_code == 403
    assert "stale grant root: the root is from before a revocation" in _diagnostics(stale)


class _OldShapePaths(VaultClient):
    """A client whose vault serves membership paths in the shape of an earlier pchr: one sibling a level."""

    def get_json(self, path: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        doc = super().get_json(path, params)
        if path.endswith("/path"):
            doc["siblings"] = [level[0] for level in doc["siblings"]]
        return doc


def test_a_malformed_membership_path_from_the_vault_is_a_clear_error(
    app_http: TestClient,
    alice: VaultClient,
    doctor: VaultClient,
    model: dict[str, Any],
    clock: Clock,
    held_out: np.ndarray,
    clinician_keys: ActorKeys,
    he_key: HeClient,
    consent_keys: ConsentKeys,
) -> None:
    grant = _scoring_patient(alice, doctor, model, clock, held_out[0])
    scorer = ScoringClient(_OldShapePaths(app_http, clinician_keys, clock=clock), he=he_key,
                           proving_key=consent_keys.proving_key)  # fmt: skip
    with pytest.raises(VaultClientError) as caught:
        scorer.prove(grant, model["id"], DIABETES.full_mask, "0" * 64, b"any ciphertext bytes")
    assert caught.value.status == 502
    assert "the vault answered a malformed grant path" in caught.value.message


def test_bad_scoring_requests_get_clear_4xx(
    app_http: TestClient, alice: VaultClient, doctor: VaultClient, scorer: ScoringClient, model: dict[str, Any]
) -> None:
    ok = {"session": scorer.open_session()}
    assert _raw_score(app_http, doctor, model["id"], **ok, ciphertext="not base64!").status_code == 400
    too_wide = _raw_score(app_http, doctor, model["id"], **ok, usedMask="ff")
    assert too_wide.status_code == 422
    assert "does not fit" in _diagnostics(too_wide)
    assert _raw_score(app_http, doctor, model["id"], **ok, usedMask="xyz").status_code == 400
    assert _raw_score(app_http, doctor, model["id"], **{**ok, "grant": "abc"}).status_code == 400
    assert _raw_score(app_http, doctor, model["id"], **{**ok, "session": "abc"}).status_code == 400
    assert _raw_score(app_http, doctor, "0" * 64, **ok).status_code == 404
    assert _raw_score(app_http, alice, model["id"], **ok).status_code == 403  # patients do not request scores

    headers = {"Authorization": f"Bearer {doctor.access_token()}", "Content-Type": "application/octet-stream"}
    not_keys = app_http.post("/models/sessions", content=b"pchr? no", headers=headers)
    assert not_keys.status_code == 400
    assert "evaluation context" in _diagnostics(not_keys)


def test_scoring_grants_are_checked_when_given(
    app_http: TestClient, alice: VaultClient, doctor: VaultClient, model: dict[str, Any], clock: Clock
) -> None:
    unknown = {**model, "purpose": "model:" + "ab" * 32}
    with pytest.raises(VaultClientError) as refused:
        grant_scoring(alice, doctor.address, unknown, expiry=clock() + timedelta(days=1))
    assert refused.value.status == 422
    assert "does not score" in refused.value.message

    grant = grant_scoring(alice, doctor.address, model, expiry=clock() + timedelta(days=1))
    shares = app_http.post(
        f"/consent/grants/{grant['grantId']}/keys",
        json={"keys": []},
        headers={"Authorization": f"Bearer {alice.access_token()}"},
    )
    assert shares.status_code == 403
    assert "opens no record" in shares.json()["issue"][0]["diagnostics"]


def test_a_session_belongs_to_the_clinician_who_opened_it(
    scoring_service: ScoringService, he_key: HeClient, tmp_path: Path
) -> None:
    session = scoring_service.open_session("0xdoctor", he_key.public_context())
    assert scoring_service.session("0xdoctor", session.session_id).size == session.size
    from models.errors import SessionError

    with pytest.raises(SessionError):
        scoring_service.session("0xsomeone-else", session.session_id)
    scoring_service.close_session("0xdoctor", session.session_id)
    with pytest.raises(SessionError):
        scoring_service.session("0xdoctor", session.session_id)
