"""The wire form of a sealed resource version, and its carriage inside a FHIR ``Binary``.

A sealed version travels as a JSON *envelope* (media type ``application/pchr-sealed+json``)::

    {"pchr": "sealed/v1", "resourceType": "Observation", "id": "...", "versionId": "2",
     "patient": "0x...", "nonce": b64url, "ciphertext": b64url,
     "key": {"recipient": "0x...", "epk": b64url, "wrapped": b64url}}

The vault speaks FHIR REST, and a FHIR response carries resources, so the envelope rides in a ``Binary``
(``contentType`` the media type above, ``data`` the envelope bytes). The Binary's ``id`` and ``meta`` mirror the
sealed resource's id, version and lastUpdated, its ``securityContext`` names the patient and a ``meta.tag``
names the sealed type, so a FHIR client can page, sort and follow links without ever seeing plaintext.
The ``key`` is always the one wrapped for the party the envelope is sent to (or, on a write, for the patient).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ehr._encoding import b64url as _b64
from ehr._encoding import unb64url as _unb64
from ehr._json import JsonTooDeep, loads
from ehr.crypto import SealContext, SealedResource, WrappedKey

__all__ = ["SEALED_MEDIA_TYPE", "SEALED_TYPE_SYSTEM", "Envelope", "EnvelopeError"]

SEALED_MEDIA_TYPE = "application/pchr-sealed+json"
SEALED_TYPE_SYSTEM = "urn:pchr:fhir:sealed-resource-type"
_FORMAT = "sealed/v1"


class EnvelopeError(ValueError):
    """A sealed envelope or its Binary carrier is malformed."""


@dataclass(frozen=True)
class Envelope:
    sealed: SealedResource
    key: WrappedKey

    @property
    def context(self) -> SealContext:
        return self.sealed.context

    def to_json(self) -> dict[str, Any]:
        c = self.sealed.context
        return {
            "pchr": _FORMAT,
            "resourceType": c.resource_type,
            "id": c.resource_id,
            "versionId": c.version_id,
            "patient": c.patient,
            "nonce": _b64(self.sealed.nonce),
            "ciphertext": _b64(self.sealed.ciphertext),
            "key": self.key.to_json(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: object) -> Envelope:
        if not isinstance(data, dict) or data.get("pchr") != _FORMAT:
            raise EnvelopeError("not a pchr sealed envelope (sealed/v1)")
        try:
            context = SealContext(
                _text(data["resourceType"]), _text(data["id"]), _text(data["versionId"]), _text(data["patient"])
            )
            sealed = SealedResource(context, _unb64(data["nonce"]), _unb64(data["ciphertext"]))
            return cls(sealed, WrappedKey.from_json(data["key"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvelopeError(f"sealed envelope is malformed: {exc}") from exc

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        try:
            return cls.from_json(loads(raw))
        except JsonTooDeep as exc:
            raise EnvelopeError(f"sealed envelope is not an envelope: {exc}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, EnvelopeError):
                raise
            raise EnvelopeError("sealed envelope is not JSON") from exc

    def to_binary(self, last_updated: str) -> dict[str, Any]:
        """The FHIR Binary that carries this envelope."""
        c = self.sealed.context
        return {
            "resourceType": "Binary",
            "id": c.resource_id,
            "meta": {
                "versionId": c.version_id,
                "lastUpdated": last_updated,
                "tag": [{"system": SEALED_TYPE_SYSTEM, "code": c.resource_type}],
            },
            "contentType": SEALED_MEDIA_TYPE,
            "securityContext": {"reference": f"Patient/{c.patient}"},
            "data": base64.b64encode(self.to_bytes()).decode(),
        }

    @classmethod
    def from_binary(cls, binary: object) -> Envelope:
        if not isinstance(binary, dict) or binary.get("resourceType") != "Binary":
            raise EnvelopeError("expected a Binary carrying a sealed envelope")
        if binary.get("contentType") != SEALED_MEDIA_TYPE:
            raise EnvelopeError(f"Binary.contentType must be {SEALED_MEDIA_TYPE}")
        data = binary.get("data")
        if not isinstance(data, str):
            raise EnvelopeError("Binary.data is missing")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EnvelopeError("Binary.data is not base64") from exc
        return cls.from_bytes(raw)


def is_sealed_binary(body: object) -> bool:
    return (
        isinstance(body, dict) and body.get("resourceType") == "Binary" and body.get("contentType") == SEALED_MEDIA_TYPE
    )


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value
