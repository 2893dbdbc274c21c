"""Grants: a FHIR R4B ``Consent`` as a typed grant, and its Poseidon commitment.

A grant says: *patient* lets *grantee* use the resources in *scope* for *purpose* until *expiry*.
As a FHIR ``Consent`` (https://hl7.org/fhir/R4B/consent.html) that is ``patient``, ``provision.actor`` (the
grantee, role IRCP "information recipient"), ``provision.purpose``, ``provision.class``/``provision.code``
(the scope, over a published :mod:`catalogue <consent_chain.catalogue>`) and ``provision.period.end``.

Its **commitment** (DESIGN.md section 4) is one BN254 field element::

    Poseidon(grantee, purpose, scope, expiry, salt)

with the grantee's address as an integer (160 bits, below r), the purpose as a field element (a model id is
its hash reduced mod r; a PurposeOfUse code is SHA-256("pchr-purpose:" || code) mod r), the 64-bit scope mask,
the expiry in Unix seconds, and a random salt only the grant's parties know, so that the commitment on the
ledger reveals nothing about the grant. It is both the ledger's hashed entry and the leaf of the ZK grant tree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consent_chain.catalogue import ScopeCatalogue
from consent_chain.errors import GrantError
from ehr.identity import normalize_address
from zk.poseidon import BN254_R, poseidon

__all__ = [
    "MODEL_PURPOSE_SYSTEM",
    "PURPOSE_SYSTEM",
    "Grant",
    "address_field",
    "purpose_field",
]

PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
MODEL_PURPOSE_SYSTEM = "urn:pchr:model"  # purpose = a model id (the model artifact's hash, hex)
CATALOGUE_SYSTEM = "urn:pchr:scope-catalogue"
GRANT_ID_SYSTEM = "urn:pchr:grant-id"
ACTOR_SYSTEM = "urn:pchr:address"
# Purposes a read grant may name (HL7 v3 PurposeOfUse, a subset).
READ_PURPOSES = ("TREAT", "ETREAT", "CAREMGT", "HPAYMT", "HRESCH", "PATRQT", "FAMRQT")

Rng = Callable[[int], bytes]


def address_field(address: str) -> int:
    """An address as a field element (20 bytes, always below r)."""
    return int(normalize_address(address), 16)


def purpose_field(purpose: str) -> int:
    """A purpose as a field element: ``model:<hex id>`` is the id mod r; a PurposeOfUse code is hashed."""
    if purpose.startswith("model:"):
        return int(purpose[len("model:") :], 16) % BN254_R
    return int.from_bytes(hashlib.sha256(b"pchr-purpose:" + purpose.encode()).digest(), "big") % BN254_R


def _unix(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise GrantError("grant times must carry a time zone")
    return int(dt.timestamp())


@dataclass(frozen=True)
class Grant:
    """A grant's plaintext: known to the patient and the grantee, never written to the ledger."""

    grant_id: bytes
    patient: str
    grantee: str
    purpose: str  # a PurposeOfUse code ("TREAT") or "model:<hex model id>"
    scope: int
    expiry: datetime
    salt: int
    catalogue_id: str

    def __post_init__(self) -> None:
        if len(self.grant_id) != 32:
            raise GrantError("a grant id is 32 bytes")
        if not 0 <= self.scope < 1 << 64:
            raise GrantError("a scope is a 64-bit mask")
        if not 0 <= self.salt < BN254_R:
            raise GrantError("the salt must be a field element")
        if not self.purpose.startswith("model:") and self.purpose not in READ_PURPOSES:
            raise GrantError(f"purpose must be a model id or one of {', '.join(READ_PURPOSES)}")
        if self.purpose.startswith("model:"):
            try:
                int(self.purpose[len("model:") :], 16)
            except ValueError:
                raise GrantError("a model purpose is model:<hex id>") from None
        try:
            object.__setattr__(self, "patient", normalize_address(self.patient))
            object.__setattr__(self, "grantee", normalize_address(self.grantee))
        except ValueError as exc:
            raise GrantError(str(exc)) from exc
        _unix(self.expiry)

    @classmethod
    def new(
        cls,
        patient: str,
        grantee: str,
        purpose: str,
        scope: int,
        expiry: datetime,
        catalogue: ScopeCatalogue,
        *,
        rng: Rng = os.urandom,
    ) -> Grant:
        """A fresh grant with a random id and salt; the scope must only set bits the catalogue defines."""
        try:
            catalogue.granted(scope)
        except ValueError as exc:
            raise GrantError(str(exc)) from exc
        if scope == 0:
            raise GrantError("a grant must grant something (empty scope)")
        salt = int.from_bytes(rng(32), "big") % BN254_R
        return cls(rng(32), patient, grantee, purpose, scope, expiry, salt, catalogue.catalogue_id)

    @property
    def expiry_unix(self) -> int:
        return _unix(self.expiry)

    def commitment(self) -> int:
        """Poseidon(grantee, purpose, scope, expiry, salt): the ledger entry and the ZK tree leaf."""
        return poseidon(
            [address_field(self.grantee), purpose_field(self.purpose), self.scope, self.expiry_unix, self.salt]
        )

    def active_at(self, when: datetime) -> bool:
        return _unix(when) < self.expiry_unix

    # -- wire form (the opening a patient gives the vault and the grantee) ---------------------------
    def to_json(self) -> dict[str, str]:
        return {
            "grantId": self.grant_id.hex(),
            "patient": self.patient,
            "grantee": self.grantee,
            "purpose": self.purpose,
            "scope": format(self.scope, "016x"),
            "expiry": _instant(self.expiry),
            "salt": format(self.salt, "x"),
            "catalogue": self.catalogue_id,
        }

    @classmethod
    def from_json(cls, data: object) -> Grant:
        if not isinstance(data, Mapping):
            raise GrantError("a grant is a JSON object")
        try:
            return cls(
                bytes.fromhex(str(data["grantId"])),
                str(data["patient"]),
                str(data["grantee"]),
                str(data["purpose"]),
                int(str(data["scope"]), 16),
                datetime.fromisoformat(str(data["expiry"]).replace("Z", "+00:00")),
                int(str(data["salt"]), 16),
                str(data["catalogue"]),
            )
        except (KeyError, ValueError) as exc:
            raise GrantError(f"malformed grant: {exc}") from exc

    # -- FHIR Consent -----------------------------------------------------------------------------
    def to_consent(self, catalogue: ScopeCatalogue, *, issued: datetime) -> dict[str, Any]:
        """The grant as a FHIR R4B Consent (the patient keeps it, sealed, in their record)."""
        granted = catalogue.granted(self.scope)
        classes = [c.to_json() for e in granted if (c := e.provision_class()) is not None]
        codes = [{"coding": [e.code.to_json()], "text": e.title} for e in granted if e.code is not None]
        if self.purpose.startswith("model:"):
            purpose = {"system": MODEL_PURPOSE_SYSTEM, "code": self.purpose[len("model:") :]}
        else:
            purpose = {"system": PURPOSE_SYSTEM, "code": self.purpose}
        provision: dict[str, Any] = {
            "type": "permit",
            "period": {"start": _instant(issued), "end": _instant(self.expiry)},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
                        ]
                    },
                    "reference": {
                        "type": "Practitioner",
                        "identifier": {"system": ACTOR_SYSTEM, "value": self.grantee},
                    },
                }
            ],
            "purpose": [purpose],
        }
        if classes:
            provision["class"] = classes
        if codes:
            provision["code"] = codes
        return {
            "resourceType": "Consent",
            "status": "active",
            "identifier": [{"system": GRANT_ID_SYSTEM, "value": self.grant_id.hex()}],
            "scope": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{self.patient}"},
            "dateTime": _instant(issued),
            "policy": [{"uri": f"{CATALOGUE_SYSTEM}:{self.catalogue_id}"}],
            "provision": provision,
            "extension": [{"url": "urn:pchr:grant-salt", "valueString": format(self.salt, "x")}],
        }

    @classmethod
    def from_consent(cls, consent: Mapping[str, Any], catalogue: ScopeCatalogue) -> Grant:
        """Parse a Consent made by :meth:`to_consent` (or by any FHIR tool following the same profile)."""
        try:
            if consent.get("resourceType") != "Consent":
                raise GrantError("not a Consent")
            if consent.get("status") != "active":
                raise GrantError("only an active Consent is a grant")
            grant_id = next(
                bytes.fromhex(i["value"]) for i in consent["identifier"] if i.get("system") == GRANT_ID_SYSTEM
            )
            policy = consent["policy"][0]["uri"]
            if policy != f"{CATALOGUE_SYSTEM}:{catalogue.catalogue_id}":
                raise GrantError(f"Consent uses catalogue {policy!r}, not {catalogue.catalogue_id}")
            provision = consent["provision"]
            if provision.get("type") != "permit":
                raise GrantError("only a permit provision is a grant")
            (actor,) = provision["actor"]
            identifier = actor["reference"]["identifier"]
            if identifier.get("system") != ACTOR_SYSTEM:
                raise GrantError("the grantee must be identified by a pchr address")
            (purpose_coding,) = provision["purpose"]
            if purpose_coding.get("system") == MODEL_PURPOSE_SYSTEM:
                purpose = f"model:{purpose_coding['code']}"
            elif purpose_coding.get("system") == PURPOSE_SYSTEM:
                purpose = str(purpose_coding["code"])
            else:
                raise GrantError("unknown purpose system")
            scope = catalogue.from_provision(provision.get("class", []), provision.get("code", []))
            expiry = datetime.fromisoformat(provision["period"]["end"].replace("Z", "+00:00"))
            salt = next(int(e["valueString"], 16) for e in consent["extension"] if e["url"] == "urn:pchr:grant-salt")
            patient = str(consent["patient"]["reference"]).removeprefix("Patient/")
            return cls(grant_id, patient, identifier["value"], purpose, scope, expiry, salt, catalogue.catalogue_id)
        except GrantError:
            raise
        except (KeyError, ValueError, TypeError, StopIteration, IndexError) as exc:
            raise GrantError(f"Consent is not a pchr grant: {type(exc).__name__} {exc}") from exc


def _instant(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
