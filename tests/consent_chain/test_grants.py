"""Grants: Consent round trips, commitments, and the published scope catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.consent import Consent

from consent_chain.catalogue import read_catalogue
from consent_chain.errors import GrantError
from consent_chain.grants import Grant, address_field, purpose_field
from ehr.identity import ActorKeys, Role
from zk.poseidon import BN254_R, poseidon

PATIENT = ActorKeys.generate(Role.PATIENT).address
CLINICIAN = ActorKeys.generate(Role.CLINICIAN).address
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CAT = read_catalogue()


def _rng():
    counter = iter(range(1, 10_000))
    return lambda n: bytes([next(counter) % 256]) * n


def grant(**changes) -> Grant:
    g = Grant.new(
        PATIENT, CLINICIAN, "TREAT", CAT.mask(["laboratory", "conditions"]), NOW + timedelta(days=30), CAT, rng=_rng()
    )
    return Grant(**{**g.__dict__, **changes}) if changes else g


def test_commitment_is_poseidon_of_the_five_fields() -> None:
    g = grant()
    expected = poseidon([int(CLINICIAN, 16), purpose_field("TREAT"), g.scope, int(g.expiry.timestamp()), g.salt])
    assert g.commitment() == expected
    assert 0 <= g.commitment() < BN254_R


@pytest.mark.parametrize(
    "change",
    [{"grantee": PATIENT}, {"purpose": "HRESCH"}, {"scope": 1}, {"salt": 7}, {"expiry": NOW + timedelta(days=31)}],
)
def test_every_field_changes_the_commitment(change: dict) -> None:
    assert grant(**change).commitment() != grant().commitment()


def test_consent_is_valid_fhir_and_round_trips() -> None:
    g = grant()
    consent = g.to_consent(CAT, issued=NOW)
    Consent.model_validate(consent)
    assert Grant.from_consent(consent, CAT) == g
    assert {c["code"] for c in consent["provision"]["class"]} == {"laboratory", "Condition"}


def test_code_scopes_become_provision_codes() -> None:
    g = grant(scope=CAT.mask(["hba1c", "glucose"]))
    consent = g.to_consent(CAT, issued=NOW)
    Consent.model_validate(consent)
    assert "class" not in consent["provision"]
    assert Grant.from_consent(consent, CAT).scope == g.scope


def test_model_purpose_round_trips() -> None:
    g = grant(purpose="model:" + "ab" * 32)
    assert Grant.from_consent(g.to_consent(CAT, issued=NOW), CAT) == g
    assert purpose_field(g.purpose) == int("ab" * 32, 16) % BN254_R


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(status="inactive"), "active"),
        (lambda c: c["provision"].update(type="deny"), "permit"),
        (lambda c: c["provision"]["class"].append({"system": "urn:x", "code": "y"}), "not in pchr-read-v1"),
        (lambda c: c.update(policy=[{"uri": "urn:pchr:scope-catalogue:other"}]), "catalogue"),
        (lambda c: c["provision"].pop("period"), "not a pchr grant"),
    ],
)
def test_consents_that_are_not_grants(mutate, message: str) -> None:
    consent = grant().to_consent(CAT, issued=NOW)
    mutate(consent)
    with pytest.raises(GrantError, match=message):
        Grant.from_consent(consent, CAT)


def test_new_grant_refuses_empty_or_unknown_scope() -> None:
    with pytest.raises(GrantError, match="empty"):
        Grant.new(PATIENT, CLINICIAN, "TREAT", 0, NOW, CAT)
    with pytest.raises(GrantError, match="does not define"):
        Grant.new(PATIENT, CLINICIAN, "TREAT", 1 << 63, NOW, CAT)
    with pytest.raises(GrantError, match="purpose"):
        Grant.new(PATIENT, CLINICIAN, "SELLDATA", 1, NOW, CAT)


def test_catalogue_matching() -> None:
    lab = {
        "resourceType": "Observation",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
    }
    vital = {
        "resourceType": "Observation",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    }
    assert CAT.covers(CAT.mask(["laboratory"]), lab)
    assert not CAT.covers(CAT.mask(["laboratory"]), vital)
    assert CAT.covers(CAT.mask(["hba1c"]), lab)
    assert CAT.covers(CAT.mask(["observation"]), vital)
    assert not CAT.covers(CAT.mask(["conditions"]), lab)
    assert CAT.type_mask("Observation") & CAT.mask(["hba1c", "vital-signs"]) == CAT.mask(["hba1c", "vital-signs"])
    assert CAT.type_mask("Condition") == CAT.mask(["conditions"])


def test_address_field_is_below_r() -> None:
    assert address_field("0x" + "ff" * 20) == 2**160 - 1 < BN254_R


def test_wire_form_round_trips() -> None:
    g = grant()
    assert Grant.from_json(g.to_json()) == g


@pytest.mark.parametrize("bad", [[], {"grantId": "zz"}, {**grant().to_json(), "scope": "nothex"}])
def test_wire_form_refuses_garbage(bad) -> None:
    with pytest.raises(GrantError):
        Grant.from_json(bad)
