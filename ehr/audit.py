"""FHIR ``AuditEvent``s for accesses to a patient's record, so the patient can see who read what and when.

The vault writes one per access by someone other than the patient (a grantee's read or search), sealed to the
patient like any record: the vault can list that an AuditEvent exists, only the patient can read it.
Spec: https://hl7.org/fhir/R4B/auditevent.html (type ``rest``, subtype the RESTful interaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["access_event"]

_ACTIONS = {"read": "R", "vread": "R", "search-type": "E", "history-instance": "R"}


def access_event(
    *, agent: str, patient: str, interaction: str, what: Sequence[str], when: datetime, grant_id: bytes | None
) -> dict[str, Any]:
    """An AuditEvent: ``agent`` (an address) performed ``interaction`` on ``what`` (``Type/id/_history/v``)."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": _ACTIONS.get(interaction, "R"),
        "recorded": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "outcome": "0",
        "agent": [
            {
                "who": {"identifier": {"system": "urn:pchr:address", "value": agent}},
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "pchr vault"}},
        "entity": [
            {
                "what": {"reference": f"Patient/{patient}"},
                "role": {
                    "code": "1",
                    "display": "Patient",
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                },
            }
        ]
        + [{"what": {"reference": ref}} for ref in what],
    }
    if grant_id is not None:
        event["purposeOfEvent"] = [{"coding": [{"system": "urn:pchr:grant-id", "code": grant_id.hex()}]}]
    return event
